/* Logging: lines at once to a stream, or through a queue that never blocks the logger. */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "support/testutil.h"

#define N_LINES 10000

static void
test_level_parse(void **state)
{
	dsi_log_level l;
	(void) state;
	assert_ok(dsi_log_level_parse("debug", &l));
	assert_int_equal(l, DSI_LOG_DEBUG);
	assert_ok(dsi_log_level_parse("error", &l));
	assert_int_equal(l, DSI_LOG_ERROR);
	assert_int_equal(dsi_log_level_parse("loud", &l), DSC_EINVAL);
}

static void
test_format_parse(void **state)
{
	dsi_log_format f;
	(void) state;
	assert_ok(dsi_log_format_parse("json", &f));
	assert_int_equal(f, DSI_LOG_JSON);
	assert_ok(dsi_log_format_parse("text", &f));
	assert_int_equal(f, DSI_LOG_TEXT);
	assert_int_equal(dsi_log_format_parse("xml", &f), DSC_EINVAL);
}

/* The text format leaves structured fields out: its message says them. */
static void
test_text_leaves_fields_out(void **state)
{
	char                buf[512] = "";
	FILE               *f        = tmpfile();
	dsi_log             log      = { .level = DSI_LOG_INFO, .out = f, .queue = NULL };
	const dsi_log_field fields[] = { DSI_LOG_STR("service", "db"), DSI_LOG_NUM("revision", 9) };
	(void) state;

	assert_non_null(f);
	dsi_logf_fields(&log, DSI_LOG_INFO, fields, 2, "registered %s", "db");
	rewind(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n]   = 0;
	fclose(f);
	assert_non_null(strstr(buf, "Z INFO  registered db\n"));
	assert_null(strstr(buf, "revision"));
}

static void
test_without_a_queue_lines_go_out_at_once(void **state)
{
	char    buf[512] = "";
	FILE   *f        = tmpfile();
	dsi_log log      = { .level = DSI_LOG_INFO, .out = f, .queue = NULL };
	(void) state;

	assert_non_null(f);
	dsi_info(&log, "hello %d", 42);
	dsi_debug(&log, "not at info level");
	dsi_error(&log, "bad");
	rewind(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n]   = 0;
	fclose(f);
	assert_non_null(strstr(buf, "Z INFO  hello 42\n"));
	assert_non_null(strstr(buf, "Z ERROR bad\n"));
	assert_null(strstr(buf, "not at info level"));
}

/* Reads a pipe to its end into a growing buffer. */
typedef struct reader {
	int       fd;
	char     *buf;
	size_t    len, cap;
	pthread_t thread;
} reader;

static void *
read_all(void *arg)
{
	reader *r = arg;
	for (;;) {
		if (r->cap - r->len < 4096) {
			r->cap = r->cap * 2 + 8192;
			r->buf = realloc(r->buf, r->cap);
			if (r->buf == NULL) {
				abort();
			}
		}
		ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len - 1);
		if (n <= 0) {
			break;
		}
		r->len += (size_t) n;
	}
	r->buf[r->len] = 0;
	return NULL;
}

/* A pipe as small as Linux allows, so it fills after a few lines. */
static void
small_pipe(int fds[2])
{
	assert_int_equal(pipe(fds), 0);
	(void) fcntl(fds[1], F_SETPIPE_SZ, 4096); /* best effort: 64 KiB fills too */
}

