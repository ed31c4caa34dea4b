/*
 * TLS against the real daemon, with throwaway certificates made by the
 * openssl command line tool: calls, events, views and waits over
 * tls+tcp://; mutual TLS refusing clients without a certificate its CA
 * signed; clients refusing a server their CA did not sign; discoveryctl's
 * flags and exit statuses; and the start-up errors of a bad configuration.
 * Every refusal must be an error, never a hang, so clients use short
 * timeouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/certs.h"
#include "support/daemon.h"
#include "support/testutil.h"

#define FAIL_MS 1000 /* bound on calls that must fail: a refusal must not hang */

static td_daemon D;
static char      dir[64];

/* DIR/name, at a stable address for the whole run. */
static const char *
path(const char *name)
{
	static char paths[32][128];
	static int  n;
	char        p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	for (int i = 0; i < n; i++) {
		if (strcmp(paths[i], p) == 0) {
			return paths[i];
		}
	}
	assert_true(n < 32);
	memcpy(paths[n], p, sizeof(p));
	return paths[n++];
}

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

static int
group_setup(void **state)
{
	(void) state;
	snprintf(dir, sizeof(dir), "/tmp/tls-test-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	/*
	 * Clients name the server "localhost": Debian's nng (mbedTLS 2.28)
	 * matches DNS names only, not the IP address in subjectAltName.
	 */
	return tcert_make_ca(dir, "ca") != 0 || tcert_make_ca(dir, "other") != 0
	        || tcert_make_leaf(dir, "server", "ca", "DNS:localhost,IP:127.0.0.1") != 0
	        || tcert_make_leaf(dir, "client", "ca", "DNS:client") != 0
	        || tcert_make_leaf(dir, "rogue", "other", "DNS:client") != 0
	    ? -1
	    : 0;
}

static int
group_teardown(void **state)
{
	(void) state;
	return run_quiet((const char *[]) { "/bin/rm", "-rf", dir, NULL });
}

static int
teardown(void **state)
{
	(void) state;
	if (D.pid > 0) {
		td_daemon_kill(&D);
	}
	return 0;
}

/* Starts D on TLS URLs with the server's certificate, and --tls-ca ca when given. */
static void
start_tls(const char *ca)
{
	const char *args[16] = { "--listen", "tls+tcp://127.0.0.1:0", "--publish",
		"tls+tcp://127.0.0.1:0", "--sync-interval", "0.2", "--tls-cert", path("server.crt"),
		"--tls-key", path("server.key"), NULL };
	if (ca != NULL) {
		args[10] = "--tls-ca";
		args[11] = ca;
		args[12] = NULL;
	}
	assert_int_equal(td_daemon_start(&D, args), 0);
	assert_non_null(strstr(D.url, "tls+tcp://127.0.0.1:"));
	assert_non_null(strstr(D.pub_url, "tls+tcp://127.0.0.1:"));
}

/* TLS options trusting CA NAME (NULL: none), with client certificate WHO (NULL: none). */
static dsc_tls_options
tls_opts(const char *ca, const char *who)
{
	char            name[64];
	dsc_tls_options t = { .server_name = "localhost" };
	if (ca != NULL) {
		snprintf(name, sizeof(name), "%s.crt", ca);
		t.ca_file = path(name);
	}
	if (who != NULL) {
		snprintf(name, sizeof(name), "%s.crt", who);
		t.cert_file = path(name);
		snprintf(name, sizeof(name), "%s.key", who);
		t.key_file = path(name);
	}
	return t;
}

/* Opens a client on D; require: connect now (DSC_ETLS on a refused handshake). */
static int
open_client(dsc_client **c, const dsc_tls_options *t, bool require, int timeout_ms)
{
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms         = tu_stretch_ms(timeout_ms); /* a liveness bound */
	o.require_connection = require;
	o.tls                = *t;
	return dsc_client_open(c, D.url, &o);
}

/* Registers service at a TTL instance (so no health checks change it). */
static int
reg(dsc_client *c, const char *service, const char *endpoint)
{
	dsc_registration r = { .service = service, .endpoint = endpoint, .ttl_ms = 600000 };
	return dsc_register(c, &r, NULL, NULL);
}

/* Registers service with new metadata until w delivers an event of it (bounded). */
static void
expect_event(dsc_watch *w, dsc_client *c, const char *service)
{
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	int     round    = 0;
	while (tu_now_ms() < deadline) {
		char             n[16];
		dsc_kv           md = { "round", n };
		dsc_registration r
		    = { .service = service, .endpoint = "http://127.0.0.1:1", .ttl_ms = 600000 };
		snprintf(n, sizeof(n), "%d", round++);
		r.metadata   = &md;
		r.n_metadata = 1;
		assert_ok(dsc_register(c, &r, NULL, NULL));
		dsc_event *ev = NULL;
		int        rv = dsc_watch_next(w, 200, &ev);
		if (rv == 0) {
			bool hit = ev->type != DSC_EVENT_SYNC && strcmp(ev->service, service) == 0;
			dsc_event_free(ev);
			if (hit) {
				return;
			}
		} else if (rv != DSC_ETIMEDOUT) {
			fail_msg("dsc_watch_next: %s", dsc_strerror(rv));
		}
	}
	fail_msg("no event of %s over TLS within %d ms", service, TU_LIVENESS_MS);
}

/* Server certificate only: calls and events over TLS, and clients that must refuse. */
static void
test_server_tls(void **state)
{
	dsc_client     *c, *bad;
	dsc_watch      *w;
	dsc_instance   *inst;
	dsc_error       err;
	dsc_tls_options good = tls_opts("ca", NULL);
	(void) state;

	start_tls(NULL);
	assert_ok(open_client(&c, &good, true, 5000));
	assert_ok(dsc_watch_open_tls(&w, D.pub_url, (const char *[]) { "web" }, 1, &good));
	char ep[64];
	int  held;
	assert_int_equal(tu_dead_url(ep, sizeof(ep), "http", &held), 0); /* a port of ours */
	assert_ok(reg(c, "web", ep));
	assert_ok(dsc_resolve(c, "web", false, &inst, NULL));
	assert_string_equal(inst->endpoint, ep);
	dsc_instance_free(inst);
	close(held);
	expect_event(w, c, "web");
	dsc_watch_close(w);

	/* A client trusting another CA refuses the server, at once. */
	dsc_tls_options wrong_ca = tls_opts("other", NULL);
	assert_int_equal(open_client(&bad, &wrong_ca, true, 5000), DSC_ETLS);
	assert_int_equal(dsc_watch_open_tls(&w, D.pub_url, NULL, 0, &wrong_ca), DSC_ETLS);
	/* In the background it looks like a server that is down: an error, in time. */
	assert_ok(open_client(&bad, &wrong_ca, false, FAIL_MS));
	assert_int_equal(dsc_resolve(bad, "web", false, NULL, &err), DSC_ECONNREFUSED);
	assert_non_null(strstr(err.message, "TLS"));
	dsc_client_close(bad);

	/* So does one expecting another name than the certificate's. */
	dsc_tls_options wrong_name = good;
	wrong_name.server_name     = "elsewhere.example";
	assert_int_equal(open_client(&bad, &wrong_name, true, 5000), DSC_ETLS);

	/* tls+tcp:// without a CA would trust anyone: refused before dialing. */
	dsc_tls_options none = { NULL, NULL, NULL, NULL };
	assert_int_equal(open_client(&bad, &none, false, 5000), DSC_EINVAL);
	assert_int_equal(dsc_tls_check(&none, &err), DSC_EINVAL);
	assert_non_null(strstr(err.message, "CA file"));

	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
}

/* --tls-ca: only clients with a certificate that CA signed get answers or events. */
static void
test_mutual_tls(void **state)
{
	dsc_client            *c, *bad;
	dsc_watch             *w;
	dsc_view              *v;
	dsc_error              err;
	dsc_wait_status        st;
	dsc_instance_list     *all;
	dsc_tls_options        mine = tls_opts("ca", "client");
	dsc_tls_options        anon = tls_opts("ca", NULL), rogue = tls_opts("ca", "rogue");
	const dsc_tls_options *refused[] = { &anon, &rogue };
	(void) state;

	start_tls(path("ca.crt"));
	assert_ok(open_client(&c, &mine, true, 5000));
	assert_ok(dsc_watch_open_tls(&w, D.pub_url, NULL, 0, &mine));
	assert_ok(reg(c, "api", "http://127.0.0.1:9100"));
	expect_event(w, c, "api");
	dsc_watch_close(w);

	/* The view and the wait take the same options, for both their sockets. */
	dsc_view_options vo;
	dsc_view_options_init(&vo);
	vo.client.tls = mine;
	assert_ok(dsc_view_open(&v, D.url, D.pub_url, &vo, &err));
	assert_ok(dsc_view_get_all(v, "api", &all));
	assert_int_equal(all->count, 2); /* reg's instance and expect_event's */
	dsc_instance_list_free(all);
	dsc_view_close(v);
	dsc_client_options wo;
	dsc_client_options_init(&wo);
	wo.tls = mine;
	assert_ok(dsc_wait_for_opts(D.url, D.pub_url, (const char *[]) { "api" }, 1,
	    DSC_WAIT_REGISTERED, tu_stretch_ms(5000), &wo, &st, &err));

	for (size_t i = 0; i < 2; i++) {
		const dsc_tls_options *t = refused[i];
		assert_int_equal(open_client(&bad, t, true, 5000), DSC_ETLS);
		assert_ok(open_client(&bad, t, false, FAIL_MS));
		assert_int_equal(dsc_resolve(bad, "api", false, NULL, NULL), DSC_ECONNREFUSED);
		dsc_client_close(bad);
		assert_int_equal(dsc_watch_open_tls(&w, D.pub_url, NULL, 0, t), DSC_ETLS);
		vo.client.tls        = *t;
		vo.client.timeout_ms = FAIL_MS;
		assert_int_equal(dsc_view_open(&v, D.url, D.pub_url, &vo, &err), DSC_ETLS);
		wo.tls = *t;
		assert_int_equal(dsc_wait_for_opts(D.url, D.pub_url, (const char *[]) { "api" }, 1,
		                     DSC_WAIT_REGISTERED, 5000, &wo, &st, &err),
		    DSC_ETLS);
	}

	/* A key that is not the certificate's is refused before dialing. */
	dsc_tls_options mismatched = mine;
	mismatched.key_file        = rogue.key_file;
	assert_int_equal(dsc_tls_check(&mismatched, &err), DSC_EINVAL);
	assert_non_null(strstr(err.message, "does not match"));
	assert_int_equal(open_client(&bad, &mismatched, false, 5000), DSC_EINVAL);

	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
}

/* ---- discoveryctl ---- */

static int
ctl(const char *const *args, char *out, size_t out_len, char *err, size_t err_len)
{
	const char *argv[32] = { DISCOVERYCTL_PATH, "--server", D.url, "--publish", D.pub_url,
		"--timeout", "5", "--tls-server-name", "localhost" };
	size_t      n        = 9;
	while (*args != NULL && n < 31) {
		argv[n++] = *args++;
	}
	argv[n] = NULL;
	return td_run(argv, out, out_len, err, err_len);
}

/* A discoveryctl watch --count 1 run on its own thread, since td_run blocks. */
typedef struct bg_watch {
	pthread_t    thread;
	const char **argv;
	char         out[4096], err[4096];
	int          status;
	_Atomic bool done;
} bg_watch;

static void *
bg_watch_main(void *arg)
{
	bg_watch *b = arg;
	b->status   = ctl(b->argv, b->out, sizeof(b->out), b->err, sizeof(b->err));
	b->done     = true;
	return NULL;
}

static void
test_discoveryctl(void **state)
{
	char        out[4096], err[4096];
	const char *ca = path("ca.crt"), *cert = path("client.crt"), *key = path("client.key");
	dsc_client *c;
	(void) state;

	start_tls(ca);
	assert_int_equal(ctl((const char *[]) { "--tls-ca", ca, "--tls-cert", cert, "--tls-key",
	                         key, "register", "db", "http://127.0.0.1:5432", NULL },
	                     out, sizeof(out), err, sizeof(err)),
	    0);
	assert_int_equal(ctl((const char *[]) { "--tls-ca", ca, "--tls-cert", cert, "--tls-key",
	                         key, "resolve", "db", NULL },
	                     out, sizeof(out), err, sizeof(err)),
	    0);
	assert_string_equal(out, "http://127.0.0.1:5432\n");
	assert_int_equal(ctl((const char *[]) { "--tls-ca", ca, "--tls-cert", cert, "--tls-key",
	                         key, "wait", "db", "--registered", NULL },
	                     out, sizeof(out), err, sizeof(err)),
	    0);
	assert_non_null(strstr(out, "ready: db"));
	/* The variables stand in for the flags. */
	setenv("DISCOVERY_TLS_CA", ca, 1);
	setenv("DISCOVERY_TLS_CERT", cert, 1);
	setenv("DISCOVERY_TLS_KEY", key, 1);
	int rv = ctl((const char *[]) { "list", NULL }, out, sizeof(out), err, sizeof(err));
	unsetenv("DISCOVERY_TLS_CA");
	unsetenv("DISCOVERY_TLS_CERT");
	unsetenv("DISCOVERY_TLS_KEY");
	assert_int_equal(rv, 0);
	assert_non_null(strstr(out, "http://127.0.0.1:5432"));

	/* watch prints a change that arrives over TLS. */
	dsc_tls_options mine = tls_opts("ca", "client");
	assert_ok(open_client(&c, &mine, true, 5000));
	bg_watch b = { .argv = (const char *[]) { "--tls-ca", ca, "--tls-cert", cert, "--tls-key",
		           key, "watch", "db", "--count", "1", NULL } };
	assert_int_equal(pthread_create(&b.thread, NULL, bg_watch_main, &b), 0);
	for (int i = 0; i < 100 && !b.done; i++) {
		char ep[64];
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 6000 + i);
		assert_ok(reg(c, "db", ep));
		tu_sleep_ms(100);
	}
	pthread_join(b.thread, NULL);
	dsc_client_close(c);
	if (b.status != 0) {
		fail_msg("watch exited %d\n--- stdout:\n%s--- stderr:\n%s", b.status, b.out, b.err);
	}
	assert_non_null(strstr(b.out, "registered db http://127.0.0.1:6"));

	/* Refused certificates: exit 3 and one line, for calls, watch and wait alike. */
	const char        *other = path("other.crt"), *rogue = path("rogue.crt");
	const char        *rogue_key = path("rogue.key");
	const char *const *refused[] = {
		(const char *[]) { "--tls-ca", ca, "resolve", "db", NULL },
		(const char *[]) { "--tls-ca", ca, "watch", NULL },
		(const char *[]) { "--tls-ca", ca, "wait", "db", NULL },
		(const char *[]) { "--tls-ca", ca, "--tls-cert", rogue, "--tls-key", rogue_key,
		    "resolve", "db", NULL },
		(const char *[]) {
		    "--tls-ca", other, "--tls-cert", cert, "--tls-key", key, "list", NULL },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		rv = ctl(refused[i], out, sizeof(out), err, sizeof(err));
		if (rv != 3 || strstr(err, "TLS handshake failed") == NULL) {
			fail_msg("case %zu: exit %d, stderr: %s", i, rv, err);
		}
	}
	/* Files that cannot be used, and a TLS URL without a CA: usage errors. */
	assert_int_equal(ctl((const char *[]) { "--tls-ca", ca, "--tls-cert", cert, "--tls-key",
	                         path("missing.key"), "resolve", "db", NULL },
	                     out, sizeof(out), err, sizeof(err)),
	    2);
	assert_non_null(strstr(err, "missing.key: cannot read"));
	assert_int_equal(
	    ctl((const char *[]) { "resolve", "db", NULL }, out, sizeof(out), err, sizeof(err)), 2);
	assert_non_null(strstr(err, "--tls-ca"));
	/* TLS flags with a plain URL would go out in plaintext. */
	const char *argv[] = { DISCOVERYCTL_PATH, "--server", "tcp://127.0.0.1:1", "--tls-ca", ca,
		"resolve", "db", NULL };
	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 2);
	assert_non_null(strstr(err, "not one"));

	assert_int_equal(td_daemon_stop(&D), 0);
}

