/*
 * Request dispatch. Every request takes the same path: decode, find its
 * kind in one table, validate the fields common to all kinds in one place,
 * run the kind's handler, encode the Response.
 */
#include "server/dispatch.h"
#include "server/dispatch_impl.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/codec.h"
#include "common/error.h"
#include "common/nngutil.h"
#include "server/endpoint.h"
#include "server/revwait.h"
#include "common/name.h"
#include "common/status.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/validate.h"

#define TOKEN_FIELD 1 /* Request.auth_token */

/* Which of the common fields a kind takes. */
enum {
	NEED_SERVICE  = 1u << 0, /* field 1, required */
	OPT_SERVICE   = 1u << 1, /* field 1, may be empty */
	NEED_ENDPOINT = 1u << 2, /* field 2, required */
	OPT_ENDPOINT  = 1u << 3, /* field 2, may be empty */
	WRITES        = 1u << 4, /* changes the registry */
};

typedef int (*handler_fn)(dsi_call *c);
typedef int (*prepare_fn)(dsi_call *c, uint32_t pending_service, uint32_t pending_total);

/*
 * The one table from call kind to handler; the oneof numbers are shared.
 * check validates what validate_common does not, on the receiving thread.
 * With a writer, a write's prepare decides it on the writer thread, and
 * commit applies that decision after the file's commit (under the writer's
 * apply mutex: memory only); without one, run (prepare and commit in one)
 * follows check at once.
 */
static const struct kind {
	Discovery__V1__Request__CallCase call;
	const char                      *name;
	unsigned                         flags;
	handler_fn                       check;
	prepare_fn                       prepare;
	handler_fn                       commit;
	handler_fn                       run;
} kinds[] = {
	{ DISCOVERY__V1__REQUEST__CALL_REGISTER, "register", NEED_SERVICE | NEED_ENDPOINT | WRITES,
	    dsi_call_check_register, dsi_call_prepare_register, dsi_call_commit_register,
	    dsi_call_do_register },
	{ DISCOVERY__V1__REQUEST__CALL_RESOLVE, "resolve", NEED_SERVICE, NULL, NULL, NULL,
	    dsi_call_do_resolve },
	{ DISCOVERY__V1__REQUEST__CALL_DEREGISTER, "deregister",
	    NEED_SERVICE | OPT_ENDPOINT | WRITES, NULL, dsi_call_prepare_deregister,
	    dsi_call_commit_deregister, dsi_call_do_deregister },
	{ DISCOVERY__V1__REQUEST__CALL_IS_HEALTHY, "is_healthy", NEED_SERVICE | OPT_ENDPOINT, NULL,
	    NULL, NULL, dsi_call_do_is_healthy },
	{ DISCOVERY__V1__REQUEST__CALL_GET_ALL, "get_all", OPT_SERVICE, NULL, NULL, NULL,
	    dsi_call_do_get_all },
	/* Nothing to store: heartbeats are not stored, but keep their order with the writes. */
	{ DISCOVERY__V1__REQUEST__CALL_HEARTBEAT, "heartbeat",
	    NEED_SERVICE | NEED_ENDPOINT | WRITES, NULL, dsi_call_prepare_heartbeat,
	    dsi_call_commit_heartbeat, dsi_call_do_heartbeat },
	{ DISCOVERY__V1__REQUEST__CALL_SERVER_STATUS, "status", 0, NULL, NULL, NULL,
	    dsi_call_do_status },
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const struct kind *
kind_find(Discovery__V1__Request__CallCase cc)
{
	for (size_t i = 0; i < NKINDS; i++) {
		if (kinds[i].call == cc) {
			return &kinds[i];
		}
	}
	return NULL;
}

/* The message a oneof member points to, found through the descriptor. */
static ProtobufCMessage **
oneof_slot(const ProtobufCMessage *m, unsigned number)
{
	const ProtobufCFieldDescriptor *f
	    = protobuf_c_message_descriptor_get_field(m->descriptor, number);
	return (ProtobufCMessage **) ((char *) m + f->offset);
}

/* A string field of a sub-request by number; "" when absent. */
static const char *
string_field(const ProtobufCMessage *m, unsigned number)
{
	const ProtobufCFieldDescriptor *f
	    = protobuf_c_message_descriptor_get_field(m->descriptor, number);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING) {
		return "";
	}
	const char *s = *(const char *const *) ((const char *) m + f->offset);
	return s == NULL ? "" : s;
}

