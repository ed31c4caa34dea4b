/*
 * Registry changes decided once: prepare builds and allocates everything a
 * register, deregister or reap needs under the read lock at most; commit
 * applies it under the write lock and cannot fail. See registry.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "common/timeutil.h"
#include "server/registry.h"
#include "server/registry_impl.h"

typedef enum { OP_REGISTER, OP_REMOVE, OP_HEALTH } op_kind;

struct dsi_registry_op {
	op_kind              kind;
	dsi_registry_op_info info;
	char                 service[DSI_NAME_MAX + 1];
	char                *endpoint; /* NULL: the whole service */
	int64_t              now_ms;
	rec                 *x;             /* register: the new record, or the new fields */
	service             *spare_service; /* register into a service absent at prepare */
	rec                **spare_inst;    /* room for one more instance, when needed */
	size_t               spare_cap;
	void                *copy;     /* the reply's copy (want_copy) */
	void               **events;   /* the observer's copies, one per change */
	size_t               n_events; /* allocated */
	size_t               used;     /* handed to the observer */
	char                 reason[96];
};

/* ---- allocation, through the test's failure hook (dsi_registry_fail_alloc_after) ---- */

static bool
alloc_allowed(dsi_registry *r)
{
	long n = atomic_load(&r->fail_after);
	while (n >= 0) {
		if (n == 0) {
			return false;
		}
		if (atomic_compare_exchange_weak(&r->fail_after, &n, n - 1)) {
			return true;
		}
	}
	return true;
}

static void *
dsi_reg_malloc(dsi_registry *r, size_t n)
{
	return alloc_allowed(r) ? malloc(n) : NULL;
}

static void *
dsi_reg_calloc(dsi_registry *r, size_t n, size_t size)
{
	return alloc_allowed(r) ? calloc(n, size) : NULL;
}

static char *
dsi_reg_strdup(dsi_registry *r, const char *s)
{
	return alloc_allowed(r) ? strdup(s) : NULL;
}

void
dsi_registry_fail_alloc_after(dsi_registry *r, long n)
{
	atomic_store(&r->fail_after, n < 0 ? -1 : n);
}

/* ---- metadata ---- */

static void
put_pair(char **cur, const char *key, const char *value)
{
	size_t k = strlen(key) + 1, v = strlen(value) + 1;
	memcpy(*cur, key, k);
	memcpy(*cur + k, value, v);
	*cur += k + v;
}

typedef struct {
	const dsc_kv *kv;
	size_t        order;
} kv_ref;

static int
kv_ref_cmp(const void *a, const void *b)
{
	const kv_ref *x = a, *y = b;
	int           c = strcmp(x->kv->key, y->kv->key);
	if (c != 0) {
		return c;
	}
	return x->order < y->order ? -1 : x->order > y->order;
}

/*
 * Builds the sorted blob; for a key given twice the later value wins, as
 * protobuf map semantics say. Returns 0, DSC_ELIMIT or DSC_ENOMEM.
 */
static int
meta_build(dsi_registry *r, const dsc_kv *kv, size_t n, char **blob, uint32_t *blob_len,
    uint32_t *count, char *why, size_t why_len)
{
	kv_ref *refs = NULL;
	size_t  len = 0, keep = 0, bytes = 0;
	char   *out = NULL;

	*blob     = NULL;
	*blob_len = 0;
	*count    = 0;
	if (n == 0) {
		return 0;
	}
	if ((refs = dsi_reg_calloc(r, n, sizeof(*refs))) == NULL) {
		return DSC_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		refs[i].kv    = &kv[i];
		refs[i].order = i;
	}
	qsort(refs, n, sizeof(*refs), kv_ref_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && strcmp(refs[i].kv->key, refs[i + 1].kv->key) == 0) {
			refs[i].kv = NULL; /* superseded by a later value */
			continue;
		}
		keep++;
		bytes += strlen(refs[i].kv->key) + strlen(refs[i].kv->value);
		len += strlen(refs[i].kv->key) + strlen(refs[i].kv->value) + 2;
	}
	if (keep > r->limits.max_metadata_entries || bytes > r->limits.max_metadata_bytes) {
		snprintf(why, why_len,
		    "metadata has %zu entries and %zu bytes; the limits are %u entries and %u "
		    "bytes",
		    keep, bytes, r->limits.max_metadata_entries, r->limits.max_metadata_bytes);
		free(refs);
		return DSC_ELIMIT;
	}
	if ((out = dsi_reg_malloc(r, len)) == NULL) {
		free(refs);
		return DSC_ENOMEM;
	}
	char *cur = out;
	for (size_t i = 0; i < n; i++) {
		if (refs[i].kv != NULL) {
			put_pair(&cur, refs[i].kv->key, refs[i].kv->value);
		}
	}
	free(refs);
	*blob     = out;
	*blob_len = (uint32_t) len;
	*count    = (uint32_t) keep;
	return 0;
}