/* ---- discoveryd's configuration ---- */

/* Runs discoveryd with args; it must exit 2 saying want. */
static void
expect_config_error(const char *const *args, const char *want)
{
	const char *argv[24] = { DISCOVERYD_PATH };
	size_t      n        = 1;
	char        out[2048], err[4096];
	while (*args != NULL && n < 23) {
		argv[n++] = *args++;
	}
	argv[n] = NULL;
	int rv  = td_run(argv, out, sizeof(out), err, sizeof(err));
	if (rv != 2 || strstr(err, want) == NULL) {
		fail_msg("exit %d, stderr: %s (wanted \"%s\")", rv, err, want);
	}
}

static void
test_startup_errors(void **state)
{
	const char *crt = path("server.crt"), *key = path("server.key");
	(void) state;
	expect_config_error((const char *[]) { "--listen", "tls+tcp://127.0.0.1:0", "--publish",
	                        "tcp://127.0.0.1:0", NULL },
	    "needs a certificate and its key");
	expect_config_error((const char *[]) { "--listen", "tcp://127.0.0.1:0", "--publish",
	                        "tls+tcp://127.0.0.1:0", "--tls-cert", crt, NULL },
	    "needs a certificate and its key");
	expect_config_error(
	    (const char *[]) { "--listen", "tls+tcp://127.0.0.1:0", "--publish",
	        "tcp://127.0.0.1:0", "--tls-cert", crt, "--tls-key", path("missing.key"), NULL },
	    "missing.key: cannot read");
	expect_config_error(
	    (const char *[]) { "--listen", "tls+tcp://127.0.0.1:0", "--publish",
	        "tcp://127.0.0.1:0", "--tls-cert", crt, "--tls-key", path("client.key"), NULL },
	    "does not match certificate");
	expect_config_error((const char *[]) { "--listen", "tls+tcp://127.0.0.1:0", "--publish",
	                        "tcp://127.0.0.1:0", "--tls-cert", crt, "--tls-key", key,
	                        "--tls-ca", path("ca.key"), NULL },
	    "CA file");
	expect_config_error((const char *[]) { "--listen", "tcp://127.0.0.1:0", "--publish",
	                        "tcp://127.0.0.1:0", "--tls-cert", crt, "--tls-key", key, NULL },
	    "no --listen or --publish URL is tls+tcp://");
}

