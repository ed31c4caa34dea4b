/*
 * Client failover: libdiscovery, watches, views and discoveryctl given a
 * list of servers, against two independent real discoveryd processes on
 * loopback (each test starts its own pair) and ports the test holds dead.
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

/* Two independent servers, and "A,B" lists of their URLs. */
typedef struct pair {
	td_daemon a, b;
	bool      a_up, b_up;
	char      urls[300];
	char      pubs[300];
} pair;

static int
pair_setup(void **state)
{
	pair *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	if (td_daemon_start_sync(&p->a, NULL) != 0) {
		free(p);
		fail_msg("the first discoveryd did not start");
	}
	p->a_up = true;
	if (td_daemon_start_sync(&p->b, NULL) != 0) {
		td_daemon_kill(&p->a); /* no teardown runs after a failed setup */
		free(p);
		fail_msg("the second discoveryd did not start");
	}
	p->b_up = true;
	snprintf(p->urls, sizeof(p->urls), "%s,%s", p->a.url, p->b.url);
	snprintf(p->pubs, sizeof(p->pubs), "%s,%s", p->a.pub_url, p->b.pub_url);
	*state = p;
	return 0;
}

static int
pair_teardown(void **state)
{
	pair *p = *state;
	if (p->a_up) {
		td_daemon_kill(&p->a);
	}
	if (p->b_up) {
		td_daemon_kill(&p->b);
	}
	free(p);
	return 0;
}

/* A client on url (one or a list) with a per-attempt timeout of ms, stretched. */
static dsc_client *
client_on(const char *url, int ms)
{
	dsc_client_options o;
	dsc_client        *c = NULL;
	dsc_client_options_init(&o);
	o.timeout_ms = tu_stretch_ms(ms);
	assert_int_equal(dsc_client_open(&c, url, &o), 0);
	return c;
}

static void
reg(dsc_client *c, const char *service, const char *endpoint)
{
	dsc_registration r = { .service = service, .endpoint = endpoint, .ttl_ms = 600000 };
	dsc_error        err;
	int              rv = dsc_register(c, &r, NULL, &err);
	if (rv != 0) {
		fail_msg("register %s: %s", service, err.message);
	}
}

/* True when the server at url (alone) has service registered. */
static bool
has(const char *url, const char *service)
{
	dsc_client   *c  = client_on(url, 2000);
	dsc_instance *x  = NULL;
	int           rv = dsc_resolve(c, service, false, &x, NULL);
	dsc_instance_free(x);
	dsc_client_close(c);
	return rv == 0;
}

/* Register through [A, B]; kill -9 A; the next calls go to B within the bound. */
static void
test_kill_first_moves_to_second(void **state)
{
	pair       *p = *state;
	dsc_client *c = client_on(p->urls, 2000);
	dsc_error   err;

	reg(c, "fo-kill", "http://127.0.0.1:9001");
	assert_true(has(p->a.url, "fo-kill"));
	assert_false(has(p->b.url, "fo-kill")); /* independent servers: A only */

	td_daemon_kill(&p->a);
	p->a_up       = false;
	int64_t start = tu_now_ms();
	reg(c, "fo-kill", "http://127.0.0.1:9001"); /* idempotent: sent again, to B */
	assert_true(tu_now_ms() - start < TU_LIVENESS_MS);
	assert_true(has(p->b.url, "fo-kill"));

	/* The client stays on B: reads and heartbeats answer from it. */
	uint32_t removed = 0;
	assert_int_equal(dsc_heartbeat(c, "fo-kill", "http://127.0.0.1:9001", NULL, &err), 0);
	assert_int_equal(dsc_deregister(c, "fo-kill", NULL, &removed, &err), 0);
	assert_int_equal(removed, 1);
	dsc_client_close(c);
}

/* A graceful stop of A (SIGTERM) is the same for the client. */
static void
test_stop_first_moves_to_second(void **state)
{
	pair              *p = *state;
	dsc_client        *c = client_on(p->urls, 2000);
	dsc_instance_list *l = NULL;
	dsc_error          err;

	reg(c, "fo-stop", "http://127.0.0.1:9002");
	assert_int_equal(td_daemon_stop(&p->a), 0);
	p->a_up = false;
	assert_int_equal(dsc_get_all(c, NULL, &l, &err), 0); /* from B, which has nothing */
	assert_int_equal(l->count, 0);
	dsc_instance_list_free(l);
	dsc_client_close(c);
}

/* A dead first entry (a port the test holds) is skipped, with and without require_connection. */
static void
test_dead_first_entry(void **state)
{
	pair              *p = *state;
	char               dead[64], list[300];
	int                fd;
	dsc_client_options o;
	dsc_client        *c = NULL;

	assert_int_equal(tu_dead_url(dead, sizeof(dead), "tcp", &fd), 0);
	snprintf(list, sizeof(list), "%s, %s", dead, p->b.url);

	c = client_on(list, 2000);
	reg(c, "fo-dead", "http://127.0.0.1:9003");
	dsc_client_close(c);
	assert_true(has(p->b.url, "fo-dead"));

	dsc_client_options_init(&o);
	o.timeout_ms         = tu_stretch_ms(2000);
	o.require_connection = true;
	assert_int_equal(dsc_client_open(&c, list, &o), 0);
	reg(c, "fo-dead", "http://127.0.0.1:9003");
	dsc_client_close(c);
	close(fd);
}

