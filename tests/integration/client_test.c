/*
 * libdiscovery against the real discoveryd on loopback: every semantic of
 * the contract, hostile bytes, oversized requests, 16 concurrent clients,
 * and a server restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
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
#include "common/nngutil.h"

static tf_fixture F; /* the group's daemon and client */

static int
group_setup(void **state)
{
	(void) state;
	return tf_start(&F, false, NULL);
}

static int
group_teardown(void **state)
{
	(void) state;
	/* A clean SIGTERM shutdown exits 0. */
	return tf_stop(&F);
}

/*
 * Registers a TTL instance: the server never polls those, so their health
 * stays UNKNOWN and revisions move only with the test's own calls.
 */
static int
reg(const char *svc, const char *ep)
{
	dsc_registration r = { .service = svc, .endpoint = ep, .ttl_ms = TF_TTL_MS };
	return dsc_register(F.c, &r, NULL, NULL);
}

static size_t
count(const char *svc)
{
	dsc_instance_list *l;
	assert_ok(dsc_get_all(F.c, svc, &l, NULL));
	size_t n = l->count;
	dsc_instance_list_free(l);
	return n;
}

static void
test_register_and_resolve(void **state)
{
	dsc_kv md[] = { { "zone", "eu-1" }, { "version", "2.1" } };
	char   ep[64];
	int    held;
	assert_int_equal(tu_dead_url(ep, sizeof(ep), "http", &held), 0); /* a port of ours */
	dsc_registration r = { .service = "memory",
		.endpoint               = ep,
		.metadata               = md,
		.n_metadata             = 2,
		.health_path            = "/status",
		.weight                 = 3,
		.ttl_ms                 = 600000 };
	dsc_instance    *x;
	(void) state;

	assert_ok(dsc_register(F.c, &r, &x, NULL));
	assert_string_equal(x->service, "memory");
	assert_int_equal(x->health, DSC_HEALTH_UNKNOWN);
	assert_true(x->registered_at_ms > 0);
	dsc_instance_free(x);
	uint64_t rev = dsc_client_revision(F.c);
	assert_true(rev > 0);

	assert_ok(dsc_resolve(F.c, "memory", false, &x, NULL));
	assert_string_equal(x->endpoint, ep);
	assert_string_equal(x->health_path, "/status");
	assert_int_equal(x->weight, 3);
	assert_int_equal(x->n_metadata, 2);
	assert_string_equal(x->metadata[0].key, "version"); /* sorted by key */
	assert_string_equal(x->metadata[1].value, "eu-1");
	assert_string_equal(x->last_error, "");
	dsc_instance_free(x);
	assert_int_equal(dsc_client_revision(F.c), rev); /* reads do not bump it */
	close(held);
}

static void
test_names_are_normalized(void **state)
{
	dsc_instance *x;
	(void) state;
	assert_ok(reg("Cognition_Engine", "http://127.0.0.1:9100"));
	assert_ok(dsc_resolve(F.c, "cognition-engine", false, &x, NULL));
	assert_string_equal(x->service, "cognition-engine");
	dsc_instance_free(x);
	assert_ok(dsc_resolve(F.c, "COGNITION_ENGINE", false, &x, NULL));
	dsc_instance_free(x);
}

static void
test_register_again_updates(void **state)
{
	dsc_kv           md = { "color", "blue" };
	dsc_registration r  = { .service = "upd", .endpoint = "http://127.0.0.1:9200" };
	dsc_instance    *x;
	(void) state;
	assert_ok(dsc_register(F.c, &r, NULL, NULL));
	r.metadata   = &md;
	r.n_metadata = 1;
	r.ttl_ms     = 3000;
	assert_ok(dsc_register(F.c, &r, &x, NULL));
	assert_int_equal(x->n_metadata, 1);
	assert_int_equal(x->ttl_ms, 3000);
	dsc_instance_free(x);
	assert_int_equal(count("upd"), 1);
}

