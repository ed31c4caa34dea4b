/*
 * The etcd backend: keys, the journal, loading, and the writer's
 * transactions (see etcd_backend.h; the follower is etcd_follow.c).
 */
#include "server/etcd_backend.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/container_of.h"
#include "common/error.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "cluster/member.h"
#include "server/etcd_backend_impl.h"

/* How long unhold waits for the follower after a lost race, at most. */
#define CATCH_UP_MS   5000
#define DOWN_RETRY_MS 5000 /* while etcd is silent and the follower hears nothing */

static etcd_backend *
eb_of(dsi_backend *b)
{
	return DSI_CONTAINER_OF(b, etcd_backend, base);
}

static const etcd_backend *
ceb_of(const dsi_backend *b)
{
	return (const etcd_backend *) (const void *) b; /* base is the first member */
}

static int
eb_load(dsi_backend *b, dsi_registry *r, dsi_backend_check_fn check, void *check_arg, char *why,
    size_t why_len)
{
	etcd_backend *e = eb_of(b);
	int64_t       at;
	dsc_error     err;
	int           rv;

	if (e->etcd == NULL
	    && (rv = dsi_etcd_open_tls(&e->etcd, e->endpoints, e->timeout_ms, &e->tls, &err))
	        != 0) {
		return dsi_failf(rv, why, why_len, "%s: %s", e->label, err.message);
	}
	pthread_mutex_lock(&e->gate);
	rv = dsi_etcdb_read_all(e, e->etcd, r, check, check_arg, false, &at, why, why_len);
	pthread_mutex_unlock(&e->gate);
	if (rv == 0) {
		e->registry = r;
		pthread_mutex_lock(&e->mtx);
		e->applied = at;
		pthread_mutex_unlock(&e->mtx);
	}
	return rv;
}

/* ---- the writer's transaction ---- */

static void
txn_clear(etcd_backend *e)
{
	for (size_t i = 0; i < e->n_owned; i++) {
		free(e->owned[i]);
	}
	e->n_owned    = 0;
	e->n_ops      = 0;
	e->jlen       = 0;
	e->n_revs     = 0;
	e->failed     = false;
	e->has_health = false;
}

static int
txn_fail(etcd_backend *e, const char *fmt, const char *arg)
{
	if (!e->failed) {
		snprintf(e->err, sizeof(e->err), fmt, arg);
	}
	e->failed = true;
	return DSC_EUNAVAILABLE;
}

/* Keeps p until the transaction ends; false (and p freed) when out of memory. */
static bool
own(etcd_backend *e, void *p)
{
	if (p == NULL) {
		return false;
	}
	if (e->n_owned == e->cap_owned) {
		size_t ncap = e->cap_owned * 2 + 16;
		void **n    = realloc(e->owned, ncap * sizeof(*n));
		if (n == NULL) {
			free(p);
			return false;
		}
		e->owned     = n;
		e->cap_owned = ncap;
	}
	e->owned[e->n_owned++] = p;
	return true;
}

static dsi_etcd_op *
add_op(etcd_backend *e)
{
	if (e->n_ops == e->cap_ops) {
		size_t       ncap = e->cap_ops * 2 + 16;
		dsi_etcd_op *n    = realloc(e->ops, ncap * sizeof(*n));
		if (n == NULL) {
			return NULL;
		}
		e->ops     = n;
		e->cap_ops = ncap;
	}
	dsi_etcd_op *op = &e->ops[e->n_ops++];
	memset(op, 0, sizeof(*op));
	return op;
}

static bool
journal_add(etcd_backend *e, char kind, const char *service, const char *endpoint)
{
	size_t need = 4 + strlen(service) + (endpoint != NULL ? 2 * strlen(endpoint) + 1 : 0);
	if (e->jlen + need + 1 > e->jcap) {
		size_t ncap = (e->jlen + need + 1) * 2;
		char  *n    = realloc(e->jtext, ncap);
		if (n == NULL) {
			return false;
		}
		e->jtext = n;
		e->jcap  = ncap;
	}
	e->jlen += (size_t) snprintf(e->jtext + e->jlen, e->jcap - e->jlen, "%c %s%s", kind,
	    service, endpoint != NULL ? " " : "");
	if (endpoint != NULL) {
		e->jlen += dsi_etcdb_hex(e->jtext + e->jlen, endpoint);
	}
	e->jtext[e->jlen++] = '\n';
	e->jtext[e->jlen]   = 0;
	return true;
}

