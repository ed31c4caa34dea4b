/*
 * The production profile and the health checks' settings against the real
 * discoveryd and real targets on loopback: endpoint_schemes (tcp:// refused
 * in production unless accepted), TCP checks of a listening and a
 * held-but-not-listening port, HTTPS checks of a service with an internal
 * CA (--check-ca-file) and with mutual TLS (--check-cert, --check-key),
 * with throwaway certificates from the openssl command line tool and
 * `openssl s_server -www` as the HTTPS target, and configured headers that
 * neither the log (at debug) nor --print-config ever shows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/httpd.h"
#include "support/testutil.h"

#define OPENSSL "/usr/bin/openssl"
#define TOKEN   "s3cret-api-key"
#define SECRET  "Bearer check-secret-7f3a" /* a header value that must never be shown */

static char dir[128];

/* Each test's daemon, targets and client; teardown releases whatever is set. */
static td_daemon   D;
static dsc_client *C;
static pid_t       tls_pid; /* the openssl s_server target */
static th_server  *web;

/* DIR/name, at a stable address for the whole run. */
static const char *
path(const char *name)
{
	static char paths[32][192];
	static int  n;
	char        p[192];
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

/* A self-signed CA: NAME.crt, NAME.key (as tls_test makes them). */
static int
make_ca(const char *name)
{
	char subj[64], crt[40], key[40];
	snprintf(subj, sizeof(subj), "/CN=%s", name);
	snprintf(crt, sizeof(crt), "%s.crt", name);
	snprintf(key, sizeof(key), "%s.key", name);
	return run_quiet((const char *[]) { OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
	    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", path(key), "-out", path(crt),
	    "-days", "2", "-subj", subj, NULL });
}

/* NAME.crt and NAME.key (mode 600), signed by CA, for IP 127.0.0.1. */
static int
make_leaf(const char *name, const char *ca)
{
	char n[6][48], subj[64];
	snprintf(n[0], 48, "%s.crt", name);
	snprintf(n[1], 48, "%s.key", name);
	snprintf(n[2], 48, "%s.csr", name);
	snprintf(n[3], 48, "%s.ext", name);
	snprintf(n[4], 48, "%s.crt", ca);
	snprintf(n[5], 48, "%s.key", ca);
	snprintf(subj, sizeof(subj), "/CN=%s", name);
	FILE *f = fopen(path(n[3]), "w");
	if (f == NULL) {
		return -1;
	}
	fprintf(f, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
	fclose(f);
	if (run_quiet((const char *[]) { OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt",
	        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", path(n[1]), "-out", path(n[2]),
	        "-subj", subj, NULL })
	    != 0) {
		return -1;
	}
	return chmod(path(n[1]), 0600) != 0
	    ? -1
	    : run_quiet((const char *[]) { OPENSSL, "x509", "-req", "-in", path(n[2]), "-CA",
	        path(n[4]), "-CAkey", path(n[5]), "-CAcreateserial", "-out", path(n[0]), "-days",
	        "2", "-extfile", path(n[3]), NULL });
}

static int
write_file(const char *name, const char *text, mode_t mode)
{
	FILE *f = fopen(path(name), "w");
	if (f == NULL) {
		return -1;
	}
	fputs(text, f);
	fclose(f);
	return chmod(path(name), mode);
}

static int
group_setup(void **state)
{
	(void) state;
	if (tu_mkdtemp(dir, sizeof(dir), "checks-test") != 0) {
		return -1;
	}
	return make_ca("ca") != 0 || make_leaf("server", "ca") != 0
	        || make_leaf("client", "ca") != 0
	        || write_file("check-auth", SECRET "\n", 0600) != 0
	        || write_file("check-auth-open", SECRET "\n", 0644) != 0
	        || write_file("client-open.key", "not read\n", 0644) != 0
	    ? -1
	    : 0;
}

static int
group_teardown(void **state)
{
	(void) state;
	tu_rmtree(dir);
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	dsc_client_close(C);
	C = NULL;
	if (D.pid > 0) {
		td_daemon_kill(&D);
	}
	if (tls_pid > 0) {
		kill(tls_pid, SIGTERM);
		waitpid(tls_pid, NULL, 0);
		tls_pid = 0;
	}
	th_stop(web);
	web = NULL;
	unsetenv("ENVIRONMENT");
	unsetenv("SERVICE_DISCOVERY_API_KEY");
	return 0;
}

/*
 * Starts `openssl s_server -www` on 127.0.0.1 port 0 with the server's
 * certificate (mtls: clients must present one the CA signed) and returns
 * its port, read from the "ACCEPT 127.0.0.1:PORT" line it prints. It
 * answers every GET with 200 once the handshake succeeds.
 */
static int
start_tls_target(bool mtls)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	tls_pid = fork();
	assert_true(tls_pid >= 0);
	if (tls_pid == 0) {
		/* Its later lines go to a closed pipe: EPIPE, which it ignores, not a signal. */
		signal(SIGPIPE, SIG_IGN);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(fds[1], 1);
		dup2(null, 2);
		close(fds[0]);
		/* Without mtls the list ends before -Verify. */
		const char *argv[] = { OPENSSL, "s_server", "-accept", "127.0.0.1:0", "-cert",
			path("server.crt"), "-key", path("server.key"), "-www",
			mtls ? "-Verify" : NULL, "1", "-CAfile", path("ca.crt"), NULL };
		execv(OPENSSL, (char *const *) argv);
		_exit(127);
	}
	close(fds[1]);
	char    buf[256] = "";
	size_t  len      = 0;
	int     port     = -1;
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (port < 0 && tu_now_ms() < deadline && len + 1 < sizeof(buf)) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		if (poll(&p, 1, 100) <= 0) {
			continue;
		}
		ssize_t got = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (got <= 0) {
			break;
		}
		len += (size_t) got;
		buf[len]        = 0;
		const char *acc = strstr(buf, "ACCEPT 127.0.0.1:");
		if (acc != NULL && strchr(acc, '\n') != NULL) {
			port = atoi(acc + strlen("ACCEPT 127.0.0.1:"));
		}
	}
	close(fds[0]);
	if (port <= 0) {
		fail_msg("openssl s_server did not report its port: \"%s\"", buf);
	}
	return port;
}