static void
test_resolve_round_robin(void **state)
{
	const char *eps[3]
	    = { "http://127.0.0.1:9301", "http://127.0.0.1:9302", "tcp://127.0.0.1:9303" };
	int seen[3] = { 0 };
	(void) state;
	for (int i = 0; i < 3; i++) {
		assert_ok(reg("rr", eps[i]));
	}
	for (int i = 0; i < 30; i++) {
		dsc_instance *x;
		assert_ok(dsc_resolve(F.c, "rr", false, &x, NULL));
		for (int k = 0; k < 3; k++) {
			seen[k] += strcmp(x->endpoint, eps[k]) == 0;
		}
		dsc_instance_free(x);
	}
	assert_int_equal(seen[0], 10);
	assert_int_equal(seen[1], 10);
	assert_int_equal(seen[2], 10);
}

static void
test_healthy_only_and_unknown(void **state)
{
	dsc_instance *x = NULL;
	dsc_error     err;
	bool          healthy = true;
	dsc_health    st;
	(void) state;

	assert_ok(reg("nohealth", "http://127.0.0.1:9400"));
	assert_int_equal(dsc_resolve(F.c, "nohealth", true, &x, &err), DSC_EUNAVAILABLE);
	assert_null(x);
	assert_int_equal(err.code, DSC_EUNAVAILABLE);
	assert_non_null(strstr(err.message, "no healthy instance"));
	assert_int_equal(dsc_resolve(F.c, "never-registered", false, &x, &err), DSC_ENOTFOUND);
	assert_non_null(strstr(err.message, "service never-registered is not registered"));
	/* A failed call still tells the revision it was answered at. */
	dsc_client *fresh;
	assert_ok(dsc_client_open(&fresh, F.d.url, NULL));
	assert_int_equal(dsc_resolve(fresh, "never-registered", false, NULL, NULL), DSC_ENOTFOUND);
	assert_true(dsc_client_revision(fresh) > 0);
	dsc_client_close(fresh);
	assert_int_equal(
	    dsc_is_healthy(F.c, "never-registered", NULL, &healthy, &st, NULL), DSC_ENOTFOUND);
	assert_ok(dsc_is_healthy(F.c, "nohealth", NULL, &healthy, &st, NULL));
	assert_false(healthy);
	assert_int_equal(st, DSC_HEALTH_UNKNOWN);
	assert_int_equal(dsc_is_healthy(F.c, "nohealth", "http://127.0.0.1:1", &healthy, &st, NULL),
	    DSC_ENOTFOUND);
}

static void
test_ttl_heartbeat(void **state)
{
	dsc_registration r
	    = { .service = "ttl", .endpoint = "http://127.0.0.1:9500", .ttl_ms = 60000 };
	dsc_instance *x;
	bool          healthy;
	dsc_health    st;
	dsc_error     err;
	(void) state;

	assert_ok(dsc_register(F.c, &r, NULL, NULL));
	assert_ok(dsc_heartbeat(F.c, "ttl", "http://127.0.0.1:9500", &x, NULL));
	assert_int_equal(x->health, DSC_HEALTH_HEALTHY);
	dsc_instance_free(x);
	assert_ok(dsc_is_healthy(F.c, "ttl", "http://127.0.0.1:9500", &healthy, &st, NULL));
	assert_true(healthy);
	assert_ok(dsc_resolve(F.c, "ttl", true, &x, NULL));
	dsc_instance_free(x);
	assert_int_equal(
	    dsc_heartbeat(F.c, "ttl", "http://127.0.0.1:1", NULL, NULL), DSC_ENOTFOUND);
	dsc_registration polled = { .service = "polled", .endpoint = "http://127.0.0.1:9501" };
	assert_ok(dsc_register(F.c, &polled, NULL, NULL));
	assert_int_equal(
	    dsc_heartbeat(F.c, "polled", "http://127.0.0.1:9501", NULL, &err), DSC_ESTATE);
	assert_non_null(strstr(err.message, "ttl_ms"));
}

