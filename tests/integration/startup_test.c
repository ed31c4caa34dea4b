/*
 * Start-up configuration against the real daemon: the original YAML file,
 * SERVICE_<NAME> variables, the production profile, --require, --ready-fd,
 * and the exit codes and messages of a configuration that cannot start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/testutil.h"

static char      dir[64];
static td_daemon D; /* the test's daemon; teardown kills it if a test failed midway */

static int
teardown(void **state)
{
	(void) state;
	if (D.pid > 0) {
		td_daemon_kill(&D);
	}
	return 0;
}

static const char *
file(const char *name, const char *text)
{
	static char path[4][128];
	static int  next;
	char       *p = path[next++ % 4];
	snprintf(p, 128, "%s/%s", dir, name);
	FILE *fp = fopen(p, "w");
	fputs(text, fp);
	fclose(fp);
	return p;
}

static int
group_setup(void **state)
{
	(void) state;
	snprintf(dir, sizeof(dir), "/tmp/startup-test-XXXXXX");
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	char cmd[128];
	(void) state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static dsc_client *
client_url(const char *url)
{
	dsc_client *c;
	assert_ok(dsc_client_open(&c, url, NULL));
	return c;
}

static dsc_client *
client(const td_daemon *d)
{
	return client_url(d->url);
}

static void
expect_endpoint(dsc_client *c, const char *svc, const char *want)
{
	dsc_instance *x;
	assert_ok(dsc_resolve(c, svc, false, &x, NULL));
	assert_string_equal(x->endpoint, want);
	dsc_instance_free(x);
}

/* Runs discoveryd to completion (it must not start) and checks its exit and stderr. */
static void
expect_refusal(const char *const *args, int code, const char *text)
{
	const char *argv[20] = { DISCOVERYD_PATH, "--listen", "tcp://127.0.0.1:0", "--publish",
		"tcp://127.0.0.1:0", "--data", ":memory:" };
	size_t      n        = 7;
	char        out[4096], err[4096];
	while (*args != NULL) {
		argv[n++] = *args++;
	}
	argv[n] = NULL;
	int rv  = td_run(argv, out, sizeof(out), err, sizeof(err));
	if (rv != code || strstr(err, text) == NULL) {
		fail_msg("exit %d (want %d), stderr: %s (want \"%s\")", rv, code, err, text);
	}
}

static void
test_original_yaml_and_service_variables(void **state)
{
	const char *path = file("discovery.yaml",
	    "services:\n"
	    "  memory: http://memory-service:9000\n"
	    "  cognition: http://cognition-service:9100\n"
	    "health_check:\n"
	    "  interval: 30\n"
	    "  timeout: 5.0\n"
	    "shiny: yes\n");
	(void) state;
	setenv("SERVICE_COGNITION_ENGINE", "http://127.0.0.1:9200", 1);
	setenv("SERVICE_DISCOVERY_HEALTH_CHECK_INTERVAL", "60", 1);
	setenv("SERVICE_NAME", "billing", 1);
	int rv = td_daemon_start(&D, (const char *[]) { "--config", path, NULL });
	unsetenv("SERVICE_COGNITION_ENGINE");
	unsetenv("SERVICE_DISCOVERY_HEALTH_CHECK_INTERVAL");
	unsetenv("SERVICE_NAME");
	assert_int_equal(rv, 0);
	dsc_client *c = client(&D);
	expect_endpoint(c, "memory", "http://memory-service:9000");
	expect_endpoint(c, "cognition", "http://cognition-service:9100");
	expect_endpoint(c, "cognition-engine", "http://127.0.0.1:9200");
	assert_int_equal(
	    dsc_resolve(c, "discovery-health-check-interval", false, NULL, NULL), DSC_ENOTFOUND);
	assert_int_equal(dsc_resolve(c, "name", false, NULL, NULL), DSC_ENOTFOUND);
	dsc_client_close(c);
	assert_true(td_daemon_log_contains(&D, "SERVICE_NAME skipped"));
	assert_true(td_daemon_log_contains(&D, "unknown key \"shiny\""));
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_production_profile(void **state)
{
	const char *https = file("prod.yaml", "services:\n  memory: https://memory.internal:443\n");
	const char *http  = file("prod-http.yaml", "services:\n  memory: http://memory.internal\n");
	(void) state;

	setenv("ENVIRONMENT", "production", 1);
	expect_refusal((const char *[]) { "--config", https, NULL }, 2, "needs an auth token");
	setenv("SERVICE_DISCOVERY_API_KEY", "s3cret", 1);
	expect_refusal((const char *[]) { "--config", http, NULL }, 2,
	    "prod-http.yaml:2: service memory: the production profile accepts only https://");
	int rv = td_daemon_start(&D, (const char *[]) { "--config", https, NULL });
	unsetenv("ENVIRONMENT");
	unsetenv("SERVICE_DISCOVERY_API_KEY");
	assert_int_equal(rv, 0);

	dsc_client        *c;
	dsc_client_options o;
	dsc_error          err;
	dsc_registration   r = { .service = "web", .endpoint = "http://web:80" };
	dsc_client_options_init(&o);
	o.auth_token = "s3cret"; /* production requires a token, and writes need it */
	assert_ok(dsc_client_open(&c, D.url, &o));
	assert_int_equal(dsc_register(c, &r, NULL, &err), DSC_EINVAL);
	assert_non_null(strstr(err.message, "the production profile accepts only https://"));
	r.endpoint = "https://web:443";
	assert_ok(dsc_register(c, &r, NULL, NULL));
	expect_endpoint(c, "memory", "https://memory.internal:443");
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_require(void **state)
{
	const char *path
	    = file("req.yaml", "services:\n  memory: http://m:9000\nrequired: [memory]\n");
	(void) state;
	expect_refusal((const char *[]) { "--require", "memory,billing", NULL }, 1,
	    "required services are not registered: memory, billing");
	expect_refusal((const char *[]) { "--config", path, "--require", "memory,billing", NULL },
	    1, "required services are not registered: billing");
	setenv("SERVICE_BILLING", "http://b:1", 1);
	int rv = td_daemon_start(
	    &D, (const char *[]) { "--config", path, "--require", "memory,billing", NULL });
	unsetenv("SERVICE_BILLING");
	assert_int_equal(rv, 0);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_bad_configuration_exits_2(void **state)
{
	const char *bad = file("bad.yaml", "health_check:\n  interval: 30\n   timeout: [\n");
	const char *val = file("val.yaml", "health_check:\n  interval: soon\n");
	(void) state;
	expect_refusal((const char *[]) { "--config", bad, NULL }, 2, "bad.yaml:3: malformed YAML");
	expect_refusal((const char *[]) { "--config", val, NULL }, 2,
	    "val.yaml:2 (health_check.interval): expects seconds");
	expect_refusal((const char *[]) { "--config", "/nonexistent.yaml", NULL }, 2,
	    "/nonexistent.yaml: cannot read the configuration file");
	expect_refusal(
	    (const char *[]) { "--rise", "0", NULL }, 2, "flag --rise: expects a whole number");
	/* A configured service the server rejects names where it came from. */
	const char *name = file("name.yaml", "services:\n  memory: ftp://m:21\n");
	expect_refusal(
	    (const char *[]) { "--config", name, NULL }, 2, "name.yaml:2: service memory:");
}

/* docs/ready-fd.md: one line per listener in order, the publish URL, "ready", then EOF. */
static void
test_ready_fd_reports_bound_urls(void **state)
{
	char second[128], ipc[128];
	(void) state;
	snprintf(ipc, sizeof(ipc), "ipc://%s/ready.ipc", dir);
	assert_int_equal(td_daemon_start(&D,
	                     (const char *[]) { "--listen", "tcp://127.0.0.1:0", "--listen",
	                         "tcp://127.0.0.1:0", "--listen", ipc, NULL }),
	    0);
	const char *l1 = D.ready, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
	const char *pub = strchr(l3, '\n') + 1, *rd = strchr(pub, '\n') + 1;
	assert_int_equal(strncmp(l1, "listen tcp://127.0.0.1:", 23), 0);
	assert_int_equal(strncmp(l2, "listen tcp://127.0.0.1:", 23), 0);
	assert_int_equal(strncmp(l3, "listen ipc://", 13), 0);
	assert_int_equal(strncmp(pub, "publish tcp://127.0.0.1:", 24), 0);
	assert_string_equal(rd, "ready\n");
	assert_int_equal(strncmp(l1 + 7, D.url, strlen(D.url)), 0);
	assert_int_equal(strncmp(pub + 8, D.pub_url, strlen(D.pub_url)), 0);
	assert_int_not_equal(strncmp(l1, l2, (size_t) (l2 - l1)), 0); /* two real ports */
	/* Every reported listener serves. */
	snprintf(second, sizeof(second), "%.*s", (int) (l3 - l2 - 8), l2 + 7);
	const char *urls[] = { D.url, second };
	for (size_t i = 0; i < 2; i++) {
		dsc_client *c = client_url(urls[i]);
		assert_int_equal(dsc_resolve(c, "nothing", false, NULL, NULL), DSC_ENOTFOUND);
		dsc_client_close(c);
	}
	assert_int_equal(td_daemon_stop(&D), 0);
	/* A descriptor that is not open is refused like bad configuration. */
	expect_refusal((const char *[]) { "--ready-fd", "987", NULL }, 2,
	    "--ready-fd 987: not an open descriptor");
}

static void
test_print_config(void **state)
{
	const char *path = file("pc.yaml", "health_check:\n  rise: 3\n");
	const char *argv[]
	    = { DISCOVERYD_PATH, "--config", path, "--fall", "4", "--print-config", NULL };
	char out[8192], err[4096];
	(void) state;
	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 0);
	assert_non_null(strstr(out, "file "));
	assert_non_null(strstr(out, "(health_check.rise)"));
	assert_non_null(strstr(out, "flag --fall"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_original_yaml_and_service_variables, teardown),
		cmocka_unit_test_teardown(test_production_profile, teardown),
		cmocka_unit_test_teardown(test_require, teardown),
		cmocka_unit_test(test_bad_configuration_exits_2),
		cmocka_unit_test_teardown(test_ready_fd_reports_bound_urls, teardown),
		cmocka_unit_test(test_print_config),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