static int
eb_begin(dsi_backend *b)
{
	txn_clear(eb_of(b));
	return 0;
}

static int
eb_write(dsi_backend *b, const dsi_registry_op_info *op)
{
	etcd_backend *e = eb_of(b);
	if (e->failed) {
		return DSC_EUNAVAILABLE;
	}
	if (!op->changes) {
		return 0;
	}
	bool         service_wide = op->endpoint == NULL;
	const char  *family       = op->sets_health ? "health" : "instances";
	char        *key          = dsi_etcdb_family_key(e, family, op->service, op->endpoint);
	dsi_etcd_op *eo           = own(e, key) ? add_op(e) : NULL;
	if (eo == NULL) {
		return txn_fail(e, "out of memory%s", "");
	}
	eo->key     = key;
	eo->key_len = strlen(key);
	if (op->removes > 0) {
		eo->type   = DSI_ETCD_OP_DELETE;
		eo->prefix = service_wide; /* one operation however many instances */
		/* Its health goes with it (one more operation, a range for a service). */
		char        *hkey = dsi_etcdb_health_key(e, op->service, op->endpoint);
		dsi_etcd_op *ho   = own(e, hkey) ? add_op(e) : NULL;
		if (ho == NULL) {
			return txn_fail(e, "out of memory%s", "");
		}
		*ho = (dsi_etcd_op) { .type = DSI_ETCD_OP_DELETE,
			.key                = hkey,
			.key_len            = strlen(hkey),
			.prefix             = service_wide };
		/* And its alive key (a TTL instance's). */
		char        *akey = dsi_etcdb_alive_key(e, op->service, op->endpoint);
		dsi_etcd_op *ao   = own(e, akey) ? add_op(e) : NULL;
		if (ao == NULL) {
			return txn_fail(e, "out of memory%s", "");
		}
		*ao = (dsi_etcd_op) { .type = DSI_ETCD_OP_DELETE,
			.key                = akey,
			.key_len            = strlen(akey),
			.prefix             = service_wide };
	} else if (op->sets_health) {
		e->has_health = true;
		size_t len    = strlen(op->reason) + strlen(e->node) + 4;
		char  *val    = malloc(len);
		if (!own(e, val)) {
			return txn_fail(e, "out of memory%s", "");
		}
		snprintf(val, len, "%c %s\n%s", '0' + op->health, e->node, op->reason);
		eo->type      = DSI_ETCD_OP_PUT;
		eo->value     = val;
		eo->value_len = strlen(val);
	} else {
		uint8_t *val;
		size_t   len;
		if (dsi_etcdb_encode(op, &val, &len) != 0 || !own(e, val)) {
			return txn_fail(e, "out of memory%s", "");
		}
		eo->type      = DSI_ETCD_OP_PUT;
		eo->value     = val;
		eo->value_len = len;
	}
	char kind = op->sets_health ? J_HEALTH
	    : op->removes == 0      ? J_REGISTER
	    : service_wide          ? J_SERVICE
	                            : J_DEREGISTER;
	if (!journal_add(e, kind, op->service, op->endpoint)) {
		return txn_fail(e, "out of memory%s", "");
	}
	e->n_revs += op->revisions;
	return 0;
}

static int
eb_set_revision(dsi_backend *b, uint64_t rev)
{
	eb_of(b)->reserved = rev; /* nothing to store: the counter numbers every change */
	return 0;
}

/*
 * After a txn whose outcome is unknown: did it commit? Our sequence key
 * says. 0 (committed, *h its revision), DSC_ESTATE (it did not, or not
 * yet), or another error (etcd cannot say now).
 */
static int
read_back(etcd_backend *e, const char *seqkey, const char *seq, int64_t *h)
{
	dsi_etcd_range_resp rr = { 0 };
	dsc_error           err;
	dsi_etcd_range_req  rq = { .key = seqkey, .key_len = strlen(seqkey) };
	int                 rv = dsi_etcd_range(e->etcd, &rq, &rr, &err);
	if (rv != 0) {
		return rv;
	}
	rv = DSC_ESTATE;
	if (rr.n_kvs == 1 && strcmp((const char *) rr.kvs[0].value.data, seq) == 0) {
		*h = rr.kvs[0].mod_revision;
		rv = 0;
	}
	dsi_etcd_range_resp_free(&rr);
	return rv;
}

