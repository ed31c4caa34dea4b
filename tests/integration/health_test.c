/*
 * Active health checks against real HTTP servers the test runs: the real
 * discoveryd checks them with libcurl, and the test watches the outcome
 * through libdiscovery. Every wait is a liveness bound, never a speed claim.
 */
#define _GNU_SOURCE /* prlimit: the tests lower a running daemon's descriptor limit */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/httpd.h"
#include "support/testutil.h"

#define BOUND_MS TU_LIVENESS_MS /* generous, and stretched: these machines are shared */

typedef struct fixture {
	td_daemon   d;
	dsc_client *c;
	th_server  *web;
	char        base[64]; /* http://127.0.0.1:PORT */
} fixture;

static int
fixture_open(fixture *f, const char *const *args)
{
	memset(f, 0, sizeof(*f));
	if (th_start(&f->web) != 0 || td_daemon_start(&f->d, args) != 0) {
		return -1;
	}
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", th_port(f->web));
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS; /* liveness bound, stretched */
	return dsc_client_open(&f->c, f->d.url, &o);
}

/* Returns the daemon's exit status (0 after a clean stop, or if already stopped). */
static int
fixture_close(fixture *f)
{
	int rv = 0;
	dsc_client_close(f->c);
	f->c = NULL;
	if (f->d.pid > 0) {
		rv = td_daemon_stop(&f->d);
	}
	if (f->web != NULL) {
		th_stop(f->web);
	}
	return rv;
}

static const char *const fast_args[]
    = { "--health-interval", "0.1", "--health-timeout", "0.5", "--rise", "1", "--fall", "1", NULL };

static int
setup_with(void **state, const char *const *args)
{
	fixture *f = calloc(1, sizeof(*f));
	*state     = f;
	return f != NULL && fixture_open(f, args) == 0 ? 0 : -1;
}

static int
setup(void **state)
{
	return setup_with(state, fast_args);
}

static int
setup_deregister_after(void **state)
{
	static const char *const args[] = { "--health-interval", "0.1", "--rise", "1", "--fall",
		"1", "--deregister-after", "0.3", NULL };
	return setup_with(state, args);
}

static int
setup_rise_fall(void **state)
{
	static const char *const args[]
	    = { "--health-interval", "0.05", "--rise", "3", "--fall", "3", NULL };
	return setup_with(state, args);
}

static int
setup_policy(void **state)
{
	static const char *const args[] = { "--health-interval", "0.1", "--rise", "1", "--fall",
		"1", "--deny-endpoint", "127.0.0.0/8", "--deny-endpoint", "::1/128", NULL };
	return setup_with(state, args);
}

static int
setup_long_timeout(void **state)
{
	static const char *const args[] = { "--health-timeout", "60", NULL };
	return setup_with(state, args);
}

/* Runs even when a test fails, so no daemon or server outlives its test. */
static int
teardown(void **state)
{
	int rv = fixture_close(*state);
	free(*state);
	return rv == 0 ? 0 : -1;
}

static void
reg(fixture *f, const char *svc, const char *ep, const char *path, uint32_t ttl)
{
	dsc_registration r = { .service = svc, .endpoint = ep, .health_path = path, .ttl_ms = ttl };
	assert_ok(dsc_register(f->c, &r, NULL, NULL));
}

/* Polls until the instance reaches want; returns a copy of it (caller frees). */
static dsc_instance *
wait_health(fixture *f, const char *svc, const char *ep, dsc_health want)
{
	int64_t deadline = tu_now_ms() + BOUND_MS;
	while (tu_now_ms() < deadline) {
		dsc_instance_list *l;
		assert_ok(dsc_get_all(f->c, svc, &l, NULL));
		for (size_t i = 0; i < l->count; i++) {
			if (strcmp(l->items[i].endpoint, ep) == 0 && l->items[i].health == want) {
				dsc_instance *x = malloc(sizeof(*x));
				*x              = l->items[i];
				/* Steal the item: swap in the last one so the list frees the rest.
				 */
				l->items[i] = l->items[--l->count];
				dsc_instance_list_free(l);
				return x;
			}
		}
		dsc_instance_list_free(l);
		tu_sleep_ms(20);
	}
	fail_msg("%s %s did not become %s", svc, ep, dsc_health_name(want));
	return NULL;
}

