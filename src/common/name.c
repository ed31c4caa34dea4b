/* Service-name rules from the contract: case-insensitive, '_' equals '-'. */
#include "common/name.h"

#include <discovery/discovery.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/text.h"

static bool
is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int
dsi_name_normalize(const char *name, char out[DSI_NAME_MAX + 1], char *why, size_t why_len)
{
	size_t len = name == NULL ? 0 : strlen(name);
	char   esc[80];

	if (len == 0) {
		snprintf(why, why_len, "service name is empty");
		return DSC_EINVAL;
	}
	if (len > DSI_NAME_MAX) {
		snprintf(why, why_len, "service name \"%s\" is %zu bytes, more than the %d allowed",
		    dsi_text_escape(name, esc, sizeof(esc)), len, DSI_NAME_MAX);
		return DSC_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (c >= 'A' && c <= 'Z') {
			c = (char) (c - 'A' + 'a');
		} else if (c == '_') {
			c = '-';
		}
		if (!is_alnum_lower(c) && c != '-' && c != '.') {
			snprintf(why, why_len,
			    "service name \"%s\" has a character outside [a-z0-9._-] at position "
			    "%zu",
			    dsi_text_escape(name, esc, sizeof(esc)), i + 1);
			return DSC_EINVAL;
		}
		out[i] = c;
	}
	out[len] = 0;
	if (!is_alnum_lower(out[0]) || !is_alnum_lower(out[len - 1])) {
		snprintf(why, why_len,
		    "service name \"%s\" must start and end with a letter or digit",
		    dsi_text_escape(name, esc, sizeof(esc)));
		return DSC_EINVAL;
	}
	return 0;
}
