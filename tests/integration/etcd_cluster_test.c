/*
 * A real 3-member etcd cluster on loopback (the test kit's te_cluster) under
 * the faults cluster mode must survive: a put replicated to every member, a
 * watch on one member seeing writes made through another, kill -9 of the
 * leader while a client writes (a new leader within a liveness bound, no
 * acknowledged write lost, the killed member catching up after a restart),
 * and SIGSTOP of the leader while a client writes. Exits 77 without etcd.
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

#include "cluster/etcd.h"
#include "support/etcd_cluster.h"
#include "support/testutil.h"

#define MEMBERS 3
/* How long the leader stays stopped at least: past an election timeout (1.5 s), not 10 s. */
#define PAUSE_MS 3000

#define assert_etcd(expr)                                                                        \
	do {                                                                                     \
		int rv_ = (expr);                                                                \
		if (rv_ != 0) {                                                                  \
			fail_msg("%s: %s (%d): %s", #expr, dsi_strerror(rv_), rv_, err.message); \
		}                                                                                \
	} while (0)

static int
setup(void **state)
{
	te_cluster *cl;
	if (tu_curl_setup(state) != 0 || te_cluster_start(&cl, MEMBERS) != 0) {
		return -1;
	}
	*state = cl;
	return 0;
}

static int
teardown(void **state)
{
	te_cluster_stop(*state);
	return tu_curl_teardown(state);
}

/* A client of member i alone. */
static dsi_etcd *
member_client(te_cluster *cl, int i)
{
	dsi_etcd *c;
	dsc_error err;
	assert_etcd(dsi_etcd_open(&c, te_cluster_member_url(cl, i), tu_stretch_ms(5000), &err));
	return c;
}

/* Every member's URL, starting with member first (the one a client tries first). */
static void
endpoints_from(te_cluster *cl, int first, char *buf, size_t len)
{
	size_t off = 0;
	for (int k = 0; k < MEMBERS; k++) {
		off += (size_t) snprintf(buf + off, len - off, "%s%s", k > 0 ? "," : "",
		    te_cluster_member_url(cl, (first + k) % MEMBERS));
	}
}

static int64_t
put(dsi_etcd *c, const char *key, const char *value)
{
	dsi_etcd_op       op = { .type = DSI_ETCD_OP_PUT,
		      .key             = key,
		      .key_len         = strlen(key),
		      .value           = value,
		      .value_len       = strlen(value) };
	dsi_etcd_txn_req  t  = { .success = &op, .n_success = 1 };
	dsi_etcd_txn_resp r;
	dsc_error         err;
	assert_etcd(dsi_etcd_txn(c, &t, &r, &err));
	int64_t rev = r.revision;
	dsi_etcd_txn_resp_free(&r);
	return rev;
}

/* Asserts key holds value when read through c. */
static void
assert_value(dsi_etcd *c, const char *key, const char *value)
{
	dsi_etcd_range_req  q = { .key = key, .key_len = strlen(key) };
	dsi_etcd_range_resp r;
	dsc_error           err;
	assert_etcd(dsi_etcd_range(c, &q, &r, &err));
	if (r.n_kvs != 1) {
		fail_msg("%s: %zu keys through %s", key, r.n_kvs, dsi_etcd_endpoint(c));
	}
	assert_string_equal((char *) r.kvs[0].value.data, value);
	dsi_etcd_range_resp_free(&r);
}

static void
test_replicated_put(void **state)
{
	te_cluster *cl = *state;
	dsi_etcd   *c[MEMBERS];
	for (int i = 0; i < MEMBERS; i++) {
		c[i] = member_client(cl, i);
	}
	put(c[0], "rep/k", "through member 0");
	for (int i = 1; i < MEMBERS; i++) {
		assert_value(c[i], "rep/k", "through member 0");
	}
	for (int i = 0; i < MEMBERS; i++) {
		dsi_etcd_close(c[i]);
	}
}

/* dsi_etcd_status through each member: its own ID, one leader named by all, the store's revision.
 */
static void
test_status(void **state)
{
	te_cluster *cl     = *state;
	int         leader = te_cluster_wait_leader(cl, -1, TU_LIVENESS_MS);
	dsc_error   err;
	assert_true(leader >= 0);
	dsi_etcd *w   = member_client(cl, 0);
	int64_t   rev = put(w, "status/k", "v");
	dsi_etcd_close(w);
	for (int i = 0; i < MEMBERS; i++) {
		dsi_etcd            *c = member_client(cl, i);
		dsi_etcd_status_resp st;
		assert_etcd(dsi_etcd_status(c, &st, &err));
		assert_true(st.member_id == te_cluster_member_id(cl, i));
		assert_true(st.leader == te_cluster_member_id(cl, leader));
		assert_true(st.raft_term >= 2 && st.raft_index > 0 && st.db_size > 0);
		assert_true(st.revision >= rev || i != 0); /* member 0 took the put */
		assert_true(strncmp(st.version, "3.", 2) == 0);
		dsi_etcd_close(c);
	}
	for (int i = 0; i < MEMBERS; i++) {
		for (int j = 0; j < i; j++) {
			assert_true(te_cluster_member_id(cl, i) != te_cluster_member_id(cl, j));
		}
	}
}

/* The next message that carries events (progress notifications skipped). */
static void
next_events(dsi_etcd_watch *w, dsi_etcd_watch_resp *r)
{
	dsc_error err;
	for (int64_t deadline = tu_now_ms() + TU_LIVENESS_MS; tu_now_ms() < deadline;) {
		assert_etcd(dsi_etcd_watch_next(w, TU_LIVENESS_MS, r, &err));
		if (r->n_events > 0) {
			return;
		}
		dsi_etcd_watch_resp_free(r);
	}
	fail_msg("no events within %d ms", TU_LIVENESS_MS);
}

/* A watch on member 2 sees every event of writes made through member 0, in order. */
static void
test_watch_across_members(void **state)
{
	te_cluster         *cl     = *state;
	dsi_etcd           *writer = member_client(cl, 0), *watcher = member_client(cl, 2);
	dsi_etcd_watch     *w;
	dsi_etcd_watch_resp r;
	dsc_error           err;
	char                keys[12][16];
	int64_t             revs[12];
	dsi_etcd_watch_req  q = { .key = "watch/", .key_len = 6, .prefix = true, .prev_kv = true };
	assert_etcd(dsi_etcd_watch_open(watcher, &q, &w, &err));

	/* Ten puts, then one txn of two puts: twelve events, the last two at one revision. */
	for (int i = 0; i < 10; i++) {
		snprintf(keys[i], sizeof(keys[i]), "watch/%02d", i);
		revs[i] = put(writer, keys[i], keys[i]);
	}
	snprintf(keys[10], sizeof(keys[10]), "watch/b");
	snprintf(keys[11], sizeof(keys[11]), "watch/a"); /* operation order, not key order */
	dsi_etcd_op ops[2];
	for (int i = 0; i < 2; i++) {
		ops[i] = (dsi_etcd_op) { .type = DSI_ETCD_OP_PUT,
			.key                   = keys[10 + i],
			.key_len               = strlen(keys[10 + i]),
			.value                 = keys[10 + i],
			.value_len             = strlen(keys[10 + i]) };
	}
	dsi_etcd_txn_req  t = { .success = ops, .n_success = 2 };
	dsi_etcd_txn_resp tr;
	assert_etcd(dsi_etcd_txn(writer, &t, &tr, &err));
	revs[10] = revs[11] = tr.revision;
	dsi_etcd_txn_resp_free(&tr);

	for (int seen = 0; seen < 12;) {
		next_events(w, &r);
		for (size_t i = 0; i < r.n_events; i++, seen++) {
			const dsi_etcd_event *ev = &r.events[i];
			assert_true(seen < 12);
			assert_int_equal(ev->type, DSI_ETCD_EVENT_PUT);
			assert_string_equal((char *) ev->kv.key.data, keys[seen]);
			assert_string_equal((char *) ev->kv.value.data, keys[seen]);
			assert_int_equal(ev->kv.mod_revision, revs[seen]);
		}
		dsi_etcd_watch_resp_free(&r);
	}
	dsi_etcd_watch_close(w);
	dsi_etcd_close(writer);
	dsi_etcd_close(watcher);
}

/*
 * A client writing prefix/000000, prefix/000001, ... one put at a time
 * through every member, retrying a put whose outcome is unknown (timeout,
 * broken connection) or that was refused (no leader, connection refused)
 * until it is acknowledged; a put is idempotent, so a retry after an
 * unknown outcome is safe. After a timeout it starts the next attempt at
 * the next member: cluster/etcd stays on a member that took the request,
 * and a stopped leader would take every retry.
 */
typedef struct writer {
	te_cluster *cl;
	const char *prefix;
	int         first;    /* the member tried first */
	atomic_bool stop;     /* set by the test: finish the current put and end */
	atomic_int  acked;    /* puts 0 .. acked-1 are acknowledged */
	atomic_int  unknown;  /* attempts with an unknown outcome (then retried) */
	atomic_int  refused;  /* attempts refused unhandled (then retried) */
	atomic_bool gave_up;  /* a put was not acknowledged within its bound */
	char        why[768]; /* the last error, written before gave_up is set */
	pthread_t   thread;
} writer;

static void *
writer_main(void *arg)
{
	writer   *wr = arg;
	dsi_etcd *c  = NULL;
	char      list[256], key[64], value[32];
	dsc_error err;
	int       first = wr->first;
	for (int i = 0; !atomic_load(&wr->stop) && !atomic_load(&wr->gave_up); i++) {
		snprintf(key, sizeof(key), "%s%06d", wr->prefix, i);
		snprintf(value, sizeof(value), "v%d", i);
		dsi_etcd_op      op = { .type = DSI_ETCD_OP_PUT,
			     .key             = key,
			     .key_len         = strlen(key),
			     .value           = value,
			     .value_len       = strlen(value) };
		dsi_etcd_txn_req t  = { .success = &op, .n_success = 1 };
		for (int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;;) {
			dsi_etcd_txn_resp r;
			if (c == NULL) {
				endpoints_from(wr->cl, first, list, sizeof(list));
				if (dsi_etcd_open(&c, list, tu_stretch_ms(2000), &err) != 0) {
					break;
				}
			}
			int rv = dsi_etcd_txn(c, &t, &r, &err);
			if (rv == 0) {
				dsi_etcd_txn_resp_free(&r);
				atomic_store(&wr->acked, i + 1);
				break;
			}
			if (rv == DSC_ETIMEDOUT || rv == DSC_ETRANSPORT) {
				atomic_fetch_add(&wr->unknown, 1);
				dsi_etcd_close(c); /* next attempt: the next member first */
				c     = NULL;
				first = (first + 1) % MEMBERS;
			} else if (rv == DSC_EUNAVAILABLE || rv == DSC_ECONNREFUSED) {
				atomic_fetch_add(&wr->refused, 1);
			} else {
				snprintf(wr->why, sizeof(wr->why), "%s: %s", key, err.message);
				atomic_store(&wr->gave_up, true);
				break;
			}
			if (tu_now_ms() >= deadline) {
				snprintf(wr->why, sizeof(wr->why),
				    "%s: not acknowledged within %d ms: %s", key, TU_LIVENESS_MS,
				    err.message);
				atomic_store(&wr->gave_up, true);
				break;
			}
			tu_sleep_ms(50);
		}
		tu_sleep_ms(5); /* gentle on a shared machine */
	}
	dsi_etcd_close(c);
	return NULL;
}

static void
writer_start(writer *wr, te_cluster *cl, const char *prefix, int first)
{
	*wr = (writer) { .cl = cl, .prefix = prefix, .first = first };
	assert_int_equal(pthread_create(&wr->thread, NULL, writer_main, wr), 0);
}

/* Waits until at least n puts are acknowledged (within the liveness bound). */
static void
writer_wait(writer *wr, int n)
{
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (
	    atomic_load(&wr->acked) < n && !atomic_load(&wr->gave_up) && tu_now_ms() < deadline) {
		tu_sleep_ms(20);
	}
	if (atomic_load(&wr->acked) < n) {
		fail_msg("%d of %d puts acknowledged within %d ms%s%s", atomic_load(&wr->acked), n,
		    TU_LIVENESS_MS, atomic_load(&wr->gave_up) ? ": " : "",
		    atomic_load(&wr->gave_up) ? wr->why : "");
	}
}

static void
writer_stop(writer *wr)
{
	atomic_store(&wr->stop, true);
	pthread_join(wr->thread, NULL);
	print_message("%s: %d puts acknowledged, %d attempts with an unknown outcome, %d refused\n",
	    wr->prefix, atomic_load(&wr->acked), atomic_load(&wr->unknown),
	    atomic_load(&wr->refused));
	if (atomic_load(&wr->gave_up)) {
		fail_msg("the writer gave up: %s", wr->why);
	}
}

/*
 * Every acknowledged put of wr, read through member i alone: all there,
 * each with its value. The put in flight when the writer stopped was
 * acknowledged too (the writer ends only between puts), so nothing else.
 */
static void
assert_no_loss(te_cluster *cl, int i, const writer *wr)
{
	dsi_etcd          *c = member_client(cl, i);
	dsi_etcd_range_req q = { .key = wr->prefix, .key_len = strlen(wr->prefix), .prefix = true };
	dsi_etcd_range_resp r;
	dsc_error           err;
	char                key[64], value[32];
	int                 acked = atomic_load(&wr->acked);
	assert_etcd(dsi_etcd_range(c, &q, &r, &err));
	if (r.n_kvs != (size_t) acked) {
		fail_msg("member %d holds %zu keys under %s; %d puts were acknowledged", i, r.n_kvs,
		    wr->prefix, acked);
	}
	for (int k = 0; k < acked; k++) {
		snprintf(key, sizeof(key), "%s%06d", wr->prefix, k);
		snprintf(value, sizeof(value), "v%d", k);
		assert_string_equal((char *) r.kvs[k].key.data, key);
		assert_string_equal((char *) r.kvs[k].value.data, value);
	}
	dsi_etcd_range_resp_free(&r);
	dsi_etcd_close(c);
}

/*
 * kill -9 of the leader while a client writes through it: a new leader within
 * the liveness bound, the writes go on, none acknowledged is lost; the killed
 * member, restarted on its data, catches up with what was written while it
 * was down.
 */
static void
test_kill_leader(void **state)
{
	te_cluster *cl = *state;
	writer      wr;
	int         leader = te_cluster_wait_leader(cl, -1, TU_LIVENESS_MS);
	assert_true(leader >= 0);
	writer_start(&wr, cl, "kill/", leader);
	writer_wait(&wr, 20);

	assert_int_equal(te_cluster_kill(cl, leader), 0);
	int64_t killed   = tu_now_ms();
	int     acked    = atomic_load(&wr.acked);
	int     elected  = te_cluster_wait_leader(cl, leader, TU_LIVENESS_MS);
	int64_t election = tu_now_ms() - killed;
	if (elected < 0) {
		te_cluster_dump_logs(cl);
		fail_msg("no new leader within %d ms of killing member %d", TU_LIVENESS_MS, leader);
	}
	print_message("member %d killed; member %d leads after %lld ms\n", leader, elected,
	    (long long) election);
	writer_wait(&wr, acked + 20);
	writer_stop(&wr);

	/* Written while the old leader is down; then it comes back on its data and has it. */
	dsi_etcd *c = member_client(cl, elected);
	put(c, "down/while", "yes");
	dsi_etcd_close(c);
	assert_int_equal(te_cluster_restart(cl, leader), 0);
	c = member_client(cl, leader);
	assert_value(c, "down/while", "yes");
	put(c, "down/after", "through the restarted member");
	dsi_etcd_close(c);
	for (int i = 0; i < MEMBERS; i++) {
		assert_no_loss(cl, i, &wr);
	}
}

/*
 * SIGSTOP of the leader while a client writes through it: the other two elect
 * a leader and take writes meanwhile; after SIGCONT the old leader steps down
 * and catches up, and no acknowledged write is lost.
 */
static void
test_pause_leader(void **state)
{
	te_cluster *cl = *state;
	writer      wr;
	int         leader = te_cluster_wait_leader(cl, -1, TU_LIVENESS_MS);
	assert_true(leader >= 0);
	writer_start(&wr, cl, "pause/", leader);
	writer_wait(&wr, 20);

	assert_int_equal(te_cluster_pause(cl, leader), 0);
	int64_t paused  = tu_now_ms();
	int     acked   = atomic_load(&wr.acked);
	int     elected = te_cluster_wait_leader(cl, leader, TU_LIVENESS_MS);
	if (elected < 0) {
		te_cluster_resume(cl, leader);
		te_cluster_dump_logs(cl);
		fail_msg(
		    "no new leader within %d ms of stopping member %d", TU_LIVENESS_MS, leader);
	}
	print_message("member %d stopped; member %d leads after %lld ms\n", leader, elected,
	    (long long) (tu_now_ms() - paused));
	writer_wait(&wr, acked + 5); /* writes go on without the stopped member */
	int64_t left = PAUSE_MS - (tu_now_ms() - paused);
	if (left > 0) {
		tu_sleep_ms(left);
	}
	assert_int_equal(te_cluster_resume(cl, leader), 0);
	acked = atomic_load(&wr.acked);
	writer_wait(&wr, acked + 20);
	writer_stop(&wr);
	for (int i = 0; i < MEMBERS; i++) {
		assert_no_loss(cl, i, &wr);
	}
	assert_true(te_cluster_wait_leader(cl, -1, TU_LIVENESS_MS) >= 0);
}

int
main(void)
{
	if (te_etcd_path() == NULL) {
		printf("SKIP: no etcd (install etcd-server: scripts/deps.sh test, or set "
		       "DISCOVERY_ETCD)\n");
		return TE_SKIP;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replicated_put),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_watch_across_members),
		cmocka_unit_test(test_kill_leader),
		cmocka_unit_test(test_pause_leader),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
