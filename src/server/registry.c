/*
 * The in-memory registry: a hash table of services, each holding its
 * instances in an array sorted by endpoint, all under one rwlock. Reads
 * and health live here; registrations and removals in registry_op.c.
 */
#include "server/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/name.h"
#include "common/pick.h"
#include "common/rwlock.h"
#include "common/sorted.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/registry_impl.h"

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

static bool
service_match(const dsi_hash_node *n, const void *name)
{
	return strcmp(DSI_CONTAINER_OF(n, service, node)->name, name) == 0;
}

service *
dsi_reg_service_of(dsi_hash_node *n)
{
	return n != NULL ? DSI_CONTAINER_OF(n, service, node) : NULL;
}

service *
dsi_reg_service_find(const dsi_registry *r, const char *name)
{
	return dsi_reg_service_of(dsi_hash_find(&r->services, dsi_hash_str(name), name));
}

void
dsi_reg_service_link(dsi_registry *r, service *s)
{
	atomic_init(&s->cursor, 0);
	dsi_hash_insert(&r->services, &s->node, dsi_hash_str(s->name));
}

void
dsi_reg_rec_free(rec *x)
{
	if (x != NULL) {
		free(x->endpoint);
		free(x->health_path);
		free(x->last_error);
		free(x->meta);
		free(x);
	}
}

