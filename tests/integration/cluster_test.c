/*
 * Cluster mode (issue 16, docs/cluster.md): three real discoveryd nodes on
 * one real etcd on loopback, each on its own key prefix per test. A write
 * on any node is read on every node; concurrent writers on all three give
 * every node the same consecutive revisions and identical events; a
 * service-wide removal of more than etcd's 128 operations per transaction;
 * a node killed with -9 and restarted catches up; what cluster mode does
 * not do yet is refused with a clear status. Exits 77 (skipped) without etcd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/cluster.h"
#include "support/daemon.h"
#include "support/httpd.h"
#include "support/etcd.h"
#include "support/testutil.h"

#define NODES 3

static te_etcd etcd;

typedef struct cluster {
	tc_cluster  tc;
	td_daemon  *d; /* tc.d */
	dsc_client *c[NODES];
	char       *cluster; /* tc.cluster */
} cluster;

static int
group_setup(void **state)
{
	(void) state;
	if (te_etcd_path() == NULL) {
		fprintf(
		    stderr, "cluster_test: no etcd (install etcd-server, or set DISCOVERY_ETCD)\n");
		exit(77);
	}
	const char *extra[] = { "--experimental-watch-progress-notify-interval", "500ms", NULL };
	return te_etcd_start(&etcd, te_etcd_path(), NULL, extra, TU_LIVENESS_MS);
}

static int
group_teardown(void **state)
{
	(void) state;
	te_etcd_stop(&etcd);
	te_etcd_remove(&etcd);
	return 0;
}

static int
client_open(cluster *cl, int i)
{
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS;
	return dsc_client_open(&cl->c[i], cl->d[i].url, &o) == 0 ? 0 : -1;
}

static int
node_start(cluster *cl, int i)
{
	return tc_node_start(&cl->tc, i) == 0 ? client_open(cl, i) : -1;
}

/* Every test on a prefix of its own: it starts from an empty registry. */
static int
start_per_node(void **state, const char *const *extra, const char *const *const *per)
{
	cluster *cl = calloc(1, sizeof(*cl));
	for (int i = 0; cl != NULL && per != NULL && i < NODES; i++) {
		cl->tc.node_extra[i] = per[i];
	}
	if (cl == NULL || tc_cluster_start(&cl->tc, NODES, etcd.url, extra) != 0) {
		free(cl);
		return -1;
	}
	cl->d       = cl->tc.d;
	cl->cluster = cl->tc.cluster;
	for (int i = 0; i < NODES; i++) {
		if (client_open(cl, i) != 0) {
			return -1;
		}
	}
	*state = cl;
	return 0;
}

static int
start(void **state, const char *const *extra)
{
	return start_per_node(state, extra, NULL);
}

/*
 * The default check settings: an instance nothing answers for is checked
 * at once but needs two failures 30 s apart, so revisions count writes alone.
 */
static int
setup(void **state)
{
	return start(state, NULL);
}

/* As setup_checks; nodes 1 and 2 send the header the services of the test want, node 0 not. */
static int
setup_suspect(void **state)
{
	static const char *const extra[]    = { "--health-interval", "0.2", "--health-timeout", "1",
		   "--rise", "1", "--fall", "1", NULL };
	static const char *const header[]   = { "--check-header", "X-Check:yes", NULL };
	const char *const       *per[NODES] = { NULL, header, header };
	return start_per_node(state, extra, per);
}

/* Checks every 0.2 s, one result deciding: health tests wait for an event. */
static int
setup_checks(void **state)
{
	static const char *const extra[] = { "--health-interval", "0.2", "--health-timeout", "1",
		"--rise", "1", "--fall", "1", NULL };
	return start(state, extra);
}

static int
teardown(void **state)
{
	cluster *cl = *state;
	for (int i = 0; i < NODES; i++) {
		dsc_client_close(cl->c[i]);
	}
	assert_int_equal(tc_cluster_stop(&cl->tc), 0);
	free(cl);
	return 0;
}

static void
reg(dsc_client *c, const char *service, const char *endpoint)
{
	dsc_registration r = { .service = service, .endpoint = endpoint };
	dsc_error        err;
	int              rv = dsc_register(c, &r, NULL, &err);
	if (rv != 0) {
		fail_msg(
		    "register %s %s: %s (%s)", service, endpoint, dsc_strerror(rv), err.message);
	}
}

