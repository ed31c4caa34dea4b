/* Shared test helpers: the slowdown factor, clocks, scratch directories, files, dead ports. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "support/testutil.h"

#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
tu_slowdown(void)
{
	const char *env = getenv("DISCOVERY_TEST_SLOWDOWN");
	long        f   = env != NULL ? strtol(env, NULL, 10) : 1;
	return f < 1 ? 1 : f > 100 ? 100 : (int) f;
}

void
tu_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int64_t
tu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
tu_preload_begin(tu_preload *p, const char *path)
{
	const char *asan = getenv("ASAN_OPTIONS");
	char        opts[512];
	p->had_asan = asan != NULL;
	p->old_asan = asan != NULL ? strdup(asan) : NULL;
	snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0", asan != NULL ? asan : "",
	    asan != NULL && asan[0] != 0 ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	setenv("LD_PRELOAD", path, 1);
}

void
tu_preload_end(tu_preload *p)
{
	unsetenv("LD_PRELOAD");
	if (p->had_asan && p->old_asan != NULL) {
		setenv("ASAN_OPTIONS", p->old_asan, 1);
	} else {
		unsetenv("ASAN_OPTIONS");
	}
	free(p->old_asan);
	p->old_asan = NULL;
}

int
tu_mkdtemp(char *buf, size_t len, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(buf, len, "%s/%s-XXXXXX", tmp != NULL && tmp[0] != 0 ? tmp : "/tmp", prefix);
	return mkdtemp(buf) != NULL ? 0 : -1;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return remove(path);
}

void
tu_rmtree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *
tu_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long  n;
	*len = 0;
	if (f == NULL) {
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0
	    || (buf = malloc((size_t) n + 1)) == NULL) {
		fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t) n, f) != (size_t) n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = 0;
	*len   = (size_t) n;
	return buf;
}

int
tu_stretch_ms(int ms)
{
	return ms * tu_slowdown();
}

int
tu_dead_port(int *fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t          len = sizeof(a);
	int                s   = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Bound and never listening: the kernel refuses every connection to it. */
	if (s < 0 || bind(s, (struct sockaddr *) &a, sizeof(a)) != 0
	    || getsockname(s, (struct sockaddr *) &a, &len) != 0) {
		if (s >= 0) {
			close(s);
		}
		return -1;
	}
	*fd = s;
	return ntohs(a.sin_port);
}

int
tu_dead_url(char *buf, size_t len, const char *scheme, int *fd)
{
	int port = tu_dead_port(fd);
	if (port < 0) {
		return -1;
	}
	snprintf(buf, len, "%s://127.0.0.1:%d", scheme, port);
	return 0;
}