static int
eb_commit(dsi_backend *b, uint64_t rev)
{
	etcd_backend *e = eb_of(b);
	char          seq[32], head[200];
	dsc_error     err;
	int           rv;

	(void) rev;
	if (e->failed) {
		return DSC_EUNAVAILABLE;
	}
	if (e->n_ops == 0) {
		return 0; /* only a reservation, which etcd does not need */
	}
	int64_t now = dsi_monotonic_ms();
	if (e->down_since != 0 && atomic_load(&e->heard_at) <= e->down_since
	    && now - e->last_try < DOWN_RETRY_MS) {
		snprintf(e->err, sizeof(e->err),
		    "etcd answered neither a write of this node nor its read-back, %lld s ago, and "
		    "has not been heard since: not sent, not applied; another node may reach it",
		    (long long) (now - e->down_since) / 1000);
		txn_clear(e);
		return DSC_EUNAVAILABLE;
	}
	uint64_t counter = dsi_registry_revision(e->registry) + e->n_revs;
	snprintf(seq, sizeof(seq), "%" PRIu64, ++e->seq);
	int   hl    = snprintf(head, sizeof(head), "v1 %" PRIu64 " %s %s\n", counter, e->node, seq);
	char *value = malloc((size_t) hl + e->jlen + 1);
	char *revkey  = dsi_etcdb_key(e, "rev");
	char *seqname = malloc(strlen(e->node) + sizeof("txns/"));
	char *seqkey  = NULL;
	if (seqname != NULL) {
		sprintf(seqname, "txns/%s", e->node);
		seqkey = dsi_etcdb_key(e, seqname);
		free(seqname);
	}
	if (!own(e, value) || !own(e, revkey) || !own(e, seqkey)) {
		return txn_fail(e, "out of memory%s", "");
	}
	memcpy(value, head, (size_t) hl);
	memcpy(value + hl, e->jtext != NULL ? e->jtext : "", e->jlen + 1);
	dsi_etcd_op *op = add_op(e);
	dsi_etcd_op *sq = op != NULL ? add_op(e) : NULL;
	if (sq == NULL) {
		return txn_fail(e, "out of memory%s", "");
	}
	op  = &e->ops[e->n_ops - 2]; /* add_op may have moved the array */
	*op = (dsi_etcd_op) { .type = DSI_ETCD_OP_PUT,
		.key                = revkey,
		.key_len            = strlen(revkey),
		.value              = value,
		.value_len          = (size_t) hl + e->jlen };
	*sq = (dsi_etcd_op) { .type = DSI_ETCD_OP_PUT,
		.key                = seqkey,
		.key_len            = strlen(seqkey),
		.value              = seq,
		.value_len          = strlen(seq) };
	/* rev_mod 0: the counter key must not exist yet (create_revision 0). */
	dsi_etcd_cmp   cmps[3] = { { .target = e->rev_mod != 0 ? DSI_ETCD_MOD : DSI_ETCD_CREATE,
	      .result                        = DSI_ETCD_EQUAL,
	      .key                           = revkey,
	      .key_len                       = strlen(revkey),
	      .number                        = e->rev_mod } };
	size_t         n_cmps  = 1;
	dsi_membership view;
	bool           fenced = e->has_health && e->fence_view != NULL;
	/* Health is written only by a member that owns the instance in this view (member.h). */
	if (fenced && e->fence_view(e->fence_arg, &view) != 0) {
		snprintf(e->err, sizeof(e->err), "this node is not a member of the cluster now");
		txn_clear(e);
		return DSC_ESTATE; /* decided again: its health writes are dropped then */
	}
	if (fenced && (n_cmps += dsi_member_fence(&view, &cmps[1])) == 1) {
		dsi_member_view_free(&view);
		snprintf(e->err, sizeof(e->err), "this node is not a member of the cluster now");
		txn_clear(e);
		return DSC_ESTATE; /* decided again: its health writes are dropped then */
	}
	/* On a lost race, the counter as it is: the follower catches up to it. */
	dsi_etcd_op look = { .type = DSI_ETCD_OP_RANGE, .key = revkey, .key_len = strlen(revkey) };
	dsi_etcd_txn_req  tq = { .cmps = cmps,
		 .n_cmps               = n_cmps,
		 .success              = e->ops,
		 .n_success            = e->n_ops,
		 .failure              = &look,
		 .n_failure            = 1 };
	dsi_etcd_txn_resp tr = { 0 };
	rv                   = dsi_etcd_txn(e->etcd, &tq, &tr, &err);
	int64_t h            = 0;
	if (rv == 0 && tr.succeeded) {
		h = tr.revision;
	} else if (rv == 0) {
		/* Another node moved the counter: catch up, then the writer decides again. */
		int64_t now_at = tr.revision;
		if (tr.n_results == 1 && tr.results[0].n_kvs == 1) {
			now_at = tr.results[0].kvs[0].mod_revision;
		}
		bool race = now_at != e->rev_mod; /* else a fence compare failed */
		pthread_mutex_lock(&e->mtx);
		e->catch_up = race ? now_at : 0;
		e->n_races += race;
		pthread_mutex_unlock(&e->mtx);
		snprintf(e->err, sizeof(e->err), "%s",
		    race ? "another node wrote first" : "the cluster's membership changed");
		rv = DSC_ESTATE;
	} else if (rv == DSC_ETIMEDOUT || rv == DSC_ETRANSPORT) {
		int rb = read_back(e, seqkey, seq, &h);
		if (rb == 0) {
			rv = 0;
		} else {
			if (rb != DSC_ESTATE) {
				/* Silent twice: refuse unsent until etcd is heard again. */
				e->last_try = dsi_monotonic_ms();
				if (e->down_since == 0) {
					e->down_since = e->last_try;
				}
			}
			snprintf(e->err, sizeof(e->err),
			    "etcd did not confirm the write (%.300s)%s; it may still be applied",
			    err.message, rb == DSC_ESTATE ? "" : ", nor answer when asked again");
			rv = DSC_EUNAVAILABLE;
		}
	} else {
		snprintf(e->err, sizeof(e->err), "%s", err.message);
		rv = DSC_EUNAVAILABLE;
	}
	if (fenced) {
		dsi_member_view_free(&view);
	}
	if (rv == 0) {
		e->rev_mod = h; /* the writer applies the batch next, under gate */
	}
	if (rv == 0 || rv == DSC_ESTATE) {
		e->down_since = 0; /* etcd answered */
	}
	dsi_etcd_txn_resp_free(&tr);
	txn_clear(e);
	return rv;
}

