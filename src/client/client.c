/*
 * libdiscovery's REQ side: one REQ socket per server of the client's list,
 * each dialing in the background and redialing after a restart (how it
 * dials, TLS included, is client/dial.c), and the one round trip every
 * call makes, which picks the server and fails over (docs/clients.md).
 * Each attempt runs on its own REQ context with an explicit deadline.
 */
#include <discovery/discovery.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/dial.h"
#include "client/error.h"
#include "client/internal.h"
#include "client/urllist.h"
#include "common/codec.h"
#include "common/nngutil.h"
#include "common/status.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "common/tls.h"

#define DEFAULT_TIMEOUT_MS 5000
#define PROBE_MS           1000 /* bound on the connect probe of a server with no pipe */

/* One call in flight, linked into its client so a shutdown can cancel it. */
typedef struct call {
	struct call *next;
	nng_aio     *aio;
} call;

/* One server of the list: its REQ socket and what its pipe callback counts. */
typedef struct node {
	nng_socket      sock;
	char           *url;
	bool            tls;    /* the URL is tls+: a failed handshake looks like no server */
	nng_tls_config *tlscfg; /* held for the failover probe; NULL without TLS */
	pthread_mutex_t mtx;    /* with cv: waiting for the first pipe */
	pthread_cond_t  cv;
	_Atomic int     pipes;    /* connected pipes, to tell "unreachable" from "slow" */
	bool            added;    /* under mtx: some pipe was ever added */
	int             rejected; /* under mtx: pipes dropped before any was added */
	bool            open;     /* sock, mtx and cv exist */
} node;

struct dsc_client {
	node             nodes[DSC_MAX_SERVERS];
	size_t           n;
	_Atomic size_t   current; /* the node calls start with: the last one that answered */
	int32_t          timeout_ms;
	char            *token;
	_Atomic uint64_t revision;     /* from the last reply */
	_Atomic uint64_t min_revision; /* every call carries at least this */
	_Atomic bool     own_writes;   /* ... and written, when true */
	_Atomic uint64_t written;      /* the highest revision a write of ours was answered at */
	_Atomic bool     shut;         /* dsi_client_shutdown was called */
	pthread_mutex_t  calls_mtx;    /* guards calls, and the start of every call step */
	struct call     *calls;        /* calls in flight, for dsi_client_shutdown to cancel */
	_Atomic size_t   holds;        /* client_free and each close still running */
};

void
dsc_client_options_init(dsc_client_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->timeout_ms = DEFAULT_TIMEOUT_MS;
}

static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	node *d = arg;
	(void) p;
	pthread_mutex_lock(&d->mtx);
	/*
	 * nng 1.5.2 reports REM_POST for a pipe it dropped in negotiation (a
	 * peer of another protocol, such as the PUB port) without its ADD_POST.
	 */
	if (ev == NNG_PIPE_EV_ADD_POST) {
		d->added = true;
		atomic_fetch_add(&d->pipes, 1);
	} else if (d->added) {
		atomic_fetch_add(&d->pipes, -1);
	} else {
		d->rejected++;
	}
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mtx);
}

/*
 * Connects within timeout_ms or fails. A plain blocking nng_dial can hang
 * for nng's own handshake timeout on a stopped server, so probe the
 * address with a bounded connection first (a closed port fails at once, a
 * refused TLS handshake too), then wait, bounded, for the background
 * dial's pipe. The node dials in the background either way.
 */
static int
connect_now(node *d, int32_t timeout_ms)
{
	int64_t deadline = dsi_monotonic_ms() + timeout_ms;
	int     rv, drv;

	rv = dsi_probe(d->url, d->tlscfg, timeout_ms);
	if ((drv = dsi_dial(d->sock, d->url, d->tlscfg)) != 0 || rv != 0) {
		return drv != 0 ? drv : rv;
	}
	pthread_mutex_lock(&d->mtx);
	while (atomic_load(&d->pipes) == 0 && d->rejected == 0 && dsi_monotonic_ms() < deadline) {
		struct timespec ts;
		dsi_realtime_after(&ts, deadline - dsi_monotonic_ms());
		pthread_cond_timedwait(&d->cv, &d->mtx, &ts);
	}
	/* A dropped pipe: the peer answered, but not as a REP socket. */
	rv = atomic_load(&d->pipes) > 0 ? 0 : d->rejected > 0 ? DSC_EPROTO : DSC_ETIMEDOUT;
	pthread_mutex_unlock(&d->mtx);
	return rv;
}

