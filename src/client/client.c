/*
 * libdiscovery: each call packs a Request, runs it on its own REQ context
 * with an explicit deadline, and copies the Response into caller-owned
 * structs. The socket dials in the background and redials after a restart
 * (how it dials, TLS included, is client/dial.c).
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
#include "common/codec.h"
#include "common/nngutil.h"
#include "common/request.h"
#include "common/status.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "common/tls.h"

#define DEFAULT_TIMEOUT_MS 5000

/* One call in flight, linked into its client so a shutdown can cancel it. */
typedef struct call {
	struct call *next;
	nng_aio     *aio;
} call;

struct dsc_client {
	nng_socket       sock;
	int32_t          timeout_ms;
	char            *token;
	char             url[256];
	pthread_mutex_t  mtx; /* with cv: waiting for the first pipe */
	pthread_cond_t   cv;
	_Atomic int      pipes;     /* connected pipes, to tell "unreachable" from "slow" */
	bool             added;     /* under mtx: some pipe was ever added */
	int              rejected;  /* under mtx: pipes dropped before any was added */
	_Atomic uint64_t revision;  /* from the last successful reply */
	_Atomic bool     shut;      /* dsi_client_shutdown was called */
	bool             tls;       /* the URL is tls+: a failed handshake looks like no server */
	pthread_mutex_t  calls_mtx; /* guards calls, and the start of every call step */
	struct call     *calls;     /* calls in flight, for dsi_client_shutdown to cancel */
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
	dsc_client *c = arg;
	(void) p;
	pthread_mutex_lock(&c->mtx);
	/*
	 * nng 1.5.2 reports REM_POST for a pipe it dropped in negotiation (a
	 * peer of another protocol, such as the PUB port) without its ADD_POST.
	 */
	if (ev == NNG_PIPE_EV_ADD_POST) {
		c->added = true;
		atomic_fetch_add(&c->pipes, 1);
	} else if (c->added) {
		atomic_fetch_add(&c->pipes, -1);
	} else {
		c->rejected++;
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mtx);
}

/*
 * Connects within the client's timeout or fails. A plain blocking nng_dial
 * can hang for nng's own handshake timeout on a stopped server, so probe
 * the address with a bounded connection first (a closed port fails at
 * once, a refused TLS handshake too), then dial in the background and
 * wait, bounded, for the pipe.
 */
static int
connect_now(dsc_client *c, const char *url, nng_tls_config *tls)
{
	int64_t deadline = dsi_monotonic_ms() + c->timeout_ms;
	int     rv;

	if ((rv = dsi_probe(url, tls, c->timeout_ms)) != 0
	    || (rv = dsi_dial(c->sock, url, tls)) != 0) {
		return rv;
	}
	pthread_mutex_lock(&c->mtx);
	while (atomic_load(&c->pipes) == 0 && c->rejected == 0 && dsi_monotonic_ms() < deadline) {
		struct timespec ts;
		dsi_realtime_after(&ts, deadline - dsi_monotonic_ms());
		pthread_cond_timedwait(&c->cv, &c->mtx, &ts);
	}
	/* A dropped pipe: the peer answered, but not as a REP socket. */
	rv = atomic_load(&c->pipes) > 0 ? 0 : c->rejected > 0 ? DSC_EPROTO : DSC_ETIMEDOUT;
	pthread_mutex_unlock(&c->mtx);
	return rv;
}