/* Every server dead: a clear error naming each, and require_connection refuses. */
static void
test_all_dead(void **state)
{
	char               d1[64], d2[64], list[200];
	int                fd1, fd2;
	dsc_client_options o;
	dsc_client        *c;
	dsc_error          err;
	(void) state;

	assert_int_equal(tu_dead_url(d1, sizeof(d1), "tcp", &fd1), 0);
	assert_int_equal(tu_dead_url(d2, sizeof(d2), "tcp", &fd2), 0);
	snprintf(list, sizeof(list), "%s,%s", d1, d2);

	c                  = client_on(list, 1000);
	dsc_registration r = { .service = "fo-none", .endpoint = "http://127.0.0.1:9004" };
	assert_int_equal(dsc_register(c, &r, NULL, &err), DSC_ECONNREFUSED);
	assert_non_null(strstr(err.message, "no server answered (2 tried)"));
	assert_non_null(strstr(err.message, d1));
	assert_non_null(strstr(err.message, d2));
	dsc_client_close(c);

	dsc_client_options_init(&o);
	o.timeout_ms         = tu_stretch_ms(1000);
	o.require_connection = true;
	c                    = NULL;
	assert_int_equal(dsc_client_open(&c, list, &o), DSC_ECONNREFUSED);
	assert_null(c);
	close(fd1);
	close(fd2);
}

/*
 * Resolve's UNAVAILABLE means "no healthy instance": an answer, not a sick
 * server, so the client does not ask B (where the service is healthy).
 */
static void
test_resolve_unavailable_is_an_answer(void **state)
{
	pair         *p = *state;
	dsc_client   *a = client_on(p->a.url, 2000), *b = client_on(p->b.url, 2000);
	dsc_client   *c = client_on(p->urls, 2000);
	dsc_instance *x = NULL;
	dsc_error     err;

	reg(a, "fo-sick", "http://127.0.0.1:9005"); /* TTL, never heartbeated: unknown */
	reg(b, "fo-sick", "http://127.0.0.1:9005");
	assert_int_equal(dsc_heartbeat(b, "fo-sick", "http://127.0.0.1:9005", NULL, &err), 0);
	assert_int_equal(dsc_resolve(c, "fo-sick", true, &x, &err), DSC_EUNAVAILABLE);
	assert_null(x);
	dsc_client_close(a);
	dsc_client_close(b);
	dsc_client_close(c);
}

/* A watch on both publish URLs takes B's events once A is gone. */
static void
test_watch_list(void **state)
{
	pair       *p    = *state;
	dsc_watch  *w    = NULL;
	dsc_client *b    = client_on(p->b.url, 2000);
	bool        seen = false;

	assert_int_equal(dsc_watch_open(&w, p->pubs, NULL, 0), 0);
	td_daemon_kill(&p->a);
	p->a_up          = false;
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (!seen && tu_now_ms() < deadline) {
		dsc_event *ev = NULL;
		reg(b, "fo-watch", "http://127.0.0.1:9006"); /* again until the SUB pipe is up */
		if (dsc_watch_next(w, tu_stretch_ms(200), &ev) == 0) {
			seen = ev->type == DSC_EVENT_REGISTERED
			    && strcmp(ev->service, "fo-watch") == 0;
			dsc_event_free(ev);
		}
		uint32_t removed;
		dsc_deregister(b, "fo-watch", NULL, &removed, NULL);
	}
	assert_true(seen);
	dsc_watch_close(w);
	dsc_client_close(b);
}

