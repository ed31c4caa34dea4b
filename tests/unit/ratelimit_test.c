/* The rate limiter: one line per interval, and a count of what was held back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/ratelimit.h"

static void
test_first_passes_then_holds(void **state)
{
	dsi_ratelimit rl = DSI_RATELIMIT_INIT(1000);
	uint64_t      held;
	(void) state;

	assert_true(dsi_ratelimit_allow(&rl, 5000, &held));
	assert_int_equal(held, 0);
	assert_false(dsi_ratelimit_allow(&rl, 5001, &held));
	assert_false(dsi_ratelimit_allow(&rl, 5999, &held));
	assert_true(dsi_ratelimit_allow(&rl, 6000, &held));
	assert_int_equal(held, 2);
	assert_true(dsi_ratelimit_allow(&rl, 9000, &held));
	assert_int_equal(held, 0);
}

static void
test_init_resets(void **state)
{
	dsi_ratelimit rl;
	uint64_t      held;
	(void) state;

	dsi_ratelimit_init(&rl, 60000);
	assert_true(dsi_ratelimit_allow(&rl, 1, &held));
	assert_false(dsi_ratelimit_allow(&rl, 2, &held));
	dsi_ratelimit_init(&rl, 60000);
	assert_true(dsi_ratelimit_allow(&rl, 3, &held));
	assert_int_equal(held, 0);
}

#define N_THREADS 4
#define N_EVENTS  10000

static dsi_ratelimit shared = DSI_RATELIMIT_INIT(1000000);
static _Atomic int   passed;

static void *
hammer(void *arg)
{
	uint64_t held;
	(void) arg;
	for (int i = 0; i < N_EVENTS; i++) {
		if (dsi_ratelimit_allow(&shared, 1, &held)) {
			atomic_fetch_add(&passed, 1);
		}
	}
	return NULL;
}

/* Concurrent events: exactly one line in the window, every other event held back. */
static void
test_threads_one_winner(void **state)
{
	pthread_t th[N_THREADS];
	uint64_t  held;
	(void) state;

	for (int i = 0; i < N_THREADS; i++) {
		assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
	}
	for (int i = 0; i < N_THREADS; i++) {
		pthread_join(th[i], NULL);
	}
	assert_int_equal(atomic_load(&passed), 1);
	assert_true(dsi_ratelimit_allow(&shared, 2000000, &held));
	assert_int_equal(held, N_THREADS * N_EVENTS - 1);
}

static void
test_logf_appends_count(void **state)
{
	char          buf[1024] = { 0 };
	FILE         *out       = fmemopen(buf, sizeof(buf), "w");
	dsi_log       log       = { .level = DSI_LOG_INFO, .out = out };
	dsi_ratelimit rl        = DSI_RATELIMIT_INIT(0);
	(void) state;

	assert_non_null(out);
	assert_true(dsi_ratelimit_logf(&rl, &log, DSI_LOG_WARN, "first %d", 1));
	atomic_store(&rl.held, 3); /* as if three were held back */
	assert_true(dsi_ratelimit_logf(&rl, &log, DSI_LOG_WARN, "second"));
	fclose(out);
	assert_non_null(strstr(buf, "first 1\n"));
	assert_non_null(strstr(buf, "second (3 more since the last report)\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_passes_then_holds),
		cmocka_unit_test(test_init_resets),
		cmocka_unit_test(test_threads_one_winner),
		cmocka_unit_test(test_logf_appends_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
