/* Regular files only, opened without blocking: the configuration and token readers share it. */
#include "common/regfile.h"

#include <discovery/discovery.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/text.h"

int
dsi_regfile_open(
    const char *path, const char *what, int *fd, struct stat *st, char *why, size_t why_len)
{
	int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	int flags;

	if (f < 0) {
		return dsi_failf(DSC_EINVAL, why, why_len, "%s: cannot read %s: %s", path, what,
		    strerror(errno));
	}
	if (fstat(f, st) != 0) {
		int e = errno;
		close(f);
		return dsi_failf(
		    DSC_EINVAL, why, why_len, "%s: cannot read %s: %s", path, what, strerror(e));
	}
	if (!S_ISREG(st->st_mode)) {
		close(f);
		return dsi_failf(
		    DSC_EINVAL, why, why_len, "%s: %s is not a regular file", path, what);
	}
	/* A regular file never blocks; clearing the flag keeps reads plain all the same. */
	if ((flags = fcntl(f, F_GETFL)) != -1) {
		(void) fcntl(f, F_SETFL, flags & ~O_NONBLOCK);
	}
	*fd = f;
	return 0;
}

int
dsi_regfile_read(const char *path, const char *what, size_t max, char **data, size_t *len,
    char *why, size_t why_len)
{
	struct stat st;
	char       *buf = NULL;
	size_t      n   = 0, cap;
	int         fd, rv;

	if ((rv = dsi_regfile_open(path, what, &fd, &st, why, why_len)) != 0) {
		return rv;
	}
	if (st.st_size < 0 || (unsigned long long) st.st_size > max) {
		rv = dsi_failf(DSC_EINVAL, why, why_len,
		    "%s: %s is %lld bytes, more than the %zu allowed", path, what,
		    (long long) st.st_size, max);
		goto out;
	}
	/* One byte past max shows a file that grew while it was read. */
	cap = (size_t) st.st_size + 1 < max + 1 ? (size_t) st.st_size + 1 : max + 1;
	if ((buf = malloc(cap + 1)) == NULL) {
		rv = dsi_failf(
		    DSC_ENOMEM, why, why_len, "%s: out of memory reading %s", path, what);
		goto out;
	}
	for (;;) {
		if (n == cap) {
			if (cap > max) {
				rv = dsi_failf(DSC_EINVAL, why, why_len,
				    "%s: %s is more than the %zu bytes allowed", path, what, max);
				goto out;
			}
			size_t ncap = cap * 2 < max + 1 ? cap * 2 : max + 1;
			char  *nb   = realloc(buf, ncap + 1);
			if (nb == NULL) {
				rv = dsi_failf(DSC_ENOMEM, why, why_len,
				    "%s: out of memory reading %s", path, what);
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got < 0) {
			rv = dsi_failf(DSC_EINVAL, why, why_len, "%s: cannot read %s: %s", path,
			    what, strerror(errno));
			goto out;
		}
		if (got == 0) {
			break;
		}
		n += (size_t) got;
	}
	buf[n] = 0;
	*data  = buf;
	*len   = n;
	buf    = NULL;
	rv     = 0;
out:
	free(buf);
	close(fd);
	return rv;
}
