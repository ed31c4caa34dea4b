/*
 * Views against the real discoveryd: convergence to the server's exact
 * state, local resolve, per-service views, recovery from lost events and
 * from a server restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <discovery/discovery.h>

#include "support/fixture.h"
#include "support/testutil.h"

#define LIVENESS_MS TU_LIVENESS_MS /* liveness checks, not speed claims; stretched */
#define POLL_MS     20             /* how often a wait looks again */
#define TTL_MS      TF_TTL_MS      /* TTL instances are not polled: no health events interfere */

/* ---- the daemon with its publish socket ---- */

/* The daemon with a fast SYNC period; its publish URL lands in pub. */
static int
start_daemon(td_daemon *d, char *pub, size_t pub_len, const char *const *extra)
{
	if (td_daemon_start_sync(d, extra) != 0) {
		return -1;
	}
	snprintf(pub, pub_len, "%s", d->pub_url);
	return 0;
}

static tf_fixture F; /* the group's daemon (fast SYNC) and client */

static dsc_client *
client_on(const char *url)
{
	dsc_client *c;
	assert_ok(tf_client_open(&c, url));
	return c;
}

static int
group_setup(void **state)
{
	(void) state;
	return tf_start(&F, true, NULL);
}

static int
group_teardown(void **state)
{
	(void) state;
	return tf_stop(&F);
}

static void
reg_on(
    dsc_client *c, const char *svc, const char *ep, const dsc_kv *md, size_t n_md, uint32_t weight)
{
	dsc_registration r = { .service = svc,
		.endpoint               = ep,
		.metadata               = md,
		.n_metadata             = n_md,
		.ttl_ms                 = TTL_MS,
		.weight                 = weight };
	assert_ok(dsc_register(c, &r, NULL, NULL));
}

static void
reg(const char *svc, const char *ep)
{
	reg_on(F.c, svc, ep, NULL, 0, 0);
}

static dsc_view *
view_on(const char *url, const char *pub, dsc_view_options *o)
{
	dsc_view        *v;
	dsc_view_options def;
	dsc_error        err = { 0 };
	if (o == NULL) {
		dsc_view_options_init(&def);
		o = &def;
	}
	o->client.timeout_ms = LIVENESS_MS;
	if (dsc_view_open(&v, url, pub, o, &err) != 0) {
		fail_msg("dsc_view_open: %s", err.message);
	}
	return v;
}

/* ---- comparing a view with the server ---- */

/*
 * Field by field, except last_check_ms: the server refreshes it (and, for
 * polled instances, last_error) on every check without a new revision or an
 * event, so no view can follow it. The instances here are TTL ones, which
 * only change through calls that do publish.
 */
static bool
same_lists(const dsc_instance_list *a, const dsc_instance_list *b, char *why, size_t len)
{
	if (a->count != b->count) {
		snprintf(why, len, "%zu instances, want %zu", a->count, b->count);
		return false;
	}
	for (size_t i = 0; i < a->count; i++) {
		const dsc_instance *x = &a->items[i], *y = &b->items[i];
		bool                eq = strcmp(x->service, y->service) == 0
		    && strcmp(x->endpoint, y->endpoint) == 0 && x->health == y->health
		    && strcmp(x->health_path, y->health_path) == 0 && x->ttl_ms == y->ttl_ms
		    && x->weight == y->weight && x->registered_at_ms == y->registered_at_ms
		    && strcmp(x->last_error, y->last_error) == 0 && x->n_metadata == y->n_metadata;
		for (size_t k = 0; eq && k < x->n_metadata; k++) {
			eq = strcmp(x->metadata[k].key, y->metadata[k].key) == 0
			    && strcmp(x->metadata[k].value, y->metadata[k].value) == 0;
		}
		if (!eq) {
			snprintf(why, len, "item %zu: %s %s %s differs from %s %s %s", i,
			    x->service, x->endpoint, dsc_health_name(x->health), y->service,
			    y->endpoint, dsc_health_name(y->health));
			return false;
		}
	}
	return true;
}

/*
 * Waits (bounded) until the view's copy of service (NULL: all) equals the
 * server's and its revision is the server's; fails with the last difference.
 */
static void
wait_converged(dsc_view *v, dsc_client *c, const char *service, bool check_revision)
{
	char why[512] = "";
	for (int waited = 0; waited <= LIVENESS_MS; waited += POLL_MS) {
		dsc_instance_list *want, *got;
		assert_ok(dsc_get_all(c, service, &want, NULL));
		assert_ok(dsc_view_get_all(v, service, &got));
		bool ok = same_lists(got, want, why, sizeof(why));
		if (ok && check_revision && dsc_view_revision(v) != want->revision) {
			snprintf(why, sizeof(why), "view at revision %llu, server at %llu",
			    (unsigned long long) dsc_view_revision(v),
			    (unsigned long long) want->revision);
			ok = false;
		}
		dsc_instance_list_free(want);
		dsc_instance_list_free(got);
		if (ok) {
			return;
		}
		tu_sleep_ms(POLL_MS);
	}
	fail_msg("the view did not converge: %s", why);
}