static void
expect_health(fixture *f, const char *svc, const char *ep, dsc_health want, const char *error)
{
	dsc_instance *x = wait_health(f, svc, ep, want);
	if (error != NULL && strstr(x->last_error, error) == NULL) {
		fail_msg("last_error \"%s\" lacks \"%s\"", x->last_error, error);
	}
	if (want == DSC_HEALTH_HEALTHY) {
		assert_string_equal(x->last_error, "");
	}
	assert_true(x->last_check_ms > 0);
	dsc_instance_free(x);
}

static void
test_healthy_then_500_then_healthy(void **state)
{
	fixture *f = *state;
	th_set(f->web, "/flip", 200);
	reg(f, "flip", f->base, "/flip", 0);
	expect_health(f, "flip", f->base, DSC_HEALTH_HEALTHY, NULL);
	th_set(f->web, "/flip", 500);
	expect_health(f, "flip", f->base, DSC_HEALTH_UNHEALTHY, "HTTP 500");
	/* Resolve still answers, and says the instance is unhealthy. */
	dsc_instance *x;
	assert_ok(dsc_resolve(f->c, "flip", false, &x, NULL));
	assert_int_equal(x->health, DSC_HEALTH_UNHEALTHY);
	dsc_instance_free(x);
	assert_int_equal(dsc_resolve(f->c, "flip", true, NULL, NULL), DSC_EUNAVAILABLE);
	th_set(f->web, "/flip", 200);
	expect_health(f, "flip", f->base, DSC_HEALTH_HEALTHY, NULL);
	assert_ok(dsc_resolve(f->c, "flip", true, NULL, NULL));
}

static void
test_hang_longer_than_timeout(void **state)
{
	fixture *f = *state;
	th_set(f->web, "/slow", 200);
	th_set_hang(f->web, "/slow", true);
	reg(f, "slow", f->base, "/slow", 0);
	expect_health(f, "slow", f->base, DSC_HEALTH_UNHEALTHY, "timeout after 500 ms");
	th_set_hang(f->web, "/slow", false);
	expect_health(f, "slow", f->base, DSC_HEALTH_HEALTHY, NULL);
}

static void
test_connection_refused(void **state)
{
	fixture *f = *state;
	char     dead[64];
	int      fd;
	assert_int_equal(tu_dead_url(dead, sizeof(dead), "http", &fd), 0);
	reg(f, "refused", dead, NULL, 0);
	expect_health(f, "refused", dead, DSC_HEALTH_UNHEALTHY, "connect");
	close(fd);
}

static void
test_health_paths(void **state)
{
	fixture *f = *state;
	char     api[96];

	th_set(f->web, "/custom/ready", 200);
	reg(f, "custom", f->base, "/custom/ready", 0);
	expect_health(f, "custom", f->base, DSC_HEALTH_HEALTHY, NULL);
	assert_true(th_hits(f->web, "/custom/ready") > 0);

	/* The default path is /health. */
	th_set(f->web, "/health", 200);
	reg(f, "default-path", f->base, NULL, 0);
	expect_health(f, "default-path", f->base, DSC_HEALTH_HEALTHY, NULL);
	assert_true(th_hits(f->web, "/health") > 0);

	/* An endpoint with a path of its own: one slash between the two parts. */
	th_set(f->web, "/api/status", 200);
	snprintf(api, sizeof(api), "%s/api/", f->base);
	reg(f, "based", api, "status", 0);
	expect_health(f, "based", api, DSC_HEALTH_HEALTHY, NULL);
	assert_true(th_hits(f->web, "/api/status") > 0);
}