static uint64_t
revision_of(dsc_client *c)
{
	dsc_instance_list *l;
	dsc_error          err;
	int                rv = dsc_get_all(c, NULL, &l, &err);
	if (rv != 0) {
		fail_msg("get_all: %s (%s)", dsc_strerror(rv), err.message);
	}
	uint64_t r = l->revision;
	dsc_instance_list_free(l);
	return r;
}

/* Waits until every node is at revision want or beyond; returns false past the bound. */
static bool
all_reach(cluster *cl, uint64_t want)
{
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	for (int i = 0; i < NODES; i++) {
		while (revision_of(cl->c[i]) < want) {
			if (tu_now_ms() > deadline) {
				return false;
			}
			tu_sleep_ms(20);
		}
	}
	return true;
}

static char *listing(dsc_client *c);

/*
 * Waits until every node has the same revision and the same listing (health
 * checks go on changing both) and returns that revision; fails past the bound.
 */
static uint64_t
converged(cluster *cl)
{
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	for (;;) {
		char *a   = listing(cl->c[0]);
		bool  all = true;
		for (int i = 1; all && i < NODES; i++) {
			char *b = listing(cl->c[i]);
			all     = strcmp(a, b) == 0;
			free(b);
		}
		uint64_t rev = strtoull(a + 4, NULL, 10);
		free(a);
		if (all) {
			return rev;
		}
		if (tu_now_ms() > deadline) {
			fail_msg("the nodes did not converge to one revision and listing");
		}
		tu_sleep_ms(20);
	}
}

/* GetAll of every service as text, for comparing nodes. */
static char *
listing(dsc_client *c)
{
	dsc_instance_list *l;
	dsc_error          err;
	assert_int_equal(dsc_get_all(c, NULL, &l, &err), 0);
	size_t cap = 64 + l->count * 160, len = 0;
	char  *out = malloc(cap);
	assert_non_null(out);
	len += (size_t) snprintf(out, cap, "rev %llu\n", (unsigned long long) l->revision);
	for (size_t i = 0; i < l->count; i++) {
		len += (size_t) snprintf(out + len, cap - len, "%s %s %u %s\n", l->items[i].service,
		    l->items[i].endpoint, l->items[i].weight, dsc_health_name(l->items[i].health));
	}
	dsc_instance_list_free(l);
	return out;
}

static void
test_write_anywhere_read_everywhere(void **state)
{
	cluster *cl = *state;
	reg(cl->c[0], "web", "http://127.0.0.1:18080");
	uint64_t rev = dsc_client_revision(cl->c[0]);
	assert_true(rev >= 1);
	assert_true(all_reach(cl, rev));
	for (int i = 1; i < NODES; i++) {
		dsc_instance *in;
		dsc_error     err;
		assert_int_equal(dsc_resolve(cl->c[i], "web", false, &in, &err), 0);
		assert_string_equal(in->endpoint, "http://127.0.0.1:18080");
		dsc_instance_free(in);
	}
	/* A removal on another node reaches the first. */
	uint32_t  removed = 0;
	dsc_error err;
	assert_int_equal(dsc_deregister(cl->c[2], "web", NULL, &removed, &err), 0);
	assert_int_equal(removed, 1);
	converged(cl);
	dsc_instance *in;
	assert_int_equal(dsc_resolve(cl->c[0], "web", false, &in, &err), DSC_ENOTFOUND);
}

/* ---- concurrent writers on every node ---- */

#define WRITES 60

typedef struct writer {
	cluster *cl;
	int      node;
	int      failures;
} writer;

static void *
writer_main(void *arg)
{
	writer *w = arg;
	for (int k = 0; k < WRITES; k++) {
		char      ep[64];
		dsc_error err;
		/* The same service from every node: each write races the others'. */
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 20000 + w->node * 1000 + k);
		dsc_registration r = { .service = "shared", .endpoint = ep };
		if (dsc_register(w->cl->c[w->node], &r, NULL, &err) != 0) {
			w->failures++;
		}
		if (k % 5 == 4) {
			uint32_t removed;
			snprintf(
			    ep, sizeof(ep), "http://127.0.0.1:%d", 20000 + w->node * 1000 + k - 2);
			if (dsc_deregister(w->cl->c[w->node], "shared", ep, &removed, &err) != 0) {
				w->failures++;
			}
		}
	}
	return NULL;
}

