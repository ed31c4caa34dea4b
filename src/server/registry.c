/*
 * The in-memory registry: a hash table of services, each holding its
 * instances in an array sorted by endpoint, all under one rwlock.
 */
#include "server/registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/name.h"
#include "common/pick.h"
#include "common/rwlock.h"
#include "common/sorted.h"
#include "common/text.h"
#include "common/timeutil.h"

/* One instance as stored. Metadata is a blob of "key\0value\0" pairs, sorted. */
typedef struct rec {
	char      *endpoint;
	char      *health_path;
	char      *last_error; /* NULL: none */
	char      *meta;
	uint32_t   meta_len;
	uint32_t   n_meta;
	uint32_t   ttl_ms;
	uint32_t   weight;
	int64_t    registered_at_ms;
	int64_t    last_check_ms;
	int64_t    ttl_deadline_ms;    /* TTL instances: unhealthy after this */
	int64_t    unhealthy_since_ms; /* when it last became UNHEALTHY */
	dsc_health health;
} rec;

/* One service: its instances sorted by endpoint, and its resolve cursor. */
typedef struct service {
	struct service  *next; /* hash chain */
	char             name[DSI_NAME_MAX + 1];
	rec            **inst;
	size_t           n;
	size_t           cap;
	_Atomic uint64_t cursor; /* bumped by concurrent resolves under the read lock */
} service;

struct dsi_registry {
	pthread_rwlock_t    lock; /* the registry lock (docs/design.md): the table and revision */
	service           **buckets;
	size_t              nbuckets; /* a power of two */
	size_t              nservices;
	size_t              ninstances;
	uint64_t            revision;
	dsi_registry_limits limits;
	dsi_change_fn       observer;
	void               *observer_arg;
};

void
dsi_registry_limits_default(dsi_registry_limits *l)
{
	/* No instance caps of its own: discoveryd's come from its options table. */
	l->max_instances             = UINT32_MAX;
	l->max_instances_per_service = UINT32_MAX;
	l->max_metadata_entries      = 64;
	l->max_metadata_bytes        = 4096;
}

/* ---- services ---- */

static uint64_t
hash_name(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++) {
		h = (h ^ (unsigned char) *s) * 1099511628211ull;
	}
	return h;
}

static service *
service_find(const dsi_registry *r, const char *name)
{
	service *s = r->buckets[hash_name(name) & (r->nbuckets - 1)];
	while (s != NULL && strcmp(s->name, name) != 0) {
		s = s->next;
	}
	return s;
}

static void
rehash(dsi_registry *r)
{
	size_t    nb = r->nbuckets * 2;
	service **b  = calloc(nb, sizeof(*b));
	if (b == NULL) {
		return; /* longer chains, still correct */
	}
	for (size_t i = 0; i < r->nbuckets; i++) {
		service *s = r->buckets[i];
		while (s != NULL) {
			service *next = s->next;
			size_t   j    = hash_name(s->name) & (nb - 1);
			s->next       = b[j];
			b[j]          = s;
			s             = next;
		}
	}
	free(r->buckets);
	r->buckets  = b;
	r->nbuckets = nb;
}

static service *
service_add(dsi_registry *r, const char *name)
{
	service *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return NULL;
	}
	dsi_strlcpy(s->name, name, sizeof(s->name));
	atomic_init(&s->cursor, 0);
	size_t i      = hash_name(name) & (r->nbuckets - 1);
	s->next       = r->buckets[i];
	r->buckets[i] = s;
	if (++r->nservices > r->nbuckets) {
		rehash(r);
	}
	return s;
}

static void
rec_free(rec *x)
{
	if (x != NULL) {
		free(x->endpoint);
		free(x->health_path);
		free(x->last_error);
		free(x->meta);
		free(x);
	}
}

static void
service_remove(dsi_registry *r, service *s)
{
	service **pp = &r->buckets[hash_name(s->name) & (r->nbuckets - 1)];
	while (*pp != s) {
		pp = &(*pp)->next;
	}
	*pp = s->next;
	r->nservices--;
	for (size_t i = 0; i < s->n; i++) {
		rec_free(s->inst[i]);
	}
	free(s->inst);
	free(s);
}