static void
test_tcp_endpoint_is_a_connect(void **state)
{
	fixture *f = *state;
	char     tcp[64];
	snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", th_port(f->web));
	reg(f, "tcpsvc", tcp, NULL, 0);
	expect_health(f, "tcpsvc", tcp, DSC_HEALTH_HEALTHY, NULL);
	char dead[64];
	int  fd;
	assert_int_equal(tu_dead_url(dead, sizeof(dead), "tcp", &fd), 0);
	reg(f, "tcpdown", dead, NULL, 0);
	expect_health(f, "tcpdown", dead, DSC_HEALTH_UNHEALTHY, NULL);
	close(fd);
}

static void
test_redirect_is_not_followed(void **state)
{
	fixture *f = *state;
	char     target[96];
	snprintf(target, sizeof(target), "%s/elsewhere", f->base);
	th_set(f->web, "/elsewhere", 200);
	th_set_redirect(f->web, "/moved", target);
	reg(f, "moved", f->base, "/moved", 0);
	expect_health(f, "moved", f->base, DSC_HEALTH_UNHEALTHY, "HTTP 302");
	assert_int_equal(th_hits(f->web, "/elsewhere"), 0);
}

static void
test_ttl_heartbeats_and_expiry(void **state)
{
	fixture    *f   = *state;
	const char *ep  = "http://127.0.0.1:2";
	int         ttl = tu_stretch_ms(400); /* it must outlive the checks that it is healthy */
	char        expired[64];
	snprintf(expired, sizeof(expired), "no heartbeat within %d ms", ttl);
	reg(f, "beater", ep, NULL, ttl);
	dsc_instance *x;
	assert_ok(dsc_resolve(f->c, "beater", false, &x, NULL));
	assert_int_equal(x->health, DSC_HEALTH_UNKNOWN); /* TTL instances are not polled */
	dsc_instance_free(x);
	assert_ok(dsc_heartbeat(f->c, "beater", ep, NULL, NULL));
	expect_health(f, "beater", ep, DSC_HEALTH_HEALTHY, NULL);
	/* Heartbeats stop: the TTL runs out. */
	expect_health(f, "beater", ep, DSC_HEALTH_UNHEALTHY, expired);
	assert_ok(dsc_heartbeat(f->c, "beater", ep, NULL, NULL));
	expect_health(f, "beater", ep, DSC_HEALTH_HEALTHY, NULL);
	/* Never-beating TTL instances expire after one TTL of grace. */
	reg(f, "silent", ep, NULL, 300);
	expect_health(f, "silent", ep, DSC_HEALTH_UNHEALTHY, "no heartbeat");
}

static void
test_hung_instances_do_not_delay_others(void **state)
{
	fixture *f = *state;
	char     ep[96];
	th_set(f->web, "/stuck", 200);
	th_set_hang(f->web, "/stuck", true);
	for (int i = 0; i < 30; i++) {
		snprintf(ep, sizeof(ep), "%s/?n=%d", f->base, i); /* distinct endpoints, one path */
		reg(f, "stuck", ep, "/stuck", 0);
	}
	th_set(f->web, "/live", 200);
	reg(f, "live", f->base, "/live", 0);
	expect_health(f, "live", f->base, DSC_HEALTH_HEALTHY, NULL);
	th_set(f->web, "/live", 503);
	expect_health(f, "live", f->base, DSC_HEALTH_UNHEALTHY, "HTTP 503");
	th_set_hang(f->web, "/stuck", false);
}

static void
test_deregister_after(void **state)
{
	fixture                  f;
	static const char *const args[] = { "--health-interval", "0.1", "--rise", "1", "--fall",
		"1", "--deregister-after", "0.3", NULL };
	(void) state;
	assert_int_equal(fixture_open(&f, args), 0);
	th_set(f.web, "/ok", 200);
	reg(&f, "keeper", f.base, "/ok", 0);
	char dead[64];
	int  fd;
	assert_int_equal(tu_dead_url(dead, sizeof(dead), "http", &fd), 0);
	reg(&f, "doomed", dead, NULL, 0);
	int64_t deadline = tu_now_ms() + BOUND_MS;
	int     rv;
	while (
	    (rv = dsc_resolve(f.c, "doomed", false, NULL, NULL)) == 0 && tu_now_ms() < deadline) {
		tu_sleep_ms(20);
	}
	assert_int_equal(rv, DSC_ENOTFOUND);
	expect_health(&f, "keeper", f.base, DSC_HEALTH_HEALTHY, NULL);
	assert_int_equal(fixture_close(&f), 0);
	close(fd);
}

