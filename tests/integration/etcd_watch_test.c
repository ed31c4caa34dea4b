/*
 * cluster/etcd_watch against a real single-member etcd on loopback: the
 * events of one txn together and in order, history from an old revision,
 * cancellation by compaction, progress notifications, failover, and the
 * member dying under an open stream. Exits 77 (skipped) without etcd.
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
#include <unistd.h>

#include "cluster/etcd.h"
#include "support/etcd.h"
#include "support/testutil.h"

typedef struct fx {
	te_etcd   etcd;
	dsi_etcd *c;
} fx;

static int
setup(void **state)
{
	fx       *f = calloc(1, sizeof(*f));
	dsc_error err;
	if (tu_curl_setup(state) != 0) {
		free(f);
		return -1;
	}
	/* Progress notifications every half second instead of every 10 minutes. */
	const char *extra[] = { "--experimental-watch-progress-notify-interval", "500ms", NULL };
	if (f == NULL
	    || te_etcd_start(&f->etcd, te_etcd_path(), NULL, extra, TU_LIVENESS_MS) != 0) {
		free(f);
		return -1;
	}
	if (dsi_etcd_open(&f->c, f->etcd.url, tu_stretch_ms(5000), &err) != 0) {
		fprintf(stderr, "dsi_etcd_open: %s\n", err.message);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx *f = *state;
	dsi_etcd_close(f->c);
	te_etcd_stop(&f->etcd);
	te_etcd_remove(&f->etcd);
	free(f);
	return tu_curl_teardown(state);
}

#define assert_etcd(expr)                                                                        \
	do {                                                                                     \
		int rv_ = (expr);                                                                \
		if (rv_ != 0) {                                                                  \
			fail_msg("%s: %s (%d): %s", #expr, dsi_strerror(rv_), rv_, err.message); \
		}                                                                                \
	} while (0)

/* Runs ops as one txn and returns its revision. */
static int64_t
txn(dsi_etcd *c, const dsi_etcd_op *ops, size_t n)
{
	dsi_etcd_txn_req  t = { .success = ops, .n_success = n };
	dsi_etcd_txn_resp r;
	dsc_error         err;
	assert_etcd(dsi_etcd_txn(c, &t, &r, &err));
	int64_t rev = r.revision;
	dsi_etcd_txn_resp_free(&r);
	return rev;
}

static int64_t
put(dsi_etcd *c, const char *key, const char *value)
{
	dsi_etcd_op op = { .type = DSI_ETCD_OP_PUT,
		.key             = key,
		.key_len         = strlen(key),
		.value           = value,
		.value_len       = strlen(value) };
	return txn(c, &op, 1);
}

/* The next message that carries events (progress notifications skipped). */
static void
next_events(dsi_etcd_watch *w, dsi_etcd_watch_resp *r)
{
	dsc_error err;
	for (;;) {
		assert_etcd(dsi_etcd_watch_next(w, TU_LIVENESS_MS, r, &err));
		if (r->n_events > 0) {
			return;
		}
		dsi_etcd_watch_resp_free(r);
	}
}

static void
assert_key(const dsi_etcd_kv *kv, const char *key)
{
	assert_int_equal(kv->key.len, strlen(key));
	assert_memory_equal(kv->key.data, key, kv->key.len);
}

static void
test_txn_events_together(void **state)
{
	fx                 *f = *state;
	dsi_etcd_watch     *w;
	dsi_etcd_watch_resp r;
	dsc_error           err;
	put(f->c, "w/c", "old");
	dsi_etcd_watch_req q = { .key = "w/", .key_len = 2, .prefix = true, .prev_kv = true };
	assert_etcd(dsi_etcd_watch_open(f->c, &q, &w, &err));
	dsi_etcd_op ops[] = {
		{ .type        = DSI_ETCD_OP_PUT,
		    .key       = "w/b",
		    .key_len   = 3,
		    .value     = "1",
		    .value_len = 1 },
		{ .type        = DSI_ETCD_OP_PUT,
		    .key       = "w/a",
		    .key_len   = 3,
		    .value     = "2",
		    .value_len = 1 },
		{ .type = DSI_ETCD_OP_DELETE, .key = "w/c", .key_len = 3 },
	};
	int64_t rev = txn(f->c, ops, 3);
	next_events(w, &r);
	/* All three in one message, in operation order (not key order), at one revision. */
	assert_int_equal(r.n_events, 3);
	assert_int_equal(r.revision, rev);
	assert_int_equal(r.events[0].type, DSI_ETCD_EVENT_PUT);
	assert_key(&r.events[0].kv, "w/b");
	assert_key(&r.events[1].kv, "w/a");
	assert_int_equal(r.events[2].type, DSI_ETCD_EVENT_DELETE);
	assert_key(&r.events[2].kv, "w/c");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r.events[i].kv.mod_revision, rev);
	}
	assert_false(r.events[0].has_prev);
	assert_true(r.events[2].has_prev);
	assert_memory_equal(r.events[2].prev_kv.value.data, "old", 3);
	dsi_etcd_watch_resp_free(&r);

	/* Nothing more: a short wait times out and the stream goes on. */
	int rv = dsi_etcd_watch_next(w, 100, &r, &err);
	if (rv == 0) { /* a progress notification is allowed */
		assert_int_equal(r.n_events, 0);
		dsi_etcd_watch_resp_free(&r);
	} else {
		assert_int_equal(rv, DSC_ETIMEDOUT);
	}
	rev = put(f->c, "w/a", "3");
	next_events(w, &r);
	assert_int_equal(r.revision, rev);
	assert_true(r.events[0].has_prev);
	assert_memory_equal(r.events[0].prev_kv.value.data, "2", 1);
	dsi_etcd_watch_resp_free(&r);
	dsi_etcd_watch_close(w);
}