/* Opens node d's socket on url; 0 or a dsc_err. The dial starts later. */
static int
node_open(node *d, const char *url, const dsc_tls_options *tls)
{
	int rv;

	if ((d->url = strdup(url)) == NULL) {
		return DSC_ENOMEM;
	}
	d->tls = dsi_url_is_tls(url);
	if ((rv = dsi_client_tls(&d->tlscfg, url, tls, NULL, 0))
	    != 0) { /* dsc_tls_check says why */
		return rv;
	}
	if ((rv = nng_req0_open(&d->sock)) != 0) {
		return dsi_err_from_nng(rv);
	}
	pthread_mutex_init(&d->mtx, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->open = true;
	/*
	 * nng resends a request after 60 s by default, so a slow call would run
	 * twice on the server. Calls have their own deadline instead.
	 */
	nng_socket_set_ms(d->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(d->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(d->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_pipe_notify(d->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, d);
	nng_pipe_notify(d->sock, NNG_PIPE_EV_REM_POST, pipe_cb, d);
	return 0;
}

/* Frees the client once its last socket close has ended: the last holder does it. */
static void
client_release(void *arg)
{
	dsc_client *c = arg;
	if (atomic_fetch_sub(&c->holds, 1) != 1) {
		return;
	}
	for (size_t i = 0; i < c->n; i++) {
		node *d = &c->nodes[i];
		if (d->open) {
			pthread_cond_destroy(&d->cv);
			pthread_mutex_destroy(&d->mtx);
		}
		if (d->tlscfg != NULL) {
			nng_tls_config_free(d->tlscfg);
		}
		free(d->url);
	}
	pthread_mutex_destroy(&c->calls_mtx);
	free(c->token);
	free(c);
}

/*
 * Closes every socket, then frees the client. If nng 1.5.2 wedges a close,
 * that socket's pipe callbacks may still touch its node: the client is then
 * freed when that close ends after all (dsi_close_bounded_then), and is left
 * to the process exit if it never does.
 */
static void
client_free(dsc_client *c)
{
	atomic_store(&c->holds, 1); /* this function's own, so no close frees c under it */
	for (size_t i = 0; i < c->n; i++) {
		if (c->nodes[i].open) {
			atomic_fetch_add(&c->holds, 1);
			if (dsi_close_bounded_then(
			        c->nodes[i].sock, DSI_CLOSE_BOUND_MS, NULL, client_release, c)) {
				client_release(c);
			}
		}
	}
	client_release(c);
}

int
dsc_client_open(dsc_client **out, const char *url, const dsc_client_options *opts)
{
	dsc_client_options def;
	dsc_client        *c;
	dsi_url_list       urls;
	char               why[256];
	int                rv = 0;

	if (out == NULL || url == NULL || url[0] == 0) {
		return DSC_EINVAL;
	}
	if ((rv = dsi_url_list_parse(&urls, url, why, sizeof(why))) != 0) {
		return rv; /* dsc_url_list_check says why */
	}
	if (opts == NULL) {
		dsc_client_options_init(&def);
		opts = &def;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		dsi_url_list_free(&urls);
		return DSC_ENOMEM;
	}
	pthread_mutex_init(&c->calls_mtx, NULL);
	c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	if (opts->auth_token != NULL && (c->token = strdup(opts->auth_token)) == NULL) {
		rv = DSC_ENOMEM;
	}
	for (size_t i = 0; rv == 0 && i < urls.n; i++) {
		c->n = i + 1;
		rv   = node_open(&c->nodes[i], urls.url[i], &opts->tls);
	}
	dsi_url_list_free(&urls);
	if (rv == 0 && opts->require_connection) {
		/* The first server that connects becomes the current one; the rest dial on. */
		for (size_t i = 0; i < c->n; i++) {
			if ((rv = connect_now(&c->nodes[i], c->timeout_ms)) == 0) {
				atomic_store(&c->current, i);
				for (size_t j = i + 1; rv == 0 && j < c->n; j++) {
					rv = dsi_dial(
					    c->nodes[j].sock, c->nodes[j].url, c->nodes[j].tlscfg);
				}
				break;
			}
		}
	} else {
		/* Dial in the background: the client works once a server is up. */
		for (size_t i = 0; rv == 0 && i < c->n; i++) {
			rv = dsi_dial(c->nodes[i].sock, c->nodes[i].url, c->nodes[i].tlscfg);
		}
	}
	if (rv != 0) {
		client_free(c);
		return rv;
	}
	*out = c;
	return 0;
}

void
dsi_client_shutdown(dsc_client *c)
{
	pthread_mutex_lock(&c->calls_mtx);
	atomic_store(&c->shut, true);
	for (call *k = c->calls; k != NULL; k = k->next) {
		nng_aio_cancel(k->aio); /* the caller sees DSC_ECLOSED at once */
	}
	pthread_mutex_unlock(&c->calls_mtx);
}

int32_t
dsi_client_timeout(const dsc_client *c)
{
	return c->timeout_ms;
}

void
dsi_client_set_current(dsc_client *c, size_t i)
{
	if (i < c->n) {
		atomic_store(&c->current, i);
	}
}

size_t
dsi_client_current(const dsc_client *c)
{
	return atomic_load(&((dsc_client *) c)->current);
}

void
dsc_client_close(dsc_client *c)
{
	if (c != NULL) {
		dsi_client_shutdown(c); /* no call runs now */
		client_free(c);
	}
}

uint64_t
dsc_client_revision(const dsc_client *c)
{
	return atomic_load(&((dsc_client *) c)->revision);
}

void
dsc_client_set_min_revision(dsc_client *c, uint64_t rev)
{
	if (c != NULL) {
		atomic_store(&c->min_revision, rev);
	}
}

void
dsc_client_set_read_own_writes(dsc_client *c, bool on)
{
	if (c != NULL) {
		atomic_store(&c->own_writes, on);
	}
}

/* What a call carries as min_revision; and, after an OK write, what it wrote at. */
static uint64_t
min_revision(dsc_client *c)
{
	uint64_t want = atomic_load(&c->min_revision);
	uint64_t own  = atomic_load(&c->own_writes) ? atomic_load(&c->written) : 0;
	return own > want ? own : want;
}

static void
wrote_at(dsc_client *c, const Discovery__V1__Request *req, uint64_t rev)
{
	uint64_t was = atomic_load(&c->written);
	if (req->call_case == DISCOVERY__V1__REQUEST__CALL_REGISTER
	    || req->call_case == DISCOVERY__V1__REQUEST__CALL_DEREGISTER
	    || req->call_case == DISCOVERY__V1__REQUEST__CALL_HEARTBEAT) {
		while (rev > was && !atomic_compare_exchange_weak(&c->written, &was, rev)) { }
	}
}

/*
 * Runs one step (send or receive) of a call within the deadline. The step
 * starts under calls_mtx, which dsi_client_shutdown also takes: a step
 * either starts before the shutdown (and is cancelled by it) or sees it and
 * does not start. Closing the socket under a running call instead makes
 * nng 1.5.2 panic.
 */
static int
aio_step(dsc_client *c, nng_aio *aio, nng_ctx ctx, bool send, int64_t deadline)
{
	int64_t left = deadline - dsi_monotonic_ms();
	nng_aio_set_timeout(aio, left > 0 ? (nng_duration) left : 1);
	pthread_mutex_lock(&c->calls_mtx);
	if (atomic_load(&c->shut)) {
		pthread_mutex_unlock(&c->calls_mtx);
		return NNG_ECLOSED;
	}
	if (send) {
		nng_ctx_send(ctx, aio);
	} else {
		nng_ctx_recv(ctx, aio);
	}
	pthread_mutex_unlock(&c->calls_mtx);
	nng_aio_wait(aio);
	return nng_aio_result(aio);
}

static void
call_link(dsc_client *c, call *k)
{
	pthread_mutex_lock(&c->calls_mtx);
	k->next  = c->calls;
	c->calls = k;
	pthread_mutex_unlock(&c->calls_mtx);
}

static void
call_unlink(dsc_client *c, call *k)
{
	pthread_mutex_lock(&c->calls_mtx);
	for (call **pp = &c->calls; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	}
	pthread_mutex_unlock(&c->calls_mtx);
}

/* How an attempt on one server ended, for the failover decision. */
typedef enum fate {
	FATE_ANSWER, /* a Response to hand back (OK or not): stop here */
	FATE_UNSENT, /* the request never reached the server: safe to move on */
	FATE_MAYBE,  /* it may have run there (no reply in time, connection lost) */
	FATE_BUSY,   /* the server answered UNAVAILABLE: it may have run there too */
	FATE_FINAL,  /* the client is shut down, or a local failure: stop */
} fate;

/*
 * dsi_probe of a server with no connection, in a frame of its own that is
 * never inlined and never a tail call: tests/tsan.supp names it (nng 1.5.2
 * reaps a failed probe's dialer on its own thread, which TSan cannot order).
 */
static __attribute__((noinline)) int
probe_node(const node *d, int timeout_ms)
{
	int rv = dsi_probe(d->url, d->tlscfg, timeout_ms);
	__asm__ __volatile__("" ::: "memory"); /* the call above stays a call */
	return rv;
}

/*
 * One request on node d within the client's timeout. msg is consumed. On
 * FATE_ANSWER and FATE_BUSY *resp is the unpacked Response; otherwise err
 * says why, naming the server.
 */
static fate
attempt(dsc_client *c, node *d, nng_msg *msg, Discovery__V1__Response **resp, dsc_error *err)
{
	nng_aio                 *aio = NULL;
	nng_ctx                  ctx;
	Discovery__V1__Response *r        = NULL;
	int64_t                  deadline = dsi_monotonic_ms() + c->timeout_ms;
	int                      rv;

	if (c->n > 1 && atomic_load(&d->pipes) == 0
	    && (rv = probe_node(d, c->timeout_ms < PROBE_MS ? c->timeout_ms : PROBE_MS)) != 0) {
		/* Not connected, and a fresh connection fails too: skip it without waiting. */
		nng_msg_free(msg);
		dsi_fail(err, rv, "cannot connect to %s (%s)", d->url, dsc_strerror(rv));
		return FATE_UNSENT;
	}
	if ((rv = nng_ctx_open(&ctx, d->sock)) != 0) {
		nng_msg_free(msg);
		dsi_fail(err, dsi_err_from_nng(rv), "%s", nng_strerror(rv));
		return FATE_FINAL;
	}
	nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		nng_msg_free(msg);
		nng_ctx_close(ctx);
		dsi_fail(err, dsi_err_from_nng(rv), "%s", nng_strerror(rv));
		return FATE_FINAL;
	}
	nng_aio_set_msg(aio, msg);
	call k    = { NULL, aio };
	bool sent = false;
	call_link(c, &k);
	if ((rv = aio_step(c, aio, ctx, true, deadline)) != 0) {
		nng_msg_free(nng_aio_get_msg(aio)); /* a failed send leaves it to us */
	} else {
		sent = true;
		rv   = aio_step(c, aio, ctx, false, deadline);
	}
	call_unlink(c, &k);
	if (rv != 0) {
		nng_aio_free(aio);
		nng_ctx_close(ctx);
		if (rv == NNG_ECLOSED || atomic_load(&c->shut)) {
			dsi_fail(err, DSC_ECLOSED, "%s", dsc_strerror(DSC_ECLOSED));
			return FATE_FINAL;
		}
		if (rv == NNG_ETIMEDOUT && atomic_load(&d->pipes) == 0) {
			dsi_fail(err, DSC_ECONNREFUSED, "cannot connect to %s%s", d->url,
			    d->tls ? " (or the TLS handshake fails)" : "");
			return FATE_UNSENT;
		}
		dsi_fail(err, dsi_err_from_nng(rv), "%s: %s", d->url,
		    rv == NNG_ETIMEDOUT ? "no reply in time" : nng_strerror(rv));
		return sent ? FATE_MAYBE : FATE_UNSENT;
	}
	msg = nng_aio_get_msg(aio);
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	rv = dsi_unpack(&discovery__v1__response__descriptor, nng_msg_body(msg), nng_msg_len(msg),
	    (ProtobufCMessage **) &r);
	nng_msg_free(msg);
	if (rv != 0) {
		dsi_fail(err, DSC_EPROTO, "the reply from %s is not a Response", d->url);
		return FATE_FINAL;
	}
	*resp = r;
	return r->status == DISCOVERY__V1__STATUS_CODE__STATUS_UNAVAILABLE ? FATE_BUSY
	                                                                   : FATE_ANSWER;
}

/*
 * Whether a call may be sent again after it may have run: every call of
 * this protocol is idempotent (docs/protocol.md). A call added later that
 * is not must return false here; it then moves on only when unsent.
 */
static bool
idempotent(Discovery__V1__Request__CallCase which)
{
	switch (which) {
	case DISCOVERY__V1__REQUEST__CALL_REGISTER:
	case DISCOVERY__V1__REQUEST__CALL_RESOLVE:
	case DISCOVERY__V1__REQUEST__CALL_DEREGISTER:
	case DISCOVERY__V1__REQUEST__CALL_IS_HEALTHY:
	case DISCOVERY__V1__REQUEST__CALL_GET_ALL:
	case DISCOVERY__V1__REQUEST__CALL_HEARTBEAT:
	case DISCOVERY__V1__REQUEST__CALL_SERVER_STATUS:
		return true;
	default:
		return false;
	}
}

/* Appends "; <this attempt's message>" to the list of servers tried. */
static void
tried_add(char *buf, size_t len, const dsc_error *one)
{
	size_t n = strlen(buf);
	if (n + 1 < len) {
		snprintf(buf + n, len - n, "%s%s", n > 0 ? "; " : "", one->message);
	}
}

int
dsi_client_roundtrip(
    dsc_client *c, Discovery__V1__Request *req, Discovery__V1__Response **resp, dsc_error *err)
{
	Discovery__V1__Response *r                           = NULL;
	size_t                   from                        = atomic_load(&c->current);
	char                     tried[sizeof(err->message)] = "";
	dsc_error                one                         = { 0, "" };
	fate                     f                           = FATE_FINAL;
	size_t                   k;
	int                      rv;

	req->auth_token   = c->token != NULL ? c->token : (char *) "";
	req->min_revision = min_revision(c);
	for (k = 0; k < c->n; k++) {
		size_t   i = (from + k) % c->n;
		nng_msg *m = NULL;
		/* Each attempt its own deadline: a server never applies a write given up on. */
		req->deadline_ms = dsi_wall_ms() + c->timeout_ms;
		if ((rv = dsi_pack(&req->base, &m)) != 0) {
			return dsi_fail(err, rv, "%s", dsc_strerror(rv));
		}
		r = NULL;
		f = attempt(c, &c->nodes[i], m, &r, &one);
		/* Resolve's UNAVAILABLE: no healthy instance, an answer; unless it is below
		 * the call's min_revision, which says that server is behind. */
		if (f == FATE_BUSY && req->call_case == DISCOVERY__V1__REQUEST__CALL_RESOLVE
		    && r->revision >= req->min_revision) {
			f = FATE_ANSWER;
		}
		if (f == FATE_ANSWER || f == FATE_FINAL
		    || ((f == FATE_MAYBE || f == FATE_BUSY) && !idempotent(req->call_case))) {
			break;
		}
		if (f == FATE_BUSY) {
			dsi_fail(&one, DSC_EUNAVAILABLE, "%s: %s", c->nodes[i].url, r->message);
			if (k + 1 < c->n) {
				protobuf_c_message_free_unpacked(&r->base, NULL);
				r = NULL;
			}
		}
		tried_add(tried, sizeof(tried), &one);
	}
	if (r == NULL) {
		/* No Response to hand back: one server's own words, or every server's. */
		if (c->n == 1 || f == FATE_FINAL) {
			return dsi_fail(err, one.code, "%s", one.message);
		}
		return dsi_fail(err, one.code, "no server answered (%zu tried): %s", c->n, tried);
	}
	if (k < c->n) {
		atomic_store(&c->current, (from + k) % c->n); /* stay where it answered */
	}
	/*
	 * Every Response records its revision, error statuses included (a
	 * NOT_FOUND is "absent as of R"); a call without a Response leaves it.
	 */
	atomic_store(&c->revision, r->revision);
	if (r->status != DISCOVERY__V1__STATUS_CODE__STATUS_OK) {
		rv = c->n > 1 && k == c->n
		    ? dsi_fail(
		        err, DSC_EUNAVAILABLE, "no server answered (%zu tried): %s", c->n, tried)
		    : dsi_fail(err, dsi_err_from_status(r->status), "%s", r->message);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return rv;
	}
	if ((unsigned) r->result_case != (unsigned) req->call_case) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return dsi_fail(err, DSC_EPROTO, "the reply from %s answers another call",
		    c->nodes[(from + k) % c->n].url);
	}
	wrote_at(c, req, r->revision);
	*resp = r;
	return 0;
}
