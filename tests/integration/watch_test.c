/*
 * Watches: decoding and filtering against an in-process PUB socket, then
 * the real discoveryd's event stream (order, revisions, fields, per-service
 * subscriptions, a watch opened before the server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <discovery/discovery.h>

#include <discovery/v1/discovery.pb-c.h>

#include "common/codec.h"
#include "support/fixture.h"
#include "support/testutil.h"

#define LIVENESS_MS TU_LIVENESS_MS /* liveness checks, not speed claims; stretched */
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

static int
reg_ttl(const char *svc, const char *ep, const dsc_kv *md, size_t n_md, uint32_t weight)
{
	dsc_registration r = { .service = svc,
		.endpoint               = ep,
		.metadata               = md,
		.n_metadata             = n_md,
		.ttl_ms                 = TTL_MS,
		.weight                 = weight };
	return dsc_register(F.c, &r, NULL, NULL);
}

/* Receives until a SYNC arrives: proof that the watch is connected and subscribed. */
static void
wait_sync(dsc_watch *w)
{
	int64_t waited = 0;
	for (;;) {
		dsc_event *ev = NULL;
		int        rv = dsc_watch_next(w, 100, &ev);
		if (rv == 0) {
			bool sync = ev->type == DSC_EVENT_SYNC;
			dsc_event_free(ev);
			if (sync) {
				return;
			}
		} else if (rv != DSC_ETIMEDOUT) {
			fail_msg("dsc_watch_next: %s", dsc_strerror(rv));
		}
		waited += 100;
		if (waited > LIVENESS_MS) {
			fail_msg("no SYNC within %d ms", LIVENESS_MS);
		}
	}
}

/* The next event that is not a SYNC (bounded). */
static dsc_event *
next_change(dsc_watch *w)
{
	int64_t deadline = LIVENESS_MS;
	while (deadline > 0) {
		dsc_event *ev = NULL;
		int        rv = dsc_watch_next(w, 100, &ev);
		if (rv == 0 && ev->type != DSC_EVENT_SYNC) {
			return ev;
		}
		if (rv == 0) {
			dsc_event_free(ev);
		} else if (rv != DSC_ETIMEDOUT) {
			fail_msg("dsc_watch_next: %s", dsc_strerror(rv));
		} else {
			deadline -= 100;
		}
	}
	fail_msg("no change event within %d ms", LIVENESS_MS);
	return NULL;
}

/* ---- decoding and filtering, against a PUB socket of our own ---- */

/* Publishes one Event built from the arguments (inst may be NULL). */
static void
pub_event(nng_socket pub, const char *svc, int type, Discovery__V1__Instance *inst, uint64_t rev)
{
	Discovery__V1__Event e = DISCOVERY__V1__EVENT__INIT;
	nng_msg             *msg;
	e.service      = (char *) svc;
	e.type         = (Discovery__V1__EventType) type;
	e.instance     = inst;
	e.revision     = rev;
	e.timestamp_ms = 1700000000000;
	assert_ok(dsi_pack(&e.base, &msg));
	assert_int_equal(nng_sendmsg(pub, msg, 0), 0);
}

static void
pub_raw(nng_socket pub, const void *buf, size_t len)
{
	assert_int_equal(nng_send(pub, (void *) buf, len, 0), 0);
}

static nng_socket
local_pub(char *url, size_t len)
{
	nng_socket   pub;
	nng_listener l;
	int          port;
	assert_int_equal(nng_pub0_open(&pub), 0);
	assert_int_equal(nng_listen(pub, "tcp://127.0.0.1:0", &l, 0), 0);
	assert_int_equal(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
	snprintf(url, len, "tcp://127.0.0.1:%d", port);
	return pub;
}

/* Publishes revision-0 SYNCs until every watch has received one. */
static void
connect_watches(nng_socket pub, dsc_watch **ws, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool got = false;
		for (int k = 0; k < LIVENESS_MS / 20 && !got; k++) {
			dsc_event *ev;
			pub_event(pub, "", DISCOVERY__V1__EVENT_TYPE__EVENT_SYNC, NULL, 0);
			if (dsc_watch_next(ws[i], 20, &ev) == 0) {
				got = true;
				dsc_event_free(ev);
			}
		}
		assert_true(got);
	}
}