/* The settings come from the environment and the YAML file too, with their origin. */
static void
test_settings_from_env_and_file(void **state)
{
	char        yaml[128], out[4096], err[2048];
	dsc_client *c;
	(void) state;

	snprintf(yaml, sizeof(yaml), "%s/d.yaml", dir);
	FILE *f = fopen(yaml, "w");
	assert_non_null(f);
	fprintf(f, "tls:\n  key: %s\n  ca: %s\n", path("server.key"), path("ca.crt"));
	fclose(f);
	setenv("SERVICE_DISCOVERY_TLS_CERT", path("server.crt"), 1);
	const char *print[] = { DISCOVERYD_PATH, "--config", yaml, "--listen",
		"tls+tcp://127.0.0.1:0", "--print-config", NULL };
	int         rv      = td_run(print, out, sizeof(out), err, sizeof(err));
	int         started = td_daemon_start(
	            &D, (const char *[]) { "--config", yaml, "--listen", "tls+tcp://127.0.0.1:0", NULL });
	unsetenv("SERVICE_DISCOVERY_TLS_CERT");
	assert_int_equal(rv, 0);
	assert_non_null(strstr(out, "env SERVICE_DISCOVERY_TLS_CERT"));
	assert_non_null(strstr(out, "d.yaml:2 (tls.key)"));
	assert_non_null(strstr(out, "d.yaml:3 (tls.ca)"));
	assert_int_equal(started, 0);

	/* TLS on the REQ/REP listener, plain on the default publish URL. */
	dsc_tls_options mine = tls_opts("ca", "client");
	assert_ok(open_client(&c, &mine, true, 5000));
	assert_ok(reg(c, "cache", "http://127.0.0.1:6379"));
	dsc_client_close(c);
	dsc_tls_options anon = tls_opts("ca", NULL);
	assert_int_equal(open_client(&c, &anon, true, 5000), DSC_ETLS);
	assert_int_equal(td_daemon_stop(&D), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_server_tls, teardown),
		cmocka_unit_test_teardown(test_mutual_tls, teardown),
		cmocka_unit_test_teardown(test_discoveryctl, teardown),
		cmocka_unit_test(test_startup_errors),
		cmocka_unit_test_teardown(test_settings_from_env_and_file, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
