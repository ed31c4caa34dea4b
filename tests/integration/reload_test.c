/*
 * Reload (SIGHUP) and declarative configuration against the real
 * discoveryd: the token, the log level and the configured services change
 * without a restart; a configuration start-up would refuse changes
 * nothing; instances keep their origin across a restart. Each reload is
 * waited for through the daemon's log (a bounded poll), never a sleep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/httpd.h"
#include "support/testutil.h"

static char      dir[256];   /* this run's scratch directory */
static char      yaml[300];  /* dir/discoveryd.yaml */
static char      token[300]; /* dir/token */
static char      data[300];  /* dir/registry.db */
static td_daemon D;          /* the test's discoveryd; teardown kills it when a test failed */

static int
setup(void **state)
{
	(void) state;
	if (tu_mkdtemp(dir, sizeof(dir), "discovery-reload") != 0) {
		return -1;
	}
	snprintf(yaml, sizeof(yaml), "%s/discoveryd.yaml", dir);
	snprintf(token, sizeof(token), "%s/token", dir);
	snprintf(data, sizeof(data), "%s/registry.db", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	td_daemon_kill(&D);
	tu_rmtree(dir);
	return 0;
}

/* Replaces path's contents at once (rename), so a reload never reads half a file. */
static void
write_file(const char *path, mode_t mode, const char *text)
{
	char tmp[320];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(tmp, mode), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* Occurrences of text in the daemon's log. */
static size_t
log_count(const td_daemon *d, const char *text)
{
	size_t n   = 0, len;
	char  *log = tu_slurp(d->log_path, &len);
	for (const char *p = log; p != NULL && (p = strstr(p, text)) != NULL; p += strlen(text)) {
		n++;
	}
	free(log);
	return n;
}

/*
 * Sends SIGHUP and waits (a liveness bound) until the daemon logs the
 * reload's outcome; returns whether it was applied ("reload done") rather
 * than refused ("reload failed").
 */
static bool
reload(td_daemon *d)
{
	size_t  done = log_count(d, "reload done"), failed = log_count(d, "reload failed");
	int64_t end = tu_now_ms() + TU_LIVENESS_MS;
	assert_int_equal(kill(d->pid, SIGHUP), 0);
	while (tu_now_ms() < end) {
		if (log_count(d, "reload done") > done) {
			return true;
		}
		if (log_count(d, "reload failed") > failed) {
			return false;
		}
		tu_sleep_ms(20);
	}
	fail_msg("no reload outcome logged within the liveness bound");
	return false;
}

static dsc_client *
client(const td_daemon *d, const char *tok)
{
	dsc_client        *c;
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = tu_stretch_ms(5000);
	o.auth_token = tok;
	assert_ok(dsc_client_open(&c, d->url, &o));
	return c;
}

static bool
has(dsc_client *c, const char *service, const char *endpoint)
{
	dsc_instance_list *l   = NULL;
	bool               yes = false;
	if (dsc_get_all(c, service, &l, NULL) == 0) {
		for (size_t i = 0; i < l->count; i++) {
			yes = yes || strcmp(l->items[i].endpoint, endpoint) == 0;
		}
		dsc_instance_list_free(l);
	}
	return yes;
}

/*
 * discoveryd on the scratch files, without the kit's --log-level flag (it
 * would outrank the file's log_level), with extra arguments appended (a
 * --listen of their own first).
 */
static void
start(td_daemon *d, const char *const *extra)
{
	char        log[320];
	const char *args[24] = { DISCOVERYD_PATH, "--publish", "tcp://127.0.0.1:0", "--config",
		yaml, "--data", data };
	size_t      n        = 7;
	if (extra == NULL || strcmp(extra[0], "--listen") != 0) {
		args[n++] = "--listen";
		args[n++] = "tcp://127.0.0.1:0";
	}
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++) {
		args[n++] = extra[i];
	}
	args[n] = NULL;
	snprintf(log, sizeof(log), "%s/discoveryd.log", dir);
	assert_int_equal(td_spawn(d, args, log, TU_LIVENESS_MS), 0);
}

static void
api_register(dsc_client *c, const char *service, const char *endpoint)
{
	dsc_registration r = { .service = service, .endpoint = endpoint, .ttl_ms = 600000 };
	assert_ok(dsc_register(c, &r, NULL, NULL));
}

static void
test_token_change_takes_effect(void **state)
{
	(void) state;
	write_file(yaml, 0644, "log_level: info\n");
	write_file(token, 0600, "first-token\n");
	start(&D, (const char *[]) { "--token-file", token, NULL });
	dsc_client *one = client(&D, "first-token"), *two = client(&D, "second-token");
	api_register(one, "guarded", "http://127.0.0.1:1");
	assert_int_equal(dsc_deregister(two, "guarded", NULL, NULL, NULL), DSC_EPERM);

	write_file(token, 0600, "second-token\n");
	assert_true(reload(&D));
	/* The same connections, the other token. */
	dsc_registration r = { .service = "guarded", .endpoint = "http://127.0.0.1:2" };
	assert_int_equal(dsc_register(one, &r, NULL, NULL), DSC_EPERM);
	assert_ok(dsc_register(two, &r, NULL, NULL));
	assert_true(td_daemon_log_contains(&D, "reload: api-key changed"));

	/* An unreadable token file is a failed reload: the running token stays. */
	assert_int_equal(chmod(token, 0644), 0);
	assert_false(reload(&D));
	assert_ok(dsc_deregister(two, "guarded", "http://127.0.0.1:1", NULL, NULL));
	dsc_client_close(one);
	dsc_client_close(two);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_log_level_change(void **state)
{
	(void) state;
	write_file(yaml, 0644, "log_level: info\n");
	start(&D, NULL);
	dsc_client *c = client(&D, NULL);
	/* A failed call is a debug line: not logged at info, logged at debug. */
	assert_int_equal(dsc_resolve(c, "before-reload", false, NULL, NULL), DSC_ENOTFOUND);
	write_file(yaml, 0644, "log_level: debug\n");
	assert_true(reload(&D));
	assert_true(td_daemon_log_contains(&D, "reload: log-level info -> debug"));
	assert_int_equal(dsc_resolve(c, "after-reload", false, NULL, NULL), DSC_ENOTFOUND);
	int64_t end = tu_now_ms() + TU_LIVENESS_MS;
	while (!td_daemon_log_contains(&D, "after-reload") && tu_now_ms() < end) {
		tu_sleep_ms(20);
	}
	assert_true(td_daemon_log_contains(&D, "after-reload"));
	/* One queue, in order: had the first been logged, it would be there by now. */
	assert_false(td_daemon_log_contains(&D, "before-reload"));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_removed_service_is_deregistered(void **state)
{
	(void) state;
	write_file(yaml, 0644,
	    "services:\n"
	    "  web: http://127.0.0.1:8080\n"
	    "  api: http://127.0.0.1:9090\n");
	start(&D, NULL);
	dsc_client *c = client(&D, NULL);
	assert_true(has(c, "web", "http://127.0.0.1:8080"));
	assert_true(has(c, "api", "http://127.0.0.1:9090"));
	api_register(
	    c, "api", "http://127.0.0.1:9091"); /* the API's: configuration never touches it */

	write_file(yaml, 0644, "services:\n  web: http://127.0.0.1:8080\n");
	assert_true(reload(&D));
	assert_true(has(c, "web", "http://127.0.0.1:8080"));
	assert_false(has(c, "api", "http://127.0.0.1:9090"));
	assert_true(has(c, "api", "http://127.0.0.1:9091"));

	/* Added back, and a new one, on the next reload. */
	write_file(yaml, 0644,
	    "services:\n"
	    "  web: http://127.0.0.1:8080\n"
	    "  api: http://127.0.0.1:9090\n"
	    "  db: tcp://127.0.0.1:5432\n");
	assert_true(reload(&D));
	assert_true(has(c, "api", "http://127.0.0.1:9090"));
	assert_true(has(c, "db", "tcp://127.0.0.1:5432"));
	assert_true(has(c, "api", "http://127.0.0.1:9091"));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_broken_yaml_keeps_configuration(void **state)
{
	(void) state;
	write_file(yaml, 0644, "log_level: info\nservices:\n  web: http://127.0.0.1:8080\n");
	start(&D, NULL);
	dsc_client *c = client(&D, NULL);

	write_file(yaml, 0644, "log_level: debug\nservices: [\n");
	assert_false(reload(&D));
	assert_true(td_daemon_log_contains(&D, "the running configuration stays"));
	assert_true(has(c, "web", "http://127.0.0.1:8080"));
	api_register(c, "still-serving", "http://127.0.0.1:1");
	assert_true(has(c, "still-serving", "http://127.0.0.1:1"));

	/* A service start-up would refuse is a failed reload too. */
	write_file(yaml, 0644, "services:\n  web: ftp://127.0.0.1:21\n");
	assert_false(reload(&D));
	assert_true(has(c, "web", "http://127.0.0.1:8080"));

	/* Fixed, it applies. */
	write_file(yaml, 0644, "services:\n  other: http://127.0.0.1:8081\n");
	assert_true(reload(&D));
	assert_false(has(c, "web", "http://127.0.0.1:8080"));
	assert_true(has(c, "other", "http://127.0.0.1:8081"));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_strict_config_fails_reload(void **state)
{
	(void) state;
	write_file(yaml, 0644, "services:\n  web: http://127.0.0.1:8080\n");
	start(&D, (const char *[]) { "--strict-config", NULL });
	dsc_client *c = client(&D, NULL);
	write_file(yaml, 0644, "no_such_key: 1\nservices:\n  api: http://127.0.0.1:9090\n");
	assert_false(reload(&D));
	assert_true(has(c, "web", "http://127.0.0.1:8080"));
	assert_false(has(c, "api", "http://127.0.0.1:9090"));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);

	/* Without it, the unknown key is a warning and the rest applies. */
	start(&D, NULL);
	c = client(&D, NULL);
	write_file(yaml, 0644, "no_such_key: 2\nservices:\n  api: http://127.0.0.1:9090\n");
	assert_true(reload(&D));
	assert_true(has(c, "api", "http://127.0.0.1:9090"));
	assert_false(has(c, "web", "http://127.0.0.1:8080"));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_restart_keeps_origins(void **state)
{
	(void) state;
	write_file(yaml, 0644,
	    "services:\n"
	    "  web: http://127.0.0.1:8080\n"
	    "  api: http://127.0.0.1:9090\n");
	start(&D, NULL);
	dsc_client *c = client(&D, NULL);
	api_register(c, "manual", "http://127.0.0.1:7070");
	api_register(c, "web", "http://127.0.0.1:8081");
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);

	/* Changed while stopped: api is gone from the file. */
	write_file(yaml, 0644, "services:\n  web: http://127.0.0.1:8080\n");
	start(&D, NULL);
	c = client(&D, NULL);
	assert_true(has(c, "web", "http://127.0.0.1:8080"));
	assert_false(has(c, "api", "http://127.0.0.1:9090"));
	assert_true(has(c, "manual", "http://127.0.0.1:7070"));
	assert_true(has(c, "web", "http://127.0.0.1:8081"));
	assert_true(td_daemon_log_contains(&D, "deregistered api http://127.0.0.1:9090"));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);

	/* With no services at all, only the configuration's go. */
	write_file(yaml, 0644, "log_level: info\n");
	start(&D, NULL);
	c = client(&D, NULL);
	assert_false(has(c, "web", "http://127.0.0.1:8080"));
	assert_true(has(c, "manual", "http://127.0.0.1:7070"));
	assert_true(has(c, "web", "http://127.0.0.1:8081"));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
}

/* Waits (a liveness bound) until service's instance at endpoint is in state want. */
static bool
wait_state(dsc_client *c, const char *service, const char *endpoint, dsc_health want)
{
	int64_t end = tu_now_ms() + TU_LIVENESS_MS;
	do {
		bool       healthy;
		dsc_health state = DSC_HEALTH_UNKNOWN;
		if (dsc_is_healthy(c, service, endpoint, &healthy, &state, NULL) == 0
		    && state == want) {
			return true;
		}
		tu_sleep_ms(20);
	} while (tu_now_ms() < end);
	return false;
}

static void
test_health_settings_change(void **state)
{
	th_server *web;
	char       text[512], ep[64];
	(void) state;
	assert_int_equal(th_start(&web), 0);
	assert_int_equal(th_set(web, "/ok", 200), 0);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", th_port(web));
	/* The next check in an hour, and 100 failures: far past the bound, unless reloaded. */
	snprintf(text, sizeof(text),
	    "health_check: {interval: 3600, rise: 1, fall: 100}\n"
	    "services:\n  web: {endpoint: \"%s\", health_path: /ok}\n",
	    ep);
	write_file(yaml, 0644, text);
	start(&D, NULL);
	dsc_client *c = client(&D, NULL);
	assert_true(wait_state(c, "web", ep, DSC_HEALTH_HEALTHY));

	assert_int_equal(th_set(web, "/ok", 500), 0);
	snprintf(text, sizeof(text),
	    "health_check: {interval: 0.2, rise: 1, fall: 1}\n"
	    "services:\n  web: {endpoint: \"%s\", health_path: /ok}\n",
	    ep);
	write_file(yaml, 0644, text);
	assert_true(reload(&D));
	assert_true(td_daemon_log_contains(&D, "reload: fall 100 -> 1"));
	assert_true(wait_state(c, "web", ep, DSC_HEALTH_UNHEALTHY));
	assert_int_equal(dsc_resolve(c, "web", true, NULL, NULL), DSC_EUNAVAILABLE);

	/* The protection threshold, at once: none healthy, so Resolve picks among all. */
	snprintf(text, sizeof(text),
	    "health_check: {interval: 0.2, rise: 1, fall: 1, protection_threshold: 0.5}\n"
	    "services:\n  web: {endpoint: \"%s\", health_path: /ok}\n",
	    ep);
	write_file(yaml, 0644, text);
	assert_true(reload(&D));
	assert_ok(dsc_resolve(c, "web", true, NULL, NULL));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
	th_stop(web);
}

/* Runs argv to completion; 0 when it exits 0 (what it printed goes to stderr otherwise). */
static int
run_quiet(const char *const *argv)
{
	char out[4096], err[4096];
	int  rv = td_run(argv, out, sizeof(out), err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "%s exited %d:\n%s%s", argv[0], rv, out, err);
	}
	return rv;
}

/* dir/NAME.crt and dir/NAME.key for localhost, signed by a CA of its own: dir/NAME-ca.crt. */
static void
make_cert(const char *name)
{
	char ca_crt[320], ca_key[320], crt[320], key[320], csr[320], ext[320], subj[64];
	snprintf(ca_crt, sizeof(ca_crt), "%s/%s-ca.crt", dir, name);
	snprintf(ca_key, sizeof(ca_key), "%s/%s-ca.key", dir, name);
	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(csr, sizeof(csr), "%s/%s.csr", dir, name);
	snprintf(ext, sizeof(ext), "%s/%s.ext", dir, name);
	snprintf(subj, sizeof(subj), "/CN=%s-ca", name);
	write_file(ext, 0644, "subjectAltName=DNS:localhost\n");
	assert_int_equal(run_quiet((const char *[]) { "/usr/bin/openssl", "req", "-x509", "-newkey",
	                     "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
	                     ca_key, "-out", ca_crt, "-days", "2", "-subj", subj, NULL }),
	    0);
	assert_int_equal(run_quiet((const char *[]) { "/usr/bin/openssl", "req", "-new", "-newkey",
	                     "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
	                     key, "-out", csr, "-subj", "/CN=localhost", NULL }),
	    0);
	assert_int_equal(run_quiet((const char *[]) { "/usr/bin/openssl", "x509", "-req", "-in",
	                     csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
	                     "-days", "2", "-extfile", ext, NULL }),
	    0);
}

/* Puts NAME's certificate and key in place as the server's (dir/server.crt, .key). */
static void
install_cert(const char *name)
{
	char        from[320], to[320];
	const char *ext[] = { "crt", "key" };
	for (int i = 0; i < 2; i++) {
		snprintf(from, sizeof(from), "%s/%s.%s", dir, name, ext[i]);
		snprintf(to, sizeof(to), "%s/server.%s", dir, ext[i]);
		size_t len;
		char  *text = tu_slurp(from, &len);
		assert_non_null(text);
		write_file(to, 0600, text);
		free(text);
	}
}

/* Opens a TLS client on d trusting NAME's CA; require: the handshake now. */
static int
tls_client(const td_daemon *d, const char *name, dsc_client **c)
{
	char               ca[320];
	dsc_client_options o;
	snprintf(ca, sizeof(ca), "%s/%s-ca.crt", dir, name);
	dsc_client_options_init(&o);
	o.timeout_ms         = tu_stretch_ms(5000);
	o.require_connection = true;
	o.tls.ca_file        = ca;
	o.tls.server_name    = "localhost";
	return dsc_client_open(c, d->url, &o);
}

static void
test_tls_certificates_reloaded(void **state)
{
	dsc_client *old, *c;
	char        crt[320], key[320];
	(void) state;
	make_cert("first");
	make_cert("second");
	install_cert("first");
	snprintf(crt, sizeof(crt), "%s/server.crt", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	write_file(yaml, 0644, "log_level: info\n");
	start(&D,
	    (const char *[]) {
	        "--listen", "tls+tcp://127.0.0.1:0", "--tls-cert", crt, "--tls-key", key, NULL });
	assert_ok(tls_client(&D, "first", &old));
	api_register(old, "tls-before", "http://127.0.0.1:1");

	install_cert("second"); /* renewed in place, as certbot does */
	assert_true(reload(&D));
	assert_true(td_daemon_log_contains(&D, "TLS certificates read again"));
	assert_int_equal(tls_client(&D, "first", &c), DSC_ETLS);
	assert_ok(tls_client(&D, "second", &c));
	api_register(c, "tls-after", "http://127.0.0.1:2");
	dsc_client_close(c);
	/* The connection made before the reload still serves. */
	assert_true(has(old, "tls-after", "http://127.0.0.1:2"));
	dsc_client_close(old);

	/* A key that does not match is a failed reload: the second certificate stays. */
	char other[320];
	snprintf(other, sizeof(other), "%s/first.key", dir);
	size_t len;
	char  *text = tu_slurp(other, &len);
	assert_non_null(text);
	write_file(key, 0600, text);
	free(text);
	assert_false(reload(&D));
	assert_ok(tls_client(&D, "second", &c));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_token_change_takes_effect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_level_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_settings_change, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_removed_service_is_deregistered, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_broken_yaml_keeps_configuration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_config_fails_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_origins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_certificates_reloaded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