/* Starts D with the fast check settings and args, and opens C with the token. */
static void
start(const char *const *args)
{
	static char timeout[16]; /* a TLS handshake under valgrind is slow */
	snprintf(timeout, sizeof(timeout), "%d", 2 * tu_slowdown());
	const char *argv[40] = { "--health-interval", "0.1", "--health-timeout", timeout, "--rise",
		"1", "--fall", "1" };
	size_t      n        = 8;
	for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
		assert_true(n + 1 < sizeof(argv) / sizeof(argv[0]));
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	assert_int_equal(td_daemon_start(&D, argv), 0);
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS;
	o.auth_token = TOKEN;
	assert_ok(dsc_client_open(&C, D.url, &o));
}

/* Starts D in the production profile (the token from the environment). */
static void
start_production(const char *const *args)
{
	setenv("ENVIRONMENT", "production", 1);
	setenv("SERVICE_DISCOVERY_API_KEY", TOKEN, 1);
	start(args);
	unsetenv("ENVIRONMENT");
	unsetenv("SERVICE_DISCOVERY_API_KEY");
}

static int
reg(const char *svc, const char *ep, dsc_error *err)
{
	dsc_registration r = { .service = svc, .endpoint = ep, .health_path = "/health" };
	return dsc_register(C, &r, NULL, err);
}

/* Waits (a liveness bound) until svc's instance ep is want, with last_error holding error. */
static void
expect_health(const char *svc, const char *ep, dsc_health want, const char *error)
{
	int64_t deadline  = tu_now_ms() + TU_LIVENESS_MS;
	char    last[512] = "";
	while (tu_now_ms() < deadline) {
		dsc_instance_list *l;
		assert_ok(dsc_get_all(C, svc, &l, NULL));
		for (size_t i = 0; i < l->count; i++) {
			if (strcmp(l->items[i].endpoint, ep) != 0) {
				continue;
			}
			snprintf(last, sizeof(last), "%s: %s", dsc_health_name(l->items[i].health),
			    l->items[i].last_error);
			if (l->items[i].health == want
			    && (error == NULL || strstr(l->items[i].last_error, error) != NULL)) {
				dsc_instance_list_free(l);
				return;
			}
		}
		dsc_instance_list_free(l);
		tu_sleep_ms(20);
	}
	fail_msg("%s %s did not become %s (%s); last seen %s", svc, ep, dsc_health_name(want),
	    error != NULL ? error : "any reason", last);
}

