/* The settings table: parsing each kind of value, lists, and provenance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <discovery/discovery.h>

#include "server/options.h"

static int
set(dsi_server_options *o, dsi_setting s, const char *v, dsi_source src, char *why)
{
	return dsi_options_set(o, s, v, src, "test", why, 256);
}

static void
test_defaults(void **state)
{
	dsi_server_options o;
	(void) state;
	dsi_options_default(&o);
	assert_int_equal(o.n_listen, 1);
	assert_string_equal(o.listen[0], "tcp://127.0.0.1:7700");
	assert_string_equal(o.publish, "tcp://127.0.0.1:7701");
	assert_int_equal(o.max_request, 1024 * 1024);
	assert_int_equal(o.health_interval_ms, 30000);
	assert_int_equal(o.health_timeout_ms, 5000);
	assert_int_equal(o.rise, 2);
	assert_int_equal(o.fall, 2);
	assert_int_equal(o.source[DSI_SET_RISE], DSI_SRC_DEFAULT);
	assert_string_equal(o.origin[DSI_SET_RISE], "default");
}

static void
test_values(void **state)
{
	dsi_server_options o;
	char               why[256];
	(void) state;
	dsi_options_default(&o);
	assert_int_equal(set(&o, DSI_SET_HEALTH_INTERVAL, "0.25", DSI_SRC_ENV, why), 0);
	assert_int_equal(o.health_interval_ms, 250);
	assert_int_equal(set(&o, DSI_SET_HEALTH_TIMEOUT, "5.0", DSI_SRC_FILE, why), 0);
	assert_int_equal(o.health_timeout_ms, 5000);
	assert_int_equal(set(&o, DSI_SET_LOG_LEVEL, "debug", DSI_SRC_FLAG, why), 0);
	assert_int_equal(o.log_level, DSI_LOG_DEBUG);
	assert_int_equal(set(&o, DSI_SET_MAX_REQUEST, "4096", DSI_SRC_FLAG, why), 0);
	assert_int_equal(o.max_request, 4096);
	assert_int_equal(set(&o, DSI_SET_MAX_PER_SERVICE, "5", DSI_SRC_FLAG, why), 0);
	assert_int_equal(o.limits.max_instances_per_service, 5);
	assert_int_equal(o.source[DSI_SET_HEALTH_INTERVAL], DSI_SRC_ENV);
	assert_string_equal(o.text[DSI_SET_HEALTH_TIMEOUT], "5.0");
}

static void
test_lists_replace_across_sources(void **state)
{
	dsi_server_options o;
	char               why[256];
	(void) state;
	dsi_options_default(&o);
	assert_int_equal(set(&o, DSI_SET_LISTEN, "tcp://127.0.0.1:1", DSI_SRC_FILE, why), 0);
	assert_int_equal(set(&o, DSI_SET_LISTEN, "tcp://127.0.0.1:2", DSI_SRC_FILE, why), 0);
	assert_int_equal(o.n_listen, 2); /* the file's list replaced the default */
	assert_int_equal(set(&o, DSI_SET_LISTEN, "ipc:///tmp/d", DSI_SRC_FLAG, why), 0);
	assert_int_equal(o.n_listen, 1); /* the flag's list replaced the file's */
	assert_string_equal(o.listen[0], "ipc:///tmp/d");
	assert_int_equal(set(&o, DSI_SET_REQUIRE, "a", DSI_SRC_ENV, why), 0);
	assert_int_equal(set(&o, DSI_SET_REQUIRE, "b", DSI_SRC_ENV, why), 0);
	assert_int_equal(o.n_require, 2);
}

static void
test_errors(void **state)
{
	static const struct {
		dsi_setting s;
		const char *v;
		const char *why;
	} bad[] = {
		{ DSI_SET_LOG_LEVEL, "loud", "error, warn, info or debug" },
		{ DSI_SET_MAX_REQUEST, "12k", "whole number" },
		{ DSI_SET_MAX_REQUEST, "1", "whole number from 64" },
		{ DSI_SET_WORKERS, "-3", "whole number" },
		{ DSI_SET_WORKERS, "99999999999999999999999", "whole number" },
		{ DSI_SET_HEALTH_INTERVAL, "abc", "seconds" },
		{ DSI_SET_HEALTH_INTERVAL, "-1", "seconds" },
		{ DSI_SET_HEALTH_INTERVAL, "nan", "seconds" },
		{ DSI_SET_HEALTH_TIMEOUT, "0", "seconds from 0.01" },
		{ DSI_SET_RISE, "0", "from 1" },
		{ DSI_SET_PUBLISH, "", "non-empty" },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dsi_server_options o;
		char               why[256] = "";
		dsi_options_default(&o);
		if (set(&o, bad[i].s, bad[i].v, DSI_SRC_FLAG, why) != DSC_EINVAL) {
			fail_msg("case %zu accepted", i);
		}
		if (strstr(why, bad[i].why) == NULL) {
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, bad[i].why);
		}
		assert_int_equal(o.source[bad[i].s], DSI_SRC_DEFAULT); /* nothing was changed */
	}
}

static void
test_every_setting_has_a_variable(void **state)
{
	(void) state;
	for (int s = 0; s < DSI_SET_COUNT; s++) {
		const dsi_setting_info *i = dsi_setting_get(s);
		assert_non_null(i->env);
		assert_int_equal(strncmp(i->env, "SERVICE_DISCOVERY_", 18), 0);
	}
	assert_string_equal(dsi_setting_get(DSI_SET_HEALTH_INTERVAL)->env,
	    "SERVICE_DISCOVERY_HEALTH_CHECK_INTERVAL");
	assert_string_equal(dsi_setting_get(DSI_SET_TOKEN)->env, "SERVICE_DISCOVERY_API_KEY");
	assert_string_equal(
	    dsi_setting_get(DSI_SET_HEALTH_INTERVAL)->yaml, "health_check.interval");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_lists_replace_across_sources),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_every_setting_has_a_variable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
