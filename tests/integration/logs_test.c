/*
 * --log-format json against the real daemon: every line it writes to stderr,
 * from start-up to shutdown, is one JSON object with time, level and msg,
 * and the register, deregister and health lines carry their fields (service,
 * endpoint, revision, and the writer's address as peer). Parsed with jansson.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/httpd.h"
#include "support/testutil.h"

/* The first line whose msg starts with prefix and whose service is svc; NULL: none. */
static json_t *
find(json_t *lines, const char *prefix, const char *svc)
{
	size_t  i;
	json_t *o;
	json_array_foreach(lines, i, o)
	{
		const char *msg = json_string_value(json_object_get(o, "msg"));
		const char *s   = json_string_value(json_object_get(o, "service"));
		if (msg != NULL && strncmp(msg, prefix, strlen(prefix)) == 0 && s != NULL
		    && strcmp(s, svc) == 0) {
			return o;
		}
	}
	return NULL;
}

/* Every line of the log as a JSON object (fails on any other line). */
static json_t *
parse_log(const char *path)
{
	size_t  len;
	char   *text  = tu_slurp(path, &len);
	json_t *lines = json_array();
	char   *save  = NULL;

	assert_non_null(text);
	assert_true(len > 0 && text[len - 1] == '\n');
	for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		json_error_t err;
		if (strncmp(l, "==", 2) == 0 && getenv("DISCOVERY_TEST_WRAPPER") != NULL) {
			continue; /* valgrind's own report, under scripts/valgrind.sh */
		}
		json_t *o = json_loads(l, 0, &err);
		if (o == NULL || !json_is_object(o)) {
			fail_msg("a log line is not a JSON object (%s): %s", err.text, l);
		}
		assert_true(json_is_string(json_object_get(o, "time")));
		assert_true(json_is_string(json_object_get(o, "level")));
		assert_true(json_is_string(json_object_get(o, "msg")));
		json_array_append_new(lines, o);
	}
	free(text);
	return lines;
}

static void
wait_health(dsc_client *c, const char *svc, dsc_health want)
{
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	for (;;) {
		bool       healthy;
		dsc_health state = DSC_HEALTH_UNKNOWN;
		assert_ok(dsc_is_healthy(c, svc, NULL, &healthy, &state, NULL));
		if (state == want) {
			return;
		}
		if (tu_now_ms() > deadline) {
			fail_msg("%s did not become %s", svc, dsc_health_name(want));
		}
		tu_sleep_ms(20);
	}
}

static void
test_every_line_is_json_with_fields(void **state)
{
	const char *const  args[] = { "--log-format", "json", "--log-level", "debug",
		 "--health-interval", "0.1", "--rise", "1", "--fall", "1", NULL };
	td_daemon          d;
	th_server         *web;
	dsc_client        *c;
	dsc_client_options o;
	char               ep[64], dir[128], kept[256];
	(void) state;

	assert_int_equal(th_start(&web), 0);
	assert_int_equal(th_set(web, "/health", 200), 0);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", th_port(web));
	assert_int_equal(td_daemon_start(&d, args), 0);
	/* td_daemon_stop removes its log: a second name keeps it, shutdown lines included. */
	assert_int_equal(tu_mkdtemp(dir, sizeof(dir), "logs-test"), 0);
	snprintf(kept, sizeof(kept), "%s/discoveryd.log", dir);
	assert_int_equal(link(d.log_path, kept), 0);
	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS;
	assert_ok(dsc_client_open(&c, d.url, &o));

	dsc_registration r = { .service = "json-logs", .endpoint = ep, .health_path = "/health" };
	assert_ok(dsc_register(c, &r, NULL, NULL));
	wait_health(c, "json-logs", DSC_HEALTH_HEALTHY);
	assert_int_equal(th_set(web, "/health", 503), 0);
	wait_health(c, "json-logs", DSC_HEALTH_UNHEALTHY);
	assert_ok(dsc_deregister(c, "json-logs", ep, NULL, NULL));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
	th_stop(web);

	json_t *lines = parse_log(kept);
	assert_true(json_array_size(lines) >= 5);

	json_t *reg = find(lines, "registered ", "json-logs");
	assert_non_null(reg);
	assert_string_equal(json_string_value(json_object_get(reg, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(reg, "endpoint")), ep);
	assert_string_equal(json_string_value(json_object_get(reg, "event")), "register");
	assert_true(json_integer_value(json_object_get(reg, "revision")) > 0);
	/* The writer's address: the client's side of a loopback connection. */
	const char *peer = json_string_value(json_object_get(reg, "peer"));
	assert_non_null(peer);
	assert_true(strncmp(peer, "127.0.0.1:", 10) == 0);
	assert_true(atoi(peer + 10) > 0);

	json_t *bad = find(lines, "health ", "json-logs");
	assert_non_null(bad); /* unknown -> healthy first */
	int     seen_unhealthy = 0;
	size_t  i;
	json_t *l;
	json_array_foreach(lines, i, l)
	{
		const char *h = json_string_value(json_object_get(l, "health"));
		seen_unhealthy += h != NULL && strcmp(h, "unhealthy") == 0;
	}
	assert_int_equal(seen_unhealthy, 1);

	json_t *dereg = find(lines, "deregistered ", "json-logs");
	assert_non_null(dereg);
	assert_int_equal(json_integer_value(json_object_get(dereg, "removed")), 1);
	assert_string_equal(json_string_value(json_object_get(dereg, "peer")), peer);

	json_t *last = json_array_get(lines, json_array_size(lines) - 1);
	assert_string_equal(json_string_value(json_object_get(last, "msg")), "stopped");
	json_decref(lines);
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_line_is_json_with_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