static void
eb_rollback(dsi_backend *b)
{
	txn_clear(eb_of(b));
}

static const char *
eb_error(const dsi_backend *b)
{
	return ceb_of(b)->err;
}

static const char *
eb_describe(const dsi_backend *b)
{
	return ceb_of(b)->label;
}

static uint64_t
eb_revision(const dsi_backend *b)
{
	const etcd_backend *e = ceb_of(b);
	return e->reserved != 0 ? e->reserved
	                        : (e->registry != NULL ? dsi_registry_revision(e->registry) : 0);
}

static int
eb_capability(dsi_backend *b, dsi_backend_cap cap, void **out)
{
	(void) b;
	(void) out;
	return cap == DSI_BACKEND_CAP_COUNTER ? 0 : DSC_ENOTSUP;
}

static void
eb_hold(dsi_backend *b)
{
	pthread_mutex_lock(&eb_of(b)->gate);
}

/* Releases the batch; after a lost race, waits until the follower has caught up. */
static void
eb_unhold(dsi_backend *b)
{
	etcd_backend *e = eb_of(b);
	pthread_mutex_unlock(&e->gate);
	pthread_mutex_lock(&e->mtx);
	int64_t deadline = dsi_monotonic_ms() + CATCH_UP_MS;
	while (e->catch_up > e->applied && !e->stop && dsi_monotonic_ms() < deadline) {
		struct timespec ts;
		dsi_realtime_after(&ts, deadline - dsi_monotonic_ms());
		pthread_cond_timedwait(&e->cv, &e->mtx, &ts);
	}
	e->catch_up = 0;
	pthread_mutex_unlock(&e->mtx);
}

static size_t
eb_max_batch(const dsi_backend *b)
{
	(void) b;
	return DSI_ETCD_BATCH;
}

