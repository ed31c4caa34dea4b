/*
 * dsc_wait_for against the real discoveryd, which checks a test HTTP server
 * every 100 ms (rise 1, fall 1) so that health changes come quickly: ready
 * at once, ready later (health turning, a late registration), registered
 * versus healthy, a timeout telling missing from unhealthy, a service lost
 * again while others are awaited, bad arguments, and a server that is not
 * up yet. Timings are printed for information, never asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/fixture.h"
#include "support/httpd.h"
#include "support/testutil.h"

#define TTL_MS TF_TTL_MS /* TTL instances are not polled: no health events of their own */

#define assert_contains(hay, needle)                                          \
	do {                                                                  \
		if (strstr((hay), (needle)) == NULL) {                        \
			fail_msg("\"%s\" not found in: %s", (needle), (hay)); \
		}                                                             \
	} while (0)

/* The group's daemon and client, its HTTP health endpoints. */
typedef struct fixture {
	tf_fixture f; /* fast SYNC, health_flags */
	th_server *web;
	char       ep[64]; /* http://127.0.0.1:<web port> */
} fixture;
static fixture F;

static const char *const health_flags[]
    = { "--health-interval", "0.1", "--health-timeout", "1", "--rise", "1", "--fall", "1", NULL };

static int
group_setup(void **state)
{
	(void) state;
	if (th_start(&F.web) != 0 || th_set(F.web, "/ok", 200) != 0
	    || th_set(F.web, "/bad", 500) != 0 || tf_start(&F.f, true, health_flags) != 0) {
		return -1;
	}
	snprintf(F.ep, sizeof(F.ep), "http://127.0.0.1:%d", th_port(F.web));
	return 0;
}

static int
group_teardown(void **state)
{
	(void) state;
	th_stop(F.web);
	return tf_stop(&F.f);
}

/* Registers service at the web server, checked at health_path. */
static void
reg_http(dsc_client *c, const char *service, const char *health_path)
{
	dsc_registration r = { .service = service, .endpoint = F.ep, .health_path = health_path };
	assert_ok(dsc_register(c, &r, NULL, NULL));
}

/* Registers a TTL instance: never checked, so it stays unknown until a heartbeat. */
static void
reg_ttl(dsc_client *c, const char *service, const char *endpoint)
{
	dsc_registration r = { .service = service, .endpoint = endpoint, .ttl_ms = TTL_MS };
	assert_ok(dsc_register(c, &r, NULL, NULL));
}

/* Waits (bounded) until the server reports service in state. */
static void
await_state(const char *service, dsc_health want)
{
	dsc_health state = DSC_HEALTH_UNKNOWN;

	for (int64_t start = tu_now_ms(); tu_now_ms() - start < TU_LIVENESS_MS;) {
		if (dsc_is_healthy(F.f.c, service, NULL, NULL, &state, NULL) == 0
		    && state == want) {
			return;
		}
		tu_sleep_ms(10);
	}
	fail_msg("%s is %s, not %s, after %d ms", service, dsc_health_name(state),
	    dsc_health_name(want), TU_LIVENESS_MS);
}

/* ---- dsc_wait_for on a thread of its own ---- */

/* One dsc_wait_for call, run on a thread, and what it returned when. */
typedef struct waiter {
	const char     *url;
	const char     *pub;
	const char     *names[4];
	size_t          n;
	dsc_wait_mode   mode;
	int             timeout_ms;
	pthread_t       thread;
	int             rv;
	dsc_wait_status st[4];
	dsc_error       err;
	int64_t         done_ms; /* monotonic */
	_Atomic bool   *flag;    /* when not NULL: its value as the wait returned */
	bool            flag_at_return;
} waiter;

static void *
waiter_main(void *arg)
{
	waiter *w = arg;

	w->rv
	    = dsc_wait_for(w->url, w->pub, w->names, w->n, w->mode, w->timeout_ms, w->st, &w->err);
	w->done_ms = tu_now_ms();
	if (w->flag != NULL) {
		w->flag_at_return = atomic_load(w->flag);
	}
	return NULL;
}