static void
test_deregister(void **state)
{
	uint32_t removed;
	(void) state;
	assert_ok(reg("gone", "http://127.0.0.1:9601"));
	assert_ok(reg("gone", "http://127.0.0.1:9602"));
	assert_ok(reg("gone", "http://127.0.0.1:9603"));
	uint64_t before = dsc_client_revision(F.c);
	assert_ok(dsc_deregister(F.c, "gone", "http://127.0.0.1:9601", &removed, NULL));
	assert_int_equal(removed, 1);
	assert_int_equal(dsc_client_revision(F.c), before + 1);
	assert_ok(dsc_deregister(F.c, "gone", "http://127.0.0.1:9601", &removed, NULL));
	assert_int_equal(removed, 0);
	assert_ok(dsc_deregister(F.c, "GONE", NULL, &removed, NULL));
	assert_int_equal(removed, 2);
	assert_int_equal(dsc_client_revision(F.c), before + 3);
	assert_ok(dsc_deregister(F.c, "gone", "", &removed, NULL));
	assert_int_equal(removed, 0);
	assert_int_equal(dsc_resolve(F.c, "gone", false, NULL, NULL), DSC_ENOTFOUND);
}

static void
test_get_all_sorted(void **state)
{
	dsc_instance_list *l;
	(void) state;
	assert_ok(reg("sort-b", "http://127.0.0.1:2"));
	assert_ok(reg("sort-a", "http://127.0.0.1:2"));
	assert_ok(reg("sort-a", "http://127.0.0.1:1"));
	assert_ok(dsc_get_all(F.c, NULL, &l, NULL));
	assert_true(l->count >= 3);
	assert_int_equal(l->revision, dsc_client_revision(F.c));
	for (size_t i = 1; i < l->count; i++) {
		int c = strcmp(l->items[i - 1].service, l->items[i].service);
		if (c == 0) {
			c = strcmp(l->items[i - 1].endpoint, l->items[i].endpoint);
		}
		assert_true(c < 0);
	}
	dsc_instance_list_free(l);
	assert_ok(dsc_get_all(F.c, "sort-a", &l, NULL));
	assert_int_equal(l->count, 2);
	assert_string_equal(l->items[0].endpoint, "http://127.0.0.1:1");
	dsc_instance_list_free(l);
}

static void
test_bad_input_is_rejected_and_nothing_lost(void **state)
{
	dsc_error err;
	(void) state;
	assert_ok(reg("keep", "http://127.0.0.1:9700"));
	size_t total = count(NULL);
	static const struct {
		const char *svc, *ep, *why;
	} bad[] = {
		{ "bad name", "http://127.0.0.1:1", "outside" },
		{ "-x", "http://127.0.0.1:1", "start and end" },
		{ "keep", "ftp://127.0.0.1:1", "http://, https:// or tcp://" },
		{ "keep", "http://user:pw@127.0.0.1:1", "user-info" },
		{ "keep", "http://127.0.0.1:1#x", "fragment" },
		{ "keep", "http://127.0.0.1:70000", "" },
		{ "keep", "127.0.0.1:9700", "absolute URL" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dsc_registration r = { .service = bad[i].svc, .endpoint = bad[i].ep };
		if (dsc_register(F.c, &r, NULL, &err) != DSC_EINVAL) {
			fail_msg("case %zu accepted", i);
		}
		if (strstr(err.message, bad[i].why) == NULL) {
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.message, bad[i].why);
		}
	}
	dsc_kv           md[65];
	char             keys[65][8];
	dsc_registration r = { .service = "keep",
		.endpoint               = "http://127.0.0.1:9700",
		.metadata               = md,
		.n_metadata             = 65 };
	for (int i = 0; i < 65; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		md[i] = (dsc_kv) { keys[i], "v" };
	}
	assert_int_equal(dsc_register(F.c, &r, NULL, &err), DSC_ELIMIT);
	assert_int_equal(count(NULL), total);
	dsc_instance *x;
	assert_ok(dsc_resolve(F.c, "keep", false, &x, NULL));
	assert_int_equal(x->n_metadata, 0); /* the rejected update changed nothing */
	dsc_instance_free(x);
}