/* Counts what the view thread reports. */
typedef struct counter {
	pthread_mutex_t mtx;
	int             syncs, changes;
} counter;

static void
count_cb(void *arg, const dsc_event *ev)
{
	counter *k = arg;
	pthread_mutex_lock(&k->mtx);
	if (ev->type == DSC_EVENT_SYNC) {
		k->syncs++;
	} else {
		k->changes++;
	}
	pthread_mutex_unlock(&k->mtx);
}

/* ---- the tests ---- */

static void
test_converges_to_server_state(void **state)
{
	dsc_kv           md[] = { { "zone", "eu-1" }, { "az", "b" } };
	counter          k    = { .mtx = PTHREAD_MUTEX_INITIALIZER };
	dsc_view_options o;
	uint32_t         removed;
	(void) state;

	/* Some state before the view: it comes from the first GetAll. */
	reg("vc-a", "http://127.0.0.1:9001");
	reg_on(F.c, "vc-a", "http://127.0.0.1:9002", md, 2, 5);
	reg("vc-b", "tcp://127.0.0.1:9003");
	dsc_view_options_init(&o);
	o.on_event     = count_cb;
	o.on_event_arg = &k;
	dsc_view *v    = view_on(F.d.url, F.d.pub_url, &o);
	wait_converged(v, F.c, NULL, true);
	assert_int_equal(dsc_view_reloads(v), 0);

	/* Then a mix of changes, applied from events. */
	for (int i = 0; i < 20; i++) {
		char ep[64];
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 9100 + i);
		reg(i % 2 ? "vc-a" : "vc-c", ep);
	}
	reg_on(F.c, "vc-a", "http://127.0.0.1:9001", md, 1, 3); /* an update */
	assert_ok(dsc_heartbeat(F.c, "vc-a", "http://127.0.0.1:9002", NULL, NULL));
	assert_ok(dsc_deregister(F.c, "vc-b", NULL, &removed, NULL));
	assert_ok(dsc_deregister(F.c, "vc-c", "http://127.0.0.1:9104", &removed, NULL));
	assert_ok(dsc_deregister(F.c, "VC_C", NULL, &removed, NULL)); /* the rest of vc-c */
	wait_converged(v, F.c, NULL, true);
	wait_converged(v, F.c, "vc-a", false);

	dsc_instance_list *l;
	assert_ok(dsc_view_get_all(v, "vc-c", &l));
	assert_int_equal(l->count, 0);
	dsc_instance_list_free(l);
	assert_int_equal(dsc_view_resolve(v, "vc-b", false, NULL), DSC_ENOTFOUND);

	/* Callbacks ran on the view thread, SYNCs included. */
	for (int waited = 0; waited < LIVENESS_MS; waited += POLL_MS) {
		pthread_mutex_lock(&k.mtx);
		bool seen = k.syncs > 0 && k.changes > 0;
		pthread_mutex_unlock(&k.mtx);
		if (seen) {
			break;
		}
		tu_sleep_ms(POLL_MS);
	}
	pthread_mutex_lock(&k.mtx);
	assert_true(k.syncs > 0);
	assert_true(k.changes > 0);
	pthread_mutex_unlock(&k.mtx);
	dsc_view_close(v);
}

/* Resolves n times from the view and counts each endpoint of eps. */
static void
resolve_counts(dsc_view *v, const char *svc, bool healthy_only, const char *const *eps, int *seen,
    size_t n_eps, int n)
{
	memset(seen, 0, n_eps * sizeof(*seen));
	for (int i = 0; i < n; i++) {
		char buf[128];
		assert_ok(dsc_view_resolve_endpoint(v, svc, healthy_only, buf, sizeof(buf)));
		for (size_t k = 0; k < n_eps; k++) {
			seen[k] += strcmp(buf, eps[k]) == 0;
		}
	}
}