static bool
str_eq(const char *a, const char *b)
{
	return strcmp(a == NULL ? "" : a, b == NULL ? "" : b) == 0;
}

/* Whether a register of (hp, ttl, weight, meta, origin) would change cur. */
static bool
rec_differs(const rec *cur, const char *hp, uint32_t ttl_ms, uint32_t weight, const char *meta,
    uint32_t meta_len, uint8_t origin)
{
	return !str_eq(cur->health_path, hp) || cur->ttl_ms != ttl_ms || cur->weight != weight
	    || cur->origin != origin || cur->meta_len != meta_len
	    || (meta_len > 0 && memcmp(cur->meta, meta, meta_len) != 0);
}

/* The instance limits for one more instance in s (NULL: a new service). */
static int
check_limits(const dsi_registry *r, const service *s, const char *svc, uint32_t pending_service,
    uint32_t pending_total, char *why, size_t why_len)
{
	if (r->ninstances + pending_total >= r->limits.max_instances) {
		snprintf(why, why_len, "the registry holds its limit of %u instances",
		    r->limits.max_instances);
		return DSC_ELIMIT;
	}
	if ((s != NULL ? s->n : 0) + pending_service >= r->limits.max_instances_per_service) {
		snprintf(why, why_len, "service %s has its limit of %u instances", svc,
		    r->limits.max_instances_per_service);
		return DSC_ELIMIT;
	}
	return 0;
}

void
dsi_registry_op_free(dsi_registry_op *op)
{
	if (op == NULL) {
		return;
	}
	free(op->endpoint);
	dsi_reg_rec_free(op->x);
	if (op->spare_service != NULL) {
		free(op->spare_service->inst);
		free(op->spare_service);
	}
	free(op->spare_inst);
	free(op->copy);
	for (size_t i = op->used; i < op->n_events; i++) {
		free(op->events[i]);
	}
	free(op->events);
	free(op);
}

const dsi_registry_op_info *
dsi_registry_op_get(const dsi_registry_op *op)
{
	return &op->info;
}

static dsi_registry_op *
op_new(dsi_registry *r, op_kind kind, const char *svc, const char *endpoint, int64_t now_ms)
{
	dsi_registry_op *op = dsi_reg_calloc(r, 1, sizeof(*op));
	if (op == NULL) {
		return NULL;
	}
	op->kind   = kind;
	op->now_ms = now_ms;
	dsi_strlcpy(op->service, svc, sizeof(op->service));
	if (endpoint != NULL && (op->endpoint = dsi_reg_strdup(r, endpoint)) == NULL) {
		free(op);
		return NULL;
	}
	op->info.service  = op->service;
	op->info.endpoint = op->endpoint;
	return op;
}

/* Copies for the observer, one per change, sized from recs (or x for each). */
static int
alloc_events(dsi_registry *r, dsi_registry_op *op, size_t n)
{
	if (r->observer == NULL || n == 0) {
		return 0;
	}
	if ((op->events = dsi_reg_calloc(r, n, sizeof(*op->events))) == NULL) {
		return DSC_ENOMEM;
	}
	op->n_events = n;
	return 0;
}

/* Room in s (NULL: a new service) for one more instance after pending others. */
static int
reserve_slot(dsi_registry *r, dsi_registry_op *op, const service *s, uint32_t pending)
{
	size_t n    = (s != NULL ? s->n : 0) + pending;
	size_t have = s != NULL ? s->cap : 0;
	if (s == NULL && (op->spare_service = dsi_reg_calloc(r, 1, sizeof(service))) == NULL) {
		return DSC_ENOMEM;
	}
	if (s == NULL) {
		dsi_strlcpy(op->spare_service->name, op->service, sizeof(op->spare_service->name));
	}
	if (n + 1 <= have) {
		return 0;
	}
	op->spare_cap  = (n + 1) * 2 < 4 ? 4 : (n + 1) * 2;
	op->spare_inst = dsi_reg_malloc(r, op->spare_cap * sizeof(rec *));
	return op->spare_inst != NULL ? 0 : DSC_ENOMEM;
}