/* The next event that is not a revision-0 SYNC from connect_watches. */
static dsc_event *
next_real(dsc_watch *w)
{
	for (;;) {
		dsc_event *ev = NULL;
		assert_ok(dsc_watch_next(w, LIVENESS_MS, &ev));
		if (ev->type != DSC_EVENT_SYNC || ev->revision != 0) {
			return ev;
		}
		dsc_event_free(ev);
	}
}

static void
test_decode_and_filter(void **state)
{
	char                                    url[64];
	dsc_watch                              *all, *mem;
	Discovery__V1__Instance                 in  = DISCOVERY__V1__INSTANCE__INIT;
	Discovery__V1__Instance__MetadataEntry  me  = DISCOVERY__V1__INSTANCE__METADATA_ENTRY__INIT;
	Discovery__V1__Instance__MetadataEntry *mep = &me;
	const char                             *only[] = { "Memory" }; /* normalized to memory */
	(void) state;

	nng_socket pub = local_pub(url, sizeof(url));
	assert_ok(dsc_watch_open(&all, url, NULL, 0));
	assert_ok(dsc_watch_open(&mem, url, only, 1));
	dsc_watch *ws[] = { all, mem };
	connect_watches(pub, ws, 2);

	/* Junk and invalid events are skipped, never returned or fatal. */
	static const uint8_t junk[] = { 0x0A, 0xFF, 0xFF, 0xFF };
	pub_raw(pub, junk, sizeof(junk));
	in.service  = "other";
	in.endpoint = "http://127.0.0.1:1";
	pub_event(pub, "memory", DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED, &in, 90);
	in.service = "Memory";
	pub_event(pub, "Memory", DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED, &in, 91);
	in.service = "memory";
	pub_event(pub, "memory", 42, &in, 92);
	pub_event(pub, "memory", DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED, NULL, 93);

	/* Then real ones. */
	in.service  = "memory-cache";
	in.endpoint = "http://127.0.0.1:2";
	pub_event(pub, "memory-cache", DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED, &in, 1);
	in.service     = "memory";
	in.endpoint    = "http://127.0.0.1:3";
	in.health      = DISCOVERY__V1__HEALTH_STATE__HEALTH_HEALTHY;
	in.weight      = 7;
	in.ttl_ms      = 1500;
	in.health_path = "/hz";
	me.key         = "zone";
	me.value       = "eu-1";
	in.metadata    = &mep;
	in.n_metadata  = 1;
	pub_event(pub, "memory", DISCOVERY__V1__EVENT_TYPE__EVENT_HEALTH_CHANGED, &in, 2);
	pub_event(pub, "", DISCOVERY__V1__EVENT_TYPE__EVENT_SYNC, NULL, 2);

	dsc_event *ev = next_real(all);
	assert_int_equal(ev->type, DSC_EVENT_REGISTERED);
	assert_string_equal(ev->service, "memory-cache");
	assert_string_equal(ev->instance.endpoint, "http://127.0.0.1:2");
	assert_int_equal(ev->revision, 1);
	dsc_event_free(ev);
	for (int i = 0; i < 2; i++) {
		ev = next_real(i == 0 ? all : mem);
		assert_int_equal(ev->type, DSC_EVENT_HEALTH_CHANGED);
		assert_string_equal(ev->service, "memory");
		assert_string_equal(ev->instance.service, "memory");
		assert_string_equal(ev->instance.endpoint, "http://127.0.0.1:3");
		assert_int_equal(ev->instance.health, DSC_HEALTH_HEALTHY);
		assert_int_equal(ev->previous, DSC_HEALTH_UNKNOWN);
		assert_int_equal(ev->instance.weight, 7);
		assert_int_equal(ev->instance.ttl_ms, 1500);
		assert_string_equal(ev->instance.health_path, "/hz");
		assert_int_equal(ev->instance.n_metadata, 1);
		assert_string_equal(ev->instance.metadata[0].key, "zone");
		assert_string_equal(ev->instance.metadata[0].value, "eu-1");
		assert_string_equal(ev->instance.last_error, "");
		assert_string_equal(ev->reason, "");
		assert_int_equal(ev->revision, 2);
		assert_int_equal(ev->timestamp_ms, 1700000000000);
		dsc_event_free(ev);
	}
	for (int i = 0; i < 2; i++) {
		ev = next_real(i == 0 ? all : mem);
		assert_int_equal(ev->type, DSC_EVENT_SYNC);
		assert_int_equal(ev->revision, 2);
		assert_string_equal(ev->service, ""); /* SYNC: empty strings, never NULL */
		assert_string_equal(ev->instance.endpoint, "");
		assert_int_equal(ev->instance.n_metadata, 0);
		dsc_event_free(ev);
	}
	/* Nothing else is queued: the invalid ones were dropped. */
	assert_int_equal(dsc_watch_next(all, 50, &ev), DSC_ETIMEDOUT);
	assert_int_equal(dsc_watch_next(mem, 0, &ev), DSC_ETIMEDOUT);
	dsc_watch_close(all);
	dsc_watch_close(mem);
	nng_close(pub);
}