static void
test_resolve_locally(void **state)
{
	const char *eps[]
	    = { "http://127.0.0.1:9201", "http://127.0.0.1:9202", "http://127.0.0.1:9203" };
	int seen[3];
	(void) state;

	reg_on(F.c, "vr-rr", eps[0], NULL, 0, 1);
	reg_on(F.c, "vr-rr", eps[1], NULL, 0, 0); /* counts as 1 */
	reg_on(F.c, "vr-rr", eps[2], NULL, 0, 2);
	dsc_view *v = view_on(F.d.url, F.d.pub_url, NULL);

	/* Nothing is healthy: weighted round-robin over all of them. */
	resolve_counts(v, "VR_RR", false, eps, seen, 3, 40);
	assert_int_equal(seen[0], 10);
	assert_int_equal(seen[1], 10);
	assert_int_equal(seen[2], 20);
	char buf[128];
	assert_int_equal(
	    dsc_view_resolve_endpoint(v, "vr-rr", true, buf, sizeof(buf)), DSC_EUNAVAILABLE);
	assert_int_equal(dsc_view_resolve(v, "vr-rr", true, NULL), DSC_EUNAVAILABLE);
	assert_int_equal(dsc_view_resolve(v, "vr-none", false, NULL), DSC_ENOTFOUND);
	assert_int_equal(dsc_view_resolve(v, "bad name", false, NULL), DSC_EINVAL);
	assert_int_equal(dsc_view_resolve_endpoint(v, "vr-rr", false, buf, 8), DSC_ELIMIT);

	dsc_instance *x;
	assert_ok(dsc_view_resolve(v, "vr-rr", false, &x));
	assert_string_equal(x->service, "vr-rr");
	assert_int_equal(x->ttl_ms, TTL_MS);
	assert_string_equal(x->health_path, "/health");
	dsc_instance_free(x);

	/* Two become healthy (heartbeats publish HEALTH_CHANGED): only they are picked. */
	assert_ok(dsc_heartbeat(F.c, "vr-rr", eps[1], NULL, NULL));
	assert_ok(dsc_heartbeat(F.c, "vr-rr", eps[2], NULL, NULL));
	wait_converged(v, F.c, "vr-rr", false);
	resolve_counts(v, "vr-rr", false, eps, seen, 3, 30);
	assert_int_equal(seen[0], 0);
	assert_int_equal(seen[1], 10);
	assert_int_equal(seen[2], 20);
	resolve_counts(v, "vr-rr", true, eps, seen, 3, 3);
	assert_int_equal(seen[0], 0);
	assert_ok(dsc_view_resolve(v, "vr-rr", true, &x));
	assert_int_equal(x->health, DSC_HEALTH_HEALTHY);
	dsc_instance_free(x);
	dsc_view_close(v);
}

static void
test_per_service_view(void **state)
{
	dsc_view_options o;
	const char      *only[] = { "vp-a", "VP_B", "vp-a" };
	(void) state;

	reg("vp-a", "http://127.0.0.1:9301");
	reg("vp-b", "http://127.0.0.1:9302");
	reg("vp-c", "http://127.0.0.1:9303");
	reg("vp-a-x", "http://127.0.0.1:9304");
	dsc_view_options_init(&o);
	o.services   = only;
	o.n_services = 3;
	dsc_view *v  = view_on(F.d.url, F.d.pub_url, &o);

	reg("vp-b", "http://127.0.0.1:9305");
	reg("vp-c", "http://127.0.0.1:9306");
	reg("vp-a-x", "http://127.0.0.1:9307");
	assert_ok(dsc_deregister(F.c, "vp-a", "http://127.0.0.1:9301", NULL, NULL));
	reg("vp-a", "http://127.0.0.1:9308");
	wait_converged(v, F.c, "vp-a", false);
	wait_converged(v, F.c, "vp-b", false);

	dsc_instance_list *l;
	assert_ok(dsc_view_get_all(v, NULL, &l));
	assert_int_equal(l->count, 3);
	for (size_t i = 0; i < l->count; i++) {
		assert_true(strcmp(l->items[i].service, "vp-a") == 0
		    || strcmp(l->items[i].service, "vp-b") == 0);
	}
	dsc_instance_list_free(l);
	assert_int_equal(dsc_view_resolve(v, "vp-c", false, NULL), DSC_ENOTFOUND);
	assert_int_equal(dsc_view_resolve(v, "vp-a-x", false, NULL), DSC_ENOTFOUND);
	assert_ok(dsc_view_resolve(v, "vp-b", false, NULL));
	assert_true(dsc_view_revision(v) > 0);
	dsc_view_close(v);
}

/* An on_event callback that holds the view thread until released. */
typedef struct gate {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            armed, held, open;
} gate;

static void
gate_cb(void *arg, const dsc_event *ev)
{
	gate *g = arg;
	(void) ev;
	pthread_mutex_lock(&g->mtx);
	if (g->armed) {
		g->armed = false;
		g->held  = true;
		pthread_cond_broadcast(&g->cv);
		while (!g->open) {
			pthread_cond_wait(&g->cv, &g->mtx);
		}
	}
	pthread_mutex_unlock(&g->mtx);
}