int
dsi_registry_prepare_register(dsi_registry *r, const dsi_registration *reg,
    uint32_t pending_service, uint32_t pending_total, int64_t now_ms, bool want_copy,
    dsi_registry_op **out, char *why, size_t why_len)
{
	dsi_registry_op *op = op_new(r, OP_REGISTER, reg->service, reg->endpoint, now_ms);
	rec             *x;
	int              rv;

	if (op == NULL || (op->x = x = dsi_reg_calloc(r, 1, sizeof(*x))) == NULL
	    || (x->endpoint = dsi_reg_strdup(r, reg->endpoint)) == NULL
	    || (x->health_path = dsi_reg_strdup(r, reg->health_path)) == NULL) {
		rv = DSC_ENOMEM;
		goto fail;
	}
	rv = meta_build(
	    r, reg->metadata, reg->n_metadata, &x->meta, &x->meta_len, &x->n_meta, why, why_len);
	if (rv != 0) {
		goto fail;
	}
	x->ttl_ms           = reg->ttl_ms;
	x->weight           = reg->weight;
	x->registered_at_ms = reg->registered_at_ms != 0 ? reg->registered_at_ms : now_ms;
	x->ttl_deadline_ms  = now_ms + reg->ttl_ms;
	x->health           = DSC_HEALTH_UNKNOWN;
	x->origin           = reg->origin;

	/* Decide under the read lock; allocate what the decision needs after it. */
	pthread_rwlock_rdlock(&r->lock);
	service *s       = NULL;
	rec     *cur     = dsi_reg_inst_find(r, reg->service, reg->endpoint, &s);
	bool     changes = true;
	if (cur != NULL) {
		changes = rec_differs(
		    cur, x->health_path, x->ttl_ms, x->weight, x->meta, x->meta_len, x->origin);
		x->registered_at_ms = cur->registered_at_ms;
	} else {
		rv = check_limits(r, s, reg->service, pending_service, pending_total, why, why_len);
	}
	service snap     = { .n = s != NULL ? s->n : 0, .cap = s != NULL ? s->cap : 0 };
	bool    have_svc = s != NULL;
	pthread_rwlock_unlock(&r->lock);
	if (rv != 0) {
		goto fail;
	}
	if (cur == NULL
	    && (rv = reserve_slot(r, op, have_svc ? &snap : NULL, pending_service)) != 0) {
		goto fail;
	}
	size_t size = dsi_reg_export_size(op->service, x);
	if ((rv = alloc_events(r, op, changes ? 1 : 0)) != 0
	    || (op->n_events > 0 && (op->events[0] = dsi_reg_malloc(r, size)) == NULL)
	    || (want_copy && (op->copy = dsi_reg_malloc(r, size)) == NULL)) {
		rv = DSC_ENOMEM;
		goto fail;
	}
	op->info = (dsi_registry_op_info) {
		.creates          = cur == NULL,
		.changes          = changes,
		.revisions        = changes ? 1 : 0,
		.service          = op->service,
		.endpoint         = op->endpoint,
		.health_path      = x->health_path,
		.ttl_ms           = x->ttl_ms,
		.weight           = x->weight,
		.registered_at_ms = x->registered_at_ms,
		.meta             = x->meta,
		.meta_len         = x->meta_len,
		.n_meta           = x->n_meta,
		.origin           = x->origin,
	};
	*out = op;
	return 0;
fail:
	if (rv == DSC_ENOMEM) {
		snprintf(why, why_len, "out of memory");
	}
	dsi_registry_op_free(op);
	return rv;
}

/* A removal of the instances matched (every one of s when endpoint is NULL). */
static int
prepare_remove(dsi_registry *r, dsi_registry_op *op, bool reap, int64_t after_ms)
{
	int rv = 0;

	pthread_rwlock_rdlock(&r->lock);
	service *s     = dsi_reg_service_find(r, op->service);
	size_t   first = 0, n = 0;
	if (s != NULL && op->endpoint != NULL) {
		bool found;
		first = dsi_reg_inst_search(s, op->endpoint, &found);
		n     = found;
	} else if (s != NULL) {
		n = s->n;
	}
	if (reap && n == 0) {
		rv = DSC_ENOTFOUND;
	} else if (reap) {
		const rec *x = s->inst[first];
		if (x->health != DSC_HEALTH_UNHEALTHY
		    || op->now_ms - x->unhealthy_since_ms < after_ms) {
			n = 0; /* not due */
		}
	}
	/* Copies are sized now: only health, and so last_error, may change before commit. */
	if (rv == 0 && (rv = alloc_events(r, op, n)) == 0) {
		for (size_t i = 0; i < op->n_events; i++) {
			/* Removed from the last one down, as commit does. */
			const rec *x = s->inst[first + n - 1 - i];
			if ((op->events[i] = dsi_reg_malloc(r, dsi_reg_export_size(s->name, x)))
			    == NULL) {
				rv = DSC_ENOMEM;
				break;
			}
		}
	}
	pthread_rwlock_unlock(&r->lock);
	op->info.removes   = (uint32_t) n;
	op->info.revisions = n;
	op->info.changes   = n > 0;
	return rv;
}

