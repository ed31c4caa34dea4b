/* The JSON log format: one well-formed object a line, whatever the message holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "server/logjson.h"
#include "support/testutil.h"

#define CAP 1024

static const struct timespec TS = { .tv_sec = 1796126400, .tv_nsec = 123456789 };

/* Formats and parses one line; checks it is one line ending in '\n'. Caller decrefs. */
static json_t *
line_of(
    char *line, size_t cap, dsi_log_level level, const char *msg, const dsi_log_field *f, size_t nf)
{
	json_error_t err;
	size_t       n = dsi_log_format_json(line, cap, &TS, level, msg, f, nf);
	assert_true(n > 1 && n <= cap);
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', n - 1));
	json_t *o = json_loadb(line, n - 1, 0, &err);
	if (o == NULL) {
		fail_msg("not JSON (%s): %.*s", err.text, (int) n, line);
	}
	assert_true(json_is_object(o));
	return o;
}

static const char *
str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v)) {
		fail_msg("no string %s", key);
	}
	return json_string_value(v);
}

static void
test_time_level_msg(void **state)
{
	char line[CAP];
	(void) state;
	json_t *o = line_of(line, sizeof(line), DSI_LOG_WARN, "hello", NULL, 0);
	assert_string_equal(str(o, "time"), "2026-12-01T12:00:00.123Z");
	assert_string_equal(str(o, "level"), "warn");
	assert_string_equal(str(o, "msg"), "hello");
	assert_int_equal(json_object_size(o), 3);
	json_decref(o);
}

static void
test_fields_strings_and_numbers(void **state)
{
	char                line[CAP];
	const dsi_log_field f[] = { DSI_LOG_STR("service", "payments"),
		DSI_LOG_STR("endpoint", "http://127.0.0.1:9000"), DSI_LOG_NUM("revision", 42),
		DSI_LOG_STR("peer", "127.0.0.1:5555"), DSI_LOG_STR("msg", "must not replace"),
		DSI_LOG_STR("level", "nor this"), DSI_LOG_STR("endpoint_none", NULL) };
	(void) state;
	json_t *o = line_of(line, sizeof(line), DSI_LOG_INFO, "registered", f, 7);
	assert_string_equal(str(o, "msg"), "registered");
	assert_string_equal(str(o, "level"), "info");
	assert_string_equal(str(o, "service"), "payments");
	assert_string_equal(str(o, "endpoint"), "http://127.0.0.1:9000");
	assert_string_equal(str(o, "peer"), "127.0.0.1:5555");
	assert_int_equal(json_integer_value(json_object_get(o, "revision")), 42);
	/* A NULL string is the number field: 0. */
	assert_int_equal(json_integer_value(json_object_get(o, "endpoint_none")), 0);
	json_decref(o);
}

static void
test_hostile_text_is_escaped(void **state)
{
	char        line[CAP];
	const char *msg = "quote \" backslash \\ newline \n tab \t bell \a brace {\"x\":1}";
	(void) state;
	json_t *o = line_of(line, sizeof(line), DSI_LOG_ERROR, msg, NULL, 0);
	assert_string_equal(str(o, "msg"), msg);
	json_decref(o);
}

static void
test_text_that_is_not_utf8(void **state)
{
	char                line[CAP];
	const dsi_log_field f[] = { DSI_LOG_STR("endpoint", "bad\xff\xfe") };
	(void) state;
	json_t *o = line_of(line, sizeof(line), DSI_LOG_INFO, "caf\xc3\xa9 \xc3", f, 1);
	assert_string_equal(str(o, "msg"), "caf?? ?");
	assert_string_equal(str(o, "endpoint"), "bad??");
	json_decref(o);
}