/* Validates service (field 1) and endpoint (field 2) as the kind requires. */
static int
validate_common(dsi_call *c, const struct kind *k)
{
	const char *svc = string_field(c->req, 1);
	const char *ep  = string_field(c->req, 2);
	int         rv;

	if (svc[0] != 0 || (k->flags & NEED_SERVICE)) {
		rv = dsi_name_normalize(svc, c->service, c->message, sizeof(c->message));
		if (rv != 0) {
			return rv;
		}
		c->service_or_null = c->service;
	}
	/* Kinds without an endpoint have no string field 2: ep is "" for them. */
	if (ep[0] != 0 || (k->flags & NEED_ENDPOINT)) {
		rv = dsi_endpoint_validate(ep, c->message, sizeof(c->message));
		if (rv != 0) {
			return rv;
		}
		c->endpoint = ep;
	}
	return 0;
}

/* ---- the entry point ---- */

/* Why a request with no known call failed: empty, or a call we do not know. */
static int
no_call(const Discovery__V1__Request *req, char *msg, size_t n)
{
	for (size_t i = 0; i < req->base.n_unknown_fields; i++) {
		if (req->base.unknown_fields[i].tag >= 10) {
			snprintf(msg, n,
			    "unknown call (field %u): this server does not implement it",
			    req->base.unknown_fields[i].tag);
			return DSC_ENOTSUP;
		}
	}
	snprintf(msg, n, "request has no call set");
	return DSC_EINVAL;
}

/*
 * With a token configured, writes (and reads, with --auth-reads) need it: a
 * missing token is UNAUTHENTICATED, a wrong one PERMISSION_DENIED.
 */
static int
authorize(const dsi_dispatch *d, const struct kind *k, const char *token, bool token_nul, char *msg,
    size_t n)
{
	const char *want = atomic_load(&d->token); /* once: a reload may swap it */
	if (want == NULL || (!(k->flags & WRITES) && !d->auth_reads)) {
		return 0;
	}
	if (token_nul) { /* decoded, it is only what comes before the 0 */
		snprintf(msg, n, "the auth token was not accepted: it holds a NUL byte");
		return DSC_EPERM;
	}
	if (token == NULL || token[0] == 0) {
		snprintf(msg, n, "%s needs an auth token (Request.auth_token)", k->name);
		return DSC_EAUTH;
	}
	if (!dsi_secret_equal(token, want)) {
		snprintf(msg, n, "the auth token was not accepted");
		return DSC_EPERM;
	}
	return 0;
}

/*
 * A write that changed the registry, in the log, with fields for structured
 * formats; "from PEER" when it came over a connection (not at start-up).
 */
static void
log_write(const dsi_call *c)
{
	char          esc[96], from[96] = "";
	bool          reg = c->k->call == DISCOVERY__V1__REQUEST__CALL_REGISTER;
	dsi_log_field f[]
	    = { DSI_LOG_STR("event", reg ? (c->created ? "register" : "update") : "deregister"),
		      DSI_LOG_STR("service", c->service), DSI_LOG_STR("endpoint", c->endpoint),
		      DSI_LOG_NUM("revision", c->revision), DSI_LOG_NUM("removed", c->removed),
		      DSI_LOG_STR("peer", c->peer) };
	size_t n = sizeof(f) / sizeof(f[0]) - (c->peer[0] == 0);
	if (c->peer[0] != 0) {
		snprintf(from, sizeof(from), " from %s", c->peer);
	}
	if (reg) {
		f[4] = f[5]; /* no "removed" */
		dsi_logf_fields(c->d->log, DSI_LOG_INFO, f, n - 1, "%s %s %s (revision %llu)%s",
		    c->created ? "registered" : "updated", c->service,
		    dsi_text_escape(c->endpoint, esc, sizeof(esc)),
		    (unsigned long long) c->revision, from);
	} else if (c->k->call == DISCOVERY__V1__REQUEST__CALL_DEREGISTER) {
		dsi_logf_fields(c->d->log, DSI_LOG_INFO, f, n,
		    "deregistered %s %s: %u removed (revision %llu)%s", c->service,
		    c->endpoint ? dsi_text_escape(c->endpoint, esc, sizeof(esc)) : "(all)",
		    c->removed, (unsigned long long) c->revision, from);
	}
}