/* Runs discoveryd with args to completion; its exit status, stdout and stderr. */
static int
run_discoveryd(const char *const *args, char *out, size_t out_len, char *err, size_t err_len)
{
	const char *argv[24] = { DISCOVERYD_PATH, "--listen", "tcp://127.0.0.1:0", "--publish",
		"tcp://127.0.0.1:0", "--data", ":memory:" };
	size_t      n        = 7;
	for (size_t i = 0; args[i] != NULL; i++) {
		assert_true(n + 1 < sizeof(argv) / sizeof(argv[0]));
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return td_run(argv, out, out_len, err, err_len);
}

static void
test_production_refuses_tcp_by_default(void **state)
{
	dsc_error err;
	(void) state;
	start_production(NULL);
	assert_int_equal(reg("db", "tcp://127.0.0.1:5432", &err), DSC_EINVAL);
	/* Which schemes are accepted, and which setting changes it. */
	assert_non_null(strstr(err.message, "the production profile accepts only https://"));
	assert_non_null(strstr(err.message, "endpoint_schemes"));
	assert_non_null(strstr(err.message, "--endpoint-schemes"));
	assert_int_equal(reg("web", "http://127.0.0.1:80", &err), DSC_EINVAL);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_production_tcp_checks(void **state)
{
	char      up[64], down[64];
	int       dead_fd;
	dsc_error err;
	(void) state;
	/* A real listening port: the kernel completes the connect, nobody accepts. */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t          len = sizeof(a);
	int                lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *) &a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 64), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *) &a, &len), 0);
	snprintf(up, sizeof(up), "tcp://127.0.0.1:%d", ntohs(a.sin_port));
	assert_int_equal(tu_dead_url(down, sizeof(down), "tcp", &dead_fd), 0);

	start_production((const char *[]) { "--endpoint-schemes", "https,tcp", NULL });
	assert_ok(reg("db", up, &err));
	assert_ok(reg("db-down", down, &err));
	expect_health("db", up, DSC_HEALTH_HEALTHY, NULL);
	expect_health("db-down", down, DSC_HEALTH_UNHEALTHY, NULL);
	/* http:// stays refused: only the listed schemes are accepted. */
	assert_int_equal(reg("web", "http://127.0.0.1:80", &err), DSC_EINVAL);
	assert_non_null(strstr(err.message, "accepts only https:// and tcp://"));
	assert_int_equal(td_daemon_stop(&D), 0);
	close(lfd);
	close(dead_fd);
}

static void
test_schemes_setting_sources(void **state)
{
	char out[8192], err[4096];
	(void) state;
	assert_int_equal(
	    write_file("schemes.yaml",
	        "endpoint_schemes: [https, tcp]\nservices:\n  db: tcp://127.0.0.1:5432\n", 0644),
	    0);
	setenv("ENVIRONMENT", "production", 1);
	setenv("SERVICE_DISCOVERY_API_KEY", TOKEN, 1);
	/* The file's list, then the environment's, which wins. */
	int rv = run_discoveryd(
	    (const char *[]) { "--config", path("schemes.yaml"), "--print-config", NULL }, out,
	    sizeof(out), err, sizeof(err));
	assert_int_equal(rv, 0);
	assert_non_null(strstr(out, "https,tcp"));
	setenv("SERVICE_DISCOVERY_ENDPOINT_SCHEMES", "https", 1);
	rv = run_discoveryd((const char *[]) { "--config", path("schemes.yaml"), NULL }, out,
	    sizeof(out), err, sizeof(err));
	unsetenv("SERVICE_DISCOVERY_ENDPOINT_SCHEMES");
	unsetenv("ENVIRONMENT");
	unsetenv("SERVICE_DISCOVERY_API_KEY");
	assert_int_equal(rv, 2);
	assert_non_null(strstr(err, "service db: this server accepts only https:// endpoints"));
	rv = run_discoveryd((const char *[]) { "--endpoint-schemes", "ftp", NULL }, out,
	    sizeof(out), err, sizeof(err));
	assert_int_equal(rv, 2);
	assert_non_null(strstr(err, "expects http, https or tcp"));
}