typedef struct seen_events {
	uint64_t rev[1024];
	char     line[1024][96];
	size_t   n;
} seen_events;

/* Collects non-SYNC events from w until revision last, within the bound. */
static void
collect(dsc_watch *w, uint64_t last, seen_events *s)
{
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while ((s->n == 0 || s->rev[s->n - 1] < last) && tu_now_ms() < deadline && s->n < 1024) {
		dsc_event *ev;
		if (dsc_watch_next(w, 200, &ev) != 0) {
			continue;
		}
		if (ev->type != DSC_EVENT_SYNC) {
			s->rev[s->n] = ev->revision;
			snprintf(s->line[s->n], sizeof(s->line[0]), "%llu %s %s %s",
			    (unsigned long long) ev->revision, dsc_event_type_name(ev->type),
			    ev->service, ev->instance.endpoint);
			s->n++;
		}
		dsc_event_free(ev);
	}
}

static void
test_concurrent_writers_same_events(void **state)
{
	cluster     *cl = *state;
	dsc_watch   *w[NODES];
	writer       wr[NODES];
	pthread_t    t[NODES];
	seen_events *ev = calloc(NODES, sizeof(*ev));

	assert_non_null(ev);
	for (int i = 0; i < NODES; i++) {
		assert_int_equal(dsc_watch_open(&w[i], cl->d[i].pub_url, NULL, 0), 0);
	}
	/* A first change every watch sees proves the subscriptions are up. */
	reg(cl->c[0], "marker", "http://127.0.0.1:19999");
	uint64_t base = dsc_client_revision(cl->c[0]);
	for (int i = 0; i < NODES; i++) {
		collect(w[i], base, &ev[i]);
		assert_true(ev[i].n > 0 && ev[i].rev[ev[i].n - 1] == base);
		ev[i].n = 0;
	}
	for (int i = 0; i < NODES; i++) {
		wr[i] = (writer) { .cl = cl, .node = i };
		assert_int_equal(pthread_create(&t[i], NULL, writer_main, &wr[i]), 0);
	}
	for (int i = 0; i < NODES; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(wr[i].failures, 0); /* a lost race is retried by the writer */
	}
	uint64_t last = converged(cl);
	for (int i = 0; i < NODES; i++) {
		collect(w[i], last, &ev[i]);
		dsc_watch_close(w[i]);
	}
	/* Consecutive on node 0, and the same lines on every node. */
	assert_int_equal(ev[0].n, last - base);
	size_t writes = 0;
	for (size_t k = 0; k < ev[0].n; k++) {
		assert_int_equal(ev[0].rev[k], base + 1 + k);
		for (int i = 1; i < NODES; i++) {
			assert_int_equal(ev[i].n, ev[0].n);
			assert_string_equal(ev[i].line[k], ev[0].line[k]);
		}
		writes += strstr(ev[0].line[k], " shared ") != NULL
		    && strstr(ev[0].line[k], " health") == NULL;
	}
	/* 60 registrations and 12 removals from each node: each one change (health apart). */
	assert_int_equal(writes, NODES * (WRITES + WRITES / 5));
	char *a = listing(cl->c[0]);
	for (int i = 1; i < NODES; i++) {
		char *b = listing(cl->c[i]);
		assert_string_equal(a, b);
		free(b);
	}
	free(a);
	free(ev);
}

static void
test_remove_service_over_128(void **state)
{
	cluster *cl = *state;
	char     ep[64];
	for (int k = 0; k < 200; k++) {
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 30000 + k);
		reg(cl->c[k % NODES], "big", ep);
	}
	uint64_t rev = dsc_client_revision(cl->c[(200 - 1) % NODES]);
	assert_true(all_reach(cl, rev));
	uint32_t  removed = 0;
	dsc_error err;
	int       rv = dsc_deregister(cl->c[1], "big", NULL, &removed, &err);
	if (rv != 0) {
		fail_msg("deregister big: %s (%s)", dsc_strerror(rv), err.message);
	}
	assert_int_equal(removed, 200);
	assert_true(converged(cl) >= rev + 200);
	for (int i = 0; i < NODES; i++) {
		dsc_instance *in;
		assert_int_equal(dsc_resolve(cl->c[i], "big", false, &in, &err), DSC_ENOTFOUND);
	}
}