static void
waiter_start(waiter *w)
{
	if (w->url == NULL) {
		w->url = F.f.d.url;
		w->pub = F.f.d.pub_url;
	}
	if (w->timeout_ms == 0) {
		w->timeout_ms = TU_LIVENESS_MS;
	}
	assert_int_equal(pthread_create(&w->thread, NULL, waiter_main, w), 0);
}

static void
waiter_join(waiter *w)
{
	assert_int_equal(pthread_join(w->thread, NULL), 0);
}

/* Fails with the library's message when the wait did not succeed. */
static void
assert_ready(const waiter *w)
{
	if (w->rv != 0) {
		fail_msg("dsc_wait_for: %s: %s", dsc_strerror(w->rv), w->err.message);
	}
}

/* ---- tests ---- */

static void
test_already_healthy(void **state)
{
	const char     *names[] = { "wt-ready" };
	dsc_wait_status st[1];
	dsc_error       err;
	(void) state;

	reg_http(F.f.c, "wt-ready", "/ok");
	await_state("wt-ready", DSC_HEALTH_HEALTHY);

	int64_t start = tu_now_ms();
	int     rv    = dsc_wait_for(
	           F.f.d.url, F.f.d.pub_url, names, 1, DSC_WAIT_HEALTHY, TU_LIVENESS_MS, st, &err);
	if (rv != 0) {
		fail_msg("dsc_wait_for: %s: %s", dsc_strerror(rv), err.message);
	}
	print_message(
	    "already healthy: returned after %lld ms\n", (long long) (tu_now_ms() - start));
	assert_string_equal(st[0].service, "wt-ready");
	assert_true(st[0].registered);
	assert_true(st[0].healthy);

	/* Timeout 0 checks once: enough for a service that is ready. */
	assert_ok(
	    dsc_wait_for(F.f.d.url, F.f.d.pub_url, names, 1, DSC_WAIT_HEALTHY, 0, NULL, NULL));
	/* Nothing to wait for is ready at once, server or not. */
	assert_ok(dsc_wait_for(
	    "tcp://127.0.0.1:1", "tcp://127.0.0.1:1", NULL, 0, DSC_WAIT_HEALTHY, 100, NULL, NULL));
}

static void
test_becomes_healthy(void **state)
{
	waiter w = { .names = { "wt-turns" }, .n = 1, .mode = DSC_WAIT_HEALTHY };
	(void) state;

	assert_int_equal(th_set(F.web, "/turns", 500), 0);
	reg_http(F.f.c, "wt-turns", "/turns");
	await_state("wt-turns", DSC_HEALTH_UNHEALTHY);

	waiter_start(&w);
	tu_sleep_ms(100);
	int64_t changed = tu_now_ms();
	assert_int_equal(th_set(F.web, "/turns", 200), 0);
	waiter_join(&w);
	assert_ready(&w);
	/* Includes up to one health interval (100 ms) before the server sees it. */
	print_message("health turned: returned %lld ms after the endpoint did\n",
	    (long long) (w.done_ms - changed));
	assert_true(w.st[0].registered && w.st[0].healthy);
}

static void
test_registered_later(void **state)
{
	waiter w = { .names = { "WT_Late" }, .n = 1, .mode = DSC_WAIT_HEALTHY };
	(void) state;

	waiter_start(&w);
	tu_sleep_ms(100);
	int64_t changed = tu_now_ms();
	reg_http(F.f.c, "wt-late", "/ok");
	waiter_join(&w);
	assert_ready(&w);
	print_message("registered later: returned %lld ms after the registration\n",
	    (long long) (w.done_ms - changed));
	assert_string_equal(w.st[0].service, "wt-late");
	assert_true(w.st[0].registered && w.st[0].healthy);
}

static void
test_registered_mode(void **state)
{
	const char     *names[] = { "wt-sick", "wt-unknown" };
	dsc_wait_status st[2];
	dsc_error       err;
	(void) state;

	reg_http(F.f.c, "wt-sick", "/bad");
	reg_ttl(F.f.c, "wt-unknown", "http://127.0.0.1:9301");
	await_state("wt-sick", DSC_HEALTH_UNHEALTHY);

	int rv = dsc_wait_for(
	    F.f.d.url, F.f.d.pub_url, names, 2, DSC_WAIT_REGISTERED, TU_LIVENESS_MS, st, &err);
	if (rv != 0) {
		fail_msg("dsc_wait_for: %s: %s", dsc_strerror(rv), err.message);
	}
	assert_true(st[0].registered);
	assert_false(st[0].healthy);
	assert_true(st[1].registered);
	assert_false(st[1].healthy);
}