static void
test_long_lines_are_cut_and_stay_json(void **state)
{
	char                line[CAP];
	char                msg[5000];
	const dsi_log_field f[] = { DSI_LOG_STR("service", "payments") };
	(void) state;
	/* Multi-byte characters and characters that escape to six bytes. */
	for (size_t i = 0; i + 2 < sizeof(msg); i += 3) {
		memcpy(msg + i, i % 2 ? "\xc3\xa9\x01" : "ab\"", 3);
	}
	msg[sizeof(msg) - 1 - (sizeof(msg) - 1) % 3] = 0;
	json_t *o    = line_of(line, sizeof(line), DSI_LOG_INFO, msg, f, 1);
	size_t  kept = strlen(str(o, "msg"));
	assert_true(kept > 100 && kept < strlen(msg));
	assert_memory_equal(str(o, "msg"), msg, kept);
	assert_string_equal(str(o, "service"), "payments");
	json_decref(o);
}

static void
test_through_a_logger(void **state)
{
	char    buf[2048] = "";
	FILE   *f         = tmpfile();
	dsi_log log
	    = { .level = DSI_LOG_INFO, .out = f, .queue = NULL, .format = dsi_log_format_json };
	const dsi_log_field fields[] = { DSI_LOG_STR("service", "db") };
	(void) state;

	assert_non_null(f);
	dsi_info(&log, "plain %d", 7);
	dsi_logf_fields(&log, DSI_LOG_WARN, fields, 1, "with %s", "fields");
	dsi_debug(&log, "not at info level");
	rewind(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n]        = 0;
	char   *save  = NULL;
	int     lines = 0;
	json_t *o     = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		json_error_t err;
		o = json_loads(l, 0, &err);
		assert_non_null(o);
		if (lines++ == 0) {
			assert_string_equal(str(o, "msg"), "plain 7");
			json_decref(o);
		}
	}
	assert_int_equal(lines, 2);
	assert_string_equal(str(o, "msg"), "with fields");
	assert_string_equal(str(o, "level"), "warn");
	assert_string_equal(str(o, "service"), "db");
	json_decref(o);
}

/*
 * Through a queue whose output stalls: the queue's own "N log lines dropped"
 * report is JSON too, so every line stays parseable.
 */
static void
test_a_queue_reports_drops_as_json(void **state)
{
	int       fds[2];
	dsi_logq *q;
	(void) state;

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	assert_ok(dsi_logq_create(&q, fds[1], 8192));
	dsi_logq_set_format(q, dsi_log_format_json);
	dsi_log log
	    = { .level = DSI_LOG_DEBUG, .out = NULL, .queue = q, .format = dsi_log_format_json };
	/* More than the pipe (64 KiB) and the queue hold while nobody reads. */
	for (int i = 0; i < 4000; i++) {
		dsi_debug(&log, "line %d of a stalled log", i);
	}
	assert_true(dsi_logq_dropped(q) > 0);

	/* Drain the pipe as the queue writes out the rest and its report. */
	size_t cap = 1 << 20, len = 0;
	char  *buf = malloc(cap);
	assert_non_null(buf);
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	bool    done     = false;
	while (!done && tu_now_ms() < deadline) {
		ssize_t n = read(fds[0], buf + len, cap - 1 - len);
		if (n > 0) {
			len += (size_t) n;
		} else {
			done = dsi_logq_flush(q, 10);
		}
	}
	ssize_t n;
	while ((n = read(fds[0], buf + len, cap - 1 - len)) > 0) {
		len += (size_t) n;
	}
	buf[len] = 0;
	dsi_logq_destroy(q, TU_LIVENESS_MS);
	close(fds[0]);
	close(fds[1]);
	assert_true(done);

	bool  reported = false;
	char *save     = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		json_error_t err;
		json_t      *o = json_loads(l, 0, &err);
		if (o == NULL) {
			fail_msg("not JSON (%s): %s", err.text, l);
		}
		reported |= strstr(str(o, "msg"), "log lines dropped") != NULL
		    && strcmp(str(o, "level"), "warn") == 0;
		json_decref(o);
	}
	free(buf);
	assert_true(reported);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_level_msg),
		cmocka_unit_test(test_fields_strings_and_numbers),
		cmocka_unit_test(test_hostile_text_is_escaped),
		cmocka_unit_test(test_text_that_is_not_utf8),
		cmocka_unit_test(test_long_lines_are_cut_and_stay_json),
		cmocka_unit_test(test_through_a_logger),
		cmocka_unit_test(test_a_queue_reports_drops_as_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