static void
test_timeout(void **state)
{
	char       url[64];
	dsc_watch *w;
	dsc_event *ev = NULL;
	(void) state;
	nng_socket pub = local_pub(url, sizeof(url));
	assert_ok(dsc_watch_open(&w, url, NULL, 0));
	assert_int_equal(dsc_watch_next(w, 50, &ev), DSC_ETIMEDOUT);
	assert_int_equal(dsc_watch_next(w, 0, &ev), DSC_ETIMEDOUT);
	assert_null(ev);
	dsc_watch_close(w);
	nng_close(pub);

	/* Nothing listening: the watch still opens, and times out. */
	char dead[64];
	int  fd;
	assert_int_equal(tu_dead_url(dead, sizeof(dead), "tcp", &fd), 0);
	assert_ok(dsc_watch_open(&w, dead, NULL, 0));
	assert_int_equal(dsc_watch_next(w, 50, &ev), DSC_ETIMEDOUT);
	dsc_watch_close(w);
	close(fd);
}

static void
test_invalid_arguments(void **state)
{
	dsc_watch  *w       = NULL;
	const char *bad[]   = { "memory", "bad name" };
	const char *dash[]  = { "-memory" };
	const char *empty[] = { "" };
	dsc_event  *ev;
	(void) state;
	assert_int_equal(dsc_watch_open(&w, F.d.pub_url, bad, 2), DSC_EINVAL);
	assert_int_equal(dsc_watch_open(&w, F.d.pub_url, dash, 1), DSC_EINVAL);
	assert_int_equal(dsc_watch_open(&w, F.d.pub_url, empty, 1), DSC_EINVAL);
	assert_int_equal(dsc_watch_open(&w, NULL, NULL, 0), DSC_EINVAL);
	assert_int_equal(dsc_watch_open(&w, "nonsense://x", NULL, 0), DSC_EINVAL);
	assert_int_equal(dsc_watch_open(NULL, F.d.pub_url, NULL, 0), DSC_EINVAL);
	assert_null(w);
	assert_int_equal(dsc_watch_next(NULL, 0, &ev), DSC_EINVAL);
	dsc_watch_close(NULL);
	dsc_event_free(NULL);
}

static void
test_event_type_names(void **state)
{
	(void) state;
	assert_string_equal(dsc_event_type_name(DSC_EVENT_REGISTERED), "registered");
	assert_string_equal(dsc_event_type_name(DSC_EVENT_DEREGISTERED), "deregistered");
	assert_string_equal(dsc_event_type_name(DSC_EVENT_HEALTH_CHANGED), "health_changed");
	assert_string_equal(dsc_event_type_name(DSC_EVENT_UPDATED), "updated");
	assert_string_equal(dsc_event_type_name(DSC_EVENT_SYNC), "sync");
	assert_string_equal(dsc_event_type_name(DSC_EVENT_UNSPECIFIED), "unspecified");
	assert_string_equal(dsc_event_type_name((dsc_event_type) 99), "unspecified");
}

/* ---- the real daemon ---- */

static void
expect(dsc_watch *w, dsc_event_type type, const char *svc, const char *ep, uint64_t rev)
{
	dsc_event *ev = next_change(w);
	if (ev->type != type || strcmp(ev->service, svc) != 0
	    || strcmp(ev->instance.endpoint, ep) != 0 || ev->revision != rev) {
		fail_msg("want %s %s %s rev %llu, got %s %s %s rev %llu", dsc_event_type_name(type),
		    svc, ep, (unsigned long long) rev, dsc_event_type_name(ev->type), ev->service,
		    ev->instance.endpoint, (unsigned long long) ev->revision);
	}
	assert_string_equal(ev->instance.service, svc);
	assert_true(ev->timestamp_ms > 0);
	dsc_event_free(ev);
}

