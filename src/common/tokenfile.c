/*
 * The one token-file reader (discoveryd's --token-file and discoveryctl's),
 * and its rules for the other secrets in files: health check keys and
 * header values.
 */
#include "common/tokenfile.h"

#include <discovery/discovery.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/regfile.h"
#include "common/text.h"

/* Opens path as a regular file that group and others cannot read; 0 with *fd, or why. */
static int
open_secret(const char *path, const char *what, int *fd, char *why, size_t why_len)
{
	struct stat st;
	int         rv;
	/* A FIFO or a device is refused without blocking on it. */
	if ((rv = dsi_regfile_open(path, what, fd, &st, why, why_len)) != 0) {
		return rv;
	}
	if ((st.st_mode & 077) != 0) {
		close(*fd);
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "%s: %s is readable by group or others (mode %03o); chmod 600 it", path, what,
		    (unsigned) (st.st_mode & 0777));
	}
	return 0;
}

int
dsi_secret_file_check(const char *path, const char *what, char *why, size_t why_len)
{
	int fd;
	int rv = open_secret(path, what, &fd, why, why_len);
	if (rv == 0) {
		close(fd);
	}
	return rv;
}

int
dsi_token_file_read(const char *path, char *out, size_t out_len, char *why, size_t why_len)
{
	return dsi_secret_file_read(path, "the token file", out, out_len, why, why_len);
}

int
dsi_secret_file_read(
    const char *path, const char *what, char *out, size_t out_len, char *why, size_t why_len)
{
	/* One byte more than the largest token plus "\r\n", to see an oversized file. */
	char   buf[DSI_TOKEN_MAX + 3];
	size_t limit = out_len - 1 < DSI_TOKEN_MAX ? out_len - 1 : DSI_TOKEN_MAX;
	size_t n     = 0;
	int    rv    = DSC_EINVAL;

	if (out == NULL || out_len == 0) {
		return dsi_failf(DSC_EINVAL, why, why_len, "%s: no room for the token", path);
	}
	out[0] = 0;
	int fd;
	if ((rv = open_secret(path, what, &fd, why, why_len)) != 0) {
		return rv;
	}
	while (n < sizeof(buf)) {
		ssize_t got = read(fd, buf + n, sizeof(buf) - n);
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
	if (n > 0 && buf[n - 1] == '\n') {
		n--;
		if (n > 0 && buf[n - 1] == '\r') {
			n--;
		}
	}
	if (n > limit) {
		rv = dsi_failf(DSC_EINVAL, why, why_len,
		    "%s: %s is too large: a %s has at most %zu bytes", path, what,
		    strcmp(what, "the token file") == 0 ? "token" : "value", limit);
		goto out;
	}
	if (memchr(buf, 0, n) != NULL) {
		rv = dsi_failf(DSC_EINVAL, why, why_len, "%s: %s holds a NUL byte", path, what);
		goto out;
	}
	if (n == 0) {
		rv = dsi_failf(DSC_EINVAL, why, why_len, "%s: %s is empty", path, what);
		goto out;
	}
	memcpy(out, buf, n);
	out[n] = 0;
	rv     = 0;
out:
	close(fd);
	return rv;
}