static void
test_from_old_revision(void **state)
{
	fx                 *f = *state;
	dsi_etcd_watch     *w;
	dsi_etcd_watch_resp r;
	dsc_error           err;
	int64_t             revs[5];
	for (int i = 0; i < 5; i++) {
		char v[8];
		snprintf(v, sizeof(v), "%d", i);
		revs[i] = put(f->c, "h/k", v);
	}
	dsi_etcd_watch_req q
	    = { .key = "h/", .key_len = 2, .prefix = true, .start_revision = revs[1] };
	assert_etcd(dsi_etcd_watch_open(f->c, &q, &w, &err));
	for (int i = 1; i < 5;) {
		next_events(w, &r);
		for (size_t j = 0; j < r.n_events; j++, i++) {
			assert_int_equal(r.events[j].kv.mod_revision, revs[i]);
			assert_int_equal(r.events[j].kv.value.data[0], '0' + i);
		}
		dsi_etcd_watch_resp_free(&r);
	}
	dsi_etcd_watch_close(w);
}

static void
test_compacted(void **state)
{
	fx                 *f = *state;
	dsi_etcd_watch     *w;
	dsi_etcd_watch_resp r;
	dsc_error           err;
	int64_t             old = put(f->c, "cmp/k", "1");
	int64_t             now = put(f->c, "cmp/k", "2");
	assert_etcd(dsi_etcd_compact(f->c, now, &err));

	/* A range at the old revision: etcd's "compacted" error. */
	dsi_etcd_range_req  rq = { .key = "cmp/k", .key_len = 5, .revision = old };
	dsi_etcd_range_resp rr;
	assert_int_equal(dsi_etcd_range(f->c, &rq, &rr, &err), DSC_ESTATE);
	assert_non_null(strstr(err.message, "compacted"));

	/* A watch from it: created, then canceled with the compaction revision; we close it. */
	dsi_etcd_watch_req q
	    = { .key = "cmp/", .key_len = 4, .prefix = true, .start_revision = old };
	assert_etcd(dsi_etcd_watch_open(f->c, &q, &w, &err));
	assert_etcd(dsi_etcd_watch_next(w, TU_LIVENESS_MS, &r, &err));
	assert_true(r.canceled);
	assert_int_equal(r.compact_revision, now);
	assert_int_equal(r.n_events, 0);
	dsi_etcd_watch_resp_free(&r);
	/* At once: the response is closed on our side, not left open by etcd. */
	assert_int_equal(dsi_etcd_watch_next(w, TU_LIVENESS_MS, &r, &err), DSC_ECLOSED);
	dsi_etcd_watch_close(w);

	/* From the compaction revision itself, history is there. */
	q.start_revision = now;
	assert_etcd(dsi_etcd_watch_open(f->c, &q, &w, &err));
	next_events(w, &r);
	assert_int_equal(r.events[0].kv.mod_revision, now);
	dsi_etcd_watch_resp_free(&r);
	dsi_etcd_watch_close(w);
}

static void
test_progress_notify(void **state)
{
	fx                 *f = *state;
	dsi_etcd_watch     *w;
	dsi_etcd_watch_resp r;
	dsc_error           err;
	int64_t             rev = put(f->c, "other", "x");
	dsi_etcd_watch_req  q
	    = { .key = "idle/", .key_len = 5, .prefix = true, .progress_notify = true };
	assert_etcd(dsi_etcd_watch_open(f->c, &q, &w, &err));
	/* An idle prefix still hears the store's revision now and then. */
	assert_etcd(dsi_etcd_watch_next(w, TU_LIVENESS_MS, &r, &err));
	assert_int_equal(r.n_events, 0);
	assert_false(r.created);
	assert_false(r.canceled);
	assert_true(r.revision >= rev);
	dsi_etcd_watch_resp_free(&r);
	dsi_etcd_watch_close(w);
}

