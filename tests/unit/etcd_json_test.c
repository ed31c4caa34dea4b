/*
 * cluster/etcd_json: request bodies and answers of etcd's JSON gateway. The
 * answers are recorded from Debian's etcd 3.4.23 (see docs/cluster.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/etcd_json.h"
#include "support/testutil.h"

#define HDR                                                                 \
	"\"header\":{\"cluster_id\":\"7801232528081817440\",\"member_id\":" \
	"\"13458989633860879742\","                                         \
	"\"revision\":\"%s\",\"raft_term\":\"2\"}"

static json_t *
load(const char *text)
{
	json_t   *j = NULL;
	dsc_error err;
	assert_ok(dsi_etcdj_parse(text, strlen(text), &j, &err));
	return j;
}

/* A compact dump of j, compared as text (keys sorted). */
static void
assert_json(json_t *j, const char *want)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(s);
	if (strcmp(s, want) != 0) {
		fail_msg("got  %s\nwant %s", s, want);
	}
	free(s);
	json_decref(j);
}

static void
test_base64_round_trip(void **state)
{
	(void) state;
	uint8_t all[256];
	for (int i = 0; i < 256; i++) {
		all[i] = (uint8_t) i;
	}
	/* Every length mod 3, the empty string, and every byte value. */
	for (size_t len = 0; len <= sizeof(all); len += (len < 8 ? 1 : 37)) {
		char          *s = dsi_etcdj_b64(all, len);
		dsi_etcd_bytes b;
		assert_non_null(s);
		assert_int_equal(strlen(s), 4 * ((len + 2) / 3));
		assert_ok(dsi_etcdj_unb64(s, &b));
		assert_int_equal(b.len, len);
		assert_memory_equal(b.data, all, len);
		assert_int_equal(b.data[len], 0);
		free(b.data);
		free(s);
	}
	char *s = dsi_etcdj_b64("\x00\x01\xff", 3);
	assert_string_equal(s, "AAH/");
	free(s);
}

static void
test_base64_rejects_garbage(void **state)
{
	(void) state;
	dsi_etcd_bytes b;
	assert_int_equal(dsi_etcdj_unb64("A", &b), DSC_EPROTO);
	assert_int_equal(dsi_etcdj_unb64("AA*=", &b), DSC_EPROTO);
	assert_int_equal(dsi_etcdj_unb64("YQ==YQ==", &b), DSC_EPROTO);
	/* What mbedTLS alone would take: a short last group, whitespace. */
	assert_int_equal(dsi_etcdj_unb64("YQ", &b), DSC_EPROTO);
	assert_int_equal(dsi_etcdj_unb64("YQ=", &b), DSC_EPROTO);
	assert_int_equal(dsi_etcdj_unb64("YQ==\n", &b), DSC_EPROTO);
	assert_int_equal(dsi_etcdj_unb64("Y Q=", &b), DSC_EPROTO);
}

static void
test_prefix_end(void **state)
{
	(void) state;
	uint8_t buf[8];
	assert_int_equal(dsi_etcdj_prefix_end("ab", 2, buf), 2);
	assert_memory_equal(buf, "ac", 2);
	assert_int_equal(dsi_etcdj_prefix_end("a\xff\xff", 3, buf), 1);
	assert_memory_equal(buf, "b", 1);
	/* Nothing to raise: "\0", every key. */
	assert_int_equal(dsi_etcdj_prefix_end("\xff", 1, buf), 1);
	assert_int_equal(buf[0], 0);
	assert_int_equal(dsi_etcdj_prefix_end("", 0, buf), 1);
	assert_int_equal(buf[0], 0);
}

static void
test_int64_as_strings(void **state)
{
	(void) state;
	json_t *j
	    = load("{\"a\":\"9223372036854775807\",\"b\":7,\"c\":\"-1\",\"d\":\"x\",\"e\":1.5,"
	           "\"f\":\"9223372036854775808\",\"g\":null}");
	int64_t n = 42;
	assert_ok(dsi_etcdj_int64(j, "a", &n));
	assert_true(n == INT64_MAX);
	assert_ok(dsi_etcdj_int64(j, "b", &n));
	assert_int_equal(n, 7);
	assert_ok(dsi_etcdj_int64(j, "c", &n));
	assert_int_equal(n, -1);
	assert_ok(dsi_etcdj_int64(j, "missing", &n)); /* omitted default */
	assert_int_equal(n, 0);
	assert_ok(dsi_etcdj_int64(j, "g", &n));
	assert_int_equal(n, 0);
	assert_int_equal(dsi_etcdj_int64(j, "d", &n), DSC_EPROTO);
	assert_int_equal(dsi_etcdj_int64(j, "e", &n), DSC_EPROTO);
	assert_int_equal(dsi_etcdj_int64(j, "f", &n), DSC_EPROTO);
	json_decref(j);
}