/* Raw REQ/REP: hostile bytes must each get a Response, never silence. */
static void
test_malformed_bytes_get_answers(void **state)
{
	nng_socket s;
	uint32_t   seed = 12345;
	(void) state;
	assert_int_equal(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
	assert_int_equal(nng_dial(s, F.d.url, NULL, 0), 0);
	for (int i = 0; i < 300; i++) {
		unsigned char buf[64];
		size_t        len = (size_t) (i % 64);
		for (size_t k = 0; k < len; k++) {
			seed   = seed * 1103515245u + 12345u;
			buf[k] = (unsigned char) (seed >> 16);
		}
		assert_int_equal(nng_send(s, buf, len, 0), 0);
		char  *reply;
		size_t rlen;
		assert_int_equal(nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC), 0);
		Discovery__V1__Response *r = NULL;
		assert_int_equal(dsi_unpack(&discovery__v1__response__descriptor, reply, rlen,
		                     (ProtobufCMessage **) &r),
		    0);
		nng_free(reply, rlen);
		/* Random bytes may decode to a valid but empty call; never a crash. */
		assert_true(r->status != DISCOVERY__V1__STATUS_CODE__STATUS_INTERNAL);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	dsi_close_bounded(s, DSI_CLOSE_BOUND_MS, NULL);         /* nng 1.5.2 */
	assert_ok(dsc_resolve(F.c, "keep", false, NULL, NULL)); /* still serving */
}

static void
test_oversized_request_is_dropped_not_fatal(void **state)
{
	nng_socket s;
	size_t     len = 2 * 1024 * 1024; /* over the 1 MiB default */
	char      *big = calloc(1, len);
	(void) state;
	assert_int_equal(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 1000);
	assert_int_equal(nng_dial(s, F.d.url, NULL, 0), 0);
	assert_int_equal(nng_send(s, big, len, 0), 0);
	char  *reply;
	size_t rlen;
	/* The server closes that connection instead of reading 2 MiB. */
	assert_int_not_equal(nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC), 0);
	dsi_close_bounded(s, DSI_CLOSE_BOUND_MS, NULL); /* nng 1.5.2 */
	free(big);
	assert_ok(dsc_resolve(F.c, "keep", false, NULL, NULL));
}

/* 16 clients, each with its own socket, mixing every call at once. */
typedef struct worker {
	int  id;
	char url[128];
	char fail[640];
} worker;

static void *
worker_main(void *p)
{
	worker     *w = p;
	dsc_client *c;
	char        svc[32], ep[64];
	dsc_error   err;

	snprintf(svc, sizeof(svc), "conc-%d", w->id);
	if (dsc_client_open(&c, w->url, NULL) != 0) {
		snprintf(w->fail, sizeof(w->fail), "open failed");
		return NULL;
	}
	for (int i = 0; i < 40 && w->fail[0] == 0; i++) {
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 10000 + i);
		dsc_registration r = { .service = svc, .endpoint = ep };
		bool             healthy;
		dsc_health       st;
		if (dsc_register(c, &r, NULL, &err) != 0
		    || dsc_resolve(c, svc, false, NULL, &err) != 0
		    || dsc_is_healthy(c, svc, NULL, &healthy, &st, &err) != 0
		    || dsc_resolve(c, "conc-0", false, NULL, &err) == DSC_ETIMEDOUT) {
			snprintf(w->fail, sizeof(w->fail), "client %d step %d: %s", w->id, i,
			    err.message);
		}
		dsc_instance_list *l;
		if (i % 10 == 0 && dsc_get_all(c, NULL, &l, &err) == 0) {
			dsc_instance_list_free(l);
		}
		uint32_t removed;
		if (i % 2 == 1
		    && (dsc_deregister(c, svc, ep, &removed, &err) != 0 || removed != 1)) {
			snprintf(
			    w->fail, sizeof(w->fail), "client %d deregister %d failed", w->id, i);
		}
	}
	dsc_client_close(c);
	return NULL;
}

