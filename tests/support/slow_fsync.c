/*
 * A slow disk, for tests: LD_PRELOAD this into discoveryd and every fsync
 * and fdatasync takes DISCOVERY_SLOW_FSYNC_MS (default 500) milliseconds
 * longer. The durability tests use it to show that nothing outside the
 * writer thread waits for a commit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h> /* the prototypes this replaces */

static void
delay(void)
{
	const char     *env = getenv("DISCOVERY_SLOW_FSYNC_MS");
	long            ms  = env != NULL ? atol(env) : 500;
	struct timespec ts  = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0) { }
}

int
fsync(int fd)
{
	int (*real)(int) = (int (*)(int)) dlsym(RTLD_NEXT, "fsync");
	delay();
	return real(fd);
}

int
fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int)) dlsym(RTLD_NEXT, "fdatasync");
	delay();
	return real(fd);
}
