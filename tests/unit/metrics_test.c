/* metrics: sharded counters summed at render, histograms cumulative, the text buffer grows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "support/testutil.h"

#define THREADS 8
#define PER     1000

static void *
adder(void *arg)
{
	dsi_metrics *m = arg;
	for (int i = 0; i < PER; i++) {
		/* call 11 is resolve (the Request oneof number); status 0 STATUS_OK, 5
		 * STATUS_NOT_FOUND */
		dsi_metrics_request(m, 11, i % 2 == 0 ? 0 : 5, dsi_metrics_now_ns());
		dsi_metrics_check(m, i % 4 != 0, 2000000); /* 2 ms */
		dsi_metrics_event(m);
	}
	return NULL;
}

static void
test_threads_sum_at_render(void **state)
{
	dsi_metrics *m;
	pthread_t    t[THREADS];
	dsi_textbuf  b = { NULL, 0, 0, false };
	char         want[128];
	(void) state;
	assert_ok(dsi_metrics_create(&m));
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, adder, m), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
	}
	dsi_metrics_render(m, &b);
	assert_false(b.failed);
	snprintf(want, sizeof(want),
	    "discovery_requests_total{call=\"resolve\",status=\"STATUS_OK\"} %d\n",
	    THREADS * PER / 2);
	assert_non_null(strstr(b.buf, want));
	snprintf(want, sizeof(want),
	    "discovery_requests_total{call=\"resolve\",status=\"STATUS_NOT_FOUND\"} %d\n",
	    THREADS * PER / 2);
	assert_non_null(strstr(b.buf, want));
	snprintf(want, sizeof(want),
	    "discovery_request_duration_seconds_count{call=\"resolve\"} %d\n", THREADS * PER);
	assert_non_null(strstr(b.buf, want));
	snprintf(want, sizeof(want), "discovery_health_checks_total{result=\"fail\"} %d\n",
	    THREADS * PER / 4);
	assert_non_null(strstr(b.buf, want));
	/* Cumulative: nothing at or below 1 ms, every check by 2.5 ms. */
	assert_non_null(
	    strstr(b.buf, "discovery_health_check_duration_seconds_bucket{le=\"0.001\"} 0\n"));
	snprintf(want, sizeof(want),
	    "discovery_health_check_duration_seconds_bucket{le=\"0.0025\"} %d\n", THREADS * PER);
	assert_non_null(strstr(b.buf, want));
	snprintf(want, sizeof(want), "discovery_events_published_total %d\n", THREADS * PER);
	assert_non_null(strstr(b.buf, want));
	free(b.buf);
	dsi_metrics_destroy(m);
}

static void
test_null_metrics_do_nothing(void **state)
{
	(void) state;
	dsi_metrics_request(NULL, 2, 0, 0);
	dsi_metrics_check(NULL, true, 1);
	dsi_metrics_event(NULL);
	dsi_metrics_commit(NULL, 0);
}

static void
test_textbuf_grows_and_process_metrics(void **state)
{
	dsi_textbuf b = { NULL, 0, 0, false };
	(void) state;
	for (int i = 0; i < 1000; i++) {
		dsi_textbuf_printf(&b, "line %d of some length\n", i);
	}
	assert_false(b.failed);
	assert_non_null(strstr(b.buf, "line 999 of some length\n"));
	dsi_metrics_render_process(&b);
	assert_non_null(strstr(b.buf, "\nprocess_resident_memory_bytes "));
	assert_non_null(strstr(b.buf, "\nprocess_open_fds "));
	assert_non_null(strstr(b.buf, "\nprocess_start_time_seconds "));
	assert_non_null(strstr(b.buf, "\nprocess_cpu_seconds_total "));
	free(b.buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_sum_at_render),
		cmocka_unit_test(test_null_metrics_do_nothing),
		cmocka_unit_test(test_textbuf_grows_and_process_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
