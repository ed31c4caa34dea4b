/*
 * The store, in process: real Requests through dispatch and the writer
 * thread into an SQLite file in a fresh directory, which is then opened
 * again. What was answered OK is in the file, the file and memory never
 * diverge, and files the store cannot use are refused and left as they
 * were. Waits are liveness bounds, never speed claims.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/codec.h"
#include "common/error.h"
#include "server/dispatch.h"
#include "server/store.h"
#include "server/store_backend.h"
#include "server/writer.h"
#include "support/testutil.h"
#include "common/timeutil.h"

typedef Discovery__V1__Request  Request;
typedef Discovery__V1__Response Response;
typedef Discovery__V1__Instance Instance;

#define ST_OK          DISCOVERY__V1__STATUS_CODE__STATUS_OK
#define ST_EXHAUSTED   DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED
#define ST_UNAVAILABLE DISCOVERY__V1__STATUS_CODE__STATUS_UNAVAILABLE

#define APP_ID  0x44534331 /* "DSC1": what the store writes as application_id */
#define WAIT_MS (4 * TU_LIVENESS_MS)

typedef struct fixture fixture;

/* One asynchronous request and its answer, filled in by on_reply. */
typedef struct slot {
	fixture *f;
	char     endpoint[64];
	int      status; /* -1: no Response came back, or it did not decode */
	char     message[400];
} slot;

/* A scratch directory, and a registry with its store, as discoveryd wires them. */
struct fixture {
	char                dir[256];
	char                path[320]; /* dir/discovery.db */
	dsi_log             log;
	dsi_registry_limits limits;
	dsi_registry       *reg;
	dsi_store          *store;
	dsi_backend        *backend; /* borrows store: what the writer uses */
	dsi_writer         *writer;
	dsi_dispatch        d;

	pthread_mutex_t mtx; /* guards everything below */
	pthread_cond_t  cv;
	size_t          replies; /* async replies received */
	bool            hold;    /* after_batch blocks the writer while set */
	bool            held;    /* the writer is blocked in after_batch */
	slot           *slots;
	size_t          n_slots;

	bool          fsize_set; /* RLIMIT_FSIZE lowered: teardown restores it */
	struct rlimit old_fsize;
	void (*old_xfsz)(int);
};

/* ---- the scratch directory ---- */

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		return -1;
	}
	if (tu_mkdtemp(f->dir, sizeof(f->dir), "discovery-store") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/discovery.db", f->dir);
	f->log = (dsi_log) { .level = DSI_LOG_ERROR, .out = NULL }; /* quiet */
	dsi_registry_limits_default(&f->limits);
	pthread_mutex_init(&f->mtx, NULL);
	pthread_cond_init(&f->cv, NULL);
	*state = f;
	return 0;
}

static void release_writer(fixture *f);
static void close_store(fixture *f);

static int
teardown(void **state)
{
	fixture *f = *state;
	if (f->fsize_set) {
		setrlimit(RLIMIT_FSIZE, &f->old_fsize);
		signal(SIGXFSZ, f->old_xfsz);
	}
	release_writer(f); /* a failed test may have left the writer held */
	close_store(f);
	tu_rmtree(f->dir);
	free(f->slots);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mtx);
	free(f);
	return 0;
}

/* ---- the writer's pace: hold it after a batch while writes queue behind it ---- */

static void
on_batch(void *arg)
{
	fixture        *f = arg;
	struct timespec until;
	dsi_realtime_after(&until, WAIT_MS);
	pthread_mutex_lock(&f->mtx);
	if (f->hold) {
		f->held = true;
		pthread_cond_broadcast(&f->cv);
		while (f->hold && pthread_cond_timedwait(&f->cv, &f->mtx, &until) == 0) { }
		f->held = false;
	}
	pthread_mutex_unlock(&f->mtx);
}

static void
hold_writer(fixture *f)
{
	pthread_mutex_lock(&f->mtx);
	f->hold = true;
	pthread_mutex_unlock(&f->mtx);
}

/* Waits until the writer is blocked after a batch. */
static void
wait_held(fixture *f)
{
	struct timespec until;
	bool            held;
	dsi_realtime_after(&until, WAIT_MS);
	pthread_mutex_lock(&f->mtx);
	while (!f->held && pthread_cond_timedwait(&f->cv, &f->mtx, &until) == 0) { }
	held = f->held;
	pthread_mutex_unlock(&f->mtx);
	if (!held) {
		fail_msg("the writer thread never finished its first batch");
	}
}

static void
release_writer(fixture *f)
{
	pthread_mutex_lock(&f->mtx);
	f->hold = false;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mtx);
}

/* ---- the store ---- */

/* Opens f->path into a fresh registry, loads it and starts the writer. */
static void
open_store(fixture *f)
{
	char why[512] = "";
	assert_ok(dsi_registry_create(&f->reg, &f->limits));
	int rv = dsi_store_open(&f->store, f->path, &f->log, why, sizeof(why));
	if (rv != 0) {
		fail_msg("dsi_store_open: %s (%s)", dsi_strerror(rv), why);
	}
	if ((rv = dsi_store_load(f->store, f->reg, NULL, NULL, why, sizeof(why))) != 0) {
		fail_msg("dsi_store_load: %s (%s)", dsi_strerror(rv), why);
	}
	assert_ok(dsi_store_backend_borrow(&f->backend, f->store));
	assert_ok(dsi_writer_start(&f->writer, f->backend, f->reg, &f->log, on_batch, f));
	f->d = (dsi_dispatch) { .registry = f->reg, .log = &f->log, .writer = f->writer };
}