/*
 * The largest registrations the protocol takes (a 2 KiB endpoint, 4 KiB of
 * metadata in 64 entries, a 1 KiB health path, a TTL so an alive key too),
 * sent at once from many clients so the writer fills its batches: each
 * batch must fit etcd's request limit (1.5 MiB by default), or etcd refuses
 * it whole and every write in it fails.
 */
#define BIG_CLIENTS 48

typedef struct big_writer {
	const char *url;
	int         id;
	int         rv;
	char        message[512];
} big_writer;

static void *
big_main(void *arg)
{
	big_writer        *b = arg;
	dsc_client        *c;
	dsc_client_options o;
	char               keys[64][16];
	char               ep[2049], path[1025], vals[64][64];
	dsc_kv             md[64];
	dsc_error          err = { 0 };

	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS;
	if ((b->rv = dsc_client_open(&c, b->url, &o)) != 0) {
		return NULL;
	}
	int n = snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/", 30000 + b->id);
	memset(ep + n, 'e', sizeof(ep) - 1 - (size_t) n);
	ep[sizeof(ep) - 1] = 0;
	path[0]            = '/';
	memset(path + 1, 'p', sizeof(path) - 2);
	path[sizeof(path) - 1] = 0;
	for (int i = 0; i < 64; i++) {
		snprintf(
		    keys[i], sizeof(keys[i]), "k%02d", i); /* the same text from every thread */
		memset(vals[i], 'v', 60);                  /* 64 x (3 + 60) = 4032 bytes */
		vals[i][60] = 0;
		md[i]       = (dsc_kv) { keys[i], vals[i] };
	}
	dsc_registration r = { .service = "large",
		.endpoint               = ep,
		.metadata               = md,
		.n_metadata             = 64,
		.health_path            = path + 1,
		.ttl_ms                 = 600000 };
	b->rv              = dsc_register(c, &r, NULL, &err);
	snprintf(b->message, sizeof(b->message), "%s", err.message);
	dsc_client_close(c);
	return NULL;
}

static void
test_largest_registrations_fit_a_batch(void **state)
{
	cluster   *cl = *state;
	big_writer b[BIG_CLIENTS];
	pthread_t  t[BIG_CLIENTS];
	for (int i = 0; i < BIG_CLIENTS; i++) {
		b[i] = (big_writer) { .url = cl->d[0].url, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, big_main, &b[i]), 0);
	}
	for (int i = 0; i < BIG_CLIENTS; i++) {
		pthread_join(t[i], NULL);
	}
	for (int i = 0; i < BIG_CLIENTS; i++) {
		if (b[i].rv != 0) {
			fail_msg("large registration %d: %s (%s)", i, dsc_strerror(b[i].rv),
			    b[i].message);
		}
	}
	dsc_instance_list *l;
	assert_int_equal(dsc_get_all(cl->c[0], "large", &l, NULL), 0);
	assert_int_equal(l->count, BIG_CLIENTS);
	dsc_instance_list_free(l);
	assert_true(all_reach(cl, dsc_client_revision(cl->c[0])));
	assert_int_equal(dsc_get_all(cl->c[2], "large", &l, NULL), 0);
	assert_int_equal(l->count, BIG_CLIENTS);
	dsc_instance_list_free(l);
}

static void
test_node_killed_catches_up(void **state)
{
	cluster *cl = *state;
	char     ep[64];
	reg(cl->c[0], "before", "http://127.0.0.1:18001");
	td_daemon_kill(&cl->d[2]);
	dsc_client_close(cl->c[2]);
	cl->c[2] = NULL;
	for (int k = 0; k < 20; k++) {
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 18100 + k);
		reg(cl->c[k % 2], "during", ep);
	}
	uint64_t rev = dsc_client_revision(cl->c[1]);
	assert_int_equal(node_start(cl, 2), 0);
	assert_true(all_reach(cl, rev));
	assert_true(converged(cl) >= rev);
	/* And it writes again, seen by the others. */
	reg(cl->c[2], "after", "http://127.0.0.1:18002");
	assert_true(all_reach(cl, dsc_client_revision(cl->c[2])));
}

/* Waits until every node has the instance in state want; false past the bound. */
static bool
all_health(cluster *cl, const char *service, const char *endpoint, dsc_health want)
{
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	for (int i = 0; i < NODES; i++) {
		for (;;) {
			bool       healthy;
			dsc_health st = DSC_HEALTH_UNKNOWN;
			dsc_error  err;
			if (dsc_is_healthy(cl->c[i], service, endpoint, &healthy, &st, &err) == 0
			    && st == want) {
				break;
			}
			if (tu_now_ms() > deadline) {
				return false;
			}
			tu_sleep_ms(20);
		}
	}
	return true;
}

