/*
 * cluster/etcd against a real single-member etcd (Debian's etcd-server) on
 * loopback: range, txn, leases, endpoint failover, and a member that stops
 * answering or dies in the middle of a call. Exits 77 (skipped) without etcd.
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
	if (f == NULL || te_etcd_start(&f->etcd, te_etcd_path(), NULL, NULL, TU_LIVENESS_MS) != 0) {
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

/* Fails with the call's message, not only its code. */
#define assert_etcd(expr)                                                                        \
	do {                                                                                     \
		int rv_ = (expr);                                                                \
		if (rv_ != 0) {                                                                  \
			fail_msg("%s: %s (%d): %s", #expr, dsi_strerror(rv_), rv_, err.message); \
		}                                                                                \
	} while (0)

static void
put(dsi_etcd *c, const void *key, size_t key_len, const void *value, size_t value_len,
    int64_t lease)
{
	dsi_etcd_op       op = { .type = DSI_ETCD_OP_PUT,
		      .key             = key,
		      .key_len         = key_len,
		      .value           = value,
		      .value_len       = value_len,
		      .lease           = lease };
	dsi_etcd_txn_req  t  = { .success = &op, .n_success = 1 };
	dsi_etcd_txn_resp r;
	dsc_error         err;
	assert_etcd(dsi_etcd_txn(c, &t, &r, &err));
	assert_true(r.succeeded);
	dsi_etcd_txn_resp_free(&r);
}

/* A count_only range's result; its error in *err. */
static int
count_err(dsi_etcd *c, const char *key, dsc_error *err)
{
	dsi_etcd_range_req  q = { .key = key, .key_len = strlen(key), .count_only = true };
	dsi_etcd_range_resp r;
	int                 rv = dsi_etcd_range(c, &q, &r, err);
	if (rv == 0) {
		dsi_etcd_range_resp_free(&r);
	}
	return rv;
}

/* How many keys key holds (0 or 1). */
static int64_t
count(dsi_etcd *c, const char *key)
{
	dsi_etcd_range_req  q = { .key = key, .key_len = strlen(key), .count_only = true };
	dsi_etcd_range_resp r;
	dsc_error           err;
	assert_etcd(dsi_etcd_range(c, &q, &r, &err));
	int64_t n = r.count;
	dsi_etcd_range_resp_free(&r);
	return n;
}

static void
test_binary_round_trip(void **state)
{
	fx     *f     = *state;
	uint8_t key[] = { 'b', '/', 0, 0xff, '\n', 0x80, '"' };
	uint8_t value[256];
	for (int i = 0; i < 256; i++) {
		value[i] = (uint8_t) (255 - i);
	}
	put(f->c, key, sizeof(key), value, sizeof(value), 0);
	put(f->c, "b/", 2, "", 0, 0); /* an empty value */

	dsi_etcd_range_req  q = { .key = "b/", .key_len = 2, .prefix = true };
	dsi_etcd_range_resp r;
	dsc_error           err;
	assert_etcd(dsi_etcd_range(f->c, &q, &r, &err));
	assert_int_equal(r.n_kvs, 2);
	assert_int_equal(r.count, 2);
	assert_int_equal(r.kvs[0].key.len, 2); /* key order: "b/" first */
	assert_int_equal(r.kvs[0].value.len, 0);
	assert_int_equal(r.kvs[1].key.len, sizeof(key));
	assert_memory_equal(r.kvs[1].key.data, key, sizeof(key));
	assert_int_equal(r.kvs[1].value.len, sizeof(value));
	assert_memory_equal(r.kvs[1].value.data, value, sizeof(value));
	assert_int_equal(r.kvs[1].version, 1);
	assert_true(r.kvs[1].mod_revision > 0 && r.kvs[1].mod_revision < r.revision);
	dsi_etcd_range_resp_free(&r);
}

static void
test_paging(void **state)
{
	fx         *f = *state;
	dsi_etcd_op ops[25];
	char        keys[25][16];
	for (int i = 0; i < 25; i++) {
		snprintf(keys[i], sizeof(keys[i]), "page/%02d", i);
		ops[i] = (dsi_etcd_op) { .type = DSI_ETCD_OP_PUT,
			.key                   = keys[i],
			.key_len               = strlen(keys[i]),
			.value                 = keys[i],
			.value_len             = strlen(keys[i]) };
	}
	dsi_etcd_txn_req  t = { .success = ops, .n_success = 25 };
	dsi_etcd_txn_resp tr;
	dsc_error         err;
	assert_etcd(dsi_etcd_txn(f->c, &t, &tr, &err));
	dsi_etcd_txn_resp_free(&tr);

	/* Pages of 10 at one revision, each from the last key + "\0", to "page0" (prefix end). */
	char    from[32] = "page/";
	size_t  from_len = 5, seen = 0;
	int64_t rev = 0;
	for (int page = 0; page < 3; page++) {
		dsi_etcd_range_req  q = { .key = from,
			 .key_len              = from_len,
			 .range_end            = "page0",
			 .range_end_len        = 5,
			 .revision             = rev,
			 .limit                = 10 };
		dsi_etcd_range_resp r;
		assert_etcd(dsi_etcd_range(f->c, &q, &r, &err));
		rev = r.revision;
		assert_int_equal(r.n_kvs, page < 2 ? 10 : 5);
		assert_int_equal(r.more, page < 2);
		for (size_t i = 0; i < r.n_kvs; i++, seen++) {
			assert_string_equal((char *) r.kvs[i].key.data, keys[seen]);
		}
		memcpy(from, r.kvs[r.n_kvs - 1].key.data, r.kvs[r.n_kvs - 1].key.len);
		from[r.kvs[r.n_kvs - 1].key.len] = 0;
		from_len = r.kvs[r.n_kvs - 1].key.len + 1; /* the key and a NUL: the next key up */
		dsi_etcd_range_resp_free(&r);
	}
	assert_int_equal(seen, 25);
}

static void
test_txn_compares(void **state)
{
	fx          *f   = *state;
	dsi_etcd_cmp cmp = { .target = DSI_ETCD_CREATE,
		.result              = DSI_ETCD_EQUAL,
		.key                 = "cas",
		.key_len             = 3,
		.number              = 0 };
	dsi_etcd_op  ok
	    = { .type = DSI_ETCD_OP_PUT, .key = "cas", .key_len = 3, .value = "1", .value_len = 1 };
	dsi_etcd_op       get = { .type = DSI_ETCD_OP_RANGE, .key = "cas", .key_len = 3 };
	dsi_etcd_txn_req  t   = { &cmp, 1, &ok, 1, &get, 1 };
	dsi_etcd_txn_resp r;
	dsc_error         err;

	/* Create if absent: the first succeeds, the second finds the key and ranges it. */
	assert_etcd(dsi_etcd_txn(f->c, &t, &r, &err));
	assert_true(r.succeeded);
	int64_t created = r.revision;
	dsi_etcd_txn_resp_free(&r);
	assert_etcd(dsi_etcd_txn(f->c, &t, &r, &err));
	assert_false(r.succeeded);
	assert_int_equal(r.revision, created); /* nothing written */
	assert_int_equal(r.n_results, 1);
	assert_int_equal(r.results[0].type, DSI_ETCD_OP_RANGE);
	assert_int_equal(r.results[0].n_kvs, 1);
	assert_int_equal(r.results[0].kvs[0].mod_revision, created);
	dsi_etcd_txn_resp_free(&r);

	/* CAS on mod_revision: a stale one loses, the current one wins (with prev_kv). */
	cmp = (dsi_etcd_cmp) { .target = DSI_ETCD_MOD,
		.result                = DSI_ETCD_EQUAL,
		.key                   = "cas",
		.key_len               = 3,
		.number                = created - 1 };
	ok  = (dsi_etcd_op) { .type = DSI_ETCD_OP_PUT,
		 .key               = "cas",
		 .key_len           = 3,
		 .value             = "2",
		 .value_len         = 1,
		 .prev_kv           = true };
	assert_etcd(dsi_etcd_txn(f->c, &t, &r, &err));
	assert_false(r.succeeded);
	dsi_etcd_txn_resp_free(&r);
	cmp.number = created;
	assert_etcd(dsi_etcd_txn(f->c, &t, &r, &err));
	assert_true(r.succeeded);
	assert_int_equal(r.revision, created + 1);
	assert_int_equal(r.results[0].type, DSI_ETCD_OP_PUT);
	assert_int_equal(r.results[0].n_kvs, 1);
	assert_memory_equal(r.results[0].kvs[0].value.data, "1", 1);
	dsi_etcd_txn_resp_free(&r);

	/* On the value; then a delete with prev_kv. */
	dsi_etcd_op del
	    = { .type = DSI_ETCD_OP_DELETE, .key = "cas", .key_len = 3, .prev_kv = true };
	cmp       = (dsi_etcd_cmp) { .target = DSI_ETCD_VALUE,
		      .result                = DSI_ETCD_EQUAL,
		      .key                   = "cas",
		      .key_len               = 3,
		      .value                 = "2",
		      .value_len             = 1 };
	t.success = &del;
	assert_etcd(dsi_etcd_txn(f->c, &t, &r, &err));
	assert_true(r.succeeded);
	assert_int_equal(r.results[0].deleted, 1);
	assert_int_equal(r.results[0].kvs[0].version, 2);
	dsi_etcd_txn_resp_free(&r);
	assert_int_equal(count(f->c, "cas"), 0);

	/*
	 * Over etcd's request limit (1.5 MiB by default: "request is too large",
	 * INVALID_ARGUMENT) and over gRPC's (2 MiB: RESOURCE_EXHAUSTED): a limit either way.
	 */
	static const size_t sizes[] = { 1600u << 10, 2500u << 10 };
	for (size_t i = 0; i < 2; i++) {
		char            *big  = calloc(1, sizes[i]);
		dsi_etcd_op      huge = { .type = DSI_ETCD_OP_PUT,
			     .key               = "big",
			     .key_len           = 3,
			     .value             = big,
			     .value_len         = sizes[i] };
		dsi_etcd_txn_req too  = { .success = &huge, .n_success = 1 };
		assert_non_null(big);
		assert_int_equal(dsi_etcd_txn(f->c, &too, &r, &err), DSC_ELIMIT);
		free(big);
	}
	assert_int_equal(count(f->c, "big"), 0);

	/* An invalid txn (one key twice) is etcd's error, not a failed compare. */
	dsi_etcd_op      twice[] = { ok, ok };
	dsi_etcd_txn_req bad     = { .success = twice, .n_success = 2 };
	assert_int_equal(dsi_etcd_txn(f->c, &bad, &r, &err), DSC_EINVAL);
	assert_non_null(strstr(err.message, "duplicate key"));
}

static void
test_lease_expiry(void **state)
{
	fx       *f = *state;
	int64_t   id, ttl, left, granted, id2;
	dsc_error err;
	/* etcd's minimum is 2 s: asking 1 gives 2. */
	assert_etcd(dsi_etcd_lease_grant(f->c, 1, 0, &id, &ttl, &err));
	assert_true(id != 0);
	assert_int_equal(ttl, 2);
	put(f->c, "alive/a", 7, "x", 1, id);
	assert_etcd(dsi_etcd_lease_keepalive(f->c, id, &ttl, &err));
	assert_int_equal(ttl, 2);
	assert_etcd(dsi_etcd_lease_ttl(f->c, id, &left, &granted, &err));
	assert_int_equal(granted, 2);
	assert_true(left >= 0 && left <= 2);

	/* A second lease, with our own ID, revoked: its key goes at once. */
	assert_etcd(dsi_etcd_lease_grant(f->c, 60, 0x7e57, &id2, &ttl, &err));
	assert_int_equal(id2, 0x7e57);
	put(f->c, "alive/b", 7, "y", 1, id2);
	assert_int_equal(count(f->c, "alive/b"), 1);
	assert_etcd(dsi_etcd_lease_revoke(f->c, id2, &err));
	assert_int_equal(count(f->c, "alive/b"), 0);
	assert_int_equal(dsi_etcd_lease_revoke(f->c, id2, &err), DSC_ENOTFOUND);

	/* No more renewals: the first lease expires and takes its key along. */
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	while (count(f->c, "alive/a") != 0 && tu_now_ms() < deadline) {
		tu_sleep_ms(100);
	}
	assert_int_equal(count(f->c, "alive/a"), 0);
	assert_int_equal(dsi_etcd_lease_ttl(f->c, id, &left, &granted, &err), DSC_ENOTFOUND);
	assert_int_equal(dsi_etcd_lease_keepalive(f->c, id, &ttl, &err), DSC_ENOTFOUND);
	/* A put on a lease that is gone fails: etcd's unary error shape. */
	dsi_etcd_op       op = { .type = DSI_ETCD_OP_PUT, .key = "k", .key_len = 1, .lease = id };
	dsi_etcd_txn_req  t  = { .success = &op, .n_success = 1 };
	dsi_etcd_txn_resp r;
	assert_int_equal(dsi_etcd_txn(f->c, &t, &r, &err), DSC_ENOTFOUND);
}

static void
test_failover(void **state)
{
	fx       *f = *state;
	char      dead[64], list[160];
	int       fd1, fd2;
	dsi_etcd *c;
	dsc_error err;
	assert_ok(tu_dead_url(dead, sizeof(dead), "http", &fd1));
	snprintf(list, sizeof(list), "%s,%s", dead, f->etcd.url);
	assert_etcd(dsi_etcd_open(&c, list, tu_stretch_ms(5000), &err));
	assert_string_equal(dsi_etcd_endpoint(c), dead);
	assert_int_equal(count(c, "nothing"), 0);
	assert_string_equal(dsi_etcd_endpoint(c), f->etcd.url); /* and it stays there */
	assert_int_equal(count(c, "nothing"), 0);
	assert_string_equal(dsi_etcd_endpoint(c), f->etcd.url);
	dsi_etcd_close(c);

	/* Only dead endpoints: refused, with the last reason. */
	snprintf(list, sizeof(list), "%s,", dead);
	assert_ok(tu_dead_url(list + strlen(list), sizeof(list) - strlen(list), "http", &fd2));
	assert_etcd(dsi_etcd_open(&c, list, tu_stretch_ms(5000), &err));
	dsi_etcd_range_req  q = { .key = "k", .key_len = 1 };
	dsi_etcd_range_resp r;
	assert_int_equal(dsi_etcd_range(c, &q, &r, &err), DSC_ECONNREFUSED);
	assert_non_null(strstr(err.message, "no endpoint reachable"));
	dsi_etcd_close(c);
	close(fd1);
	close(fd2);

	assert_int_equal(dsi_etcd_open(&c, "127.0.0.1:2379", 1000, &err), DSC_EINVAL);
	assert_int_equal(dsi_etcd_open(&c, "", 1000, &err), DSC_EINVAL);
}

/* A member without quorum refuses ("no leader") before handling: the next one is asked. */
static void
test_no_leader_failover(void **state)
{
	fx          *f = *state;
	te_noleader *nl;
	char         url[64], list[160];
	dsi_etcd    *c;
	dsc_error    err;
	assert_int_equal(te_noleader_start(&nl, url, sizeof(url)), 0);
	snprintf(list, sizeof(list), "%s,%s", url, f->etcd.url);
	assert_etcd(dsi_etcd_open(&c, list, tu_stretch_ms(5000), &err));
	put(c, "nl", 2, "1", 1, 0); /* a txn, refused unhandled, so safe to send again */
	assert_int_equal(te_noleader_hits(nl), 1);
	assert_string_equal(dsi_etcd_endpoint(c), f->etcd.url);
	dsi_etcd_close(c);

	/* Alone, it is the answer: UNAVAILABLE with etcd's words. */
	assert_etcd(dsi_etcd_open(&c, url, tu_stretch_ms(5000), &err));
	assert_int_equal(count_err(c, "nl", &err), DSC_EUNAVAILABLE);
	assert_string_equal(err.message, "etcd: etcdserver: no leader");
	int64_t ttl;
	assert_int_equal(dsi_etcd_lease_keepalive(c, 1, &ttl, &err), DSC_EUNAVAILABLE);
	dsi_etcd_close(c);
	te_noleader_stop(nl);
}

/* A member that stops answering (SIGSTOP): the call ends with DSC_ETIMEDOUT, no hang. */
static void
test_stopped_member_times_out(void **state)
{
	fx       *f = *state;
	dsi_etcd *c;
	dsc_error err;
	assert_etcd(dsi_etcd_open(&c, f->etcd.url, tu_stretch_ms(1000), &err));
	assert_int_equal(count(c, "k"), 0); /* connected and kept alive */
	assert_int_equal(te_etcd_pause(&f->etcd), 0);
	int64_t             t0 = tu_now_ms();
	dsi_etcd_range_req  q  = { .key = "k", .key_len = 1 };
	dsi_etcd_range_resp r;
	int                 rv   = dsi_etcd_range(c, &q, &r, &err);
	int64_t             took = tu_now_ms() - t0;
	te_etcd_resume(&f->etcd);
	assert_int_equal(rv, DSC_ETIMEDOUT);
	assert_non_null(strstr(err.message, "outcome is unknown"));
	assert_true(took < TU_LIVENESS_MS);
	assert_int_equal(count(c, "k"), 0); /* and it recovers */
	dsi_etcd_close(c);
}

typedef struct call_arg {
	dsi_etcd *c;
	int       rv;
	dsc_error err;
} call_arg;

static void *
txn_thread(void *p)
{
	call_arg         *a  = p;
	dsi_etcd_op       op = { .type = DSI_ETCD_OP_PUT, .key = "k", .key_len = 1 };
	dsi_etcd_txn_req  t  = { .success = &op, .n_success = 1 };
	dsi_etcd_txn_resp r;
	a->rv = dsi_etcd_txn(a->c, &t, &r, &a->err);
	if (a->rv == 0) {
		dsi_etcd_txn_resp_free(&r);
	}
	return NULL;
}

/* etcd dies while a txn waits for its answer: an error (outcome unknown), then refusals. Last. */
static void
test_member_dies_mid_call(void **state)
{
	fx       *f = *state;
	call_arg  a = { 0 };
	pthread_t th;
	dsc_error err;
	assert_etcd(dsi_etcd_open(&a.c, f->etcd.url, TU_LIVENESS_MS, &err));
	assert_int_equal(count(a.c, "k"), 0);
	assert_int_equal(te_etcd_pause(&f->etcd), 0); /* the txn is sent and then waits */
	assert_int_equal(pthread_create(&th, NULL, txn_thread, &a), 0);
	tu_sleep_ms(200);
	kill(f->etcd.pid, SIGKILL);
	pthread_join(th, NULL);
	te_etcd_stop(&f->etcd);
	assert_int_equal(a.rv, DSC_ETRANSPORT);
	assert_non_null(strstr(a.err.message, "outcome is unknown"));
	assert_int_equal(dsi_etcd_lease_revoke(a.c, 1, &err), DSC_ECONNREFUSED);
	dsi_etcd_close(a.c);
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
		cmocka_unit_test(test_binary_round_trip),
		cmocka_unit_test(test_paging),
		cmocka_unit_test(test_txn_compares),
		cmocka_unit_test(test_lease_expiry),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_no_leader_failover),
		cmocka_unit_test(test_stopped_member_times_out),
		cmocka_unit_test(test_member_dies_mid_call),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
