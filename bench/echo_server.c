/*
 * bench_echo: the transport baseline. A raw nng REP server with the same
 * context pool as discoveryd (a fixed set of work items, each an nng
 * context and an aio driven by one callback) that answers every request
 * with a fixed reply read from a file: the bytes of a real discoveryd
 * reply, so both servers put the same bytes on the wire.
 *
 * With --publish it is also the fan-out baseline: for each Register
 * request it publishes, inline and with no registry behind it, the Event
 * that discoveryd would publish for that change.
 */
#include <discovery/v1/discovery.pb-c.h>
#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/codec.h"

typedef enum item_state { ITEM_RECV, ITEM_SEND } item_state;

/* One work item of the pool, as in discoveryd's transport. */
typedef struct item {
	struct echo *e;
	nng_aio     *aio;
	nng_ctx      ctx;
	item_state   state;
} item;

/* The server: sockets, the reply template and the pool. */
typedef struct echo {
	nng_socket       rep, pub;
	bool             publishing;
	nng_msg         *reply;
	item            *items;
	size_t           n_items;
	_Atomic uint64_t revision;
} echo;

static int64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Publishes the UPDATED event a Register would cause; anything else is ignored. */
static void
publish_for(echo *e, const void *buf, size_t len)
{
	Discovery__V1__Request *req = NULL;
	if (dsi_unpack(&discovery__v1__request__descriptor, buf, len, (ProtobufCMessage **) &req)
	    != 0) {
		return;
	}
	const Discovery__V1__RegisterRequest *rr = req->register_;
	if (req->call_case == DISCOVERY__V1__REQUEST__CALL_REGISTER && rr != NULL) {
		size_t                                  n = rr->n_metadata;
		Discovery__V1__Instance__MetadataEntry  ents[8];
		Discovery__V1__Instance__MetadataEntry *ptrs[8];
		Discovery__V1__Instance                 inst = DISCOVERY__V1__INSTANCE__INIT;
		Discovery__V1__Event                    ev   = DISCOVERY__V1__EVENT__INIT;
		n                                            = n > 8 ? 8 : n;
		for (size_t i = 0; i < n; i++) {
			discovery__v1__instance__metadata_entry__init(&ents[i]);
			ents[i].key   = rr->metadata[i]->key;
			ents[i].value = rr->metadata[i]->value;
			ptrs[i]       = &ents[i];
		}
		inst.service          = rr->service;
		inst.endpoint         = rr->endpoint;
		inst.metadata         = n > 0 ? ptrs : NULL;
		inst.n_metadata       = n;
		inst.health_path      = rr->health_path[0] ? rr->health_path : (char *) "/health";
		inst.ttl_ms           = rr->ttl_ms;
		inst.weight           = rr->weight;
		inst.registered_at_ms = wall_ms();
		ev.service            = rr->service;
		ev.type               = DISCOVERY__V1__EVENT_TYPE__EVENT_UPDATED;
		ev.instance           = &inst;
		ev.revision           = atomic_fetch_add(&e->revision, 1) + 1;
		ev.timestamp_ms       = inst.registered_at_ms;
		nng_msg *m;
		if (dsi_pack(&ev.base, &m) == 0 && nng_sendmsg(e->pub, m, 0) != 0) {
			nng_msg_free(m);
		}
	}
	protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void
item_cb(void *arg)
{
	item    *it = arg;
	echo    *e  = it->e;
	int      rv = nng_aio_result(it->aio);
	nng_msg *m;

	switch (it->state) {
	case ITEM_RECV:
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
			return;
		}
		if (rv != 0) {
			break;
		}
		m = nng_aio_get_msg(it->aio);
		if (e->publishing) {
			publish_for(e, nng_msg_body(m), nng_msg_len(m));
		}
		nng_msg_free(m);
		if (nng_msg_dup(&m, e->reply) != 0) {
			break;
		}
		it->state = ITEM_SEND;
		nng_aio_set_msg(it->aio, m);
		nng_ctx_send(it->ctx, it->aio);
		return;
	case ITEM_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(it->aio));
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				return;
			}
		}
		break;
	}
	it->state = ITEM_RECV;
	nng_ctx_recv(it->ctx, it->aio);
}