int
dsi_registry_prepare_deregister(
    dsi_registry *r, const char *svc, const char *endpoint, dsi_registry_op **out)
{
	dsi_registry_op *op = op_new(r, OP_REMOVE, svc, endpoint, dsi_wall_ms());
	int              rv = op != NULL ? prepare_remove(r, op, false, 0) : DSC_ENOMEM;
	if (rv != 0) {
		dsi_registry_op_free(op);
		return rv;
	}
	*out = op;
	return 0;
}

int
dsi_registry_prepare_reap(dsi_registry *r, const char *svc, const char *endpoint, int64_t after_ms,
    int64_t now_ms, dsi_registry_op **out)
{
	dsi_registry_op *op = op_new(r, OP_REMOVE, svc, endpoint, now_ms);
	int              rv = op != NULL ? prepare_remove(r, op, true, after_ms) : DSC_ENOMEM;
	if (rv != 0) {
		dsi_registry_op_free(op);
		return rv;
	}
	snprintf(op->reason, sizeof(op->reason),
	    "unhealthy for more than %lld ms (--deregister-after)", (long long) after_ms);
	*out = op;
	return 0;
}

static void *
next_event(dsi_registry_op *op)
{
	return op->used < op->n_events ? op->events[op->used++] : NULL;
}

static void
commit_register(dsi_registry *r, dsi_registry_op *op, dsi_instance **out)
{
	service *s     = dsi_reg_service_find(r, op->service);
	rec     *x     = op->x;
	bool     found = false;
	size_t   idx   = 0;

	if (s == NULL) {
		s                 = op->spare_service;
		op->spare_service = NULL;
		dsi_reg_service_link(r, s);
	}
	idx = dsi_reg_inst_search(s, op->endpoint, &found);
	if (found) {
		rec *cur = s->inst[idx];
		if (op->info.changes) {
			free(cur->health_path);
			free(cur->meta);
			cur->health_path = x->health_path;
			cur->meta        = x->meta;
			cur->meta_len    = x->meta_len;
			cur->n_meta      = x->n_meta;
			x->health_path   = NULL;
			x->meta          = NULL;
			if (cur->ttl_ms != x->ttl_ms) {
				cur->ttl_deadline_ms
				    = op->now_ms + x->ttl_ms; /* a new TTL, a new grace */
			}
			cur->ttl_ms = x->ttl_ms;
			cur->weight = x->weight;
			cur->origin = x->origin;
			dsi_reg_note_change(r, DISCOVERY__V1__EVENT_TYPE__EVENT_UPDATED, s->name,
			    cur, cur->health, op->now_ms, "", next_event(op));
		}
		x = cur;
	} else {
		if (s->n == s->cap) {
			/* prepare made room: the rule in registry.h keeps it enough */
			if (s->n > 0) {
				memcpy(op->spare_inst, s->inst, s->n * sizeof(*s->inst));
			}
			free(s->inst);
			s->inst        = op->spare_inst;
			s->cap         = op->spare_cap;
			op->spare_inst = NULL;
		}
		memmove(&s->inst[idx + 1], &s->inst[idx], (s->n - idx) * sizeof(*s->inst));
		s->inst[idx] = x;
		s->n++;
		r->ninstances++;
		op->x = NULL;
		dsi_reg_note_change(r, DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED, s->name, x,
		    DSC_HEALTH_UNKNOWN, op->now_ms, "", next_event(op));
	}
	if (op->copy != NULL && out != NULL) {
		*out     = dsi_reg_export_to(op->copy, s->name, x);
		op->copy = NULL;
	}
}

static void
commit_remove(dsi_registry *r, dsi_registry_op *op)
{
	service *s     = dsi_reg_service_find(r, op->service);
	size_t   first = 0, n = 0;
	if (s != NULL && op->endpoint != NULL) {
		bool found;
		first = dsi_reg_inst_search(s, op->endpoint, &found);
		n     = found;
	} else if (s != NULL) {
		n = s->n;
	}
	n = n < op->info.removes ? n : op->info.removes;
	/* One change per instance, so revisions still count changes. */
	for (size_t k = n; k > 0; k--) {
		size_t i = first + k - 1;
		rec   *x = s->inst[i];
		dsi_reg_note_change(r, DISCOVERY__V1__EVENT_TYPE__EVENT_DEREGISTERED, s->name, x,
		    x->health, op->now_ms, op->reason, next_event(op));
		memmove(&s->inst[i], &s->inst[i + 1], (s->n - i - 1) * sizeof(*s->inst));
		s->n--;
		r->ninstances--;
		dsi_reg_rec_free(x);
	}
	if (s != NULL && s->n == 0) {
		dsi_reg_service_remove(r, s);
	}
}