static void
test_all_services_in_order(void **state)
{
	dsc_watch *w;
	dsc_kv     md1[] = { { "zone", "eu-1" } };
	dsc_kv     md2[] = { { "zone", "eu-2" }, { "tier", "gold" } };
	uint32_t   removed;
	(void) state;

	assert_ok(dsc_watch_open(&w, F.d.pub_url, NULL, 0));
	wait_sync(w);
	assert_ok(dsc_get_all(F.c, NULL, NULL, NULL));
	uint64_t base = dsc_client_revision(F.c);

	assert_ok(reg_ttl("wa-all", "http://127.0.0.1:9001", md1, 1, 2));
	assert_ok(reg_ttl("wa-all", "http://127.0.0.1:9002", NULL, 0, 0));
	assert_ok(reg_ttl("wa-other", "tcp://127.0.0.1:9003", NULL, 0, 0));
	assert_ok(reg_ttl("wa-all", "http://127.0.0.1:9001", md2, 2, 2)); /* an update */
	assert_ok(reg_ttl("wa-all", "http://127.0.0.1:9001", md2, 2, 2)); /* no change: no event */
	assert_ok(dsc_heartbeat(F.c, "wa-all", "http://127.0.0.1:9002", NULL, NULL));
	assert_ok(dsc_deregister(F.c, "WA_ALL", NULL, &removed, NULL));
	assert_int_equal(removed, 2);
	assert_ok(dsc_deregister(F.c, "wa-other", "tcp://127.0.0.1:9003", &removed, NULL));

	/* The first one with its fields in full. */
	dsc_event *ev = next_change(w);
	assert_int_equal(ev->type, DSC_EVENT_REGISTERED);
	assert_int_equal(ev->revision, base + 1);
	assert_string_equal(ev->service, "wa-all");
	assert_string_equal(ev->instance.service, "wa-all");
	assert_string_equal(ev->instance.endpoint, "http://127.0.0.1:9001");
	assert_int_equal(ev->instance.health, DSC_HEALTH_UNKNOWN);
	assert_int_equal(ev->instance.weight, 2);
	assert_int_equal(ev->instance.ttl_ms, TTL_MS);
	assert_string_equal(ev->instance.health_path, "/health");
	assert_int_equal(ev->instance.n_metadata, 1);
	assert_string_equal(ev->instance.metadata[0].key, "zone");
	assert_string_equal(ev->instance.metadata[0].value, "eu-1");
	assert_true(ev->instance.registered_at_ms > 0);
	dsc_event_free(ev);

	expect(w, DSC_EVENT_REGISTERED, "wa-all", "http://127.0.0.1:9002", base + 2);
	expect(w, DSC_EVENT_REGISTERED, "wa-other", "tcp://127.0.0.1:9003", base + 3);

	ev = next_change(w);
	assert_int_equal(ev->type, DSC_EVENT_UPDATED);
	assert_int_equal(ev->revision, base + 4);
	assert_string_equal(ev->instance.endpoint, "http://127.0.0.1:9001");
	assert_int_equal(ev->instance.n_metadata, 2);
	assert_string_equal(ev->instance.metadata[0].key, "tier"); /* sorted by key */
	assert_string_equal(ev->instance.metadata[1].value, "eu-2");
	dsc_event_free(ev);

	ev = next_change(w);
	assert_int_equal(ev->type, DSC_EVENT_HEALTH_CHANGED);
	assert_int_equal(ev->revision, base + 5);
	assert_string_equal(ev->instance.endpoint, "http://127.0.0.1:9002");
	assert_int_equal(ev->instance.health, DSC_HEALTH_HEALTHY);
	assert_int_equal(ev->previous, DSC_HEALTH_UNKNOWN);
	dsc_event_free(ev);

	/* Deregistering a service is one event per instance, each the instance as it was. */
	bool gone[2] = { false, false };
	for (uint64_t rev = base + 6; rev <= base + 7; rev++) {
		ev = next_change(w);
		assert_int_equal(ev->type, DSC_EVENT_DEREGISTERED);
		assert_int_equal(ev->revision, rev);
		assert_string_equal(ev->service, "wa-all");
		if (strcmp(ev->instance.endpoint, "http://127.0.0.1:9001") == 0) {
			gone[0] = true;
			assert_int_equal(ev->instance.n_metadata, 2);
		} else {
			assert_string_equal(ev->instance.endpoint, "http://127.0.0.1:9002");
			gone[1] = true;
			assert_int_equal(ev->instance.health, DSC_HEALTH_HEALTHY);
		}
		dsc_event_free(ev);
	}
	assert_true(gone[0] && gone[1]);
	expect(w, DSC_EVENT_DEREGISTERED, "wa-other", "tcp://127.0.0.1:9003", base + 8);
	assert_int_equal(dsc_client_revision(F.c), base + 8);

	/* And a SYNC then carries the revision reached. */
	for (;;) {
		assert_ok(dsc_watch_next(w, LIVENESS_MS, &ev));
		if (ev->type == DSC_EVENT_SYNC) {
			assert_int_equal(ev->revision, base + 8);
			dsc_event_free(ev);
			break;
		}
		fail_msg("unexpected %s event", dsc_event_type_name(ev->type));
	}
	dsc_watch_close(w);
}