static void
test_https_target_with_internal_ca(void **state)
{
	char ep[64];
	(void) state;
	snprintf(ep, sizeof(ep), "https://127.0.0.1:%d", start_tls_target(false));
	/* The system store does not trust the internal CA. */
	start(NULL);
	assert_ok(reg("internal", ep, NULL));
	expect_health("internal", ep, DSC_HEALTH_UNHEALTHY, "certificate");
	assert_int_equal(td_daemon_stop(&D), 0);
	dsc_client_close(C);
	C = NULL;

	start((const char *[]) { "--check-ca-file", path("ca.crt"), NULL });
	assert_ok(reg("internal", ep, NULL));
	expect_health("internal", ep, DSC_HEALTH_HEALTHY, NULL);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_https_target_with_mtls(void **state)
{
	char ep[64], out[4096], err[4096];
	(void) state;
	snprintf(ep, sizeof(ep), "https://127.0.0.1:%d", start_tls_target(true));
	start((const char *[]) { "--check-ca-file", path("ca.crt"), NULL });
	assert_ok(reg("mtls", ep, NULL));
	expect_health("mtls", ep, DSC_HEALTH_UNHEALTHY, NULL); /* no client certificate */
	assert_int_equal(td_daemon_stop(&D), 0);
	dsc_client_close(C);
	C = NULL;

	start((const char *[]) { "--check-ca-file", path("ca.crt"), "--check-cert",
	    path("client.crt"), "--check-key", path("client.key"), NULL });
	assert_ok(reg("mtls", ep, NULL));
	expect_health("mtls", ep, DSC_HEALTH_HEALTHY, NULL);
	assert_int_equal(td_daemon_stop(&D), 0);

	/* A key group or others can read stops start-up, as a token file does. */
	int rv = run_discoveryd((const char *[]) { "--check-cert", path("client.crt"),
	                            "--check-key", path("client-open.key"), NULL },
	    out, sizeof(out), err, sizeof(err));
	assert_int_equal(rv, 2);
	assert_non_null(strstr(err, "readable by group or others"));
	rv = run_discoveryd((const char *[]) { "--check-cert", path("client.crt"), NULL }, out,
	    sizeof(out), err, sizeof(err));
	assert_int_equal(rv, 2);
	assert_non_null(strstr(err, "--check-key"));
}

static void
test_headers_sent_never_shown(void **state)
{
	char ep[64], item[256], out[8192], err[4096];
	(void) state;
	assert_int_equal(th_start(&web), 0);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", th_port(web));
	assert_int_equal(th_set(web, "/health", 200), 0);
	assert_int_equal(th_set_require_header(web, "/health", "Authorization: " SECRET), 0);

	start((const char *[]) { "--log-level", "debug", NULL });
	assert_ok(reg("guarded", ep, NULL));
	expect_health("guarded", ep, DSC_HEALTH_UNHEALTHY, "HTTP 403");
	assert_int_equal(td_daemon_stop(&D), 0);
	dsc_client_close(C);
	C = NULL;

	/* The value from a file (mode 600), another header as text. */
	snprintf(item, sizeof(item), "Authorization: %s", path("check-auth"));
	start((const char *[]) { "--log-level", "debug", "--check-header-file", item,
	    "--check-header", "X-Checked-By: discoveryd, tests", NULL });
	assert_ok(reg("guarded", ep, NULL));
	expect_health("guarded", ep, DSC_HEALTH_HEALTHY, NULL);
	assert_int_equal(
	    th_set_require_header(web, "/health", "X-Checked-By: discoveryd, tests"), 0);
	int     before   = th_hits(web, "/health");
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (th_hits(web, "/health") < before + 2 && tu_now_ms() < deadline) {
		tu_sleep_ms(20); /* checks answered under the new requirement */
	}
	expect_health("guarded", ep, DSC_HEALTH_HEALTHY, NULL);
	/* A failed call is logged at debug: the log really is at that level. */
	assert_int_equal(reg("bad", "ftp://127.0.0.1", NULL), DSC_EINVAL);
	deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (!td_daemon_log_contains(&D, "DEBUG register failed") && tu_now_ms() < deadline) {
		tu_sleep_ms(20); /* the log is written by its own thread */
	}
	assert_true(td_daemon_log_contains(&D, "DEBUG register failed"));
	assert_false(td_daemon_log_contains(&D, "check-secret"));
	assert_int_equal(td_daemon_stop(&D), 0); /* removes the log */

	/* --print-config names the headers and masks the values. */
	int rv = run_discoveryd((const char *[]) { "--check-header", "X-Api-Key: " SECRET,
	                            "--check-header-file", item, "--print-config", NULL },
	    out, sizeof(out), err, sizeof(err));
	assert_int_equal(rv, 0);
	assert_null(strstr(out, "check-secret"));
	assert_non_null(strstr(out, "X-Api-Key: (set)"));
	/* A header file others can read stops start-up; the message holds no value. */
	snprintf(item, sizeof(item), "Authorization: %s", path("check-auth-open"));
	rv = run_discoveryd((const char *[]) { "--check-header-file", item, NULL }, out,
	    sizeof(out), err, sizeof(err));
	assert_int_equal(rv, 2);
	assert_non_null(strstr(err, "readable by group or others"));
	assert_null(strstr(err, "check-secret"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_production_refuses_tcp_by_default, teardown),
		cmocka_unit_test_teardown(test_production_tcp_checks, teardown),
		cmocka_unit_test_teardown(test_schemes_setting_sources, teardown),
		cmocka_unit_test_teardown(test_https_target_with_internal_ca, teardown),
		cmocka_unit_test_teardown(test_https_target_with_mtls, teardown),
		cmocka_unit_test_teardown(test_headers_sent_never_shown, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