static void
eb_close(dsi_backend *b)
{
	etcd_backend *e = eb_of(b);
	dsi_etcd_backend_unfollow(b);
	txn_clear(e);
	dsi_etcd_close(e->etcd);
	dsi_etcd_close(e->fetcd);
	dsi_etcd_close(e->hb_etcd);
	dsi_etcdb_alive_fini(e);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mtx);
	pthread_mutex_destroy(&e->gate);
	free(e->ops);
	free(e->owned);
	free(e->jtext);
	free(e->endpoints);
	dsi_etcd_tls_clear(&e->tls);
	free(e->prefix);
	free(e->node);
	free(e->label);
	free(e);
}

static const dsi_backend_ops etcd_ops = {
	.load         = eb_load,
	.begin        = eb_begin,
	.write        = eb_write,
	.set_revision = eb_set_revision,
	.commit       = eb_commit,
	.rollback     = eb_rollback,
	.error        = eb_error,
	.describe     = eb_describe,
	.revision     = eb_revision,
	.capability   = eb_capability,
	.close        = eb_close,
	.hold         = eb_hold,
	.unhold       = eb_unhold,
	.max_batch    = eb_max_batch,
};

int
dsi_etcd_backend_open(
    dsi_backend **out, const dsi_etcd_backend_options *o, char *why, size_t why_len)
{
	etcd_backend *e = calloc(1, sizeof(*e));
	size_t        ll;

	if (e == NULL) {
		return dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	e->base.ops   = &etcd_ops;
	e->log        = o->log;
	e->timeout_ms = o->timeout_ms;
	/* Sequence numbers stay unique across restarts of the node. */
	e->seq = (uint64_t) dsi_wall_ms() * 1000;
	pthread_mutex_init(&e->gate, NULL);
	pthread_mutex_init(&e->mtx, NULL);
	pthread_cond_init(&e->cv, NULL);
	if (dsi_etcdb_alive_init(e) != 0) {
		eb_close(&e->base);
		return dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	e->endpoints = strdup(o->endpoints);
	e->prefix    = strdup(o->prefix);
	e->node      = strdup(o->node);
	ll           = strlen(o->endpoints) + strlen(o->prefix) + 32;
	if (e->endpoints == NULL || e->prefix == NULL || e->node == NULL
	    || (e->label = malloc(ll)) == NULL || dsi_etcd_tls_copy(&e->tls, &o->tls) != 0) {
		eb_close(&e->base);
		return dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	snprintf(e->label, ll, "etcd %s prefix %s", o->endpoints, o->prefix);
	*out = &e->base;
	return 0;
}

int
dsi_etcd_backend_follow(dsi_backend *b, const dsi_etcd_applier *a)
{
	etcd_backend *e = eb_of(b);
	dsc_error     err;
	if (dsi_etcd_open_tls(&e->fetcd, e->endpoints, e->timeout_ms, &e->tls, &err) != 0
	    || dsi_etcd_open_tls(&e->hb_etcd, e->endpoints, e->timeout_ms, &e->tls, &err) != 0) {
		return DSC_ENOMEM;
	}
	e->applier = *a;
	if (pthread_create(&e->thread, NULL, dsi_etcdb_follow_main, e) != 0) {
		return DSC_ENOMEM;
	}
	e->following = true;
	return 0;
}

void
dsi_etcd_backend_set_fence(
    dsi_backend *b, int (*view)(void *arg, struct dsi_membership *out), void *arg)
{
	eb_of(b)->fence_view = view;
	eb_of(b)->fence_arg  = arg;
}

void
dsi_etcd_backend_unfollow(dsi_backend *b)
{
	etcd_backend *e = eb_of(b);
	pthread_mutex_lock(&e->mtx);
	e->stop = true;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mtx);
	if (e->following) {
		pthread_join(e->thread, NULL);
		e->following = false;
	}
}

void
dsi_etcd_backend_stats_get(dsi_backend *b, dsi_etcd_backend_stats *out)
{
	etcd_backend *e = eb_of(b);
	pthread_mutex_lock(&e->mtx);
	out->applied  = e->n_applied;
	out->resyncs  = e->n_resyncs;
	out->races    = e->n_races;
	out->etcd_rev = e->applied;
	pthread_mutex_unlock(&e->mtx);
}