static void
test_per_service_filter(void **state)
{
	dsc_watch  *w;
	const char *only[] = { "ws_memory" }; /* normalized to ws-memory */
	(void) state;

	assert_ok(dsc_watch_open(&w, F.d.pub_url, only, 1));
	wait_sync(w); /* SYNCs reach per-service watches too */
	assert_ok(reg_ttl("ws-memory-cache", "http://127.0.0.1:9101", NULL, 0, 0));
	assert_ok(reg_ttl("ws-memory", "http://127.0.0.1:9102", NULL, 0, 0));
	assert_ok(reg_ttl("ws-memor", "http://127.0.0.1:9103", NULL, 0, 0));
	assert_ok(reg_ttl("ws-memory-cache", "http://127.0.0.1:9104", NULL, 0, 0));
	uint64_t rev = dsc_client_revision(F.c);
	assert_ok(dsc_deregister(F.c, "ws-memory-cache", NULL, NULL, NULL));
	assert_ok(dsc_deregister(F.c, "ws-memor", NULL, NULL, NULL));

	expect(w, DSC_EVENT_REGISTERED, "ws-memory", "http://127.0.0.1:9102", rev - 2);
	/* Until a SYNC that counts every change above, only SYNCs may come. */
	int syncs = 0;
	for (;;) {
		dsc_event *ev;
		assert_ok(dsc_watch_next(w, LIVENESS_MS, &ev));
		if (ev->type != DSC_EVENT_SYNC) {
			fail_msg("unexpected %s %s", dsc_event_type_name(ev->type), ev->service);
		}
		syncs++;
		bool done = ev->revision >= rev + 3;
		dsc_event_free(ev);
		if (done) {
			break;
		}
	}
	assert_true(syncs >= 1);
	dsc_watch_close(w);
}

static void
test_watch_before_server(void **state)
{
	td_daemon   d;
	char        pub[128], listen[128];
	dsc_watch  *w;
	dsc_client *c;
	(void) state;

	/* Learn two free ports from a first daemon, then stop it. */
	assert_int_equal(start_daemon(&d, pub, sizeof(pub), NULL), 0);
	snprintf(listen, sizeof(listen), "%s", d.url);
	assert_int_equal(td_daemon_stop(&d), 0);

	assert_ok(dsc_watch_open(&w, pub, NULL, 0));
	dsc_event *ev = NULL;
	assert_int_equal(dsc_watch_next(w, 50, &ev), DSC_ETIMEDOUT);

	const char *args[] = { "--listen", listen, "--publish", pub, NULL };
	assert_int_equal(start_daemon(&d, pub, sizeof(pub), args), 0);
	wait_sync(w); /* redialed in the background */
	assert_ok(dsc_client_open(&c, d.url, NULL));
	dsc_registration r = { .service = "wb-late", .endpoint = "http://127.0.0.1:9201" };
	assert_ok(dsc_register(c, &r, NULL, NULL));
	expect(w, DSC_EVENT_REGISTERED, "wb-late", "http://127.0.0.1:9201", 1);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
	dsc_watch_close(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_and_filter),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_invalid_arguments),
		cmocka_unit_test(test_event_type_names),
		cmocka_unit_test(test_all_services_in_order),
		cmocka_unit_test(test_per_service_filter),
		cmocka_unit_test(test_watch_before_server),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