static const char *
rec_key(const void *elem)
{
	return (*(rec *const *) elem)->endpoint;
}

/* Index of endpoint in s, or where it would be inserted (found tells). */
static size_t
inst_search(const service *s, const char *endpoint, bool *found)
{
	return dsi_sorted_search(s->inst, s->n, sizeof(*s->inst), endpoint, rec_key, found);
}

static rec *
inst_find(const dsi_registry *r, const char *svc, const char *endpoint, service **sp)
{
	service *s = service_find(r, svc);
	bool     found;
	if (s == NULL) {
		return NULL;
	}
	size_t i = inst_search(s, endpoint, &found);
	if (sp != NULL) {
		*sp = s;
	}
	return found ? s->inst[i] : NULL;
}

/* ---- export ---- */

static size_t
str_size(const char *s)
{
	return s == NULL ? 1 : strlen(s) + 1;
}

/* Copies src (NULL as "") to *cursor and advances it. */
static char *
put_str(char **cursor, const char *src)
{
	char  *dst = *cursor;
	size_t n   = str_size(src);
	memcpy(dst, src == NULL ? "" : src, n);
	*cursor += n;
	return dst;
}

typedef Discovery__V1__Instance__MetadataEntry meta_entry;

static dsi_instance *
rec_export(const char *svc, const rec *x)
{
	size_t n    = x->n_meta;
	size_t size = sizeof(dsi_instance) + n * (sizeof(meta_entry *) + sizeof(meta_entry))
	    + str_size(svc) + str_size(x->endpoint) + str_size(x->health_path)
	    + str_size(x->last_error) + x->meta_len;
	char *block = malloc(size);
	if (block == NULL) {
		return NULL;
	}
	dsi_instance *m = (dsi_instance *) block;
	discovery__v1__instance__init(m);
	meta_entry **ptrs = (meta_entry **) (m + 1);
	meta_entry  *ents = (meta_entry *) (ptrs + n);
	char        *cur  = (char *) (ents + n);

	m->service          = put_str(&cur, svc);
	m->endpoint         = put_str(&cur, x->endpoint);
	m->health_path      = put_str(&cur, x->health_path);
	m->last_error       = put_str(&cur, x->last_error);
	m->health           = (Discovery__V1__HealthState) x->health;
	m->ttl_ms           = x->ttl_ms;
	m->weight           = x->weight;
	m->registered_at_ms = x->registered_at_ms;
	m->last_check_ms    = x->last_check_ms;
	m->n_metadata       = n;
	m->metadata         = n > 0 ? ptrs : NULL;
	if (x->meta_len > 0) {
		memcpy(cur, x->meta, x->meta_len);
	}
	for (size_t i = 0; i < n; i++) {
		discovery__v1__instance__metadata_entry__init(&ents[i]);
		ents[i].key = cur;
		cur += strlen(cur) + 1;
		ents[i].value = cur;
		cur += strlen(cur) + 1;
		ptrs[i] = &ents[i];
	}
	return m;
}

void
dsi_instances_free(dsi_instances *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i]);
	}
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

/* ---- metadata ---- */

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
meta_build(const dsi_registry *r, const dsc_kv *kv, size_t n, char **blob, uint32_t *blob_len,
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
	if ((refs = calloc(n, sizeof(*refs))) == NULL) {
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
	if ((out = malloc(len)) == NULL) {
		free(refs);
		return DSC_ENOMEM;
	}
	char *cur = out;
	for (size_t i = 0; i < n; i++) {
		if (refs[i].kv != NULL) {
			put_str(&cur, refs[i].kv->key);
			put_str(&cur, refs[i].kv->value);
		}
	}
	free(refs);
	*blob     = out;
	*blob_len = (uint32_t) len;
	*count    = (uint32_t) keep;
	return 0;
}

/* ---- the registry ---- */

int
dsi_registry_create(dsi_registry **out, const dsi_registry_limits *limits)
{
	dsi_registry *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return DSC_ENOMEM;
	}
	r->nbuckets = 64;
	if ((r->buckets = calloc(r->nbuckets, sizeof(*r->buckets))) == NULL) {
		free(r);
		return DSC_ENOMEM;
	}
	if (limits != NULL) {
		r->limits = *limits;
	} else {
		dsi_registry_limits_default(&r->limits);
	}
	if (dsi_rwlock_init(&r->lock) != 0) { /* writer-preferring: resolves cannot starve writes */
		free(r->buckets);
		free(r);
		return DSC_ENOMEM;
	}
	*out = r;
	return 0;
}