int
dsc_client_open(dsc_client **out, const char *url, const dsc_client_options *opts)
{
	dsc_client_options def;
	dsc_client        *c;
	nng_tls_config    *tls = NULL;
	int                rv;

	if (out == NULL || url == NULL || url[0] == 0) {
		return DSC_EINVAL;
	}
	if (opts == NULL) {
		dsc_client_options_init(&def);
		opts = &def;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return DSC_ENOMEM;
	}
	c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	dsi_strlcpy(c->url, url, sizeof(c->url));
	if (opts->auth_token != NULL && (c->token = strdup(opts->auth_token)) == NULL) {
		free(c);
		return DSC_ENOMEM;
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		free(c->token);
		free(c);
		return dsi_err_from_nng(rv);
	}
	pthread_mutex_init(&c->mtx, NULL);
	pthread_mutex_init(&c->calls_mtx, NULL);
	pthread_cond_init(&c->cv, NULL);
	/*
	 * nng resends a request after 60 s by default, so a slow call would run
	 * twice on the server. Calls have their own deadline instead.
	 */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_cb, c);

	c->tls = dsi_url_is_tls(url);
	rv     = dsi_client_tls(&tls, url, &opts->tls, NULL, 0); /* dsc_tls_check says why */
	if (rv == 0 && opts->require_connection) {
		rv = connect_now(c, url, tls);
	} else if (rv == 0) {
		/* Dial in the background: the client works once the server is up. */
		rv = dsi_dial(c->sock, url, tls);
	}
	if (tls != NULL) {
		nng_tls_config_free(tls);
	}
	if (rv != 0) {
		nng_close(c->sock);
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mtx);
		pthread_mutex_destroy(&c->calls_mtx);
		free(c->token);
		free(c);
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

/* What dsc_client_close releases once the socket is closed. */
static void
client_free(void *arg)
{
	dsc_client *c = arg;
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mtx);
	pthread_mutex_destroy(&c->calls_mtx);
	free(c->token);
	free(c);
}

void
dsc_client_close(dsc_client *c)
{
	if (c != NULL) {
		dsi_client_shutdown(c);
		/*
		 * No call runs now. If nng 1.5.2 wedges the close, its pipe callbacks
		 * may still touch c: c is freed when the close ends, if it ever does,
		 * and is otherwise left to the process exit.
		 */
		if (dsi_close_bounded_then(c->sock, DSI_CLOSE_BOUND_MS, NULL, client_free, c)) {
			client_free(c);
		}
	}
}

uint64_t
dsc_client_revision(const dsc_client *c)
{
	return atomic_load(&((dsc_client *) c)->revision);
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

/*
 * The one round trip every call makes. On success *resp is the server's
 * OK answer (free with protobuf_c_message_free_unpacked); otherwise err
 * says why.
 */
static int
roundtrip(
    dsc_client *c, Discovery__V1__Request *req, Discovery__V1__Response **resp, dsc_error *err)
{
	nng_aio                 *aio = NULL;
	nng_ctx                  ctx;
	nng_msg                 *msg      = NULL;
	Discovery__V1__Response *r        = NULL;
	int64_t                  deadline = dsi_monotonic_ms() + c->timeout_ms;
	int                      rv;

	req->auth_token = c->token != NULL ? c->token : (char *) "";
	if ((rv = dsi_pack(&req->base, &msg)) != 0) {
		return dsi_fail(err, rv, "%s", dsc_strerror(rv));
	}
	if ((rv = nng_ctx_open(&ctx, c->sock)) != 0) {
		nng_msg_free(msg);
		return dsi_fail(err, dsi_err_from_nng(rv), "%s", nng_strerror(rv));
	}
	nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		nng_msg_free(msg);
		nng_ctx_close(ctx);
		return dsi_fail(err, dsi_err_from_nng(rv), "%s", nng_strerror(rv));
	}
	nng_aio_set_msg(aio, msg);
	call k = { NULL, aio };
	call_link(c, &k);
	if ((rv = aio_step(c, aio, ctx, true, deadline)) != 0) {
		nng_msg_free(nng_aio_get_msg(aio)); /* a failed send leaves it to us */
	} else {
		rv = aio_step(c, aio, ctx, false, deadline);
	}
	call_unlink(c, &k);
	if (rv != 0) {
		nng_aio_free(aio);
		nng_ctx_close(ctx);
		if (rv == NNG_ETIMEDOUT && atomic_load(&c->pipes) == 0) {
			return dsi_fail(err, DSC_ECONNREFUSED, "cannot connect to %s%s", c->url,
			    c->tls ? " (or the TLS handshake fails)" : "");
		}
		return dsi_fail(err, dsi_err_from_nng(rv), "%s: %s", c->url,
		    rv == NNG_ETIMEDOUT ? "no reply in time" : nng_strerror(rv));
	}
	msg = nng_aio_get_msg(aio);
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	rv = dsi_unpack(&discovery__v1__response__descriptor, nng_msg_body(msg), nng_msg_len(msg),
	    (ProtobufCMessage **) &r);
	nng_msg_free(msg);
	if (rv != 0) {
		return dsi_fail(err, DSC_EPROTO, "the reply from %s is not a Response", c->url);
	}
	/*
	 * Every Response records its revision, error statuses included (a
	 * NOT_FOUND is "absent as of R"); a call without a Response leaves it.
	 */
	atomic_store(&c->revision, r->revision);
	if (r->status != DISCOVERY__V1__STATUS_CODE__STATUS_OK) {
		rv = dsi_fail(err, dsi_err_from_status(r->status), "%s", r->message);
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return rv;
	}
	if ((unsigned) r->result_case != (unsigned) req->call_case) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return dsi_fail(err, DSC_EPROTO, "the reply from %s answers another call", c->url);
	}
	*resp = r;
	return 0;
}