static void
test_range_request(void **state)
{
	(void) state;
	dsi_etcd_range_req r
	    = { .key = "a", .key_len = 1, .prefix = true, .revision = 12, .limit = 500 };
	assert_json(dsi_etcdj_range_req(&r),
	    "{\"key\":\"YQ==\",\"limit\":\"500\",\"range_end\":\"Yg==\",\"revision\":\"12\"}");
	dsi_etcd_range_req one = { .key = "\0\xff", .key_len = 2, .count_only = true };
	assert_json(dsi_etcdj_range_req(&one), "{\"count_only\":true,\"key\":\"AP8=\"}");
}

static void
test_txn_request(void **state)
{
	(void) state;
	dsi_etcd_cmp cmps[] = {
		{ .target    = DSI_ETCD_MOD,
		    .result  = DSI_ETCD_EQUAL,
		    .key     = "rev",
		    .key_len = 3,
		    .number  = 9 },
		{ .target = DSI_ETCD_CREATE, .result = DSI_ETCD_EQUAL, .key = "k", .key_len = 1 },
		{ .target      = DSI_ETCD_VALUE,
		    .result    = DSI_ETCD_NOT_EQUAL,
		    .key       = "k",
		    .key_len   = 1,
		    .value     = "v",
		    .value_len = 1 },
	};
	dsi_etcd_op ok[] = {
		{ .type      = DSI_ETCD_OP_PUT,
		    .key     = "k",
		    .key_len = 1,
		    .value   = "",
		    .lease   = 77,
		    .prev_kv = true },
		{ .type = DSI_ETCD_OP_DELETE, .key = "p/", .key_len = 2, .prefix = true },
	};
	dsi_etcd_op      bad[] = { { .type = DSI_ETCD_OP_RANGE, .key = "rev", .key_len = 3 } };
	dsi_etcd_txn_req t     = { cmps, 3, ok, 2, bad, 1 };
	assert_json(dsi_etcdj_txn_req(&t),
	    "{\"compare\":[{\"key\":\"cmV2\",\"mod_revision\":\"9\",\"result\":\"EQUAL\","
	    "\"target\":"
	    "\"MOD\"},{\"create_revision\":\"0\",\"key\":\"aw==\",\"result\":\"EQUAL\",\"target\":"
	    "\"CREATE\"},{\"key\":\"aw==\",\"result\":\"NOT_EQUAL\",\"target\":\"VALUE\",\"value\":"
	    "\"dg==\"}],\"failure\":[{\"request_range\":{\"key\":\"cmV2\"}}],\"success\":[{"
	    "\"request_put\":{\"key\":\"aw==\",\"lease\":\"77\",\"prev_kv\":true,\"value\":\"\"}},{"
	    "\"request_delete_range\":{\"key\":\"cC8=\",\"range_end\":\"cDA=\"}}]}");
	dsi_etcd_txn_req empty = { 0 };
	assert_json(dsi_etcdj_txn_req(&empty), "{}");
}

static void
test_watch_request(void **state)
{
	(void) state;
	dsi_etcd_watch_req w = { .key = "a",
		.key_len              = 1,
		.prefix               = true,
		.start_revision       = 5,
		.prev_kv              = true,
		.progress_notify      = true };
	assert_json(dsi_etcdj_watch_req(&w),
	    "{\"create_request\":{\"key\":\"YQ==\",\"prev_kv\":true,\"progress_notify\":true,"
	    "\"range_end\":\"Yg==\",\"start_revision\":\"5\"}}");
}