int
dsi_registry_prepare_health(dsi_registry *r, const char *svc, const char *endpoint,
    dsc_health health, const char *reason, int64_t now_ms, dsi_registry_op **out)
{
	dsi_registry_op *op = op_new(r, OP_HEALTH, svc, endpoint, now_ms);
	if (op == NULL) {
		return DSC_ENOMEM;
	}
	pthread_rwlock_rdlock(&r->lock);
	service *s       = NULL;
	rec     *x       = dsi_reg_inst_find(r, svc, endpoint, &s);
	bool     changes = x != NULL && x->health != health;
	pthread_rwlock_unlock(&r->lock);
	if (x == NULL) {
		dsi_registry_op_free(op);
		return DSC_ENOTFOUND;
	}
	dsi_strlcpy(op->reason, reason != NULL ? reason : "", sizeof(op->reason));
	op->info.sets_health = true;
	op->info.health      = (uint8_t) health;
	op->info.reason      = op->reason;
	op->info.changes     = changes;
	op->info.revisions   = changes ? 1 : 0;
	*out                 = op;
	return 0;
}

/* The state as prepared; the instance may be gone (removed in the same batch). */
static void
commit_health(dsi_registry *r, dsi_registry_op *op)
{
	service *s = NULL;
	rec     *x = dsi_reg_inst_find(r, op->service, op->endpoint, &s);
	if (x != NULL && op->info.changes) {
		dsi_reg_set_health(
		    r, s, x, (dsc_health) op->info.health, op->now_ms, NULL, op->reason);
	}
}

void
dsi_registry_commit(dsi_registry *r, dsi_registry_op *op, dsi_instance **out, uint64_t *rev)
{
	pthread_rwlock_wrlock(&r->lock);
	if (op->kind == OP_REGISTER) {
		commit_register(r, op, out);
	} else if (op->kind == OP_HEALTH) {
		commit_health(r, op);
	} else {
		commit_remove(r, op);
	}
	dsi_reg_store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	dsi_registry_op_free(op); /* outside the lock: what the change replaced */
}

/* ---- the in-memory path: prepare and commit under the writer mutex ---- */

int
dsi_registry_register(dsi_registry *r, const dsi_registration *reg, int64_t now_ms,
    dsi_instance **out, bool *created, uint64_t *rev, char *why, size_t why_len)
{
	dsi_registry_op *op = NULL;
	pthread_mutex_lock(&r->wmtx);
	int rv
	    = dsi_registry_prepare_register(r, reg, 0, 0, now_ms, out != NULL, &op, why, why_len);
	if (rv == 0) {
		*created = op->info.creates;
		dsi_registry_commit(r, op, out, rev);
	} else {
		pthread_rwlock_rdlock(&r->lock);
		dsi_reg_store_rev(r, rev);
		pthread_rwlock_unlock(&r->lock);
	}
	pthread_mutex_unlock(&r->wmtx);
	return rv;
}

int
dsi_registry_deregister(
    dsi_registry *r, const char *svc, const char *endpoint, uint32_t *removed, uint64_t *rev)
{
	dsi_registry_op *op = NULL;
	pthread_mutex_lock(&r->wmtx);
	int rv = dsi_registry_prepare_deregister(r, svc, endpoint, &op);
	if (rv == 0) {
		*removed = op->info.removes;
		dsi_registry_commit(r, op, NULL, rev);
	}
	pthread_mutex_unlock(&r->wmtx);
	return rv;
}

int
dsi_registry_reap(dsi_registry *r, const char *svc, const char *endpoint, int64_t after_ms,
    int64_t now_ms, bool *removed)
{
	dsi_registry_op *op = NULL;
	*removed            = false;
	pthread_mutex_lock(&r->wmtx);
	int rv = dsi_registry_prepare_reap(r, svc, endpoint, after_ms, now_ms, &op);
	if (rv == 0) {
		*removed = op->info.removes > 0;
		dsi_registry_commit(r, op, NULL, NULL);
	}
	pthread_mutex_unlock(&r->wmtx);
	return rv;
}