/* ---- copies out of the wire types ---- */

/* Hands a copy of src to *out when the caller wants one. */
static int
instance_out(const Discovery__V1__Instance *src, dsc_instance **out, dsc_error *err)
{
	dsc_instance *x;
	if (out == NULL) {
		return 0;
	}
	if (src == NULL) {
		return dsi_fail(err, DSC_EPROTO, "the reply carries no instance");
	}
	if ((x = malloc(sizeof(*x))) == NULL || dsi_inst_from_pb(x, src) != 0) {
		free(x);
		return dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
	}
	*out = x;
	return 0;
}

/* ---- the calls ---- */

static int
need(const char *s, const char *what, dsc_error *err)
{
	if (s == NULL || s[0] == 0) {
		return dsi_fail(err, DSC_EINVAL, "%s is required", what);
	}
	return 0;
}

static char *
or_empty(const char *s)
{
	return (char *) (s != NULL ? s : "");
}

int
dsc_register(dsc_client *c, const dsc_registration *reg, dsc_instance **out, dsc_error *err)
{
	Discovery__V1__Request  *req  = NULL;
	Discovery__V1__Response *resp = NULL;
	int                      rv;

	if (c == NULL || reg == NULL) {
		return dsi_fail(err, DSC_EINVAL, "client and registration are required");
	}
	if ((rv = need(reg->service, "service", err)) != 0
	    || (rv = need(reg->endpoint, "endpoint", err)) != 0) {
		return rv;
	}
	if ((rv = dsi_request_register_new(&req, reg)) != 0) {
		return dsi_fail(err, rv, "%s",
		    rv == DSC_EINVAL ? "metadata is required when n_metadata > 0"
		                     : dsc_strerror(rv));
	}
	rv = roundtrip(c, req, &resp, err);
	dsi_request_free(req);
	if (rv == 0) {
		rv = instance_out(resp->register_->instance, out, err);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rv;
}

int
dsc_resolve(
    dsc_client *c, const char *service, bool healthy_only, dsc_instance **out, dsc_error *err)
{
	Discovery__V1__Request        req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__ResolveRequest rr  = DISCOVERY__V1__RESOLVE_REQUEST__INIT;
	Discovery__V1__Response      *resp;
	int                           rv;

	if (c == NULL || (rv = need(service, "service", err)) != 0) {
		return c == NULL ? dsi_fail(err, DSC_EINVAL, "client is required") : rv;
	}
	rr.service      = (char *) service;
	rr.healthy_only = healthy_only;
	req.call_case   = DISCOVERY__V1__REQUEST__CALL_RESOLVE;
	req.resolve     = &rr;
	if ((rv = roundtrip(c, &req, &resp, err)) == 0) {
		rv = instance_out(resp->resolve->instance, out, err);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rv;
}

int
dsc_deregister(
    dsc_client *c, const char *service, const char *endpoint, uint32_t *removed, dsc_error *err)
{
	Discovery__V1__Request           req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__DeregisterRequest dr  = DISCOVERY__V1__DEREGISTER_REQUEST__INIT;
	Discovery__V1__Response         *resp;
	int                              rv;

	if (c == NULL || (rv = need(service, "service", err)) != 0) {
		return c == NULL ? dsi_fail(err, DSC_EINVAL, "client is required") : rv;
	}
	dr.service     = (char *) service;
	dr.endpoint    = or_empty(endpoint);
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_DEREGISTER;
	req.deregister = &dr;
	if ((rv = roundtrip(c, &req, &resp, err)) == 0) {
		if (removed != NULL) {
			*removed = resp->deregister->removed;
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rv;
}

int
dsc_is_healthy(dsc_client *c, const char *service, const char *endpoint, bool *healthy,
    dsc_health *state, dsc_error *err)
{
	Discovery__V1__Request          req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__IsHealthyRequest hr  = DISCOVERY__V1__IS_HEALTHY_REQUEST__INIT;
	Discovery__V1__Response        *resp;
	int                             rv;

	if (c == NULL || (rv = need(service, "service", err)) != 0) {
		return c == NULL ? dsi_fail(err, DSC_EINVAL, "client is required") : rv;
	}
	hr.service     = (char *) service;
	hr.endpoint    = or_empty(endpoint);
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_IS_HEALTHY;
	req.is_healthy = &hr;
	if ((rv = roundtrip(c, &req, &resp, err)) == 0) {
		if (healthy != NULL) {
			*healthy = resp->is_healthy->healthy;
		}
		if (state != NULL) {
			*state = (dsc_health) resp->is_healthy->state;
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rv;
}

int
dsc_get_all(dsc_client *c, const char *service, dsc_instance_list **out, dsc_error *err)
{
	Discovery__V1__Request       req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__GetAllRequest gr  = DISCOVERY__V1__GET_ALL_REQUEST__INIT;
	Discovery__V1__Response     *resp;
	dsc_instance_list           *list = NULL;
	int                          rv;

	if (c == NULL) {
		return dsi_fail(err, DSC_EINVAL, "client is required");
	}
	gr.service    = or_empty(service);
	req.call_case = DISCOVERY__V1__REQUEST__CALL_GET_ALL;
	req.get_all   = &gr;
	if ((rv = roundtrip(c, &req, &resp, err)) != 0) {
		return rv;
	}
	if (out == NULL) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return 0;
	}
	const Discovery__V1__GetAllResponse *g = resp->get_all;
	if ((list = calloc(1, sizeof(*list))) == NULL
	    || (g->n_instances > 0
	        && (list->items = calloc(g->n_instances, sizeof(*list->items))) == NULL)) {
		rv = dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
	}
	for (size_t i = 0; rv == 0 && i < g->n_instances; i++) {
		if (dsi_inst_from_pb(&list->items[i], g->instances[i]) != 0) {
			rv = dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
		} else {
			list->count = i + 1;
		}
	}
	if (list != NULL) {
		list->revision = g->revision;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (rv != 0) {
		dsc_instance_list_free(list);
		return rv;
	}
	*out = list;
	return 0;
}

int
dsc_heartbeat(
    dsc_client *c, const char *service, const char *endpoint, dsc_instance **out, dsc_error *err)
{
	Discovery__V1__Request          req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__HeartbeatRequest hr  = DISCOVERY__V1__HEARTBEAT_REQUEST__INIT;
	Discovery__V1__Response        *resp;
	int                             rv;

	if (c == NULL || (rv = need(service, "service", err)) != 0
	    || (rv = need(endpoint, "endpoint", err)) != 0) {
		return c == NULL ? dsi_fail(err, DSC_EINVAL, "client is required") : rv;
	}
	hr.service    = (char *) service;
	hr.endpoint   = (char *) endpoint;
	req.call_case = DISCOVERY__V1__REQUEST__CALL_HEARTBEAT;
	req.heartbeat = &hr;
	if ((rv = roundtrip(c, &req, &resp, err)) == 0) {
		rv = instance_out(resp->heartbeat->instance, out, err);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rv;
}

int
dsi_client_roundtrip(
    dsc_client *c, Discovery__V1__Request *req, Discovery__V1__Response **resp, dsc_error *err)
{
	return roundtrip(c, req, resp, err);
}