void
dsi_registry_destroy(dsi_registry *r)
{
	if (r == NULL) {
		return;
	}
	for (size_t i = 0; i < r->nbuckets; i++) {
		while (r->buckets[i] != NULL) {
			service_remove(r, r->buckets[i]);
		}
	}
	free(r->buckets);
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

/*
 * Every change goes through here, under the write lock, so the revision
 * counts changes exactly and the observer sees them in order.
 */
static void
note_change(dsi_registry *r, Discovery__V1__EventType type, const char *svc, const rec *x,
    dsc_health previous, int64_t now_ms, const char *reason)
{
	r->revision++;
	if (r->observer == NULL) {
		return;
	}
	dsi_change ch = {
		.type         = type,
		.service      = svc,
		.instance     = rec_export(svc, x),
		.previous     = previous,
		.revision     = r->revision,
		.timestamp_ms = now_ms,
		.reason       = reason,
	};
	r->observer(r->observer_arg, &ch);
}

void
dsi_registry_set_observer(dsi_registry *r, dsi_change_fn fn, void *arg)
{
	r->observer     = fn;
	r->observer_arg = arg;
}

void
dsi_registry_sync(dsi_registry *r)
{
	pthread_rwlock_wrlock(&r->lock); /* orders it with the changes */
	if (r->observer != NULL) {
		dsi_change ch = {
			.type         = DISCOVERY__V1__EVENT_TYPE__EVENT_SYNC,
			.service      = "",
			.revision     = r->revision,
			.timestamp_ms = dsi_wall_ms(),
			.reason       = "",
		};
		r->observer(r->observer_arg, &ch);
	}
	pthread_rwlock_unlock(&r->lock);
}

static void
store_rev(const dsi_registry *r, uint64_t *rev)
{
	if (rev != NULL) {
		*rev = r->revision;
	}
}

static bool
str_eq(const char *a, const char *b)
{
	return strcmp(a == NULL ? "" : a, b == NULL ? "" : b) == 0;
}

/* Whether a register of (hp, ttl, weight, meta) would change cur. */
static bool
rec_differs(const rec *cur, const char *hp, uint32_t ttl_ms, uint32_t weight, const char *meta,
    uint32_t meta_len)
{
	return !str_eq(cur->health_path, hp) || cur->ttl_ms != ttl_ms || cur->weight != weight
	    || cur->meta_len != meta_len
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

int
dsi_registry_plan_register(dsi_registry *r, const dsi_registration *reg, uint32_t pending_service,
    uint32_t pending_total, int64_t now_ms, bool *creates, bool *changes, int64_t *registered_at,
    char *why, size_t why_len)
{
	char    *meta = NULL;
	uint32_t meta_len, n_meta;
	int      rv;

	rv = meta_build(r, reg->metadata, reg->n_metadata, &meta, &meta_len, &n_meta, why, why_len);
	if (rv != 0) {
		return rv;
	}
	pthread_rwlock_rdlock(&r->lock);
	service *s       = NULL;
	rec     *cur     = inst_find(r, reg->service, reg->endpoint, &s);
	bool     differs = true;
	int64_t  at      = reg->registered_at_ms != 0 ? reg->registered_at_ms : now_ms;
	if (cur != NULL) {
		differs
		    = rec_differs(cur, reg->health_path, reg->ttl_ms, reg->weight, meta, meta_len);
		at = cur->registered_at_ms;
	} else {
		rv = check_limits(r, s, reg->service, pending_service, pending_total, why, why_len);
	}
	pthread_rwlock_unlock(&r->lock);
	free(meta);
	if (rv == 0) { /* out-parameters are written on success only */
		*creates       = cur == NULL;
		*changes       = differs;
		*registered_at = at;
	}
	return rv;
}

uint32_t
dsi_registry_count_matching(dsi_registry *r, const char *svc, const char *endpoint)
{
	uint32_t n = 0;
	pthread_rwlock_rdlock(&r->lock);
	service *s = service_find(r, svc);
	if (s != NULL && endpoint != NULL) {
		bool found;
		inst_search(s, endpoint, &found);
		n = found;
	} else if (s != NULL) {
		n = (uint32_t) s->n;
	}
	pthread_rwlock_unlock(&r->lock);
	return n;
}

void
dsi_registry_set_revision(dsi_registry *r, uint64_t rev)
{
	pthread_rwlock_wrlock(&r->lock);
	if (rev > r->revision) {
		r->revision = rev;
	}
	pthread_rwlock_unlock(&r->lock);
}

int
dsi_registry_register(dsi_registry *r, const dsi_registration *reg, int64_t now_ms,
    dsi_instance **out, bool *created, uint64_t *rev, char *why, size_t why_len)
{
	char         *meta = NULL, *hp = NULL;
	uint32_t      meta_len, n_meta;
	rec          *x  = NULL;
	dsi_instance *ex = NULL;
	int           rv;

	/* Everything that allocates happens before the lock is taken. */
	rv = meta_build(r, reg->metadata, reg->n_metadata, &meta, &meta_len, &n_meta, why, why_len);
	if (rv != 0) {
		pthread_rwlock_rdlock(&r->lock);
		store_rev(r, rev);
		pthread_rwlock_unlock(&r->lock);
		return rv;
	}
	hp = strdup(reg->health_path);
	x  = calloc(1, sizeof(*x));
	if (hp == NULL || x == NULL || (x->endpoint = strdup(reg->endpoint)) == NULL) {
		free(meta);
		free(hp);
		rec_free(x);
		return DSC_ENOMEM;
	}

	pthread_rwlock_wrlock(&r->lock);
	service *s     = service_find(r, reg->service);
	bool     found = false;
	size_t   idx   = 0;
	if (s != NULL) {
		idx = inst_search(s, reg->endpoint, &found);
	}
	if (found) {
		rec *cur = s->inst[idx];
		if (rec_differs(cur, hp, reg->ttl_ms, reg->weight, meta, meta_len)) {
			free(cur->health_path);
			free(cur->meta);
			cur->health_path = hp;
			cur->meta        = meta;
			cur->meta_len    = meta_len;
			cur->n_meta      = n_meta;
			if (cur->ttl_ms != reg->ttl_ms) {
				cur->ttl_deadline_ms
				    = now_ms + reg->ttl_ms; /* a new TTL, a new grace */
			}
			cur->ttl_ms = reg->ttl_ms;
			cur->weight = reg->weight;
			hp = meta = NULL;
			note_change(r, DISCOVERY__V1__EVENT_TYPE__EVENT_UPDATED, s->name, cur,
			    cur->health, now_ms, "");
		}
		if (out != NULL && (ex = rec_export(s->name, cur)) == NULL) {
			rv = DSC_ENOMEM; /* the update stands; only the copy failed */
		}
		*created = false;
		goto unlock;
	}
	if ((rv = check_limits(r, s, reg->service, 0, 0, why, why_len)) != 0) {
		goto unlock;
	}
	bool new_service = s == NULL;
	if (new_service && (s = service_add(r, reg->service)) == NULL) {
		rv = DSC_ENOMEM;
		goto unlock;
	}
	if (s->n == s->cap) {
		size_t ncap = s->cap == 0 ? 2 : s->cap * 2;
		rec  **ni   = realloc(s->inst, ncap * sizeof(*ni));
		if (ni == NULL) {
			if (new_service) {
				service_remove(r, s);
			}
			rv = DSC_ENOMEM;
			goto unlock;
		}
		s->inst = ni;
		s->cap  = ncap;
	}
	x->health_path      = hp;
	x->meta             = meta;
	x->meta_len         = meta_len;
	x->n_meta           = n_meta;
	x->ttl_ms           = reg->ttl_ms;
	x->weight           = reg->weight;
	x->registered_at_ms = reg->registered_at_ms != 0 ? reg->registered_at_ms : now_ms;
	x->ttl_deadline_ms  = now_ms + reg->ttl_ms;
	x->health           = DSC_HEALTH_UNKNOWN;
	memmove(&s->inst[idx + 1], &s->inst[idx], (s->n - idx) * sizeof(*s->inst));
	s->inst[idx] = x;
	s->n++;
	r->ninstances++;
	hp = meta = NULL;
	x         = NULL;
	note_change(r, DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED, s->name, s->inst[idx],
	    DSC_HEALTH_UNKNOWN, now_ms, "");
	*created = true;
	if (out != NULL && (ex = rec_export(s->name, s->inst[idx])) == NULL) {
		rv = DSC_ENOMEM;
	}

unlock:
	store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	free(meta);
	free(hp);
	rec_free(x);
	if (rv == 0 && out != NULL) {
		*out = ex;
	} else {
		free(ex);
	}
	return rv;
}

static uint32_t
rec_weight(const void *items, size_t i)
{
	return ((rec *const *) items)[i]->weight;
}

static bool
rec_healthy(const void *items, size_t i)
{
	return ((rec *const *) items)[i]->health == DSC_HEALTH_HEALTHY;
}

int
dsi_registry_resolve(
    dsi_registry *r, const char *svc, bool healthy_only, dsi_instance **out, uint64_t *rev)
{
	int    rv;
	size_t i;

	pthread_rwlock_rdlock(&r->lock);
	service *s = service_find(r, svc);
	if (s == NULL) {
		rv = DSC_ENOTFOUND;
	} else {
		dsi_pick_src src = { s->inst, s->n, rec_weight, rec_healthy };
		rv               = dsi_pick(&src, &s->cursor, healthy_only, &i);
		if (rv == 0 && (*out = rec_export(s->name, s->inst[i])) == NULL) {
			rv = DSC_ENOMEM;
		}
	}
	store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	return rv;
}

/* Removes instance i of s as one change; the caller removes an empty s. */
static void
inst_remove(dsi_registry *r, service *s, size_t i, const char *reason)
{
	rec *x = s->inst[i];
	note_change(r, DISCOVERY__V1__EVENT_TYPE__EVENT_DEREGISTERED, s->name, x, x->health,
	    dsi_wall_ms(), reason);
	memmove(&s->inst[i], &s->inst[i + 1], (s->n - i - 1) * sizeof(*s->inst));
	s->n--;
	r->ninstances--;
	rec_free(x);
}

int
dsi_registry_deregister(
    dsi_registry *r, const char *svc, const char *endpoint, uint32_t *removed, uint64_t *rev)
{
	uint32_t n = 0;

	pthread_rwlock_wrlock(&r->lock);
	service *s = service_find(r, svc);
	if (s != NULL && endpoint != NULL) {
		bool   found;
		size_t i = inst_search(s, endpoint, &found);
		if (found) {
			inst_remove(r, s, i, "");
			n = 1;
		}
	} else if (s != NULL) {
		/* One change per instance, so revisions still count changes. */
		n = (uint32_t) s->n;
		while (s->n > 0) {
			inst_remove(r, s, s->n - 1, "");
		}
	}
	if (s != NULL && s->n == 0) {
		service_remove(r, s);
	}
	store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	*removed = n;
	return 0;
}

int
dsi_registry_is_healthy(dsi_registry *r, const char *svc, const char *endpoint, bool *healthy,
    dsc_health *state, uint64_t *rev)
{
	int        rv = 0;
	dsc_health st = DSC_HEALTH_UNHEALTHY;

	pthread_rwlock_rdlock(&r->lock);
	service *s = service_find(r, svc);
	if (s == NULL) {
		rv = DSC_ENOTFOUND;
	} else if (endpoint != NULL) {
		bool   found;
		size_t i = inst_search(s, endpoint, &found);
		if (found) {
			st = s->inst[i]->health;
		} else {
			rv = DSC_ENOTFOUND;
		}
	} else {
		/* The best state wins: healthy, then unknown, then unhealthy. */
		for (size_t i = 0; i < s->n && st != DSC_HEALTH_HEALTHY; i++) {
			if (s->inst[i]->health == DSC_HEALTH_HEALTHY) {
				st = DSC_HEALTH_HEALTHY;
			} else if (s->inst[i]->health == DSC_HEALTH_UNKNOWN) {
				st = DSC_HEALTH_UNKNOWN;
			}
		}
	}
	store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	if (rv == 0) {
		*healthy = st == DSC_HEALTH_HEALTHY;
		*state   = st;
	}
	return rv;
}

static int
service_ptr_cmp(const void *a, const void *b)
{
	return strcmp((*(service *const *) a)->name, (*(service *const *) b)->name);
}

static int
export_service(const service *s, dsi_instances *out)
{
	for (size_t i = 0; i < s->n; i++) {
		if ((out->items[out->count] = rec_export(s->name, s->inst[i])) == NULL) {
			return DSC_ENOMEM;
		}
		out->count++;
	}
	return 0;
}

int
dsi_registry_get_all(dsi_registry *r, const char *svc, dsi_instances *out, uint64_t *rev)
{
	dsi_instances list = { NULL, 0 };
	service     **all  = NULL;
	int           rv   = 0;

	pthread_rwlock_rdlock(&r->lock);
	if (svc != NULL) {
		service *s = service_find(r, svc);
		if (s != NULL && s->n > 0) {
			if ((list.items = calloc(s->n, sizeof(*list.items))) == NULL) {
				rv = DSC_ENOMEM;
			} else {
				rv = export_service(s, &list);
			}
		}
		goto unlock;
	}
	if (r->ninstances == 0) {
		goto unlock;
	}
	all        = calloc(r->nservices, sizeof(*all));
	list.items = calloc(r->ninstances, sizeof(*list.items));
	if (all == NULL || list.items == NULL) {
		rv = DSC_ENOMEM;
		goto unlock;
	}
	size_t k = 0;
	for (size_t i = 0; i < r->nbuckets; i++) {
		for (service *s = r->buckets[i]; s != NULL; s = s->next) {
			all[k++] = s;
		}
	}
	qsort(all, k, sizeof(*all), service_ptr_cmp);
	for (size_t i = 0; i < k && rv == 0; i++) {
		rv = export_service(all[i], &list);
	}
unlock:
	store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	free(all);
	if (rv != 0) {
		dsi_instances_free(&list);
		return rv;
	}
	*out = list;
	return 0;
}

/*
 * Sets health and the check fields (taking err), and reports a change of
 * state as one registry change.
 */
static void
rec_set_health(dsi_registry *r, const service *s, rec *x, dsc_health health, int64_t now_ms,
    char *err, const char *reason)
{
	dsc_health previous = x->health;
	x->health           = health;
	x->last_check_ms    = now_ms;
	free(x->last_error);
	x->last_error = err;
	if (previous != health) {
		if (health == DSC_HEALTH_UNHEALTHY) {
			x->unhealthy_since_ms = now_ms;
		}
		note_change(r, DISCOVERY__V1__EVENT_TYPE__EVENT_HEALTH_CHANGED, s->name, x,
		    previous, now_ms, reason);
	}
}

int
dsi_registry_heartbeat(dsi_registry *r, const char *svc, const char *endpoint, int64_t now_ms,
    dsi_instance **out, uint64_t *rev)
{
	int           rv = 0;
	dsi_instance *ex = NULL;
	service      *s  = NULL;

	pthread_rwlock_wrlock(&r->lock);
	rec *x = inst_find(r, svc, endpoint, &s);
	if (x == NULL) {
		rv = DSC_ENOTFOUND;
	} else if (x->ttl_ms == 0) {
		rv = DSC_ESTATE;
	} else {
		x->ttl_deadline_ms = now_ms + x->ttl_ms;
		rec_set_health(r, s, x, DSC_HEALTH_HEALTHY, now_ms, NULL, "heartbeat");
		if (out != NULL && (ex = rec_export(s->name, x)) == NULL) {
			rv = DSC_ENOMEM;
		}
	}
	store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	if (rv == 0 && out != NULL) {
		*out = ex;
	}
	return rv;
}

int
dsi_registry_set_health(dsi_registry *r, const char *svc, const char *endpoint, dsc_health health,
    int64_t now_ms, const char *last_error, const char *reason, uint64_t *rev)
{
	int      rv  = 0;
	char    *err = NULL;
	service *s   = NULL;

	if (last_error != NULL && last_error[0] != 0 && (err = strdup(last_error)) == NULL) {
		return DSC_ENOMEM;
	}
	pthread_rwlock_wrlock(&r->lock);
	rec *x = inst_find(r, svc, endpoint, &s);
	if (x == NULL) {
		rv = DSC_ENOTFOUND;
	} else {
		rec_set_health(r, s, x, health, now_ms, err, reason != NULL ? reason : "");
		err = NULL;
	}
	store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	free(err);
	return rv;
}

int
dsi_registry_ttl_expire(
    dsi_registry *r, const char *svc, const char *endpoint, int64_t now_ms, int64_t *next_ms)
{
	int      rv = 0;
	service *s  = NULL;

	pthread_rwlock_wrlock(&r->lock);
	rec *x = inst_find(r, svc, endpoint, &s);
	if (x == NULL || x->ttl_ms == 0) {
		rv = DSC_ENOTFOUND;
	} else if (now_ms < x->ttl_deadline_ms) {
		*next_ms = x->ttl_deadline_ms;
	} else {
		if (x->health != DSC_HEALTH_UNHEALTHY) {
			char why[96];
			snprintf(why, sizeof(why), "no heartbeat within %u ms", x->ttl_ms);
			rec_set_health(r, s, x, DSC_HEALTH_UNHEALTHY, now_ms, strdup(why), why);
		}
		/* Expired: a heartbeat moves the deadline; look again after one TTL. */
		*next_ms = now_ms + x->ttl_ms;
	}
	pthread_rwlock_unlock(&r->lock);
	return rv;
}

static bool
reap_due(const rec *x, int64_t after_ms, int64_t now_ms)
{
	return x->health == DSC_HEALTH_UNHEALTHY && now_ms - x->unhealthy_since_ms >= after_ms;
}

bool
dsi_registry_reap_due(
    dsi_registry *r, const char *svc, const char *endpoint, int64_t after_ms, int64_t now_ms)
{
	pthread_rwlock_rdlock(&r->lock);
	const rec *x   = inst_find(r, svc, endpoint, NULL);
	bool       due = x != NULL && reap_due(x, after_ms, now_ms);
	pthread_rwlock_unlock(&r->lock);
	return due;
}

int
dsi_registry_reap(dsi_registry *r, const char *svc, const char *endpoint, int64_t after_ms,
    int64_t now_ms, bool force, bool *removed)
{
	int      rv = 0;
	service *s  = NULL;
	bool     found;

	*removed = false;
	pthread_rwlock_wrlock(&r->lock);
	rec *x = inst_find(r, svc, endpoint, &s);
	if (x == NULL) {
		rv = DSC_ENOTFOUND;
	} else if (force || reap_due(x, after_ms, now_ms)) {
		char why[96];
		snprintf(why, sizeof(why), "unhealthy for more than %lld ms (--deregister-after)",
		    (long long) after_ms);
		inst_remove(r, s, inst_search(s, endpoint, &found), why);
		if (s->n == 0) {
			service_remove(r, s);
		}
		*removed = true;
	}
	pthread_rwlock_unlock(&r->lock);
	return rv;
}

uint64_t
dsi_registry_revision(dsi_registry *r)
{
	pthread_rwlock_rdlock(&r->lock);
	uint64_t rev = r->revision;
	pthread_rwlock_unlock(&r->lock);
	return rev;
}

size_t
dsi_registry_count(dsi_registry *r)
{
	pthread_rwlock_rdlock(&r->lock);
	size_t n = r->ninstances;
	pthread_rwlock_unlock(&r->lock);
	return n;
}