static void
test_recovers_lost_events(void **state)
{
	td_daemon        d;
	char             pub[128];
	dsc_view_options o;
	gate             g = { .mtx = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	const char      *args[] = { "--event-buffer", "2", NULL };
	struct timespec  until;
	(void) state;

	assert_int_equal(start_daemon(&d, pub, sizeof(pub), args), 0);
	dsc_client *c = client_on(d.url);
	reg_on(c, "vl-seed", "http://127.0.0.1:9400", NULL, 0, 0);
	dsc_view_options_init(&o);
	o.recv_buffer  = 2;
	o.on_event     = gate_cb;
	o.on_event_arg = &g;
	dsc_view *v    = view_on(d.url, pub, &o);

	/* Hold the view thread in its callback (a SYNC or a change, whichever comes). */
	pthread_mutex_lock(&g.mtx);
	g.armed = true;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LIVENESS_MS / 1000;
	while (!g.held) {
		if (pthread_cond_timedwait(&g.cv, &g.mtx, &until) != 0) {
			break;
		}
	}
	bool held = g.held;
	pthread_mutex_unlock(&g.mtx);
	assert_true(held);

	/* A burst it cannot keep up with: nng drops most of it. */
	for (int i = 0; i < 200; i++) {
		char ep[64];
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 10000 + i);
		reg_on(c, i % 3 ? "vl-burst" : "vl-other", ep, NULL, 0, 0);
	}
	assert_ok(dsc_deregister(c, "vl-seed", NULL, NULL, NULL));
	pthread_mutex_lock(&g.mtx);
	g.open = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mtx);

	wait_converged(v, c, NULL, true);
	assert_true(dsc_view_reloads(v) > 0);
	dsc_view_close(v);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
}

static void
test_survives_server_restart(void **state)
{
	td_daemon   d;
	char        pub[128], listen[128];
	const char *args[] = { "--listen", listen, "--publish", pub, NULL };
	(void) state;

	/* Learn two free ports, then run A on them. */
	assert_int_equal(start_daemon(&d, pub, sizeof(pub), NULL), 0);
	snprintf(listen, sizeof(listen), "%s", d.url);
	assert_int_equal(td_daemon_stop(&d), 0);
	assert_int_equal(start_daemon(&d, pub, sizeof(pub), args), 0);

	dsc_client *c = client_on(listen);
	reg_on(c, "vs-x", "http://127.0.0.1:9501", NULL, 0, 0);
	dsc_view *v = view_on(listen, pub, NULL);
	assert_ok(dsc_view_resolve(v, "vs-x", false, NULL));
	assert_int_equal(td_daemon_stop(&d), 0);

	/* B starts empty, counting revisions from 0 again. */
	assert_int_equal(start_daemon(&d, pub, sizeof(pub), args), 0);
	reg_on(c, "vs-y", "http://127.0.0.1:9502", NULL, 0, 0);
	wait_converged(v, c, NULL, true);
	assert_int_equal(dsc_view_resolve(v, "vs-x", false, NULL), DSC_ENOTFOUND);
	assert_ok(dsc_view_resolve(v, "vs-y", false, NULL));
	assert_true(dsc_view_reloads(v) > 0);

	/* A view closes promptly with its server gone, too. */
	assert_int_equal(td_daemon_stop(&d), 0);
	dsc_view_close(v);
	dsc_client_close(c);
}

static void
test_open_failures(void **state)
{
	dsc_view        *v = NULL;
	dsc_view_options o;
	dsc_error        err;
	const char      *bad[] = { "ok", "not ok" };
	char             dead[64];
	int              fd;
	(void) state;
	assert_int_equal(tu_dead_url(dead, sizeof(dead), "tcp", &fd), 0);

	dsc_view_options_init(&o);
	o.client.timeout_ms = 300;
	assert_int_equal(dsc_view_open(&v, dead, dead, &o, &err), DSC_ECONNREFUSED);
	assert_non_null(strstr(err.message, dead));
	assert_null(v);
	/* The publish URL is up but the REQ/REP one is not: the first load fails. */
	assert_int_not_equal(dsc_view_open(&v, dead, F.d.pub_url, &o, &err), 0);
	close(fd);
	assert_null(v);
	o.services   = bad;
	o.n_services = 2;
	assert_int_equal(dsc_view_open(&v, F.d.url, F.d.pub_url, &o, &err), DSC_EINVAL);
	assert_non_null(strstr(err.message, "not ok"));
	assert_int_equal(dsc_view_open(&v, NULL, F.d.pub_url, NULL, &err), DSC_EINVAL);
	assert_int_equal(dsc_view_open(NULL, F.d.url, F.d.pub_url, NULL, &err), DSC_EINVAL);
	assert_null(v);
	dsc_view_close(NULL);
	assert_int_equal(dsc_view_revision(NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_converges_to_server_state),
		cmocka_unit_test(test_resolve_locally),
		cmocka_unit_test(test_per_service_view),
		cmocka_unit_test(test_recovers_lost_events),
		cmocka_unit_test(test_survives_server_restart),
		cmocka_unit_test(test_open_failures),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