static void
test_range_answer(void **state)
{
	(void) state;
	char text[1024];
	snprintf(text, sizeof(text),
	    "{" HDR ",\"kvs\":[{\"key\":\"YQ==\",\"create_revision\":\"2\",\"mod_revision\":\"3\","
	    "\"version\":\"2\",\"value\":\"AAH/"
	    "\",\"lease\":\"5007618169267329034\"}],\"more\":true,"
	    "\"count\":\"2\"}",
	    "3");
	json_t             *j = load(text);
	dsi_etcd_range_resp r;
	dsc_error           err;
	assert_ok(dsi_etcdj_range_resp(j, &r, &err));
	assert_int_equal(r.revision, 3);
	assert_int_equal(r.count, 2);
	assert_true(r.more);
	assert_int_equal(r.n_kvs, 1);
	assert_int_equal(r.kvs[0].key.len, 1);
	assert_memory_equal(r.kvs[0].value.data, "\x00\x01\xff", 3);
	assert_int_equal(r.kvs[0].create_revision, 2);
	assert_int_equal(r.kvs[0].mod_revision, 3);
	assert_int_equal(r.kvs[0].version, 2);
	assert_true(r.kvs[0].lease == 5007618169267329034LL);
	dsi_etcd_range_resp_free(&r);
	json_decref(j);

	/* An empty range: no "kvs", no "count", no "more". */
	snprintf(text, sizeof(text), "{" HDR "}", "3");
	j = load(text);
	assert_ok(dsi_etcdj_range_resp(j, &r, &err));
	assert_int_equal(r.n_kvs, 0);
	assert_null(r.kvs);
	assert_int_equal(r.count, 0);
	assert_false(r.more);
	dsi_etcd_range_resp_free(&r);
	json_decref(j);
}