void
dsi_reg_service_remove(dsi_registry *r, service *s)
{
	dsi_hash_remove(&r->services, &s->node);
	for (size_t i = 0; i < s->n; i++) {
		dsi_reg_rec_free(s->inst[i]);
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
size_t
dsi_reg_inst_search(const service *s, const char *endpoint, bool *found)
{
	return dsi_sorted_search(s->inst, s->n, sizeof(*s->inst), endpoint, rec_key, found);
}

rec *
dsi_reg_inst_find(const dsi_registry *r, const char *svc, const char *endpoint, service **sp)
{
	service *s = dsi_reg_service_find(r, svc);
	bool     found;
	if (s == NULL) {
		return NULL;
	}
	size_t i = dsi_reg_inst_search(s, endpoint, &found);
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

static size_t
export_size(const char *svc, const rec *x, size_t last_error_room)
{
	size_t n = x->n_meta;
	return sizeof(dsi_instance) + n * (sizeof(meta_entry *) + sizeof(meta_entry))
	    + str_size(svc) + str_size(x->endpoint) + str_size(x->health_path) + last_error_room
	    + x->meta_len;
}

size_t
dsi_reg_export_size(const char *svc, const rec *x)
{
	return export_size(svc, x, DSI_LAST_ERROR_MAX);
}

dsi_instance *
dsi_reg_export_to(void *block, const char *svc, const rec *x)
{
	size_t        n = x->n_meta;
	dsi_instance *m = block;
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

dsi_instance *
dsi_reg_rec_export(const char *svc, const rec *x)
{
	void *block = malloc(export_size(svc, x, str_size(x->last_error)));
	return block != NULL ? dsi_reg_export_to(block, svc, x) : NULL;
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

/* ---- the registry ---- */

int
dsi_registry_create(dsi_registry **out, const dsi_registry_limits *limits)
{
	dsi_registry *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return DSC_ENOMEM;
	}
	if (dsi_hash_init(&r->services, 64, service_match) != 0) {
		free(r);
		return DSC_ENOMEM;
	}
	if (limits != NULL) {
		r->limits = *limits;
	} else {
		dsi_registry_limits_default(&r->limits);
	}
	if (dsi_rwlock_init(&r->lock) != 0) { /* writer-preferring: resolves cannot starve writes */
		dsi_hash_fini(&r->services);
		free(r);
		return DSC_ENOMEM;
	}
	pthread_mutex_init(&r->wmtx, NULL);
	atomic_init(&r->fail_after, -1);
	*out = r;
	return 0;
}

void
dsi_registry_destroy(dsi_registry *r)
{
	if (r == NULL) {
		return;
	}
	dsi_hash_iter it;
	dsi_hash_iter_init(&it, &r->services);
	for (service *s; (s = dsi_reg_service_of(dsi_hash_iter_next(&it))) != NULL;) {
		dsi_reg_service_remove(r, s); /* the walk allows removing the node it is on */
	}
	dsi_hash_fini(&r->services);
	pthread_rwlock_destroy(&r->lock);
	pthread_mutex_destroy(&r->wmtx);
	free(r);
}

/*
 * Every change goes through here, under the write lock, so the revision
 * counts changes exactly and the observer sees them in order.
 */
void
dsi_reg_note_change(dsi_registry *r, Discovery__V1__EventType type, const char *svc, const rec *x,
    dsc_health previous, int64_t now_ms, const char *reason, void *block)
{
	r->revision++;
	if (r->observer == NULL) {
		free(block);
		return;
	}
	dsi_change ch = {
		.type    = type,
		.service = svc,
		.instance
		= block != NULL ? dsi_reg_export_to(block, svc, x) : dsi_reg_rec_export(svc, x),
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

void
dsi_reg_store_rev(const dsi_registry *r, uint64_t *rev)
{
	if (rev != NULL) {
		*rev = r->revision;
	}
}

/*
 * Sets health and the check fields (taking err), and reports a change of
 * state as one registry change.
 */
void
dsi_reg_set_health(dsi_registry *r, const service *s, rec *x, dsc_health health, int64_t now_ms,
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
		dsi_reg_note_change(r, DISCOVERY__V1__EVENT_TYPE__EVENT_HEALTH_CHANGED, s->name, x,
		    previous, now_ms, reason, NULL);
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
	rec *x = dsi_reg_inst_find(r, svc, endpoint, &s);
	if (x == NULL) {
		rv = DSC_ENOTFOUND;
	} else if (x->ttl_ms == 0) {
		rv = DSC_ESTATE;
	} else {
		x->ttl_deadline_ms = now_ms + x->ttl_ms;
		dsi_reg_set_health(r, s, x, DSC_HEALTH_HEALTHY, now_ms, NULL, "heartbeat");
		if (out != NULL && (ex = dsi_reg_rec_export(s->name, x)) == NULL) {
			rv = DSC_ENOMEM;
		}
	}
	dsi_reg_store_rev(r, rev);
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

	if (last_error != NULL && last_error[0] != 0
	    && (err = strndup(last_error, DSI_LAST_ERROR_MAX - 1)) == NULL) {
		return DSC_ENOMEM;
	}
	pthread_rwlock_wrlock(&r->lock);
	rec *x = dsi_reg_inst_find(r, svc, endpoint, &s);
	if (x == NULL) {
		rv = DSC_ENOTFOUND;
	} else {
		dsi_reg_set_health(r, s, x, health, now_ms, err, reason != NULL ? reason : "");
		err = NULL;
	}
	dsi_reg_store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	free(err);
	return rv;
}

int
dsi_registry_note_check(
    dsi_registry *r, const char *svc, const char *endpoint, int64_t now_ms, const char *last_error)
{
	char    *err = NULL;
	service *s   = NULL;
	int      rv  = 0;

	if (last_error != NULL && last_error[0] != 0
	    && (err = strndup(last_error, DSI_LAST_ERROR_MAX - 1)) == NULL) {
		return DSC_ENOMEM;
	}
	pthread_rwlock_wrlock(&r->lock);
	rec *x = dsi_reg_inst_find(r, svc, endpoint, &s);
	if (x == NULL) {
		rv = DSC_ENOTFOUND;
	} else {
		dsi_reg_set_health(r, s, x, (dsc_health) x->health, now_ms, err, "");
		err = NULL;
	}
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
	rec *x = dsi_reg_inst_find(r, svc, endpoint, &s);
	if (x == NULL || x->ttl_ms == 0) {
		rv = DSC_ENOTFOUND;
	} else if (now_ms < x->ttl_deadline_ms) {
		*next_ms = x->ttl_deadline_ms;
	} else {
		if (x->health != DSC_HEALTH_UNHEALTHY) {
			char why[96];
			snprintf(why, sizeof(why), "no heartbeat within %u ms", x->ttl_ms);
			dsi_reg_set_health(r, s, x, DSC_HEALTH_UNHEALTHY, now_ms, strdup(why), why);
		}
		/* Expired: a heartbeat moves the deadline; look again after one TTL. */
		*next_ms = now_ms + x->ttl_ms;
	}
	pthread_rwlock_unlock(&r->lock);
	return rv;
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

bool
dsi_registry_reap_due(
    dsi_registry *r, const char *svc, const char *endpoint, int64_t after_ms, int64_t now_ms)
{
	pthread_rwlock_rdlock(&r->lock);
	const rec *x   = dsi_reg_inst_find(r, svc, endpoint, NULL);
	bool       due = x != NULL && x->health == DSC_HEALTH_UNHEALTHY
	    && now_ms - x->unhealthy_since_ms >= after_ms;
	pthread_rwlock_unlock(&r->lock);
	return due;
}