/* A view on [A, B] moves to B when A dies, and reloads from it. */
static void
test_view_moves_with_the_client(void **state)
{
	pair            *p = *state;
	dsc_view_options o;
	dsc_view        *v = NULL;
	dsc_client      *a = client_on(p->a.url, 2000), *b = client_on(p->b.url, 2000);
	dsc_error        err;
	char             ep[128];

	reg(a, "fo-view-a", "http://127.0.0.1:9007");
	reg(b, "fo-view-b", "http://127.0.0.1:9008");
	dsc_view_options_init(&o);
	o.client.timeout_ms = tu_stretch_ms(1000);
	if (dsc_view_open(&v, p->urls, p->pubs, &o, &err) != 0) {
		fail_msg("view: %s", err.message);
	}
	assert_int_equal(dsc_view_resolve_endpoint(v, "fo-view-a", false, ep, sizeof(ep)), 0);
	assert_int_equal(
	    dsc_view_resolve_endpoint(v, "fo-view-b", false, ep, sizeof(ep)), DSC_ENOTFOUND);

	dsc_client_close(a);
	td_daemon_kill(&p->a);
	p->a_up          = false;
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (dsc_view_resolve_endpoint(v, "fo-view-b", false, ep, sizeof(ep)) != 0
	    && tu_now_ms() < deadline) {
		tu_sleep_ms(20);
	}
	assert_int_equal(dsc_view_resolve_endpoint(v, "fo-view-b", false, ep, sizeof(ep)), 0);
	assert_string_equal(ep, "http://127.0.0.1:9008");
	assert_int_equal(
	    dsc_view_resolve_endpoint(v, "fo-view-a", false, ep, sizeof(ep)), DSC_ENOTFOUND);

	/* And follows B's events from there on. */
	reg(b, "fo-view-c", "http://127.0.0.1:9009");
	deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (dsc_view_resolve_endpoint(v, "fo-view-c", false, ep, sizeof(ep)) != 0
	    && tu_now_ms() < deadline) {
		tu_sleep_ms(20);
	}
	assert_int_equal(dsc_view_resolve_endpoint(v, "fo-view-c", false, ep, sizeof(ep)), 0);
	dsc_view_close(v);
	dsc_client_close(b);
}

/* A view refuses publish lists that do not pair with the servers, saying why. */
static void
test_view_list_mismatch(void **state)
{
	pair     *p = *state;
	dsc_view *v = NULL;
	dsc_error err;
	char      three[400];

	snprintf(three, sizeof(three), "%s,%s,tcp://127.0.0.1:1", p->a.url, p->b.url);
	assert_int_equal(dsc_view_open(&v, three, p->pubs, NULL, &err), DSC_EINVAL);
	assert_non_null(strstr(err.message, "2 publish URLs for 3 servers"));
	assert_null(v);
}

/* ---- discoveryctl ---- */

static int
ctl(char *out, size_t out_len, char *errbuf, size_t err_len, const char *server, const char *cmd,
    const char *a1, const char *a2)
{
	char        t[32];
	const char *argv[]
	    = { DISCOVERYCTL_PATH, "--server", server, "--timeout", t, cmd, a1, a2, NULL };
	snprintf(t, sizeof(t), "%d", 2 * tu_slowdown());
	return td_run(argv, out, out_len, errbuf, err_len);
}

static void
test_discoveryctl_list(void **state)
{
	pair *p = *state;
	char  out[4096], err[4096], dead[64], d2[64], list[300];
	int   fd, fd2;

	assert_int_equal(tu_dead_url(dead, sizeof(dead), "tcp", &fd), 0);
	assert_int_equal(tu_dead_url(d2, sizeof(d2), "tcp", &fd2), 0);

	snprintf(list, sizeof(list), "%s,%s", dead, p->b.url);
	int st = ctl(out, sizeof(out), err, sizeof(err), list, "register", "fo-ctl",
	    "http://127.0.0.1:9010");
	if (st != 0) {
		fail_msg("exit %d\n%s", st, err);
	}
	assert_true(has(p->b.url, "fo-ctl"));
	st = ctl(out, sizeof(out), err, sizeof(err), list, "resolve", "fo-ctl", NULL);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "http://127.0.0.1:9010"));

	/* All dead: exit 3, and stderr names both servers. */
	snprintf(list, sizeof(list), "%s,%s", dead, d2);
	st = ctl(out, sizeof(out), err, sizeof(err), list, "resolve", "fo-ctl", NULL);
	assert_int_equal(st, 3);
	assert_non_null(strstr(err, dead));
	assert_non_null(strstr(err, d2));

	/* A bad list is a usage error naming the entry. */
	snprintf(list, sizeof(list), "%s,,%s", p->b.url, dead);
	st = ctl(out, sizeof(out), err, sizeof(err), list, "resolve", "fo-ctl", NULL);
	assert_int_equal(st, 2);
	assert_non_null(strstr(err, "--server: server URL 2 of the list is empty"));

	/* The environment variable takes a list too. */
	snprintf(list, sizeof(list), "%s,%s", dead, p->b.url);
	setenv("DISCOVERY_SERVER", list, 1);
	const char *argv[] = { DISCOVERYCTL_PATH, "resolve", "fo-ctl", NULL };
	st                 = td_run(argv, out, sizeof(out), err, sizeof(err));
	unsetenv("DISCOVERY_SERVER");
	assert_int_equal(st, 0);
	close(fd);
	close(fd2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_kill_first_moves_to_second, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(
		    test_stop_first_moves_to_second, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_dead_first_entry, pair_setup, pair_teardown),
		cmocka_unit_test(test_all_dead),
		cmocka_unit_test_setup_teardown(
		    test_resolve_unavailable_is_an_answer, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_watch_list, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(
		    test_view_moves_with_the_client, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_view_list_mismatch, pair_setup, pair_teardown),
		cmocka_unit_test_setup_teardown(test_discoveryctl_list, pair_setup, pair_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