/* On a failure: every node's log, for the reader of the test's output. */
static void
print_logs(cluster *cl)
{
	for (int i = 0; i < NODES; i++) {
		size_t len  = 0;
		char  *text = tu_slurp(cl->d[i].log_path, &len);
		fprintf(stderr, "---- node%d's log\n%s\n", i, text != NULL ? text : "(none)");
		free(text);
	}
}

/* A health change is one change on every node: the same revision, the same listing. */
static void
test_health_same_everywhere(void **state)
{
	cluster   *cl = *state;
	th_server *h;
	char       ep[64];
	assert_int_equal(th_start(&h), 0);
	assert_int_equal(th_set(h, "/health", 200), 0);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", th_port(h));
	dsc_registration r = { .service = "checked", .endpoint = ep, .health_path = "/health" };
	dsc_error        err;
	assert_int_equal(dsc_register(cl->c[0], &r, NULL, &err), 0);
	assert_true(all_health(cl, "checked", ep, DSC_HEALTH_HEALTHY));
	assert_int_equal(th_set(h, "/health", 500), 0);
	assert_true(all_health(cl, "checked", ep, DSC_HEALTH_UNHEALTHY));
	/* Registered, healthy, unhealthy: three changes, wherever they were decided. */
	assert_true(all_reach(cl, 3));
	char *a = listing(cl->c[0]);
	for (int i = 1; i < NODES; i++) {
		char *b = listing(cl->c[i]);
		assert_string_equal(a, b);
		free(b);
	}
	assert_non_null(strstr(a, "rev 3\n"));
	free(a);
	th_stop(h);
}

/* min_revision: a write on one node, read at once on another that may be behind. */
static void
test_read_own_writes_on_another_node(void **state)
{
	cluster *cl = *state;
	char     ep[64];
	for (int k = 0; k < 20; k++) {
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 18200 + k);
		reg(cl->c[0], "ryow", ep);
		uint64_t rev = dsc_client_revision(cl->c[0]);
		/* Node 2 answers only once it has applied the write (or says it is behind). */
		dsc_client_set_min_revision(cl->c[2], rev);
		dsc_instance_list *l;
		dsc_error          err;
		int                rv = dsc_get_all(cl->c[2], "ryow", &l, &err);
		if (rv != 0) {
			fail_msg("get_all at min_revision %llu: %s (%s)", (unsigned long long) rev,
			    dsc_strerror(rv), err.message);
		}
		assert_true(l->revision >= rev);
		assert_int_equal(l->count, (size_t) k + 1);
		dsc_instance_list_free(l);
	}
	dsc_client_set_min_revision(cl->c[2], 0);
}

/*
 * TTL instances on etcd leases: a heartbeat on any node keeps the instance
 * healthy on every node; without heartbeats it turns unhealthy everywhere.
 */
static void
test_ttl_on_leases(void **state)
{
	cluster         *cl = *state;
	const char      *ep = "http://127.0.0.1:18003";
	dsc_registration r  = { .service = "beat", .endpoint = ep, .ttl_ms = 2000 };
	dsc_error        err;
	dsc_instance    *in;
	assert_int_equal(dsc_register(cl->c[0], &r, NULL, &err), 0);
	assert_true(all_reach(cl, dsc_client_revision(cl->c[0])));
	assert_int_equal(dsc_heartbeat(cl->c[1], "beat", ep, &in, &err), 0);
	assert_string_equal(in->endpoint, ep);
	dsc_instance_free(in);
	assert_true(all_health(cl, "beat", ep, DSC_HEALTH_HEALTHY));
	/* Renewed from another node: still the same lease, still healthy. */
	assert_int_equal(dsc_heartbeat(cl->c[2], "beat", ep, NULL, &err), 0);
	/* No more heartbeats: the lease (2 s) expires and the owner says so. */
	assert_true(all_health(cl, "beat", ep, DSC_HEALTH_UNHEALTHY));
	assert_int_equal(dsc_heartbeat(cl->c[0], "beat", ep, NULL, &err), 0);
	assert_true(all_health(cl, "beat", ep, DSC_HEALTH_HEALTHY));
	/* What a single node refuses, a cluster refuses alike. */
	reg(cl->c[0], "plain", "http://127.0.0.1:18004");
	assert_true(all_reach(cl, dsc_client_revision(cl->c[0])));
	assert_int_equal(
	    dsc_heartbeat(cl->c[1], "plain", "http://127.0.0.1:18004", NULL, &err), DSC_ESTATE);
	assert_non_null(strstr(err.message, "without ttl_ms"));
	assert_int_equal(dsc_heartbeat(cl->c[1], "nosuch", ep, NULL, &err), DSC_ENOTFOUND);
	converged(cl);
}