static void
test_sixteen_concurrent_clients(void **state)
{
	pthread_t t[16];
	worker    w[16];
	(void) state;
	for (int i = 0; i < 16; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].id = i;
		snprintf(w[i].url, sizeof(w[i].url), "%s", F.d.url);
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 16; i++) {
		pthread_join(t[i], NULL);
		if (w[i].fail[0] != 0) {
			fail_msg("%s", w[i].fail);
		}
	}
	for (int i = 0; i < 16; i++) {
		char svc[32];
		snprintf(svc, sizeof(svc), "conc-%d", i);
		assert_int_equal(count(svc), 20);
	}
}

/* One client shared by several threads: each call has its own context. */
static void *
shared_main(void *p)
{
	intptr_t fails = 0;
	(void) p;
	for (int i = 0; i < 100; i++) {
		dsc_instance *x = NULL;
		if (dsc_resolve(F.c, "keep", false, &x, NULL) != 0
		    || strcmp(x->endpoint, "http://127.0.0.1:9700") != 0) {
			fails++;
		}
		dsc_instance_free(x);
	}
	return (void *) fails;
}

static void
test_shared_client_threads(void **state)
{
	pthread_t t[8];
	(void) state;
	for (int i = 0; i < 8; i++) {
		pthread_create(&t[i], NULL, shared_main, NULL);
	}
	for (int i = 0; i < 8; i++) {
		void *fails;
		pthread_join(t[i], &fails);
		assert_int_equal((intptr_t) fails, 0);
	}
}

static void
test_unreachable_server(void **state)
{
	dsc_client        *c;
	dsc_client_options o;
	dsc_error          err;
	char               dead[64];
	int                fd;
	(void) state;
	assert_int_equal(tu_dead_url(dead, sizeof(dead), "tcp", &fd), 0);
	dsc_client_options_init(&o);
	o.require_connection = true;
	assert_int_equal(dsc_client_open(&c, dead, &o), DSC_ECONNREFUSED);
	assert_int_equal(dsc_client_open(&c, "nonsense://x", &o), DSC_EINVAL);

	/* Without require_connection it opens, and calls fail within the timeout. */
	o.require_connection = false;
	o.timeout_ms         = 300;
	assert_ok(dsc_client_open(&c, dead, &o));
	assert_int_equal(dsc_resolve(c, "keep", false, NULL, &err), DSC_ECONNREFUSED);
	assert_non_null(strstr(err.message, "cannot connect"));
	dsc_client_close(c);
	close(fd);
}

static void
test_require_connection_is_bounded_by_the_timeout(void **state)
{
	td_daemon          d;
	dsc_client        *c = NULL;
	dsc_client_options o;
	(void) state;

	/* A stopped server accepts TCP but never completes nng's handshake. */
	assert_int_equal(td_daemon_start(&d, NULL), 0);
	kill(d.pid, SIGSTOP);
	dsc_client_options_init(&o);
	o.require_connection = true;
	o.timeout_ms         = 300;
	assert_int_equal(dsc_client_open(&c, d.url, &o), DSC_ETIMEDOUT);
	assert_null(c);
	kill(d.pid, SIGCONT);
	assert_int_equal(td_daemon_stop(&d), 0);
}

static void
test_client_survives_server_restart(void **state)
{
	td_daemon          d;
	dsc_client        *c;
	dsc_client_options o;
	(void) state;

	assert_int_equal(td_daemon_start(&d, NULL), 0);
	char url[128];
	snprintf(url, sizeof(url), "%s", d.url);
	dsc_client_options_init(&o);
	o.timeout_ms = 10000;
	assert_ok(dsc_client_open(&c, url, &o));
	dsc_registration r = { .service = "restart", .endpoint = "http://127.0.0.1:9800" };
	assert_ok(dsc_register(c, &r, NULL, NULL));
	assert_int_equal(td_daemon_stop(&d), 0);

	const char *args[] = { "--listen", url, NULL };
	assert_int_equal(td_daemon_start(&d, args), 0);
	/* The new server starts empty (durability is its own issue): NOT_FOUND, not a hang. */
	assert_int_equal(dsc_resolve(c, "restart", false, NULL, NULL), DSC_ENOTFOUND);
	assert_ok(dsc_register(c, &r, NULL, NULL));
	assert_ok(dsc_resolve(c, "restart", false, NULL, NULL));
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&d), 0);
}