static void
test_timeout_tells_missing_from_unhealthy(void **state)
{
	const char     *names[] = { "wt-sick2", "wt-nowhere", "WT_SICK2", "wt-ok2" };
	dsc_wait_status st[4];
	dsc_error       err;
	char            timed_out[64];
	int             bound = tu_stretch_ms(300); /* it must see all four in time */
	(void) state;
	snprintf(timed_out, sizeof(timed_out), "timed out after %g s", bound / 1000.0);

	reg_http(F.f.c, "wt-sick2", "/bad");
	reg_http(F.f.c, "wt-ok2", "/ok");
	await_state("wt-sick2", DSC_HEALTH_UNHEALTHY);
	await_state("wt-ok2", DSC_HEALTH_HEALTHY);

	assert_int_equal(
	    dsc_wait_for(F.f.d.url, F.f.d.pub_url, names, 4, DSC_WAIT_HEALTHY, bound, st, &err),
	    DSC_ETIMEDOUT);
	assert_int_equal(err.code, DSC_ETIMEDOUT);
	assert_contains(err.message, timed_out);
	assert_contains(err.message, "; missing: wt-nowhere");
	assert_contains(err.message, "; unhealthy: wt-sick2");
	assert_null(strstr(err.message, "wt-ok2"));
	assert_string_equal(st[0].service, "wt-sick2");
	assert_true(st[0].registered);
	assert_false(st[0].healthy);
	assert_string_equal(st[1].service, "wt-nowhere");
	assert_false(st[1].registered);
	assert_false(st[1].healthy);
	assert_string_equal(st[2].service, "wt-sick2"); /* one service, named twice */
	assert_true(st[2].registered);
	assert_false(st[2].healthy);
	assert_true(st[3].registered && st[3].healthy);

	/* Waiting for registration only, the unhealthy one is fine and only the missing one is
	 * named. */
	assert_int_equal(dsc_wait_for(F.f.d.url, F.f.d.pub_url, names, 2, DSC_WAIT_REGISTERED,
	                     tu_stretch_ms(200), st, &err),
	    DSC_ETIMEDOUT);
	assert_contains(err.message, "; missing: wt-nowhere");
	assert_null(strstr(err.message, "unhealthy"));
}

/*
 * A satisfied service that goes away again must be waited for again: the
 * wait may end only after wt-gone is back.
 */
static void
test_service_lost_again(void **state)
{
	_Atomic bool back = false;
	waiter       w    = { .names = { "wt-gone", "wt-second" },
		         .n          = 2,
		         .mode       = DSC_WAIT_REGISTERED,
		         .flag       = &back };
	(void) state;

	reg_ttl(F.f.c, "wt-gone", "http://127.0.0.1:9311");
	waiter_start(&w);
	tu_sleep_ms(100);
	assert_ok(dsc_deregister(F.f.c, "wt-gone", NULL, NULL, NULL));
	reg_ttl(F.f.c, "wt-second", "http://127.0.0.1:9312");
	tu_sleep_ms(150);
	atomic_store(&back, true);
	reg_ttl(F.f.c, "wt-gone", "http://127.0.0.1:9313");
	waiter_join(&w);
	assert_ready(&w);
	assert_true(w.flag_at_return);
}

