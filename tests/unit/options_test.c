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
	assert_int_equal(o.log_level, DSI_LOG_INFO);
	assert_string_equal(o.data, "discovery.db");
	assert_int_equal(o.workers, 64);
	assert_int_equal(o.limits.max_instances, 1000000);
	assert_int_equal(o.limits.max_instances_per_service, 65536);
	assert_int_equal(o.max_checks, 256);
	assert_int_equal(o.deregister_after_ms, 0);
	assert_int_equal(o.sync_interval_ms, 5000);
	assert_int_equal(o.event_buffer, 1024);
	assert_int_equal(o.drain_ms, 5000);
	assert_false(o.auth_reads);
	assert_null(o.token_file);
	assert_null(o.env_prefix); /* the profile decides */
	assert_int_equal(o.n_require, 0);
	assert_int_equal(o.n_allow_endpoint + o.n_deny_endpoint, 0);
	for (int s = 0; s < DSI_SET_COUNT; s++) {
		assert_null(o.text[s]); /* shown from the table */
	}
}

/* Only the values of o: where they came from is compared elsewhere. */
static void
values_only(dsi_server_options *o)
{
	memset(o->source, 0, sizeof(o->source));
	memset(o->origin, 0, sizeof(o->origin));
	memset(o->text, 0, sizeof(o->text));
}

/*
 * The table's default text is the value: giving each default's text as a
 * flag changes nothing. Texts that describe rather than give a value are
 * checked against the constants they describe.
 */
static void
test_default_text_is_the_value(void **state)
{
	char why[256];
	(void) state;
	for (int s = 0; s < DSI_SET_COUNT; s++) {
		const char *d = dsi_setting_get(s)->dflt;
		assert_non_null(d);
		if (strcmp(d, "none") == 0 || strstr(d, " (") != NULL) {
			continue;
		}
		dsi_server_options def, given;
		dsi_options_default(&def);
		dsi_options_default(&given);
		if (set(&given, s, d, DSI_SRC_FLAG, why) != 0) {
			fail_msg("--%s's default \"%s\" is refused: %s", dsi_setting_get(s)->flag,
			    d, why);
		}
		values_only(&def);
		values_only(&given);
		if (memcmp(&def, &given, sizeof(def)) != 0) {
			fail_msg("--%s: the default differs from its text \"%s\"",
			    dsi_setting_get(s)->flag, d);
		}
	}
	/* The descriptions name the same constants the code uses. */
	dsi_netpolicy p;
	dsi_netpolicy_init(&p);
	const char *deny = dsi_setting_get(DSI_SET_DENY_ENDPOINT)->dflt;
	assert_int_equal(p.n_deny, 2);
	for (size_t i = 0; i < p.n_deny; i++) {
		assert_non_null(strstr(deny, p.deny[i].text));
	}
	assert_int_equal(strncmp(dsi_setting_get(DSI_SET_ENV_PREFIX)->dflt,
	                     DSI_DEFAULT_ENV_PREFIX " ", strlen(DSI_DEFAULT_ENV_PREFIX) + 1),
	    0);
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
	assert_true(o.protection_threshold == 0); /* off unless set */
	assert_int_equal(set(&o, DSI_SET_PROTECTION_THRESHOLD, "0.25", DSI_SRC_FLAG, why), 0);
	assert_true(o.protection_threshold == 0.25);
	assert_int_equal(set(&o, DSI_SET_PROTECTION_THRESHOLD, "60%", DSI_SRC_FLAG, why), 0);
	assert_true(o.protection_threshold > 0.599 && o.protection_threshold < 0.601);
	assert_int_equal(o.source[DSI_SET_HEALTH_INTERVAL], DSI_SRC_ENV);
	assert_string_equal(o.text[DSI_SET_HEALTH_TIMEOUT], "5.0");
	/* TLS to etcd: one scheme for every member. */
	assert_int_equal(
	    set(&o, DSI_SET_CLUSTER, "etcds://127.0.0.1:2379,127.0.0.1:22379", DSI_SRC_FLAG, why),
	    0);
	assert_string_equal(o.cluster, "etcds://127.0.0.1:2379,127.0.0.1:22379");
	assert_int_equal(set(&o, DSI_SET_CLUSTER_CA, "/ca.pem", DSI_SRC_ENV, why), 0);
	assert_string_equal(o.cluster_ca, "/ca.pem");
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
		{ DSI_SET_PROTECTION_THRESHOLD, "1.5", "share from 0 to 1" },
		{ DSI_SET_PROTECTION_THRESHOLD, "-0.1", "share from 0 to 1" },
		{ DSI_SET_PROTECTION_THRESHOLD, "half", "share from 0 to 1" },
		{ DSI_SET_PROTECTION_THRESHOLD, "50%%", "share from 0 to 1" },
		{ DSI_SET_PROTECTION_THRESHOLD, "nan", "share from 0 to 1" },
		{ DSI_SET_CLUSTER, "etcds://", "etcds://... (TLS)" },
		{ DSI_SET_CLUSTER, "https://127.0.0.1:2379", "etcd://HOST:PORT" },
		{ DSI_SET_CLUSTER, "etcds://127.0.0.1:2379,etcd://127.0.0.1:2380",
		    "mixing etcd:// and etcds://" },
		{ DSI_SET_CLUSTER, "etcd://127.0.0.1:2379,https://127.0.0.1:2380", "one scheme" },
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
		cmocka_unit_test(test_default_text_is_the_value),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_lists_replace_across_sources),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_every_setting_has_a_variable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
