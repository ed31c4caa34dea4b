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
#include <sys/stat.h>
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
	char second[128];
	(void) state;
	/* Three listeners (only tcp:// and tls+tcp:// are served). */
	assert_int_equal(td_daemon_start(&D,
	                     (const char *[]) { "--listen", "tcp://127.0.0.1:0", "--listen",
	                         "tcp://127.0.0.1:0", "--listen", "tcp://127.0.0.1:0", NULL }),
	    0);
	const char *l1 = D.ready, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
	const char *pub = strchr(l3, '\n') + 1;
	if (strncmp(pub, "admin http://127.0.0.1:", 23) == 0) { /* the admin endpoint, when on */
		pub = strchr(pub, '\n') + 1;
	}
	const char *rd = strchr(pub, '\n') + 1;
	assert_int_equal(strncmp(l1, "listen tcp://127.0.0.1:", 23), 0);
	assert_int_equal(strncmp(l2, "listen tcp://127.0.0.1:", 23), 0);
	assert_int_equal(strncmp(l3, "listen tcp://127.0.0.1:", 23), 0);
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

/* Runs discoveryd (bounded by td_run) with args and the environment as it is. */
static int
run(const char *const *args, char *out, size_t out_len, char *err, size_t err_len)
{
	const char *argv[20] = { DISCOVERYD_PATH, "--listen", "tcp://127.0.0.1:0", "--publish",
		"tcp://127.0.0.1:0", "--data", ":memory:" };
	size_t      n        = 7;
	while (*args != NULL) {
		argv[n++] = *args++;
	}
	argv[n] = NULL;
	return td_run(argv, out, out_len, err, err_len);
}

/*
 * Start-up used to hang: on a FIFO with no writer (open blocked for ever),
 * and for 27 s on 100,000 levels of YAML. Both are refused at once; td_run
 * bounds each run, so a regression fails instead of hanging.
 */