static int
setup_protection(void **state)
{
	static const char *const args[] = { "--health-interval", "0.1", "--rise", "1", "--fall",
		"1", "--protection-threshold", "0.5", NULL };
	return setup_with(state, args);
}

/* How many of n healthy-only Resolves of svc answer with endpoint ep. */
static int
resolves_of(fixture *f, const char *svc, const char *ep, int n)
{
	int hits = 0;
	for (int i = 0; i < n; i++) {
		dsc_instance *x = NULL;
		assert_ok(dsc_resolve(f->c, svc, true, &x, NULL));
		hits += strcmp(x->endpoint, ep) == 0;
		dsc_instance_free(x);
	}
	return hits;
}

/*
 * Nacos's protection threshold (0.5 here): at half healthy a healthy-only
 * Resolve still gets only the healthy instance; below half, all of them.
 */
static void
test_protection_threshold(void **state)
{
	fixture *f = *state;
	char     dead[3][64];
	int      fd[3];
	th_set(f->web, "/ok", 200);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tu_dead_url(dead[i], sizeof(dead[i]), "http", &fd[i]), 0);
	}
	reg(f, "shield", f->base, "/ok", 0);
	reg(f, "shield", dead[0], NULL, 0);
	expect_health(f, "shield", f->base, DSC_HEALTH_HEALTHY, NULL);
	expect_health(f, "shield", dead[0], DSC_HEALTH_UNHEALTHY, NULL);
	assert_int_equal(resolves_of(f, "shield", f->base, 8), 8); /* 1 of 2: at the threshold */

	reg(f, "shield", dead[1], NULL, 0);
	reg(f, "shield", dead[2], NULL, 0);
	expect_health(f, "shield", dead[1], DSC_HEALTH_UNHEALTHY, NULL);
	expect_health(f, "shield", dead[2], DSC_HEALTH_UNHEALTHY, NULL);
	/* 1 of 4 healthy: round-robin over all four gives the healthy one 2 turns in 8. */
	assert_int_equal(resolves_of(f, "shield", f->base, 8), 2);

	/* A service with none healthy is answered too, rather than UNAVAILABLE. */
	reg(f, "fallen", dead[0], NULL, 0);
	expect_health(f, "fallen", dead[0], DSC_HEALTH_UNHEALTHY, NULL);
	assert_int_equal(resolves_of(f, "fallen", dead[0], 2), 2);
	for (int i = 0; i < 3; i++) {
		close(fd[i]);
	}
}

static void
test_rise_and_fall_need_runs(void **state)
{
	fixture                  f;
	static const char *const args[]
	    = { "--health-interval", "0.05", "--rise", "3", "--fall", "3", NULL };
	(void) state;
	assert_int_equal(fixture_open(&f, args), 0);
	th_set(f.web, "/rf", 200);
	reg(&f, "rf", f.base, "/rf", 0);
	expect_health(&f, "rf", f.base, DSC_HEALTH_HEALTHY, NULL); /* the first result decides */
	int before = th_hits(f.web, "/rf");
	th_set(f.web, "/rf", 500);
	expect_health(&f, "rf", f.base, DSC_HEALTH_UNHEALTHY, "HTTP 500");
	/* It took at least three failing checks to fall. */
	assert_true(th_hits(f.web, "/rf") - before >= 3);
	assert_int_equal(fixture_close(&f), 0);
}

