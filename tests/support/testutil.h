/* Helpers every cmocka test file shares. */
#ifndef TEST_TESTUTIL_H
#define TEST_TESTUTIL_H

#include <discovery/discovery.h>
#include <stdint.h>

/* Fails the test with the call and the library's text for its error. */
#define assert_ok(expr)                                                         \
	do {                                                                    \
		int rv_ = (expr);                                               \
		if (rv_ != 0) {                                                 \
			fail_msg("%s: %s (%d)", #expr, dsc_strerror(rv_), rv_); \
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

/* cmocka group setup/teardown for tests that call libcurl. */
int tu_curl_setup(void **state);
int tu_curl_teardown(void **state);

#endif