/* The unary error shape: {"error":"text","message":"text","code":N}. */
static void
test_unary_errors(void **state)
{
	(void) state;
	static const struct {
		const char *text;
		int         want;
	} cases[] = {
		{ "{\"error\":\"etcdserver: mvcc: required revision has been "
		  "compacted\",\"message\":"
		  "\"etcdserver: mvcc: required revision has been compacted\",\"code\":11}",
		    DSC_ESTATE },
		{ "{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: "
		  "requested lease not found\",\"code\":5}",
		    DSC_ENOTFOUND },
		{ "{\"error\":\"etcdserver: duplicate key given in txn request\",\"message\":"
		  "\"etcdserver: duplicate key given in txn request\",\"code\":3}",
		    DSC_EINVAL },
		{ "{\"error\":\"etcdserver: request is too large\",\"code\":3}", DSC_ELIMIT },
		{ "{\"error\":\"etcdserver: no leader\",\"code\":14}", DSC_EUNAVAILABLE },
		{ "{\"error\":\"etcdserver: mvcc: database space exceeded\",\"code\":8}",
		    DSC_ELIMIT },
		{ "{\"error\":\"context deadline exceeded\",\"code\":4}", DSC_ETIMEDOUT },
		{ "{\"error\":\"odd\",\"code\":\"x\"}", DSC_EINTERNAL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t             *j = load(cases[i].text);
		dsi_etcd_range_resp r;
		dsc_error           err = { 0 };
		assert_int_equal(dsi_etcdj_range_resp(j, &r, &err), cases[i].want);
		assert_int_equal(err.code, cases[i].want);
		assert_non_null(strstr(err.message, "etcd: "));
		json_decref(j);
	}
	json_t   *j = load(cases[0].text);
	dsc_error err;
	dsi_etcdj_error(j, &err);
	assert_string_equal(
	    err.message, "etcd: etcdserver: mvcc: required revision has been compacted");
	json_decref(j);
}

/* The stream error shape: {"error":{"grpc_code":N,"http_code":M,"message":...}}. */
static void
test_stream_error(void **state)
{
	(void) state;
	json_t *j
	    = load("{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no "
	           "leader\",\"http_status\":\"Service Unavailable\"}}");
	dsi_etcd_watch_resp r;
	dsc_error           err;
	assert_int_equal(dsi_etcdj_watch_resp(j, &r, &err), DSC_EUNAVAILABLE);
	assert_string_equal(err.message, "etcd: etcdserver: no leader");
	json_decref(j);
}

/* "no leader" in either shape: the one refusal another member may be asked about. */
static void
test_no_leader(void **state)
{
	(void) state;
	json_t *u  = load("{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: no "
	                   "leader\",\"code\":14}");
	json_t *st = load("{\"error\":{\"grpc_code\":14,\"message\":\"etcdserver: no leader\"}}");
	json_t *other = load("{\"error\":\"etcdserver: request timed out\",\"code\":14}");
	json_t *ok    = load("{\"header\":{\"revision\":\"3\"}}");
	assert_true(dsi_etcdj_no_leader(u));
	assert_true(dsi_etcdj_no_leader(st));
	assert_false(dsi_etcdj_no_leader(other)); /* may have been proposed: not repeated */
	assert_false(dsi_etcdj_no_leader(ok));
	json_decref(u);
	json_decref(st);
	json_decref(other);
	json_decref(ok);
}

static void
test_txn_answers(void **state)
{
	(void) state;
	char text[2048];
	/* Success: put, put (with prev_kv), delete with prev_kvs. */
	snprintf(text, sizeof(text),
	    "{" HDR
	    ",\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":{\"revision\":"
	    "\"4\"}}},{\"response_put\":{\"header\":{\"revision\":\"4\"},\"prev_kv\":{\"key\":"
	    "\"YQ==\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":"
	    "\"AAH/\"}}},{\"response_delete_range\":{\"header\":{\"revision\":\"5\"},\"deleted\":"
	    "\"1\",\"prev_kvs\":[{\"key\":\"YQ==\",\"create_revision\":\"2\",\"mod_revision\":"
	    "\"4\","
	    "\"version\":\"3\",\"value\":\"AA==\"}]}}]}",
	    "5");
	json_t           *j = load(text);
	dsi_etcd_txn_resp t;
	dsc_error         err;
	assert_ok(dsi_etcdj_txn_resp(j, &t, &err));
	assert_true(t.succeeded);
	assert_int_equal(t.revision, 5);
	assert_int_equal(t.n_results, 3);
	assert_int_equal(t.results[0].type, DSI_ETCD_OP_PUT);
	assert_int_equal(t.results[0].n_kvs, 0);
	assert_int_equal(t.results[1].n_kvs, 1);
	assert_int_equal(t.results[1].kvs[0].value.len, 3);
	assert_int_equal(t.results[2].type, DSI_ETCD_OP_DELETE);
	assert_int_equal(t.results[2].deleted, 1);
	assert_int_equal(t.results[2].kvs[0].version, 3);
	dsi_etcd_txn_resp_free(&t);
	json_decref(j);

	/* A failed compare: no "succeeded" at all; the failure branch's range. */
	snprintf(text, sizeof(text),
	    "{" HDR
	    ",\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"3\"},\"kvs\":[{"
	    "\"key\":\"YQ==\",\"create_revision\":\"2\",\"mod_revision\":\"3\",\"version\":\"2\","
	    "\"value\":\"Ag==\"}],\"count\":\"1\"}}]}",
	    "3");
	j = load(text);
	assert_ok(dsi_etcdj_txn_resp(j, &t, &err));
	assert_false(t.succeeded);
	assert_int_equal(t.n_results, 1);
	assert_int_equal(t.results[0].type, DSI_ETCD_OP_RANGE);
	assert_int_equal(t.results[0].count, 1);
	assert_int_equal(t.results[0].kvs[0].value.data[0], 2);
	dsi_etcd_txn_resp_free(&t);
	json_decref(j);

	/* A malformed answer leaves nothing allocated (valgrind checks). */
	j = load("{\"header\":{\"revision\":\"3\"},\"responses\":[{\"response_range\":{\"kvs\":[{"
	         "\"key\":\"YQ==\"},{\"key\":\"!!\"}]}}]}");
	assert_int_equal(dsi_etcdj_txn_resp(j, &t, &err), DSC_EPROTO);
	json_decref(j);
}

static void
test_lease_answers(void **state)
{
	(void) state;
	char text[512];
	snprintf(text, sizeof(text), "{" HDR ",\"ID\":\"5007618169267329034\",\"TTL\":\"2\"}", "3");
	json_t   *j = load(text);
	int64_t   id, ttl, granted;
	dsc_error err;
	assert_ok(dsi_etcdj_lease_resp(j, &id, &ttl, &granted, &err));
	assert_true(id == 5007618169267329034LL);
	assert_int_equal(ttl, 2);
	assert_int_equal(granted, 0);
	json_decref(j);
	/* time-to-live of an unknown lease: TTL -1, no error. */
	snprintf(text, sizeof(text), "{" HDR ",\"ID\":\"12345\",\"TTL\":\"-1\"}", "3");
	j = load(text);
	assert_ok(dsi_etcdj_lease_resp(j, &id, &ttl, NULL, &err));
	assert_int_equal(ttl, -1);
	json_decref(j);
}

static void
test_watch_answers(void **state)
{
	(void) state;
	char text[2048];
	/* Two events of one txn, the PUT without "type"; then a DELETE with only key and
	 * mod_revision. */
	snprintf(text, sizeof(text),
	    "{\"result\":{" HDR ",\"events\":[{\"kv\":{\"key\":\"YQ==\",\"create_revision\":\"2\","
	    "\"mod_revision\":\"4\",\"version\":\"3\",\"value\":\"AA==\"},\"prev_kv\":{\"key\":"
	    "\"YQ==\",\"create_revision\":\"2\",\"mod_revision\":\"3\",\"version\":\"2\",\"value\":"
	    "\"Ag==\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"YWI=\",\"mod_revision\":\"4\"}}]}}",
	    "4");
	json_t             *j = load(text);
	dsi_etcd_watch_resp r;
	dsc_error           err;
	assert_ok(dsi_etcdj_watch_resp(j, &r, &err));
	assert_int_equal(r.revision, 4);
	assert_false(r.created);
	assert_false(r.canceled);
	assert_int_equal(r.n_events, 2);
	assert_int_equal(r.events[0].type, DSI_ETCD_EVENT_PUT);
	assert_true(r.events[0].has_prev);
	assert_int_equal(r.events[0].prev_kv.mod_revision, 3);
	assert_int_equal(r.events[1].type, DSI_ETCD_EVENT_DELETE);
	assert_false(r.events[1].has_prev);
	assert_memory_equal(r.events[1].kv.key.data, "ab", 2);
	assert_int_equal(r.events[1].kv.value.len, 0);
	dsi_etcd_watch_resp_free(&r);
	json_decref(j);

	/* Created; then canceled by compaction (no "revision" in the header). */
	snprintf(text, sizeof(text), "{\"result\":{" HDR ",\"created\":true}}", "3");
	j = load(text);
	assert_ok(dsi_etcdj_watch_resp(j, &r, &err));
	assert_true(r.created);
	assert_int_equal(r.n_events, 0);
	dsi_etcd_watch_resp_free(&r);
	json_decref(j);
	j = load("{\"result\":{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"raft_term\":"
	         "\"2\"},\"canceled\":true,\"compact_revision\":\"3\"}}");
	assert_ok(dsi_etcdj_watch_resp(j, &r, &err));
	assert_true(r.canceled);
	assert_int_equal(r.compact_revision, 3);
	assert_int_equal(r.revision, 0);
	dsi_etcd_watch_resp_free(&r);
	json_decref(j);

	/* An unknown event type, a result that is not an object. */
	j = load("{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\"}},{\"type\":\"ODD\"}]}}");
	assert_int_equal(dsi_etcdj_watch_resp(j, &r, &err), DSC_EPROTO);
	json_decref(j);
	j = load("{\"result\":3}");
	assert_int_equal(dsi_etcdj_watch_resp(j, &r, &err), DSC_EPROTO);
	json_decref(j);
}

static void
test_unreadable(void **state)
{
	(void) state;
	json_t   *j;
	dsc_error err;
	assert_int_equal(dsi_etcdj_parse("{\"a\":", 5, &j, &err), DSC_EPROTO);
	assert_int_equal(dsi_etcdj_parse("[1]", 3, &j, &err), DSC_EPROTO);
	assert_int_equal(err.code, DSC_EPROTO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_round_trip),
		cmocka_unit_test(test_base64_rejects_garbage),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_int64_as_strings),
		cmocka_unit_test(test_range_request),
		cmocka_unit_test(test_txn_request),
		cmocka_unit_test(test_watch_request),
		cmocka_unit_test(test_range_answer),
		cmocka_unit_test(test_unary_errors),
		cmocka_unit_test(test_stream_error),
		cmocka_unit_test(test_no_leader),
		cmocka_unit_test(test_txn_answers),
		cmocka_unit_test(test_lease_answers),
		cmocka_unit_test(test_watch_answers),
		cmocka_unit_test(test_unreadable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