static void
test_failover(void **state)
{
	fx                 *f = *state;
	dsi_etcd           *c;
	dsi_etcd_watch     *w;
	dsi_etcd_watch_resp r;
	dsc_error           err;
	char                dead[64], list[160];
	int                 fd;
	assert_ok(tu_dead_url(dead, sizeof(dead), "http", &fd));
	snprintf(list, sizeof(list), "%s,%s", dead, f->etcd.url);
	assert_etcd(dsi_etcd_open(&c, list, tu_stretch_ms(5000), &err));
	dsi_etcd_watch_req q = { .key = "fo", .key_len = 2 };
	assert_etcd(dsi_etcd_watch_open(c, &q, &w, &err));
	assert_string_equal(dsi_etcd_endpoint(c), f->etcd.url);
	int64_t rev = put(f->c, "fo", "1");
	next_events(w, &r);
	assert_int_equal(r.revision, rev);
	dsi_etcd_watch_resp_free(&r);
	dsi_etcd_watch_close(w);
	dsi_etcd_close(c);

	/* A member without quorum first: its "no leader" (stream shape) sends us on. */
	te_noleader *nl;
	char         nl_url[64];
	assert_int_equal(te_noleader_start(&nl, nl_url, sizeof(nl_url)), 0);
	snprintf(list, sizeof(list), "%s,%s", nl_url, f->etcd.url);
	assert_etcd(dsi_etcd_open(&c, list, tu_stretch_ms(5000), &err));
	assert_etcd(dsi_etcd_watch_open(c, &q, &w, &err));
	assert_int_equal(te_noleader_hits(nl), 1);
	dsi_etcd_watch_close(w);
	dsi_etcd_close(c);
	assert_etcd(dsi_etcd_open(&c, nl_url, tu_stretch_ms(5000), &err));
	assert_int_equal(dsi_etcd_watch_open(c, &q, &w, &err), DSC_EUNAVAILABLE);
	assert_string_equal(err.message, "etcd: etcdserver: no leader");
	dsi_etcd_close(c);
	te_noleader_stop(nl);

	/* Nothing alive: refused. */
	assert_etcd(dsi_etcd_open(&c, dead, tu_stretch_ms(5000), &err));
	assert_int_equal(dsi_etcd_watch_open(c, &q, &w, &err), DSC_ECONNREFUSED);
	dsi_etcd_close(c);
	close(fd);
}

/* A member that stops answering: the stream goes silent (a stall to detect), then resumes. */
static void
test_paused_member(void **state)
{
	fx                 *f = *state;
	dsi_etcd_watch     *w;
	dsi_etcd_watch_resp r;
	dsc_error           err;
	dsi_etcd_watch_req  q = { .key = "pz", .key_len = 2 };
	assert_etcd(dsi_etcd_watch_open(f->c, &q, &w, &err));
	assert_int_equal(te_etcd_pause(&f->etcd), 0);
	int rv = dsi_etcd_watch_next(w, tu_stretch_ms(300), &r, &err);
	te_etcd_resume(&f->etcd);
	if (rv == 0) { /* a progress notification sent just before the pause */
		assert_int_equal(r.n_events, 0);
		dsi_etcd_watch_resp_free(&r);
	} else {
		assert_int_equal(rv, DSC_ETIMEDOUT);
		assert_non_null(strstr(err.message, "no watch message"));
	}
	int64_t rev = put(f->c, "pz", "1");
	next_events(w, &r);
	assert_int_equal(r.revision, rev);
	dsi_etcd_watch_resp_free(&r);
	dsi_etcd_watch_close(w);
}

/* The member dies under an open stream: the next call says so promptly. Last. */
static void
test_member_dies(void **state)
{
	fx                 *f = *state;
	dsi_etcd_watch     *w;
	dsi_etcd_watch_resp r;
	dsc_error           err;
	dsi_etcd_watch_req  q = { .key = "d", .key_len = 1 };
	assert_etcd(dsi_etcd_watch_open(f->c, &q, &w, &err));
	kill(f->etcd.pid, SIGKILL);
	te_etcd_stop(&f->etcd);
	int rv;
	while ((rv = dsi_etcd_watch_next(w, TU_LIVENESS_MS, &r, &err)) == 0) {
		dsi_etcd_watch_resp_free(&r); /* a progress notification sent before */
	}
	assert_true(rv == DSC_ETRANSPORT || rv == DSC_ECLOSED);
	dsi_etcd_watch_close(w);
	assert_int_equal(dsi_etcd_watch_open(f->c, &q, &w, &err), DSC_ECONNREFUSED);
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
		cmocka_unit_test(test_txn_events_together),
		cmocka_unit_test(test_from_old_revision),
		cmocka_unit_test(test_compacted),
		cmocka_unit_test(test_progress_notify),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_paused_member),
		cmocka_unit_test(test_member_dies),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