static void
test_prompt_shutdown_with_hung_checks(void **state)
{
	fixture *f = *state;
	char     ep[96];
	th_set(f->web, "/hang", 200);
	th_set_hang(f->web, "/hang", true);
	for (int i = 0; i < 30; i++) {
		snprintf(ep, sizeof(ep), "%s/?i=%d", f->base, i); /* distinct endpoints, one path */
		reg(f, "hung", ep, "/hang", 0);
	}
	int64_t deadline = tu_now_ms() + BOUND_MS;
	while (th_hits(f->web, "/hang") < 30 && tu_now_ms() < deadline) {
		tu_sleep_ms(10);
	}
	assert_int_equal(th_hits(f->web, "/hang"), 30); /* all 30 are in flight, hung */
	int64_t t0 = tu_now_ms();
	assert_int_equal(td_daemon_stop(&f->d), 0);
	/* Informational; the bound is td_daemon_stop's liveness limit. */
	print_message("discoveryd stopped %lld ms after SIGTERM with 30 hung checks\n",
	    (long long) (tu_now_ms() - t0));
}

static void
test_endpoint_policy(void **state)
{
	fixture    *f = *state;
	dsc_error   err;
	char        ep[96];
	const char *refused[] = { "http://169.254.169.254/latest/meta-data", "http://[fe80::1]:80",
		"http://[::ffff:169.254.169.254]/", f->base, "tcp://127.0.0.3:22" };
	th_set(f->web, "/health", 200);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		dsc_registration r = { .service = "ssrf", .endpoint = refused[i] };
		if (dsc_register(f->c, &r, NULL, &err) != DSC_EINVAL
		    || strstr(err.message, "refused") == NULL) {
			fail_msg("%s was not refused (%s)", refused[i], err.message);
		}
	}
	/* A name is decided where the checker connects: localhost is in the denied ranges. */
	snprintf(ep, sizeof(ep), "http://localhost:%d", th_port(f->web));
	reg(f, "by-name", ep, NULL, 0);
	expect_health(f, "by-name", ep, DSC_HEALTH_UNHEALTHY, "refused by the endpoint policy");
	assert_int_equal(th_total_hits(f->web), 0); /* the server never saw a request */
}

static void
test_link_local_allowed_explicitly(void **state)
{
	fixture *f = *state;
	(void) f;
	/* With --allow-endpoint, the default denial yields: registration accepts it. */
	dsc_registration r
	    = { .service = "meta", .endpoint = "http://169.254.169.254/", .ttl_ms = 60000 };
	assert_ok(dsc_register(f->c, &r, NULL, NULL));
}

static int
setup_allow_link_local(void **state)
{
	static const char *const args[] = { "--allow-endpoint", "169.254.0.0/16", NULL };
	return setup_with(state, args);
}

/* The daemon's open descriptors numbered below limit (all of them for limit < 0). */
static int
fds_below(pid_t pid, int limit)
{
	char path[64];
	int  n = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
	DIR *d = opendir(path);
	if (d == NULL) {
		return -1;
	}
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] != '.' && (limit < 0 || atoi(e->d_name) < limit)) {
			n++;
		}
	}
	closedir(d);
	return n;
}

/*
 * A raw connection to the daemon that sends SP's greeting as a REQ peer, so
 * the daemon accepts it, completes the handshake and keeps it open: one of
 * its descriptors, for as long as the test holds fd. -1 on failure.
 */