/*
 * Self-preservation: every instance passes its checks, then node 0 can pass
 * none (the services start wanting a header it does not send, as a node
 * whose network broke would fail them all), while the others pass them.
 * Node 0 suspects itself, holds its failures back and hands its instances
 * over: every instance stays healthy on every node. New instances that
 * fail everywhere (UNKNOWN to UNHEALTHY) do not count: no node left before.
 */
#define GUARDED 30

static void
test_node_suspects_itself(void **state)
{
	cluster   *cl = *state;
	th_server *h;
	char       ep[64];
	assert_int_equal(th_start(&h), 0);
	/* Thirty instances: node 0 owns about ten (rendezvous), enough to suspect itself. */
	/* Checked at endpoint + health path: /iK/h, each wanting the header. */
	for (int k = 0; k < GUARDED; k++) {
		char path[32];
		snprintf(path, sizeof(path), "/i%d/h", k);
		assert_int_equal(th_set(h, path, 200), 0);
	}
	for (int k = 0; k < GUARDED; k++) {
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/i%d", th_port(h), k);
		dsc_registration r = { .service = "guarded", .endpoint = ep, .health_path = "/h" };
		dsc_error        err;
		assert_int_equal(dsc_register(cl->c[1], &r, NULL, &err), 0);
	}
	for (int k = 0; k < GUARDED; k++) {
		char full[96];
		snprintf(full, sizeof(full), "http://127.0.0.1:%d/i%d", th_port(h), k);
		if (!all_health(cl, "guarded", full, DSC_HEALTH_HEALTHY)) {
			print_logs(cl);
			fail_msg("%s is not healthy on every node", full);
		}
	}
	assert_false(td_daemon_log_contains(&cl->d[0], "suspecting this node's own network"));
	for (int k = 0; k < GUARDED; k++) {
		char path[32];
		snprintf(path, sizeof(path), "/i%d/h", k);
		assert_int_equal(th_set_require_header(h, path, "X-Check: yes"), 0);
	}
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (!td_daemon_log_contains(&cl->d[0], "suspecting this node's own network")
	    && tu_now_ms() < deadline) {
		tu_sleep_ms(50);
	}
	assert_true(td_daemon_log_contains(&cl->d[0], "suspecting this node's own network"));
	for (int k = 0; k < GUARDED; k++) {
		char full[96];
		snprintf(full, sizeof(full), "http://127.0.0.1:%d/i%d", th_port(h), k);
		if (!all_health(cl, "guarded", full, DSC_HEALTH_HEALTHY)) {
			print_logs(cl);
			fail_msg("%s is not healthy on every node after node 0 left", full);
		}
	}
	th_stop(h);
}

static void
test_data_file_refused(void **state)
{
	cluster *cl = *state;
	char     dir[256], data[300], out[2048] = "", errs[4096] = "";
	assert_int_equal(tu_mkdtemp(dir, sizeof(dir), "cluster_test"), 0);
	snprintf(data, sizeof(data), "%s/x.db", dir);
	const char *argv[] = { DISCOVERYD_PATH, "--cluster", cl->cluster, "--data", data,
		"--listen", "tcp://127.0.0.1:0", "--publish", "tcp://127.0.0.1:0", "--admin", "off",
		NULL };
	int         st     = td_run(argv, out, sizeof(out), errs, sizeof(errs));
	assert_int_not_equal(st, 0);
	assert_non_null(strstr(errs, "does not apply with --cluster"));
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_write_anywhere_read_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_concurrent_writers_same_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_service_over_128, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_largest_registrations_fit_a_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_killed_catches_up, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_health_same_everywhere, setup_checks, teardown),
		cmocka_unit_test_setup_teardown(
		    test_read_own_writes_on_another_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_on_leases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_suspects_itself, setup_suspect, teardown),
		cmocka_unit_test_setup_teardown(test_data_file_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
