/* Number parsers: one strict implementation of each, for every caller. */
#include "common/parse.h"

#include <discovery/discovery.h>
#include <errno.h>
#include <stdlib.h>

int
dsi_parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char              *end = NULL;
	unsigned long long n;

	/* strtoull alone would skip spaces, take a sign and turn "-1" into a huge value. */
	if (s == NULL || s[0] < '0' || s[0] > '9') {
		return DSC_EINVAL;
	}
	errno = 0;
	n     = strtoull(s, &end, 10);
	if (errno != 0 || *end != 0 || n < lo || n > hi) {
		return DSC_EINVAL;
	}
	*out = n;
	return 0;
}

int
dsi_parse_u32(const char *s, uint32_t *out)
{
	uint64_t n;
	if (dsi_parse_uint(s, 0, UINT32_MAX, &n) != 0) {
		return DSC_EINVAL;
	}
	*out = (uint32_t) n;
	return 0;
}

int
dsi_parse_seconds(const char *s, double lo, double hi, int *ms)
{
	char  *end = NULL;
	double d;

	if (s == NULL || ((s[0] < '0' || s[0] > '9') && s[0] != '.')) {
		return DSC_EINVAL; /* no signs, spaces, inf or nan */
	}
	errno = 0;
	d     = strtod(s, &end);
	if (errno != 0 || end == s || *end != 0 || d < lo || d > hi) {
		return DSC_EINVAL;
	}
	int v = (int) (d * 1000.0 + 0.5);
	if (v == 0 && d > 0) {
		v = 1;
	}
	*ms = v;
	return 0;
}