static int
sp_connection(const char *url)
{
	static const unsigned char hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 };
	const char                *colon    = strrchr(url, ':');
	struct sockaddr_in         a        = { .sin_family = AF_INET };
	a.sin_port                          = htons((uint16_t) atoi(colon + 1));
	a.sin_addr.s_addr                   = htonl(INADDR_LOOPBACK);
	int fd                              = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -1;
	}
	if (connect(fd, (struct sockaddr *) &a, sizeof(a)) != 0
	    || write(fd, hello, sizeof(hello)) != (ssize_t) sizeof(hello)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The instance, present and in state want; fails the test otherwise. */
static void
assert_still(fixture *f, const char *svc, const char *ep, dsc_health want)
{
	dsc_instance_list *l;
	assert_ok(dsc_get_all(f->c, svc, &l, NULL));
	for (size_t i = 0; i < l->count; i++) {
		if (strcmp(l->items[i].endpoint, ep) == 0) {
			if (l->items[i].health != want) {
				fail_msg("%s %s is %s (%s), want %s", svc, ep,
				    dsc_health_name(l->items[i].health), l->items[i].last_error,
				    dsc_health_name(want));
			}
			dsc_instance_list_free(l);
			return;
		}
	}
	dsc_instance_list_free(l);
	fail_msg("%s %s is gone", svc, ep);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Issue 18 item 3: with its descriptors used up (a low RLIMIT_NOFILE and
 * many connections), the daemon cannot open a socket to check with. That
 * is its own problem, not the targets': healthy instances stay HEALTHY and
 * registered (even with --deregister-after), and the log says why.
 */
static void
test_descriptor_exhaustion_is_not_the_targets_fault(void **state)
{
	fixture      *f = *state;
	char          tcp[64];
	int           conns[96];
	int           nconns = 0;
	struct rlimit old, low;
	const pid_t   pid = f->d.pid;

	snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", th_port(f->web));
	th_set(f->web, "/ok", 200);
	reg(f, "keeper", tcp, NULL, 0); /* a connect per check: a new socket every time */
	reg(f, "webkeeper", f->base, "/ok", 0);
	expect_health(f, "keeper", tcp, DSC_HEALTH_HEALTHY, NULL);
	expect_health(f, "webkeeper", f->base, DSC_HEALTH_HEALTHY, NULL);

	/* A limit a little above what it holds now, then connections to fill the rest. */
	assert_int_equal(prlimit(pid, RLIMIT_NOFILE, NULL, &old), 0);
	int open = fds_below(pid, -1);
	assert_true(open > 0);
	low.rlim_cur = (rlim_t) open + 16;
	low.rlim_max = old.rlim_max;
	assert_true(low.rlim_cur < old.rlim_cur);
	assert_int_equal(prlimit(pid, RLIMIT_NOFILE, &low, NULL), 0);
	int limit = (int) low.rlim_cur;
	/* More than it can take: the rest wait in the backlog for any descriptor it frees. */
	for (int want = limit - fds_below(pid, limit) + 48; nconns < want && nconns < 96;
	     nconns++) {
		assert_true((conns[nconns] = sp_connection(f->d.url)) >= 0);
	}
	int64_t deadline = tu_now_ms() + BOUND_MS;
	while (fds_below(pid, limit) < limit && tu_now_ms() < deadline) {
		tu_sleep_ms(10);
	}
	assert_int_equal(fds_below(pid, limit), limit);

	/* Exhausted: checks fail for want of a socket, for many intervals. */
	int64_t until = tu_now_ms() + 1500;
	deadline      = tu_now_ms() + BOUND_MS;
	while (tu_now_ms() < until || !td_daemon_log_contains(&f->d, "Too many open files")) {
		assert_true(tu_now_ms() < deadline);
		assert_still(f, "keeper", tcp, DSC_HEALTH_HEALTHY);
		assert_still(f, "webkeeper", f->base, DSC_HEALTH_HEALTHY);
		tu_sleep_ms(20);
	}
	assert_true(td_daemon_log_contains(&f->d, "not the target"));

	/* Descriptors back: checks run again, and still pass. */
	for (int i = 0; i < nconns; i++) {
		close(conns[i]);
	}
	assert_int_equal(prlimit(pid, RLIMIT_NOFILE, &old, NULL), 0);
	int64_t since = wall_ms();
	deadline      = tu_now_ms() + BOUND_MS;
	for (;;) {
		dsc_instance *x = NULL;
		assert_ok(dsc_resolve(f->c, "keeper", false, &x, NULL));
		bool fresh = x->last_check_ms > since && x->health == DSC_HEALTH_HEALTHY;
		dsc_instance_free(x);
		if (fresh) {
			break;
		}
		assert_true(tu_now_ms() < deadline);
		tu_sleep_ms(20);
	}
	assert_still(f, "webkeeper", f->base, DSC_HEALTH_HEALTHY);
}

static int
setup_exhaustion(void **state)
{
	static const char *const args[] = { "--health-interval", "0.1", "--health-timeout", "0.5",
		"--rise", "1", "--fall", "1", "--deregister-after", "0.3", NULL };
	return setup_with(state, args);
}

#define HUNG 300

/*
 * Issue 18 item 5: hung targets far outnumber the check slots (300 on 16,
 * each holding its slot for the whole timeout). TTL expiry needs no slot,
 * and a live instance keeps being checked: its failure is seen, the TTL
 * instance expires, within liveness bounds; the log warns of the overload.
 */
static void
test_saturated_checker_keeps_ttl_and_live_checks(void **state)
{
	fixture *f = *state;
	char     ep[96];
	th_set(f->web, "/hang", 200);
	th_set_hang(f->web, "/hang", true);
	for (int i = 0; i < HUNG; i++) {
		snprintf(ep, sizeof(ep), "%s/?n=%d", f->base, i); /* distinct endpoints, one path */
		reg(f, "hung", ep, "/hang", 0);
	}
	/* One TTL instance that never beats: it must expire after its TTL, slots or not. */
	int64_t t0 = tu_now_ms();
	reg(f, "ttl", "http://127.0.0.1:2", NULL, 1000);
	int64_t deadline = t0 + 3000 * tu_slowdown();
	for (;;) {
		dsc_instance *x = NULL;
		assert_ok(dsc_resolve(f->c, "ttl", false, &x, NULL));
		bool expired = x->health == DSC_HEALTH_UNHEALTHY;
		dsc_instance_free(x);
		if (expired) {
			break;
		}
		if (tu_now_ms() > deadline) {
			fail_msg("the 1 s TTL instance was not expired after %lld ms",
			    (long long) (tu_now_ms() - t0));
		}
		tu_sleep_ms(20);
	}
	print_message(
	    "TTL instance expired %lld ms after it registered\n", (long long) (tu_now_ms() - t0));

	/* A live instance: healthy, then failing; the failure is seen in time. */
	th_set(f->web, "/live", 200);
	reg(f, "live", f->base, "/live", 0);
	expect_health(f, "live", f->base, DSC_HEALTH_HEALTHY, NULL);
	th_set(f->web, "/live", 503);
	t0       = tu_now_ms();
	deadline = t0 + 3000 * tu_slowdown();
	for (;;) {
		dsc_instance *x = NULL;
		assert_ok(dsc_resolve(f->c, "live", false, &x, NULL));
		bool down = x->health == DSC_HEALTH_UNHEALTHY;
		dsc_instance_free(x);
		if (down) {
			break;
		}
		if (tu_now_ms() > deadline) {
			fail_msg("the live instance's failure was not seen after %lld ms",
			    (long long) (tu_now_ms() - t0));
		}
		tu_sleep_ms(20);
	}
	print_message(
	    "live instance's failure seen after %lld ms\n", (long long) (tu_now_ms() - t0));

	deadline = tu_now_ms() + BOUND_MS;
	while (!td_daemon_log_contains(&f->d, "health checks are saturated")) {
		assert_true(tu_now_ms() < deadline);
		tu_sleep_ms(50);
	}
	th_set_hang(f->web, "/hang", false);
}

static int
setup_saturated(void **state)
{
	static const char *const args[] = { "--health-interval", "1", "--health-timeout", "0.5",
		"--max-checks", "16", "--rise", "1", "--fall", "1", NULL };
	return setup_with(state, args);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_healthy_then_500_then_healthy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hang_longer_than_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_endpoint_is_a_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redirect_is_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_heartbeats_and_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_hung_instances_do_not_delay_others, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_deregister_after, setup_deregister_after, teardown),
		cmocka_unit_test_setup_teardown(
		    test_protection_threshold, setup_protection, teardown),
		cmocka_unit_test_setup_teardown(
		    test_rise_and_fall_need_runs, setup_rise_fall, teardown),
		cmocka_unit_test_setup_teardown(
		    test_prompt_shutdown_with_hung_checks, setup_long_timeout, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_policy, setup_policy, teardown),
		cmocka_unit_test_setup_teardown(
		    test_link_local_allowed_explicitly, setup_allow_link_local, teardown),
		cmocka_unit_test_setup_teardown(test_descriptor_exhaustion_is_not_the_targets_fault,
		    setup_exhaustion, teardown),
		cmocka_unit_test_setup_teardown(
		    test_saturated_checker_keeps_ttl_and_live_checks, setup_saturated, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