static void
test_a_stalled_output_drops_lines_and_reports_them(void **state)
{
	int       fds[2];
	dsi_logq *q;
	reader    r = { .fd = -1, .buf = NULL, .len = 0, .cap = 0 };
	(void) state;

	small_pipe(fds);
	assert_ok(dsi_logq_create(&q, fds[1], 8192));
	dsi_log log = { .level = DSI_LOG_DEBUG, .out = NULL, .queue = q };
	/* Nobody reads: every call must still return (a hang here is the failure). */
	for (int i = 0; i < N_LINES; i++) {
		dsi_debug(&log, "line %d of a stalled log", i);
	}
	uint64_t dropped = dsi_logq_dropped(q);
	assert_true(dropped > 0);
	assert_true(dropped < N_LINES);

	/* Now the output drains: what was queued comes out, then the report. */
	r.fd = fds[0];
	assert_int_equal(pthread_create(&r.thread, NULL, read_all, &r), 0);
	assert_true(dsi_logq_flush(q, TU_LIVENESS_MS));
	dsi_logq_destroy(q, TU_LIVENESS_MS);
	close(fds[1]);
	pthread_join(r.thread, NULL);
	close(fds[0]);

	/* Whole lines only, and every line either written or counted in a report. */
	size_t   written  = 0;
	uint64_t reported = 0;
	for (char *line = r.buf, *nl; *line != 0; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl);
		unsigned long long n;
		if (strstr(line, " of a stalled log") != NULL
		    && strstr(line, " of a stalled log") < nl) {
			written++;
		} else if (sscanf(strstr(line, "WARN  ") + 6, "%llu log lines dropped", &n) == 1) {
			reported += n;
		} else {
			fail_msg("unexpected line: %.*s", (int) (nl - line), line);
		}
	}
	free(r.buf);
	assert_int_equal(reported, dropped);
	assert_int_equal(written + reported, N_LINES);
}

static void
test_destroy_is_bounded_when_the_output_never_drains(void **state)
{
	int       fds[2];
	dsi_logq *q;
	(void) state;

	small_pipe(fds);
	assert_ok(dsi_logq_create(&q, fds[1], 8192));
	dsi_log log = { .level = DSI_LOG_DEBUG, .out = NULL, .queue = q };
	for (int i = 0; i < 1000; i++) {
		dsi_info(&log, "filling line %d", i);
	}
	assert_false(dsi_logq_flush(q, 50)); /* the pipe is full and nobody reads */
	dsi_logq_destroy(q, 50);             /* must return: a hang here is the failure */
	close(fds[0]);
	close(fds[1]);
}

static void
test_a_closed_output_counts_lines_as_dropped(void **state)
{
	int       fds[2];
	dsi_logq *q;
	(void) state;

	signal(SIGPIPE, SIG_IGN); /* as discoveryd does */
	assert_int_equal(pipe(fds), 0);
	close(fds[0]);
	assert_ok(dsi_logq_create(&q, fds[1], 8192));
	dsi_log log = { .level = DSI_LOG_DEBUG, .out = NULL, .queue = q };
	dsi_info(&log, "into nothing");
	/* Liveness only: the drainer finds the output gone and gives up on it. */
	int64_t until = tu_now_ms() + TU_LIVENESS_MS;
	while (dsi_logq_dropped(q) == 0 && tu_now_ms() < until) {
		tu_sleep_ms(5);
	}
	dsi_info(&log, "still into nothing");
	assert_int_equal(dsi_logq_dropped(q), 2);
	assert_false(dsi_logq_flush(q, 50));
	dsi_logq_destroy(q, 50);
	close(fds[1]);
}

static void
test_create_refuses_bad_arguments(void **state)
{
	dsi_logq *q = NULL;
	(void) state;
	assert_int_equal(dsi_logq_create(&q, -1, 8192), DSC_EINVAL);
	assert_int_equal(dsi_logq_create(&q, 2, 100), DSC_EINVAL);
	assert_null(q);
	assert_true(dsi_logq_flush(NULL, 0));
	dsi_logq_destroy(NULL, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_format_parse),
		cmocka_unit_test(test_text_leaves_fields_out),
		cmocka_unit_test(test_without_a_queue_lines_go_out_at_once),
		cmocka_unit_test(test_a_stalled_output_drops_lines_and_reports_them),
		cmocka_unit_test(test_destroy_is_bounded_when_the_output_never_drains),
		cmocka_unit_test(test_a_closed_output_counts_lines_as_dropped),
		cmocka_unit_test(test_create_refuses_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