/* Stops the writer (answering what is queued) and frees the store and registry. */
static void
close_store(fixture *f)
{
	dsi_writer_destroy(f->writer);
	dsi_backend_close(f->backend);
	dsi_store_close(f->store);
	dsi_registry_destroy(f->reg);
	f->writer  = NULL;
	f->backend = NULL;
	f->store   = NULL;
	f->reg     = NULL;
	f->d       = (dsi_dispatch) { 0 };
}

/*
 * As the checker does before a health change: a revision from the headroom.
 * The writer tops it up on its own thread, so a refusal is retried.
 */
static void
reserve(fixture *f)
{
	for (int waited = 0; dsi_writer_try_reserve(f->writer) != 0; waited++) {
		if (waited * 5 > WAIT_MS) {
			fail_msg("no revision headroom after %d ms", WAIT_MS);
		}
		tu_sleep_ms(5);
	}
}

/* Instances of svc (endpoint ep, or any when NULL) in memory. */
static size_t
count_of(fixture *f, const char *svc, const char *ep)
{
	dsi_instances list = { NULL, 0 };
	size_t        n    = 0;
	assert_ok(dsi_registry_get_all(f->reg, svc, &list, NULL));
	for (size_t i = 0; i < list.count; i++) {
		n += ep == NULL || strcmp(list.items[i]->endpoint, ep) == 0;
	}
	dsi_instances_free(&list);
	return n;
}

/* ---- requests ---- */

typedef struct kv {
	const char *key, *value;
} kv;

#define MAX_META 8

/* A packed Register request. */
static nng_msg *
pack_register(const char *svc, const char *ep, const char *hp, uint32_t ttl_ms, uint32_t weight,
    const kv *meta, size_t n_meta)
{
	Request                                        req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__RegisterRequest                 rr  = DISCOVERY__V1__REGISTER_REQUEST__INIT;
	Discovery__V1__RegisterRequest__MetadataEntry  entries[MAX_META];
	Discovery__V1__RegisterRequest__MetadataEntry *ptrs[MAX_META];
	nng_msg                                       *msg = NULL;

	assert_true(n_meta <= MAX_META);
	for (size_t i = 0; i < n_meta; i++) {
		discovery__v1__register_request__metadata_entry__init(&entries[i]);
		entries[i].key   = (char *) meta[i].key;
		entries[i].value = (char *) meta[i].value;
		ptrs[i]          = &entries[i];
	}
	rr.service     = (char *) svc;
	rr.endpoint    = (char *) ep;
	rr.health_path = (char *) (hp != NULL ? hp : "");
	rr.ttl_ms      = ttl_ms;
	rr.weight      = weight;
	rr.metadata    = n_meta > 0 ? ptrs : NULL;
	rr.n_metadata  = n_meta;
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_REGISTER;
	req.register_  = &rr;
	assert_ok(dsi_pack(&req.base, &msg));
	return msg;
}

/* Sends a packed request and waits for its Response (the caller frees it). */
static Response *
send_msg(fixture *f, nng_msg *msg)
{
	nng_msg  *reply = NULL;
	Response *r     = NULL;
	assert_ok(dsi_dispatch_handle(&f->d, nng_msg_body(msg), nng_msg_len(msg), &reply));
	nng_msg_free(msg);
	assert_ok(dsi_unpack(&discovery__v1__response__descriptor, nng_msg_body(reply),
	    nng_msg_len(reply), (ProtobufCMessage **) &r));
	nng_msg_free(reply);
	return r;
}

static Response *
send_request(fixture *f, Request *req)
{
	nng_msg *msg = NULL;
	assert_ok(dsi_pack(&req->base, &msg));
	return send_msg(f, msg);
}

static Response *
send_register(fixture *f, const char *svc, const char *ep, const char *hp, uint32_t ttl_ms,
    uint32_t weight, const kv *meta, size_t n_meta)
{
	return send_msg(f, pack_register(svc, ep, hp, ttl_ms, weight, meta, n_meta));
}

static Response *
send_deregister(fixture *f, const char *svc, const char *ep)
{
	Request                          req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__DeregisterRequest dr  = DISCOVERY__V1__DEREGISTER_REQUEST__INIT;
	dr.service                           = (char *) svc;
	dr.endpoint                          = (char *) (ep != NULL ? ep : "");
	req.call_case                        = DISCOVERY__V1__REQUEST__CALL_DEREGISTER;
	req.deregister                       = &dr;
	return send_request(f, &req);
}

/* GetAll through dispatch: what a client would see. */
static Response *
send_get_all(fixture *f, const char *svc)
{
	Request                      req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__GetAllRequest ga  = DISCOVERY__V1__GET_ALL_REQUEST__INIT;
	ga.service                       = (char *) (svc != NULL ? svc : "");
	req.call_case                    = DISCOVERY__V1__REQUEST__CALL_GET_ALL;
	req.get_all                      = &ga;
	Response *r                      = send_request(f, &req);
	if (r->status != ST_OK) {
		fail_msg("get_all: status %d (%s)", r->status, r->message);
	}
	return r;
}