/*
 * Encodes the Response, hands it to done, and frees the call. Runs with
 * no lock of ours held: the writer calls it after releasing its own.
 */
static void
finish(dsi_call *c, int rv)
{
	Discovery__V1__Response resp  = DISCOVERY__V1__RESPONSE__INIT;
	const struct kind      *k     = c->k;
	nng_msg                *reply = NULL;

	assert(dsi_writer_locks_held() == 0);
	if (rv == 0 && k != NULL && (k->flags & WRITES)) {
		log_write(c);
	}
	if (rv == DSC_ENOTFOUND && c->message[0] == 0) {
		char esc[96];
		if (c->endpoint != NULL && k->call != DISCOVERY__V1__REQUEST__CALL_DEREGISTER) {
			snprintf(c->message, sizeof(c->message), "service %s has no instance %s",
			    c->service, dsi_text_escape(c->endpoint, esc, sizeof(esc)));
		} else {
			snprintf(c->message, sizeof(c->message), "service %s is not registered",
			    c->service);
		}
	}
	if (rv != 0) {
		if (c->message[0] == 0) {
			snprintf(c->message, sizeof(c->message), "%s", dsi_strerror(rv));
		}
		c->revision = dsi_registry_revision(c->d->registry);
		dsi_debug(c->d->log, "%s failed: %s", k != NULL ? k->name : "request", c->message);
	} else {
		resp.result_case = (Discovery__V1__Response__ResultCase) k->call;
		*oneof_slot(&resp.base, (unsigned) k->call) = (ProtobufCMessage *) &c->out;
	}
	resp.status   = dsi_status_from_err(rv);
	resp.message  = rv != 0 ? c->message : (char *) "";
	resp.revision = c->revision;
	dsi_metrics_request(
	    c->d->metrics, k != NULL ? (unsigned) k->call : 0, (unsigned) resp.status, c->start_ns);
	if (dsi_pack(&resp.base, &reply) != 0) {
		reply = NULL;
	}

	dsi_reply_fn done = c->done;
	void        *arg  = c->done_arg;
	if (k != NULL && k->call == DISCOVERY__V1__REQUEST__CALL_SERVER_STATUS) {
		dsi_statusinfo_clear(&c->out.status); /* its listeners array, filled or not */
	}
	free(c->one);
	dsi_instances_free(&c->many);
	free(c->kv);
	dsi_registry_op_free(c->w.op);
	if (c->msg != NULL) {
		protobuf_c_message_free_unpacked(&c->msg->base, NULL);
	}
	free(c);
	done(arg, reply);
}

static int
prepare_write(dsi_write *w, uint32_t pending_service, uint32_t pending_total)
{
	dsi_call *c   = (dsi_call *) w;
	int64_t   now = dsi_wall_ms();
	/*
	 * Decided (again, after a lost race) only while the client still waits:
	 * one that gave up may have sent it elsewhere and written on since, and
	 * this copy must not overtake those writes.
	 */
	if (c->msg->deadline_ms > 0 && now > c->msg->deadline_ms) {
		snprintf(c->message, sizeof(c->message),
		    "the request waited past its deadline (%lld ms ago) and was not applied",
		    (long long) (now - c->msg->deadline_ms));
		return DSC_EUNAVAILABLE;
	}
	return c->k->prepare != NULL ? c->k->prepare(c, pending_service, pending_total) : 0;
}

/* Under the writer's apply mutex: commit the prepared change, or keep the error. */
static void
apply_write(dsi_write *w, int rv, const char *why)
{
	dsi_call *c = (dsi_call *) w;
	if (why != NULL) {
		snprintf(c->message, sizeof(c->message), "%s", why);
	} else if (rv == 0) {
		rv = c->k->commit(c);
	}
	dsi_registry_op_free(c->w.op); /* not committed: the commit failed */
	c->w.op   = NULL;
	c->result = rv;
}

static void
reply_write(dsi_write *w)
{
	dsi_call *c = (dsi_call *) w;
	finish(c, c->result);
}