/* Load while SIGTERM arrives: every call ends in an answer or a transport error. */
typedef struct hammer {
	const char *url;
	_Atomic int ok, transport, wrong; /* polled by the test while the worker runs */
} hammer;

static void *
hammer_main(void *p)
{
	hammer            *h = p;
	dsc_client        *c;
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = 500;
	if (dsc_client_open(&c, h->url, &o) != 0) {
		h->wrong++;
		return NULL;
	}
	for (int i = 0; i < 100000; i++) {
		int rv = dsc_resolve(c, "load", false, NULL, NULL);
		if (rv == 0) {
			h->ok++;
		} else if (rv == DSC_ETIMEDOUT || rv == DSC_ECONNREFUSED || rv == DSC_ECLOSED) {
			h->transport++;
			break; /* the server is going away */
		} else {
			h->wrong++;
			break;
		}
	}
	dsc_client_close(c);
	return NULL;
}

static void
test_shutdown_under_load(void **state)
{
	td_daemon d;
	pthread_t t[8];
	hammer    h[8];
	(void) state;
	assert_int_equal(td_daemon_start(&d, (const char *[]) { "--log-level", "info", NULL }), 0);
	dsc_client *c;
	assert_ok(dsc_client_open(&c, d.url, NULL));
	dsc_registration r = { .service = "load", .endpoint = "http://127.0.0.1:1" };
	assert_ok(dsc_register(c, &r, NULL, NULL));
	dsc_client_close(c);
	for (int i = 0; i < 8; i++) {
		h[i] = (hammer) { .url = d.url };
		pthread_create(&t[i], NULL, hammer_main, &h[i]);
	}
	/* Let every worker get answers before the signal. */
	for (int i = 0; i < 8; i++) {
		for (int spin = 0; spin < 2000 && h[i].ok == 0 && h[i].wrong == 0; spin++) {
			struct timespec ts = { 0, 5000000 };
			nanosleep(&ts, NULL);
		}
	}
	assert_int_equal(td_daemon_stop(&d), 0);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_true(h[i].ok > 0);
		assert_int_equal(h[i].wrong, 0);
	}
}

static void
test_null_arguments(void **state)
{
	dsc_error err;
	(void) state;
	assert_int_equal(dsc_resolve(F.c, NULL, false, NULL, &err), DSC_EINVAL);
	assert_int_equal(dsc_register(F.c, NULL, NULL, &err), DSC_EINVAL);
	assert_int_equal(dsc_resolve(NULL, "x", false, NULL, &err), DSC_EINVAL);
	assert_int_equal(dsc_get_all(NULL, NULL, NULL, &err), DSC_EINVAL);
	assert_ok(dsc_get_all(F.c, NULL, NULL, &err)); /* a NULL out just discards */
	assert_int_equal(dsc_client_open(NULL, "tcp://127.0.0.1:1", NULL), DSC_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_and_resolve),
		cmocka_unit_test(test_names_are_normalized),
		cmocka_unit_test(test_register_again_updates),
		cmocka_unit_test(test_resolve_round_robin),
		cmocka_unit_test(test_healthy_only_and_unknown),
		cmocka_unit_test(test_ttl_heartbeat),
		cmocka_unit_test(test_deregister),
		cmocka_unit_test(test_get_all_sorted),
		cmocka_unit_test(test_bad_input_is_rejected_and_nothing_lost),
		cmocka_unit_test(test_malformed_bytes_get_answers),
		cmocka_unit_test(test_oversized_request_is_dropped_not_fatal),
		cmocka_unit_test(test_sixteen_concurrent_clients),
		cmocka_unit_test(test_shared_client_threads),
		cmocka_unit_test(test_unreachable_server),
		cmocka_unit_test(test_require_connection_is_bounded_by_the_timeout),
		cmocka_unit_test(test_client_survives_server_restart),
		cmocka_unit_test(test_shutdown_under_load),
		cmocka_unit_test(test_null_arguments),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
