/* Helpers every cmocka test file shares. */
#ifndef TEST_TESTUTIL_H
#define TEST_TESTUTIL_H

#include <discovery/discovery.h>
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

void    tu_sleep_ms(long ms);
int64_t tu_now_ms(void); /* monotonic */

/*
 * A fresh scratch directory under TMPDIR (or /tmp), named after prefix, in
 * buf; 0 or -1. tu_rmtree removes it with everything in it.
 */
int  tu_mkdtemp(char *buf, size_t len, const char *prefix);
void tu_rmtree(const char *dir);

/* A whole file, NUL-terminated, in a malloc'd buffer, its size in *len; NULL if unreadable. */
char *tu_slurp(const char *path, size_t *len);

/* cmocka group setup/teardown for tests that call libcurl. */
int tu_curl_setup(void **state);
int tu_curl_teardown(void **state);

#endif