/* Fails unless r has status st (and fragment in its message); keeps r. */
static void
check_status(const Response *r, Discovery__V1__StatusCode st, const char *fragment)
{
	if ((int) r->status != (int) st) {
		fail_msg("status %d, want %d (message: %s)", r->status, st, r->message);
	}
	if (fragment != NULL && strstr(r->message, fragment) == NULL) {
		fail_msg("message \"%s\" lacks \"%s\"", r->message, fragment);
	}
}

static void
expect(Response *r, Discovery__V1__StatusCode st, const char *fragment)
{
	check_status(r, st, fragment);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* ---- asynchronous requests, answered from the writer thread ---- */

static void
on_reply(void *arg, nng_msg *reply)
{
	slot     *s = arg;
	Response *r = NULL;
	int       status;
	char      message[sizeof(s->message)] = "";

	if (reply != NULL
	    && dsi_unpack(&discovery__v1__response__descriptor, nng_msg_body(reply),
	           nng_msg_len(reply), (ProtobufCMessage **) &r)
	        == 0) {
		status = (int) r->status;
		snprintf(message, sizeof(message), "%s", r->message);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	} else {
		status = -1;
	}
	nng_msg_free(reply);
	pthread_mutex_lock(&s->f->mtx);
	s->status = status;
	memcpy(s->message, message, sizeof(message));
	s->f->replies++;
	pthread_cond_broadcast(&s->f->cv);
	pthread_mutex_unlock(&s->f->mtx);
}

static void
alloc_slots(fixture *f, size_t n)
{
	assert_null(f->slots);
	f->slots = calloc(n, sizeof(*f->slots));
	assert_non_null(f->slots);
	f->n_slots = n;
	for (size_t i = 0; i < n; i++) {
		f->slots[i].f = f;
	}
}

/* Sends a Register for slot i without waiting for its answer. */
static void
begin_register(fixture *f, size_t i, const char *svc, const kv *meta, size_t n_meta)
{
	slot *s = &f->slots[i];
	snprintf(s->endpoint, sizeof(s->endpoint), "http://node-%zu:8080", i);
	nng_msg *msg = pack_register(svc, s->endpoint, NULL, 0, 1, meta, n_meta);
	dsi_dispatch_begin(&f->d, nng_msg_body(msg), nng_msg_len(msg), on_reply, s);
	nng_msg_free(msg); /* dispatch copied it */
}

/* Waits until n replies have come in; a bound for liveness only. */
static void
wait_replies(fixture *f, size_t n)
{
	struct timespec until;
	size_t          got;
	dsi_realtime_after(&until, WAIT_MS);
	pthread_mutex_lock(&f->mtx);
	while (f->replies < n && pthread_cond_timedwait(&f->cv, &f->mtx, &until) == 0) { }
	got = f->replies;
	pthread_mutex_unlock(&f->mtx);
	if (got < n) {
		fail_msg("%zu of %zu replies after %d ms", got, n, WAIT_MS);
	}
}

/* ---- what an instance should hold ---- */

typedef struct expected {
	const char *service, *endpoint, *health_path;
	uint32_t    ttl_ms, weight;
	const char *meta; /* "k=v;k=v", sorted by key */
} expected;

static void
meta_string(const Instance *x, char *buf, size_t len)
{
	size_t off = 0;
	buf[0]     = 0;
	for (size_t i = 0; i < x->n_metadata && off < len; i++) {
		off += (size_t) snprintf(buf + off, len - off, "%s%s=%s", i > 0 ? ";" : "",
		    x->metadata[i]->key, x->metadata[i]->value);
	}
}

static void
check_instance(const Instance *x, const expected *w)
{
	char meta[512];
	assert_string_equal(x->service, w->service);
	assert_string_equal(x->endpoint, w->endpoint);
	assert_string_equal(x->health_path, w->health_path);
	assert_int_equal(x->ttl_ms, w->ttl_ms);
	assert_int_equal(x->weight, w->weight);
	meta_string(x, meta, sizeof(meta));
	assert_string_equal(meta, w->meta);
}

/* Every stored field of a and b agrees (health and check results are not stored). */
static void
check_same_instance(const Instance *a, const Instance *b)
{
	char ma[8192], mb[8192];
	assert_string_equal(a->service, b->service);
	assert_string_equal(a->endpoint, b->endpoint);
	assert_string_equal(a->health_path, b->health_path);
	assert_int_equal(a->ttl_ms, b->ttl_ms);
	assert_int_equal(a->weight, b->weight);
	assert_int_equal(a->registered_at_ms, b->registered_at_ms);
	meta_string(a, ma, sizeof(ma));
	meta_string(b, mb, sizeof(mb));
	assert_string_equal(ma, mb);
}

/* Waits until the wall clock has passed ms, so a new instance would get a new time. */
static void
wall_clock_past(int64_t ms)
{
	int64_t until = tu_now_ms() + WAIT_MS;
	while (dsi_wall_ms() <= ms && tu_now_ms() < until) {
		tu_sleep_ms(2);
	}
	assert_true(dsi_wall_ms() > ms);
}

/* ---- cases ---- */

static void
test_round_trip(void **state)
{
	fixture  *f = *state;
	Response *r;
	int64_t   a1_at;

	open_store(f);
	const kv a1_meta[] = { { "zone", "eu" }, { "tier", "gold" }, { "zone", "us" } };
	r                  = send_register(f, "alpha", "http://a1:80", "/hz", 0, 3, a1_meta, 3);
	check_status(r, ST_OK, NULL);
	a1_at = r->register_->instance->registered_at_ms;
	assert_true(a1_at > 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	const kv a2_meta[] = { { "k", "v" } };
	expect(send_register(f, "alpha", "http://a2:80", NULL, 5000, 1, a2_meta, 1), ST_OK, NULL);
	expect(send_register(f, "beta", "http://b1:80", "ready", 0, 0, NULL, 0), ST_OK, NULL);
	expect(send_register(f, "beta", "http://b2:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	const kv g1_meta[] = { { "role", "primary" } };
	expect(send_register(f, "gamma", "tcp://g1:9000", NULL, 0, 2, g1_meta, 1), ST_OK, NULL);
	expect(send_register(f, "gamma", "tcp://g2:9000", NULL, 0, 2, NULL, 0), ST_OK, NULL);

	/* An update, once a new instance would get a later registered_at_ms. */
	wall_clock_past(a1_at);
	const kv a1_new[] = { { "zone", "ap" }, { "rack", "r1" }, { "rack", "r2" } };
	r                 = send_register(f, "alpha", "http://a1:80", "/hz2", 2000, 7, a1_new, 3);
	check_status(r, ST_OK, NULL);
	assert_int_equal(r->register_->instance->registered_at_ms, a1_at);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	r = send_deregister(f, "beta", "http://b2:80");
	check_status(r, ST_OK, NULL);
	assert_int_equal(r->deregister->removed, 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	r = send_deregister(f, "gamma", NULL);
	check_status(r, ST_OK, NULL);
	assert_int_equal(r->deregister->removed, 2);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	/* Health is not stored: a healthy instance comes back UNKNOWN. */
	reserve(f);
	assert_ok(dsi_registry_set_health(f->reg, "alpha", "http://a1:80", DSC_HEALTH_HEALTHY,
	    dsi_wall_ms(), NULL, "test", NULL));
	dsi_writer_release(f->writer);

	Response *before     = send_get_all(f, NULL);
	uint64_t  rev_before = dsi_registry_revision(f->reg);
	assert_int_equal(before->get_all->n_instances, 3);
	close_store(f);

	open_store(f);
	const expected wants[] = {
		{ "alpha", "http://a1:80", "/hz2", 2000, 7, "rack=r2;zone=ap" },
		{ "alpha", "http://a2:80", "/health", 5000, 1, "k=v" },
		{ "beta", "http://b1:80", "/ready", 0, 0, "" },
	};
	Response *after = send_get_all(f, NULL);
	assert_int_equal(after->get_all->n_instances, 3);
	for (size_t i = 0; i < 3; i++) {
		const Instance *x = after->get_all->instances[i];
		check_instance(x, &wants[i]);
		check_same_instance(x, before->get_all->instances[i]);
		assert_int_equal(x->health, DISCOVERY__V1__HEALTH_STATE__HEALTH_UNKNOWN);
	}
	assert_int_equal(after->get_all->instances[0]->registered_at_ms, a1_at);
	/* A clean stop stores the revision: the restart resumes exactly there. */
	assert_int_equal(dsi_registry_revision(f->reg), rev_before);
	assert_int_equal(after->revision, rev_before);
	protobuf_c_message_free_unpacked(&before->base, NULL);
	protobuf_c_message_free_unpacked(&after->base, NULL);

	/* Deregistered stays gone; writing goes on from there. */
	r = send_get_all(f, "gamma");
	assert_int_equal(r->get_all->n_instances, 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	r = send_register(f, "beta", "http://b3:80", NULL, 0, 0, NULL, 0);
	check_status(r, ST_OK, NULL);
	assert_true(r->revision > rev_before);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void
test_group_commit(void **state)
{
	fixture *f = *state;
	enum { N = 200 };
	const kv meta[] = { { "batch", "yes" } };
	uint64_t commits0, writes0, commits, writes;

	open_store(f);
	alloc_slots(f, N);
	dsi_writer_stats(f->writer, &commits0, &writes0);
	/* The writer stops after its first batch, so the rest queue up behind it. */
	hold_writer(f);
	begin_register(f, 0, "batched", meta, 1);
	wait_held(f);
	for (size_t i = 1; i < N; i++) {
		begin_register(f, i, "batched", meta, 1);
	}
	release_writer(f);
	wait_replies(f, N);
	for (size_t i = 0; i < N; i++) {
		if (f->slots[i].status != ST_OK) {
			fail_msg("%s: status %d (%s)", f->slots[i].endpoint, f->slots[i].status,
			    f->slots[i].message);
		}
	}
	dsi_writer_stats(f->writer, &commits, &writes);
	commits -= commits0;
	writes -= writes0;
	assert_int_equal(writes, N);
	if (commits >= writes) {
		fail_msg("%llu commits for %llu writes: no group commit",
		    (unsigned long long) commits, (unsigned long long) writes);
	}
	assert_int_equal(dsi_registry_count(f->reg), N);

	close_store(f);
	open_store(f);
	assert_int_equal(dsi_registry_count(f->reg), N);
}

/* The OK endpoints of service svc in the registry, sorted, joined by ' '. */
static void
endpoints_of(fixture *f, const char *svc, char *buf, size_t len)
{
	Response *r   = send_get_all(f, svc);
	size_t    off = 0;
	buf[0]        = 0;
	for (size_t i = 0; i < r->get_all->n_instances && off < len; i++) {
		off += (size_t) snprintf(
		    buf + off, len - off, "%s ", r->get_all->instances[i]->endpoint);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void
test_limits_exact_across_a_batch(void **state)
{
	fixture *f = *state;
	enum { N = 20, CAP = 5 };
	const char *ok[N];
	size_t      n_ok = 0, n_exhausted = 0;
	char        want[1024] = "", got[1024];

	f->limits.max_instances_per_service = CAP;
	open_store(f);
	alloc_slots(f, N + 1);
	/* One batch of all 20: the limit must count what the batch itself creates. */
	hold_writer(f);
	begin_register(f, N, "warmup", NULL, 0);
	wait_held(f);
	for (size_t i = 0; i < N; i++) {
		begin_register(f, i, "capped", NULL, 0);
	}
	release_writer(f);
	wait_replies(f, N + 1);
	assert_int_equal(f->slots[N].status, ST_OK);
	for (size_t i = 0; i < N; i++) {
		const slot *s = &f->slots[i];
		if (s->status == ST_OK) {
			ok[n_ok++] = s->endpoint;
		} else if (s->status == ST_EXHAUSTED) {
			n_exhausted++;
			assert_non_null(strstr(s->message, "limit"));
		} else {
			fail_msg("%s: status %d (%s)", s->endpoint, s->status, s->message);
		}
	}
	assert_int_equal(n_ok, CAP);
	assert_int_equal(n_exhausted, N - CAP);
	qsort(ok, n_ok, sizeof(*ok), str_cmp);
	for (size_t i = 0; i < n_ok; i++) {
		strcat(want, ok[i]);
		strcat(want, " ");
	}
	endpoints_of(f, "capped", got, sizeof(got));
	assert_string_equal(got, want);
	assert_int_equal(count_of(f, "capped", NULL), CAP);

	/* The file holds exactly what memory holds. */
	close_store(f);
	dsi_registry_limits_default(&f->limits); /* a load must not hide extra rows */
	open_store(f);
	endpoints_of(f, "capped", got, sizeof(got));
	assert_string_equal(got, want);
	assert_int_equal(dsi_registry_count(f->reg), CAP + 1);
}

/* The bigger of the sizes of path and path-wal. */
static off_t
data_size(const char *path)
{
	char        wal[400];
	struct stat st;
	off_t       size = 0;
	if (stat(path, &st) == 0) {
		size = st.st_size;
	}
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (stat(wal, &st) == 0 && st.st_size > size) {
		size = st.st_size;
	}
	return size;
}

static void
test_write_failure_changes_nothing(void **state)
{
	fixture      *f = *state;
	char          ep[64], failed[64] = "";
	size_t        n_ok = 0;
	struct rlimit lim;
	Response     *r;

	open_store(f);
	expect(send_register(f, "base", "http://base:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);

	static char big[3001];
	memset(big, 'x', sizeof(big) - 1);
	const kv meta[] = { { "blob", big } };

	/* Writes past the size limit fail with EFBIG instead of killing us. */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &f->old_fsize), 0);
	f->old_xfsz  = signal(SIGXFSZ, SIG_IGN);
	f->fsize_set = true;
	lim          = f->old_fsize;
	lim.rlim_cur = (rlim_t) data_size(f->path) + 64 * 1024;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

	for (int i = 0; i < 500 && failed[0] == 0; i++) {
		uint64_t rev = dsi_registry_revision(f->reg);
		snprintf(ep, sizeof(ep), "http://big-%d:80", i);
		r = send_register(f, "big", ep, NULL, 0, 0, meta, 1);
		if (r->status == ST_OK) {
			n_ok++;
		} else {
			snprintf(failed, sizeof(failed), "%s", ep);
			check_status(r, ST_UNAVAILABLE, "could not be stored");
			/* Memory is as it was: no instance, no new revision. */
			assert_int_equal(count_of(f, "big", ep), 0);
			assert_int_equal(dsi_registry_revision(f->reg), rev);
		}
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	if (failed[0] == 0) {
		fail_msg("500 large registrations all fit under a %llu-byte file size limit",
		    (unsigned long long) lim.rlim_cur);
	}
	r = send_get_all(f, "big");
	assert_int_equal(r->get_all->n_instances, n_ok);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	assert_int_equal(dsi_registry_count(f->reg), 1 + n_ok);

	/* With room again, writes succeed, the refused one too. */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &f->old_fsize), 0);
	signal(SIGXFSZ, f->old_xfsz);
	f->fsize_set = false;
	expect(send_register(f, "big", failed, NULL, 0, 0, meta, 1), ST_OK, NULL);
	expect(send_register(f, "after", "http://after:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);

	Response *before     = send_get_all(f, NULL);
	uint64_t  rev_before = dsi_registry_revision(f->reg);
	assert_int_equal(before->get_all->n_instances, 1 + n_ok + 2);
	close_store(f);
	open_store(f);
	Response *after = send_get_all(f, NULL);
	assert_int_equal(after->get_all->n_instances, before->get_all->n_instances);
	for (size_t i = 0; i < after->get_all->n_instances; i++) {
		check_same_instance(after->get_all->instances[i], before->get_all->instances[i]);
	}
	assert_true(dsi_registry_revision(f->reg) >= rev_before);
	protobuf_c_message_free_unpacked(&before->base, NULL);
	protobuf_c_message_free_unpacked(&after->base, NULL);
}

/* ---- files the store must refuse, and leave as they were ---- */

/* The whole file, or NULL when it does not exist. */
static void
expect_refused(fixture *f, const char *path, const char *fragment)
{
	size_t     len_before, len_after;
	char      *before   = tu_slurp(path, &len_before);
	dsi_store *s        = NULL;
	char       why[512] = "";

	int rv = dsi_store_open(&s, path, &f->log, why, sizeof(why));
	if (rv == 0) {
		dsi_store_close(s);
		fail_msg("%s was accepted", path);
	}
	assert_int_equal(rv, DSC_ESTATE);
	if (strstr(why, fragment) == NULL || strstr(why, path) == NULL) {
		fail_msg("why \"%s\" lacks \"%s\" or the path", why, fragment);
	}
	char *after = tu_slurp(path, &len_after);
	assert_int_equal(len_after, len_before);
	if (len_before > 0 && memcmp(before, after, len_before) != 0) {
		fail_msg("%s was changed by a refused open (%s)", path, why);
	}
	assert_true((before == NULL) == (after == NULL));
	free(before);
	free(after);
}

static void
exec_sql(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fail_msg("%s: %s", sql, err != NULL ? err : "?");
	}
}

static void
test_refuses_damaged(void **state)
{
	fixture      *f = *state;
	unsigned char buf[16384];
	uint32_t      x = 2463534242u; /* xorshift32: the same garbage every run */
	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char) x;
	}
	FILE *fp = fopen(f->path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, sizeof(buf), fp), sizeof(buf));
	assert_int_equal(fclose(fp), 0);
	expect_refused(f, f->path, "damaged");
}

static void
test_refuses_other_program(void **state)
{
	fixture *f = *state;
	sqlite3 *db;
	/* As another program would leave it: the default rollback journal. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	exec_sql(db,
	    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
	    "INSERT INTO notes (body) VALUES ('not a registry');");
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	expect_refused(f, f->path, "other program");
}

static void
test_refuses_newer_schema(void **state)
{
	fixture *f = *state;
	sqlite3 *db;
	char     sql[160];
	/* As a newer discoveryd would leave it: WAL mode, our id, a later version. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
	    "PRAGMA journal_mode = WAL; PRAGMA application_id = %d; PRAGMA user_version = 99;"
	    "CREATE TABLE instances (x);",
	    APP_ID);
	exec_sql(db, sql);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	expect_refused(f, f->path, "newer");
}

static void
test_refuses_file_in_use(void **state)
{
	fixture *f = *state;
	open_store(f);
	expect(send_register(f, "held", "http://h:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	expect_refused(f, f->path, "in use");
	/* The first store is unharmed. */
	expect(send_register(f, "held", "http://h2:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	close_store(f);
	open_store(f);
	assert_int_equal(dsi_registry_count(f->reg), 2);
}

static void
test_refuses_missing_directory(void **state)
{
	fixture    *f = *state;
	char        path[400], sub[300];
	struct stat st;
	snprintf(sub, sizeof(sub), "%s/no-such-dir", f->dir);
	snprintf(path, sizeof(path), "%s/discovery.db", sub);
	expect_refused(f, path, path);
	assert_int_not_equal(stat(sub, &st), 0); /* nothing was created on the way */
}

/* ---- the schema ---- */

static void
check_schema_of(const char *path)
{
	sqlite3      *db;
	sqlite3_stmt *st;
	const char   *sql[]  = { "PRAGMA user_version", "PRAGMA application_id" };
	const int     want[] = { DSI_STORE_SCHEMA, APP_ID };

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(sqlite3_prepare_v2(db, sql[i], -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int64(st, 0), want[i]);
		sqlite3_finalize(st);
	}
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *) sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void
test_new_file_gets_schema(void **state)
{
	fixture    *f = *state;
	struct stat st;
	assert_int_not_equal(stat(f->path, &st), 0);
	open_store(f);
	assert_int_equal(dsi_registry_count(f->reg), 0);
	close_store(f);
	check_schema_of(f->path);
	/* And opens again as ours. */
	open_store(f);
	expect(send_register(f, "fresh", "http://f:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
}

static void
test_empty_file_is_new(void **state)
{
	fixture *f  = *state;
	int      fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	open_store(f);
	assert_int_equal(dsi_registry_count(f->reg), 0);
	expect(send_register(f, "fresh", "http://f:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	close_store(f);
	check_schema_of(f->path);
	open_store(f);
	assert_int_equal(dsi_registry_count(f->reg), 1);
}

/* Instances of origin (a dsi_origin) in memory. */
static size_t
origin_count(fixture *f, uint8_t origin)
{
	dsi_instances l = { NULL, 0 };
	assert_ok(dsi_registry_get_origin(f->reg, origin, &l));
	size_t n = l.count;
	dsi_instances_free(&l);
	return n;
}

static void
test_schema_1_upgrade_and_origins(void **state)
{
	fixture *f = *state;
	sqlite3 *db;
	char     sql[1024];
	/* As discoveryd before origins left it: schema 1, one instance. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
	    "PRAGMA journal_mode = WAL; PRAGMA application_id = %d; PRAGMA user_version = 1;"
	    "CREATE TABLE instances (service TEXT NOT NULL, endpoint TEXT NOT NULL,"
	    " health_path TEXT NOT NULL, ttl_ms INTEGER NOT NULL, weight INTEGER NOT NULL,"
	    " registered_at_ms INTEGER NOT NULL, PRIMARY KEY (service, endpoint)) WITHOUT ROWID;"
	    "CREATE TABLE metadata (service TEXT NOT NULL, endpoint TEXT NOT NULL,"
	    " key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (service, endpoint, key))"
	    " WITHOUT ROWID;"
	    "CREATE TABLE state (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	    "INSERT INTO state (name, value) VALUES ('revision', 7);"
	    "INSERT INTO instances VALUES ('old', 'http://o:80', '/health', 0, 1, 1000);",
	    APP_ID);
	exec_sql(db, sql);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);

	/* Upgraded; what it held counts as the API's. */
	open_store(f);
	assert_int_equal(dsi_registry_count(f->reg), 1);
	assert_int_equal(origin_count(f, DSI_ORIGIN_API), 1);
	/* Registered again by the configuration, it is the configuration's, and stays so. */
	f->d.origin = DSI_ORIGIN_CONFIG;
	expect(send_register(f, "old", "http://o:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	expect(send_register(f, "new", "http://n:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	f->d.origin = DSI_ORIGIN_API;
	expect(send_register(f, "api", "http://a:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	assert_int_equal(origin_count(f, DSI_ORIGIN_CONFIG), 2);
	close_store(f);
	check_schema_of(f->path);
	open_store(f);
	assert_int_equal(origin_count(f, DSI_ORIGIN_CONFIG), 2);
	assert_int_equal(origin_count(f, DSI_ORIGIN_API), 1);
	/* The API registering one of them again takes it over. */
	expect(send_register(f, "new", "http://n:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	close_store(f);
	open_store(f);
	assert_int_equal(origin_count(f, DSI_ORIGIN_CONFIG), 1);
	assert_int_equal(origin_count(f, DSI_ORIGIN_API), 2);
}

/* ---- the revision reservation ---- */

static void
test_reserve_covers_health_changes(void **state)
{
	fixture *f = *state;
	enum { CHANGES = 2 * DSI_STORE_RESERVE + DSI_STORE_BATCH + 10 };

	open_store(f);
	expect(send_register(f, "flappy", "http://f:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	uint64_t rev0 = dsi_registry_revision(f->reg);
	/* As the checker does: a reservation first, then the change. */
	for (int i = 0; i < CHANGES; i++) {
		reserve(f);
		assert_ok(dsi_registry_set_health(f->reg, "flappy", "http://f:80",
		    i % 2 == 0 ? DSC_HEALTH_HEALTHY : DSC_HEALTH_UNHEALTHY, dsi_wall_ms(), NULL,
		    "test", NULL));
		dsi_writer_release(f->writer);
	}
	uint64_t rev_before = dsi_registry_revision(f->reg);
	assert_int_equal(rev_before, rev0 + CHANGES);
	close_store(f);
	open_store(f);
	/* A clean stop: exactly where it was, however far health took it. */
	assert_int_equal(dsi_registry_revision(f->reg), rev_before);
	assert_int_equal(dsi_registry_count(f->reg), 1);
}

/*
 * A health change never waits for the disk: with the writer held (as if in
 * a long commit), try_reserve hands out the headroom and then refuses at
 * once; once the writer runs again, the headroom comes back.
 */
static void
test_reserve_never_waits_for_the_writer(void **state)
{
	fixture *f     = *state;
	int      taken = 0;

	open_store(f);
	expect(send_register(f, "flappy", "http://f:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	hold_writer(f);
	expect(send_register(f, "flappy", "http://g:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	wait_held(f);
	while (dsi_writer_try_reserve(f->writer) == 0) {
		assert_ok(dsi_registry_set_health(f->reg, "flappy", "http://f:80",
		    taken % 2 == 0 ? DSC_HEALTH_HEALTHY : DSC_HEALTH_UNHEALTHY, dsi_wall_ms(), NULL,
		    "test", NULL));
		dsi_writer_release(f->writer);
		if (++taken > DSI_STORE_RESERVE + DSI_STORE_LOW_WATER) {
			fail_msg("more revisions handed out than were ever reserved");
		}
	}
	assert_true(taken > 0);
	release_writer(f);
	reserve(f); /* the writer tops the reservation up on its own */
	dsi_writer_release(f->writer);
	uint64_t rev = dsi_registry_revision(f->reg);
	close_store(f);
	open_store(f);
	assert_int_equal(dsi_registry_revision(f->reg), rev);
}

/*
 * A whole-service deregister is one write but one revision per instance it
 * removes: the stored reservation must cover them all.
 */
static void
test_large_deregister_keeps_revision(void **state)
{
	fixture *f = *state;
	enum { N = DSI_STORE_RESERVE + DSI_STORE_BATCH };
	Response *r;

	open_store(f);
	alloc_slots(f, N);
	for (size_t i = 0; i < N; i++) {
		begin_register(f, i, "wide", NULL, 0);
	}
	wait_replies(f, N);
	for (size_t i = 0; i < N; i++) {
		if (f->slots[i].status != ST_OK) {
			fail_msg("%s: status %d (%s)", f->slots[i].endpoint, f->slots[i].status,
			    f->slots[i].message);
		}
	}
	r = send_deregister(f, "wide", NULL);
	check_status(r, ST_OK, NULL);
	assert_int_equal(r->deregister->removed, N);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	uint64_t rev_before = dsi_registry_revision(f->reg);
	assert_int_equal(rev_before, 2 * N);
	close_store(f);
	open_store(f);
	assert_int_equal(dsi_registry_revision(f->reg), rev_before);
	assert_int_equal(dsi_registry_count(f->reg), 0);
}

static void
test_writes_after_stop_are_refused(void **state)
{
	fixture *f = *state;
	open_store(f);
	dsi_writer_stop(f->writer);
	expect(send_register(f, "late", "http://l:80", NULL, 0, 0, NULL, 0), ST_UNAVAILABLE,
	    "shutting down");
	assert_int_equal(dsi_registry_count(f->reg), 0);
	close_store(f);
	open_store(f);
	assert_int_equal(dsi_registry_count(f->reg), 0);
}

/* A statement that fails leaves no transaction open: the next writes are stored. */
static void
test_failed_statement_does_not_wedge(void **state)
{
	fixture *f = *state;
	open_store(f);
	/* The writer's connection, taken back for a transaction of the test's own. */
	dsi_writer_destroy(f->writer);
	f->writer = NULL;
	/* A NULL health path breaks NOT NULL inside SQLite. */
	dsi_registry_op_info bad = {
		.creates  = true,
		.changes  = true,
		.service  = "broken",
		.endpoint = "http://b:80",
	};
	assert_ok(dsi_store_begin(f->store));
	assert_int_equal(dsi_store_write(f->store, &bad), DSC_EUNAVAILABLE);
	assert_int_equal(dsi_store_commit(f->store, 0), DSC_EUNAVAILABLE);
	assert_non_null(strstr(dsi_store_error(f->store), "storing an instance"));
	assert_ok(dsi_writer_start(&f->writer, f->backend, f->reg, &f->log, on_batch, f));
	f->d.writer = f->writer;

	expect(send_register(f, "after", "http://a:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	expect(send_register(f, "after", "http://a2:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	close_store(f);
	open_store(f);
	assert_int_equal(dsi_registry_count(f->reg), 2);
}

/*
 * A write whose client gave up (its deadline passed while it waited) is
 * never applied: the client may have sent it elsewhere and written on since.
 */
static void
test_write_past_its_deadline_is_not_applied(void **state)
{
	fixture                         *f   = *state;
	Request                          req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__DeregisterRequest dr  = DISCOVERY__V1__DEREGISTER_REQUEST__INIT;

	open_store(f);
	expect(send_register(f, "late", "http://a:80", NULL, 0, 0, NULL, 0), ST_OK, NULL);
	dr.service      = "late";
	dr.endpoint     = "http://a:80";
	req.call_case   = DISCOVERY__V1__REQUEST__CALL_DEREGISTER;
	req.deregister  = &dr;
	req.deadline_ms = dsi_wall_ms() - 1;
	expect(send_request(f, &req), ST_UNAVAILABLE, "past its deadline");
	assert_int_equal(dsi_registry_count(f->reg), 1);
	/* In time, the same request is applied. */
	req.deadline_ms = dsi_wall_ms() + 60000;
	expect(send_request(f, &req), ST_OK, NULL);
	assert_int_equal(dsi_registry_count(f->reg), 0);
}

#define CASE(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_round_trip),
		CASE(test_write_past_its_deadline_is_not_applied),
		CASE(test_group_commit),
		CASE(test_limits_exact_across_a_batch),
		CASE(test_write_failure_changes_nothing),
		CASE(test_refuses_damaged),
		CASE(test_refuses_other_program),
		CASE(test_refuses_newer_schema),
		CASE(test_refuses_file_in_use),
		CASE(test_refuses_missing_directory),
		CASE(test_new_file_gets_schema),
		CASE(test_empty_file_is_new),
		CASE(test_schema_1_upgrade_and_origins),
		CASE(test_reserve_covers_health_changes),
		CASE(test_reserve_never_waits_for_the_writer),
		CASE(test_large_deregister_keeps_revision),
		CASE(test_writes_after_stop_are_refused),
		CASE(test_failed_statement_does_not_wedge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
