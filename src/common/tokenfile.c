/* The one token-file reader: discoveryd's --token-file and discoveryctl's. */
#include "common/tokenfile.h"

#include <discovery/discovery.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/regfile.h"
#include "common/text.h"

int
dsi_token_file_read(const char *path, char *out, size_t out_len, char *why, size_t why_len)
{
	/* One byte more than the largest token plus "\r\n", to see an oversized file. */
	char        buf[DSI_TOKEN_MAX + 3];
	size_t      limit = out_len - 1 < DSI_TOKEN_MAX ? out_len - 1 : DSI_TOKEN_MAX;
	size_t      n     = 0;
	struct stat st;
	int         rv = DSC_EINVAL;

	if (out == NULL || out_len == 0) {
		return dsi_failf(DSC_EINVAL, why, why_len, "%s: no room for the token", path);
	}
	out[0] = 0;
	/* A FIFO or a device is refused without blocking on it. */
	int fd;
	if ((rv = dsi_regfile_open(path, "the token file", &fd, &st, why, why_len)) != 0) {
		return rv;
	}
	if ((st.st_mode & 077) != 0) {
		rv = dsi_failf(DSC_EINVAL, why, why_len,
		    "%s: the token file is readable by group or others (mode %03o); chmod 600 it",
		    path, (unsigned) (st.st_mode & 0777));
		goto out;
	}
	while (n < sizeof(buf)) {
		ssize_t got = read(fd, buf + n, sizeof(buf) - n);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got < 0) {
			rv = dsi_failf(DSC_EINVAL, why, why_len,
			    "%s: cannot read the token file: %s", path, strerror(errno));
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
		    "%s: the token file is too large: a token has at most %zu bytes", path, limit);
		goto out;
	}
	if (memchr(buf, 0, n) != NULL) {
		rv = dsi_failf(
		    DSC_EINVAL, why, why_len, "%s: the token file holds a NUL byte", path);
		goto out;
	}
	if (n == 0) {
		rv = dsi_failf(DSC_EINVAL, why, why_len, "%s: the token file is empty", path);
		goto out;
	}
	memcpy(out, buf, n);
	out[n] = 0;
	rv     = 0;
out:
	close(fd);
	return rv;
}