static void
test_config_that_would_hang(void **state)
{
	char fifo[128];
	(void) state;
	snprintf(fifo, sizeof(fifo), "%s/fifo.yaml", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	expect_refusal((const char *[]) { "--config", fifo, NULL }, 2,
	    "fifo.yaml: the configuration file is not a regular file");
	setenv("SERVICE_DISCOVERY_CONFIG", fifo, 1);
	expect_refusal((const char *[]) { NULL }, 2, "is not a regular file");
	unsetenv("SERVICE_DISCOVERY_CONFIG");

	char *deep = malloc(200000 + 3);
	assert_non_null(deep);
	for (int i = 0; i < 100000; i++) {
		memcpy(deep + 2 * i, "- ", 2);
	}
	strcpy(deep + 200000, "x\n");
	const char *path = file("deep.yaml", deep);
	free(deep);
	expect_refusal((const char *[]) { "--config", path, NULL }, 2,
	    "deep.yaml:1: nested more than 32 levels deep");

	char *big = malloc(2 * 1024 * 1024 + 1);
	assert_non_null(big);
	memset(big, '#', 2 * 1024 * 1024);
	big[2 * 1024 * 1024] = 0;
	path                 = file("big.yaml", big);
	free(big);
	expect_refusal((const char *[]) { "--config", path, NULL }, 2,
	    "big.yaml: the configuration file is 2097152 bytes, more than the 1048576 allowed");
}

/* 20 MB of unknown keys gave 1.69 million warning lines: now 20 and a count. */
static void
test_warnings_are_capped(void **state)
{
	char       *text = malloc(5000 * 16), *p = text, out[8192], err[16384];
	const char *path;
	(void) state;
	assert_non_null(text);
	for (int i = 0; i < 5000; i++) {
		p += sprintf(p, "key%d: 1\n", i);
	}
	path = file("many.yaml", text);
	free(text);
	assert_int_equal(run((const char *[]) { "--config", path, "--print-config", NULL }, out,
	                     sizeof(out), err, sizeof(err)),
	    0);
	size_t lines = 0;
	for (const char *q = err; (q = strstr(q, "unknown key")) != NULL; q++) {
		lines++;
	}
	assert_int_equal(lines, 20);
	assert_non_null(strstr(err, "... and 4980 more configuration warnings not shown"));
}

/* A SERVICE_ prefix of 128 bytes or more overran a stack buffer (ASan). */
static void
test_long_prefix_refused(void **state)
{
	char prefix[200], var[300], ep[64];
	int  held;
	(void) state;
	assert_int_equal(tu_dead_url(ep, sizeof(ep), "http", &held), 0); /* never dialed anyway */
	memset(prefix, 'P', 150);
	prefix[150] = 0;
	snprintf(var, sizeof(var), "%sMEMORY", prefix);
	setenv("SERVICE_DISCOVERY_ENV_PREFIX", prefix, 1);
	setenv(var, ep, 1);
	expect_refusal((const char *[]) { NULL }, 2,
	    "env SERVICE_DISCOVERY_ENV_PREFIX: the service prefix is 150 bytes, more than the 64 "
	    "allowed");
	unsetenv("SERVICE_DISCOVERY_ENV_PREFIX");
	unsetenv(var);
	close(held);
}

/*
 * A SERVICE_X the address policy refuses is skipped with a warning, as an
 * invalid URL is; --strict-config refuses both, and unknown keys too.
 */
static void
test_strict_config(void **state)
{
	const char *path = file("strict.yaml", "health_check:\n  rise: 2\nshiny: yes\n");
	(void) state;
	setenv("SERVICE_META", "http://169.254.169.254./latest", 1);
	int rv = td_daemon_start(&D, NULL);
	assert_int_equal(rv, 0);
	dsc_client *c = client(&D);
	assert_int_equal(dsc_resolve(c, "meta", false, NULL, NULL), DSC_ENOTFOUND);
	dsc_client_close(c);
	assert_true(td_daemon_log_contains(
	    &D, "SERVICE_META skipped: address 169.254.169.254 is in the denied range"));
	assert_int_equal(td_daemon_stop(&D), 0);
	expect_refusal((const char *[]) { "--strict-config", NULL }, 2,
	    "flag --strict-config: strict_config refuses what would be a warning: SERVICE_META "
	    "skipped");
	unsetenv("SERVICE_META");

	setenv("SERVICE_NAME", "billing", 1);
	expect_refusal((const char *[]) { "--strict-config", NULL }, 2, "SERVICE_NAME skipped");
	unsetenv("SERVICE_NAME");
	expect_refusal((const char *[]) { "--config", path, "--strict-config", NULL }, 2,
	    "strict.yaml:3: unknown key \"shiny\"");
	setenv("SERVICE_DISCOVERY_STRICT_CONFIG", "true", 1);
	setenv("SERVICE_DISCOVERY_HEALTH_CHECK_RIZE", "3", 1);
	expect_refusal((const char *[]) { NULL }, 2,
	    "env SERVICE_DISCOVERY_STRICT_CONFIG: strict_config refuses what would be a warning: "
	    "unknown setting variable SERVICE_DISCOVERY_HEALTH_CHECK_RIZE");
	unsetenv("SERVICE_DISCOVERY_STRICT_CONFIG");
	unsetenv("SERVICE_DISCOVERY_HEALTH_CHECK_RIZE");
}

/* Other spellings of a refused address are refused at Register, over the wire. */
static void
test_register_refuses_other_spellings(void **state)
{
	static const char *const urls[] = {
		"http://169.254.169.254./latest",
		"http://[::169.254.169.254]/",
		"http://[::ffff:169.254.169.254]/",
		"http://[64:ff9b::a9fe:a9fe]/",
		"http://0xa9.0xfe.0xa9.0xfe/",
		"http://2852039166/",
		"http://0xA9FEA9FE./",
		"tcp://0251.0376.0251.0376:80",
	};
	(void) state;
	assert_int_equal(td_daemon_start(&D, NULL), 0);
	dsc_client *c = client(&D);
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		dsc_registration r = { .service = "meta", .endpoint = urls[i] };
		dsc_error        err;
		int              rv = dsc_register(c, &r, NULL, &err);
		if (rv != DSC_EINVAL
		    || strstr(err.message, "denied range 169.254.0.0/16") == NULL) {
			fail_msg("%s: %d %s", urls[i], rv, rv != 0 ? err.message : "registered");
		}
	}
	assert_int_equal(dsc_resolve(c, "meta", false, NULL, NULL), DSC_ENOTFOUND);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
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
		cmocka_unit_test(test_config_that_would_hang),
		cmocka_unit_test(test_warnings_are_capped),
		cmocka_unit_test(test_long_prefix_refused),
		cmocka_unit_test_teardown(test_strict_config, teardown),
		cmocka_unit_test_teardown(test_register_refuses_other_spellings, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