static void
test_invalid_arguments(void **state)
{
	const char     *bad[]  = { "wt-fine", "not ok" };
	const char     *good[] = { "wt-fine" };
	dsc_wait_status st[2];
	dsc_error       err;
	(void) state;

	assert_int_equal(
	    dsc_wait_for(F.f.d.url, F.f.d.pub_url, bad, 2, DSC_WAIT_HEALTHY, 1000, st, &err),
	    DSC_EINVAL);
	assert_int_equal(err.code, DSC_EINVAL);
	assert_contains(err.message, "not ok");
	assert_string_equal(st[0].service, "wt-fine");
	assert_false(st[0].registered);
	assert_string_equal(st[1].service, "");

	assert_int_equal(
	    dsc_wait_for(NULL, F.f.d.pub_url, good, 1, DSC_WAIT_HEALTHY, 100, NULL, &err),
	    DSC_EINVAL);
	assert_int_equal(
	    dsc_wait_for(F.f.d.url, "", good, 1, DSC_WAIT_HEALTHY, 100, NULL, &err), DSC_EINVAL);
	assert_int_equal(
	    dsc_wait_for(F.f.d.url, F.f.d.pub_url, NULL, 1, DSC_WAIT_HEALTHY, 100, NULL, &err),
	    DSC_EINVAL);
	assert_int_equal(
	    dsc_wait_for(F.f.d.url, F.f.d.pub_url, good, 1, (dsc_wait_mode) 7, 100, NULL, &err),
	    DSC_EINVAL);
	/* A URL nng cannot dial. */
	assert_int_equal(
	    dsc_wait_for(F.f.d.url, "nonsense://x", good, 1, DSC_WAIT_HEALTHY, 100, NULL, &err),
	    DSC_EINVAL);
	assert_contains(err.message, "nonsense://x");
}

static void
test_server_unreachable(void **state)
{
	const char     *names[] = { "wt-x", "wt-y" };
	dsc_wait_status st[2];
	dsc_error       err;
	char            dead[64];
	int             fd, port = tu_dead_port(&fd); /* refuses for as long as we hold it */
	(void) state;
	assert_true(port > 0);
	snprintf(dead, sizeof(dead), "tcp://127.0.0.1:%d", port);

	int64_t start = tu_now_ms();
	assert_int_equal(
	    dsc_wait_for(dead, dead, names, 2, DSC_WAIT_HEALTHY, 300, st, &err), DSC_ETIMEDOUT);
	print_message("unreachable: timed out after %lld ms\n", (long long) (tu_now_ms() - start));
	assert_contains(err.message, "timed out after 0.3 s; missing: wt-x, wt-y");
	assert_contains(err.message, dead);
	assert_false(st[0].registered);
	assert_false(st[1].registered);
	close(fd);
}

/* The wait starts first; the server comes up later on the ports it was given. */
static void
test_server_starts_later(void **state)
{
	td_daemon   d;
	char        listen[128], pub[128];
	const char *args[] = { "--listen", listen, "--publish", pub, NULL };
	dsc_client *c;
	waiter      w = { .names = { "wt-early", "wt-early2" },
		     .n          = 2,
		     .mode       = DSC_WAIT_HEALTHY,
		     .url        = listen,
		     .pub        = pub };
	(void) state;

	/* Learn two free ports from a daemon, then stop it. */
	assert_int_equal(td_daemon_start_sync(&d, NULL), 0);
	snprintf(listen, sizeof(listen), "%s", d.url);
	snprintf(pub, sizeof(pub), "%s", d.pub_url);
	assert_int_equal(td_daemon_stop(&d), 0);

	waiter_start(&w);
	tu_sleep_ms(300);
	assert_int_equal(td_daemon_start_sync(&d, args), 0);
	assert_ok(dsc_client_open(&c, d.url, NULL));
	reg_ttl(c, "wt-early", "http://127.0.0.1:9321");
	reg_ttl(c, "wt-early2", "http://127.0.0.1:9322");
	assert_ok(dsc_heartbeat(c, "wt-early", "http://127.0.0.1:9321", NULL, NULL));
	int64_t changed = tu_now_ms();
	assert_ok(dsc_heartbeat(c, "wt-early2", "http://127.0.0.1:9322", NULL, NULL));
	waiter_join(&w);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
	assert_ready(&w);
	print_message("server started later: returned %lld ms after the last heartbeat\n",
	    (long long) (w.done_ms - changed));
	assert_true(w.st[0].healthy && w.st[1].healthy);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_already_healthy),
		cmocka_unit_test(test_becomes_healthy),
		cmocka_unit_test(test_registered_later),
		cmocka_unit_test(test_registered_mode),
		cmocka_unit_test(test_timeout_tells_missing_from_unhealthy),
		cmocka_unit_test(test_service_lost_again),
		cmocka_unit_test(test_invalid_arguments),
		cmocka_unit_test(test_server_unreachable),
		cmocka_unit_test(test_server_starts_later),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
