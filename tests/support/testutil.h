/* Helpers every cmocka test file shares. */
#ifndef TEST_TESTUTIL_H
#define TEST_TESTUTIL_H

#include <discovery/discovery.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Fails the test with the call and the text for its error (the table dsc_strerror shares). */
#define assert_ok(expr)                                                         \
	do {                                                                    \
		int rv_ = (expr);                                               \
		if (rv_ != 0) {                                                 \
			fail_msg("%s: %s (%d)", #expr, dsi_strerror(rv_), rv_); \
		}                                                               \
	} while (0)

/*
 * How many times slower than native this run executes: DISCOVERY_TEST_SLOWDOWN
 * from the environment (1 to 100; 1 when unset). scripts/valgrind.sh sets it.
 * Liveness bounds, and timeouts within which a test needs an answer, are
 * multiplied by it (tests never assert timings).
 */
int tu_slowdown(void);

/* A generous bound for liveness waits: these machines are shared and noisy. */
#define TU_LIVENESS_MS (15000 * tu_slowdown())

/*
 * ms times tu_slowdown(): for every time a test relies on, bounds and the
 * TTLs of instances it expects to stay alive meanwhile alike.
 */
int tu_stretch_ms(int ms);

/*
 * A loopback TCP port that refuses connections: a socket bound to
 * 127.0.0.1:0 that never listens, kept in *fd (close it when the test is
 * done; until then no one else can take the port). Returns the port or -1.
 */
int tu_dead_port(int *fd);

/* "scheme://127.0.0.1:PORT" for a tu_dead_port port into buf; 0 or -1. */
int tu_dead_url(char *buf, size_t len, const char *scheme, int *fd);

void    tu_sleep_ms(long ms);
int64_t tu_now_ms(void); /* monotonic */

/*
 * A fresh scratch directory under TMPDIR (or /tmp), named after prefix, in
 * buf; 0 or -1. tu_rmtree removes it with everything in it.
 */
/*
 * LD_PRELOAD=path for the programs started until tu_preload_end (a shim such
 * as slow_fsync). Under ASan the preload comes before ASan's runtime, which
 * ASan refuses unless told the order does not matter: ASAN_OPTIONS gains
 * verify_asan_link_order=0 meanwhile. tu_preload_end puts both back.
 */
typedef struct tu_preload {
	char *old_asan; /* ASAN_OPTIONS before, or NULL when it was unset */
	bool  had_asan;
} tu_preload;
void tu_preload_begin(tu_preload *p, const char *path);
void tu_preload_end(tu_preload *p);

int  tu_mkdtemp(char *buf, size_t len, const char *prefix);
void tu_rmtree(const char *dir);

/* A whole file, NUL-terminated, in a malloc'd buffer, its size in *len; NULL if unreadable. */
char *tu_slurp(const char *path, size_t *len);

/* cmocka group setup/teardown for tests that call libcurl (support/curl.c; not in the kit). */
int tu_curl_setup(void **state);
int tu_curl_teardown(void **state);

#endif
