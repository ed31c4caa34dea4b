/*
 * Start-up registration in-process: the configuration's instances go
 * through the Register path (and meet its rules), and --require names
 * what is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <discovery/discovery.h>

#include "server/boot.h"
#include "support/testutil.h"

static dsi_server *
build(void)
{
	dsi_server_options o;
	dsi_server        *s        = NULL;
	char               why[256] = "";
	dsi_options_default(&o);
	o.listen[0] = "tcp://127.0.0.1:0";
	o.publish   = "tcp://127.0.0.1:0";
	o.data      = ":memory:";
	o.admin     = NULL; /* no admin endpoint on its fixed default port */
	o.workers   = 2;
	if (dsi_server_create(&s, &o, NULL, why, sizeof(why)) != 0) {
		fail_msg("create: %s", why);
	}
	return s;
}

static void
test_register_and_missing(void **state)
{
	dsi_server       *s    = build();
	dsc_kv            md[] = { { "zone", "eu-1" } };
	dsi_boot_instance b    = { .service = "memory",
		   .endpoint                = "http://127.0.0.1:9",
		   .metadata                = md,
		   .n_metadata              = 1,
		   .origin                  = "test" };
	char              why[256], missing[256];
	const char       *names[] = { "memory", "Billing", "bad name!" };
	(void) state;

	assert_ok(dsi_boot_register(s, &b, why, sizeof(why)));
	assert_int_equal(dsi_boot_missing(s, names, 1, missing, sizeof(missing)), 0);
	assert_string_equal(missing, "");
	/* Names are normalized before the lookup; the text shown is the one given. */
	assert_int_equal(dsi_boot_missing(s, names, 3, missing, sizeof(missing)), 2);
	assert_string_equal(missing, "Billing, bad name!");

	/* The Register rules apply: a scheme the server does not check is refused. */
	dsi_boot_instance bad = { .service = "ftp", .endpoint = "ftp://127.0.0.1:21" };
	assert_int_not_equal(dsi_boot_register(s, &bad, why, sizeof(why)), 0);
	assert_true(why[0] != 0);
	dsi_server_destroy(s);
}

static void
test_run_exit_codes(void **state)
{
	dsi_server       *s = build();
	dsi_config        cfg;
	dsi_boot_instance good
	    = { .service = "memory", .endpoint = "http://127.0.0.1:9", .origin = "file d.yaml:2" };
	dsi_boot_instance bad
	    = { .service = "ftp", .endpoint = "ftp://127.0.0.1:21", .origin = "env SERVICE_FTP" };
	char err[1024];
	(void) state;

	memset(&cfg, 0, sizeof(cfg));
	dsi_options_default(&cfg.options);
	cfg.boot   = &good;
	cfg.n_boot = 1;
	FILE *out  = fmemopen(err, sizeof(err), "w");
	assert_int_equal(dsi_boot_run(s, &cfg, out), 0);

	cfg.options.require[0] = "memory";
	cfg.options.require[1] = "billing";
	cfg.options.n_require  = 2;
	assert_int_equal(dsi_boot_run(s, &cfg, out), 1); /* a missing required service */
	fflush(out);
	assert_non_null(strstr(err, "required services are not registered: billing"));

	cfg.boot = &bad;
	rewind(out);
	assert_int_equal(dsi_boot_run(s, &cfg, out), 2); /* refused: bad configuration */
	fclose(out);
	assert_non_null(strstr(err, "env SERVICE_FTP: service ftp:"));
	dsi_server_destroy(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_and_missing),
		cmocka_unit_test(test_run_exit_codes),
	};
	return cmocka_run_group_tests(tests, tu_curl_setup, tu_curl_teardown);
}