/* The URL with the port the listener got, when it was asked for port 0. */
static void
bound_url(nng_listener l, const char *url, char *out, size_t n)
{
	nng_sockaddr sa;
	const char  *colon = strrchr(url, ':');
	snprintf(out, n, "%s", url);
	if (colon != NULL && strcmp(colon, ":0") == 0
	    && nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) == 0 && sa.s_family == NNG_AF_INET) {
		snprintf(out, n, "%.*s:%u", (int) (colon - url), url, ntohs(sa.s_in.sa_port));
	}
}

static int
load_reply(const char *path, nng_msg **out)
{
	FILE *f = fopen(path, "rb");
	char  buf[65536];
	if (f == NULL) {
		perror(path);
		return -1;
	}
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (nng_msg_alloc(out, 0) != 0 || nng_msg_append(*out, buf, n) != 0) {
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char  *listen = "tcp://127.0.0.1:0", *publish = NULL, *reply_file = NULL;
	echo         e;
	nng_listener l, pl;
	char         url[160];
	sigset_t     sigs;
	int          sig, rv;

	memset(&e, 0, sizeof(e));
	e.n_items = 64;
	for (int i = 1; i < argc; i++) {
		bool more = i + 1 < argc;
		if (strcmp(argv[i], "--listen") == 0 && more) {
			listen = argv[++i];
		} else if (strcmp(argv[i], "--publish") == 0 && more) {
			publish = argv[++i];
		} else if (strcmp(argv[i], "--workers") == 0 && more) {
			e.n_items = (size_t) atoi(argv[++i]);
		} else if (strcmp(argv[i], "--reply-file") == 0 && more) {
			reply_file = argv[++i];
		} else {
			fprintf(stderr,
			    "usage: bench_echo --reply-file PATH [--listen URL] [--workers N] "
			    "[--publish URL]\n");
			return 2;
		}
	}
	if (reply_file == NULL || e.n_items == 0 || load_reply(reply_file, &e.reply) != 0) {
		fprintf(
		    stderr, "bench_echo: a readable --reply-file and --workers > 0 are needed\n");
		return 2;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if ((rv = nng_rep0_open(&e.rep)) != 0
	    || (e.items = calloc(e.n_items, sizeof(*e.items))) == NULL) {
		fprintf(stderr, "bench_echo: cannot open the REP socket\n");
		return 1;
	}
	if (publish != NULL) {
		e.publishing = true;
		if ((rv = nng_pub0_open(&e.pub)) != 0
		    || (rv = nng_socket_set_int(e.pub, NNG_OPT_SENDBUF, 1024)) != 0
		    || (rv = nng_listener_create(&pl, e.pub, publish)) != 0
		    || (rv = nng_listener_start(pl, 0)) != 0) {
			fprintf(stderr, "bench_echo: cannot publish on %s: %s\n", publish,
			    nng_strerror(rv));
			return 1;
		}
	}
	for (size_t i = 0; i < e.n_items; i++) {
		item *it = &e.items[i];
		it->e    = &e;
		if (nng_aio_alloc(&it->aio, item_cb, it) != 0
		    || nng_ctx_open(&it->ctx, e.rep) != 0) {
			fprintf(stderr, "bench_echo: cannot create the pool\n");
			return 1;
		}
	}
	if ((rv = nng_listener_create(&l, e.rep, listen)) != 0
	    || (rv = nng_listener_start(l, 0)) != 0) {
		fprintf(stderr, "bench_echo: cannot listen on %s: %s\n", listen, nng_strerror(rv));
		return 1;
	}
	for (size_t i = 0; i < e.n_items; i++) {
		e.items[i].state = ITEM_RECV;
		nng_ctx_recv(e.items[i].ctx, e.items[i].aio);
	}
	if (publish != NULL) {
		bound_url(pl, publish, url, sizeof(url));
		fprintf(stderr, "publishing on %s\n", url);
	}
	bound_url(l, listen, url, sizeof(url));
	fprintf(stderr, "listening on %s (%zu contexts, %zu-byte reply)\n", url, e.n_items,
	    nng_msg_len(e.reply));

	sigwait(&sigs, &sig);
	for (size_t i = 0; i < e.n_items; i++) {
		nng_aio_stop(e.items[i].aio);
	}
	nng_close(e.rep);
	if (publish != NULL) {
		nng_close(e.pub);
	}
	for (size_t i = 0; i < e.n_items; i++) {
		nng_aio_free(e.items[i].aio);
	}
	free(e.items);
	nng_msg_free(e.reply);
	return 0;
}
