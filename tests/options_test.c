/* discoveryd's flag parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <discovery/discovery.h>

#include "options.h"

static int
parse(dsi_server_options *o, char *why, const char *const *args)
{
	char *argv[32];
	int   argc   = 0;
	argv[argc++] = "discoveryd";
	while (*args != NULL) {
		argv[argc++] = (char *) *args++;
	}
	FILE *sink = fopen("/dev/null", "w");
	dsi_options_default(o);
	int rv = dsi_options_parse(o, argc, argv, sink, why, 256);
	fclose(sink);
	return rv;
}

static void
test_defaults(void **state)
{
	dsi_server_options o;
	char               why[256];
	(void) state;
	assert_int_equal(parse(&o, why, (const char *[]) { NULL }), 0);
	assert_int_equal(o.n_listen, 1);
	assert_string_equal(o.listen[0], "tcp://127.0.0.1:7700");
	assert_string_equal(o.publish, "tcp://127.0.0.1:7701");
	assert_int_equal(o.max_request, 1024 * 1024);
	assert_int_equal(o.log_level, DSI_LOG_INFO);
}

static void
test_values(void **state)
{
	dsi_server_options o;
	char               why[256];
	(void) state;
	assert_int_equal(
	    parse(&o, why,
	        (const char *[]) { "--listen", "tcp://127.0.0.1:1", "--listen=ipc:///tmp/d",
	            "--publish", "tcp://127.0.0.1:2", "--log-level=debug", "--max-request-size",
	            "4096", "--max-instances", "10", "--max-instances-per-service=5", "--workers",
	            "8", NULL }),
	    0);
	assert_int_equal(o.n_listen, 2); /* the first --listen replaced the default */
	assert_string_equal(o.listen[1], "ipc:///tmp/d");
	assert_string_equal(o.publish, "tcp://127.0.0.1:2");
	assert_int_equal(o.log_level, DSI_LOG_DEBUG);
	assert_int_equal(o.max_request, 4096);
	assert_int_equal(o.limits.max_instances, 10);
	assert_int_equal(o.limits.max_instances_per_service, 5);
	assert_int_equal(o.workers, 8);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *args[4];
		const char *why;
	} bad[] = {
		{ { "--nope", NULL }, "unknown option \"--nope\"" },
		{ { "stray", NULL }, "unexpected argument" },
		{ { "--listen", NULL }, "needs a value" },
		{ { "--listen=", NULL }, "non-empty" },
		{ { "--log-level", "loud", NULL }, "error, warn, info or debug" },
		{ { "--max-request-size", "12k", NULL }, "whole number" },
		{ { "--max-request-size", "1", NULL }, "whole number from 64" },
		{ { "--workers", "-3", NULL }, "whole number" },
		{ { "--workers", "99999999999999999999999", NULL }, "whole number" },
		{ { "--help=yes", NULL }, "takes no value" },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dsi_server_options o;
		char               why[256] = "";
		if (parse(&o, why, bad[i].args) != DSC_EINVAL) {
			fail_msg("case %zu accepted", i);
		}
		if (strstr(why, bad[i].why) == NULL) {
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, bad[i].why);
		}
	}
}

static void
test_help_and_version_exit(void **state)
{
	dsi_server_options o;
	char               why[256];
	(void) state;
	assert_int_equal(parse(&o, why, (const char *[]) { "--help", NULL }), DSI_OPTIONS_EXIT);
	assert_int_equal(parse(&o, why, (const char *[]) { "--version", NULL }), DSI_OPTIONS_EXIT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_help_and_version_exit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