/* A checked call that may run now: through the writer, or at once. */
static void
proceed(dsi_call *c)
{
	const dsi_dispatch *d  = c->d;
	const struct kind  *k  = c->k;
	int                 rv = 0;

	if ((k->flags & WRITES) && d->writer != NULL) {
		c->w.service  = c->service;
		c->w.endpoint = c->endpoint;
		c->w.prepare  = prepare_write;
		c->w.apply    = apply_write;
		c->w.reply    = reply_write;
		dsi_writer_submit(d->writer, &c->w); /* answered after the commit */
		return;
	}
	rv = k->run(c);
	if ((k->flags & WRITES) && rv == 0 && d->after_write != NULL) {
		d->after_write(d->after_write_arg); /* publish the change now */
	}
	finish(c, rv);
}

/* The end of a call's wait for its min_revision: 0, or UNAVAILABLE with the message. */
static void
resume(void *arg, int rv)
{
	dsi_call *c = arg;
	if (rv == 0) {
		proceed(c);
	} else {
		finish(c, rv);
	}
}

void
dsi_dispatch_begin(const dsi_dispatch *d, const void *buf, size_t len, dsi_reply_fn done, void *arg)
{
	dsi_dispatch_begin_from(d, buf, len, (nng_pipe) NNG_PIPE_INITIALIZER, done, arg);
}

void
dsi_dispatch_begin_from(
    const dsi_dispatch *d, const void *buf, size_t len, nng_pipe pipe, dsi_reply_fn done, void *arg)
{
	dsi_call *c = calloc(1, sizeof(*c));
	int       rv;

	if (c == NULL) {
		done(arg, NULL);
		return;
	}
	c->d        = d;
	c->start_ns = dsi_metrics_now_ns();
	c->done     = done;
	c->done_arg = arg;
	if (len == 0) {
		rv = DSC_EINVAL;
		snprintf(c->message, sizeof(c->message), "empty request");
	} else if ((rv = dsi_validate_request_bytes(
	                d->limits, buf, len, &c->scan, c->message, sizeof(c->message)))
	    != 0) {
		/* refused before decoding */
	} else if (dsi_unpack(
	               &discovery__v1__request__descriptor, buf, len, (ProtobufCMessage **) &c->msg)
	    != 0) {
		rv = DSC_EINVAL;
		snprintf(c->message, sizeof(c->message),
		    "request is not a discovery.v1.Request message (%zu bytes)", len);
	} else if ((c->k = kind_find(c->msg->call_case)) == NULL) {
		rv = no_call(c->msg, c->message, sizeof(c->message));
	} else {
		const struct kind *k = c->k;
		c->req               = *oneof_slot(&c->msg->base, (unsigned) k->call);
		rv                   = authorize(d, k, c->msg->auth_token,
		                      (c->scan.nul_top & (UINT64_C(1) << TOKEN_FIELD)) != 0, c->message,
		                      sizeof(c->message));
		if (rv == 0 && c->scan.nul_top != 0) {
			/* Decoded, the string would be cut short at the 0 without a trace. */
			snprintf(c->message, sizeof(c->message),
			    "%s holds a NUL byte: strings may not contain one", c->scan.nul_path);
			rv = DSC_EINVAL;
		}
		if (rv == 0) {
			rv = validate_common(c, k);
		}
		if (rv == 0 && k->check != NULL) {
			rv = k->check(c);
		}
		/* The writer's address, for log_write (heartbeats are not logged). */
		nng_sockaddr sa;
		if (rv == 0 && k->call != DISCOVERY__V1__REQUEST__CALL_HEARTBEAT
		    && (k->flags & WRITES) && nng_pipe_id(pipe) > 0
		    && nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) == 0) {
			dsi_sockaddr_text(&sa, c->peer, sizeof(c->peer));
		}
		if (rv == 0 && c->msg->min_revision > 0
		    && dsi_revwait_park(d->revwait, d->registry, c->msg->min_revision, &rv,
		        c->message, sizeof(c->message), resume, c)) {
			return; /* resumed by the registry's change or the wait's end */
		}
		if (rv == 0) {
			proceed(c);
			return;
		}
	}
	finish(c, rv);
}
