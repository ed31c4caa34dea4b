/*
 * The registry's reads: Resolve's pick, IsHealthy, GetAll and the counts,
 * each under the read lock, each answering with exported copies.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pick.h"
#include "server/registry.h"
#include "server/registry_impl.h"

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
	service *s = dsi_reg_service_find(r, svc);
	if (s == NULL) {
		rv = DSC_ENOTFOUND;
	} else {
		dsi_pick_src src = { s->inst, s->n, rec_weight, rec_healthy,
			atomic_load_explicit(&r->protect_ppm, memory_order_relaxed) };
		rv               = dsi_pick(&src, &s->cursor, healthy_only, &i);
		if (rv == 0 && (*out = dsi_reg_rec_export(s->name, s->inst[i])) == NULL) {
			rv = DSC_ENOMEM;
		}
	}
	dsi_reg_store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	return rv;
}

int
dsi_registry_is_healthy(dsi_registry *r, const char *svc, const char *endpoint, bool *healthy,
    dsc_health *state, uint64_t *rev)
{
	int        rv = 0;
	dsc_health st = DSC_HEALTH_UNHEALTHY;

	pthread_rwlock_rdlock(&r->lock);
	service *s = dsi_reg_service_find(r, svc);
	if (s == NULL) {
		rv = DSC_ENOTFOUND;
	} else if (endpoint != NULL) {
		bool   found;
		size_t i = dsi_reg_inst_search(s, endpoint, &found);
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
	dsi_reg_store_rev(r, rev);
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
		if ((out->items[out->count] = dsi_reg_rec_export(s->name, s->inst[i])) == NULL) {
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
		service *s = dsi_reg_service_find(r, svc);
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
	all        = calloc(dsi_hash_count(&r->services), sizeof(*all));
	list.items = calloc(r->ninstances, sizeof(*list.items));
	if (all == NULL || list.items == NULL) {
		rv = DSC_ENOMEM;
		goto unlock;
	}
	size_t        k = 0;
	dsi_hash_iter it;
	dsi_hash_iter_init(&it, &r->services);
	for (service *s; (s = dsi_reg_service_of(dsi_hash_iter_next(&it))) != NULL;) {
		all[k++] = s;
	}
	qsort(all, k, sizeof(*all), service_ptr_cmp);
	for (size_t i = 0; i < k && rv == 0; i++) {
		rv = export_service(all[i], &list);
	}
unlock:
	dsi_reg_store_rev(r, rev);
	pthread_rwlock_unlock(&r->lock);
	free(all);
	if (rv != 0) {
		dsi_instances_free(&list);
		return rv;
	}
	*out = list;
	return 0;
}

int
dsi_registry_get_origin(dsi_registry *r, uint8_t origin, dsi_instances *out)
{
	dsi_instances list = { NULL, 0 };
	int           rv   = 0;
	dsi_hash_iter it;

	pthread_rwlock_rdlock(&r->lock);
	if (r->ninstances > 0
	    && (list.items = calloc(r->ninstances, sizeof(*list.items))) == NULL) {
		rv = DSC_ENOMEM;
	}
	dsi_hash_iter_init(&it, &r->services);
	for (service *s; rv == 0 && (s = dsi_reg_service_of(dsi_hash_iter_next(&it))) != NULL;) {
		for (size_t i = 0; i < s->n && rv == 0; i++) {
			if (s->inst[i]->origin != origin) {
				continue;
			}
			if ((list.items[list.count] = dsi_reg_rec_export(s->name, s->inst[i]))
			    == NULL) {
				rv = DSC_ENOMEM;
			} else {
				list.count++;
			}
		}
	}
	pthread_rwlock_unlock(&r->lock);
	if (rv != 0) {
		dsi_instances_free(&list);
		return rv;
	}
	*out = list;
	return 0;
}

int
dsi_registry_get_one(dsi_registry *r, const char *svc, const char *endpoint, dsi_instance **out,
    int64_t *ttl_deadline_ms, uint64_t *rev)
{
	int           rv = 0;
	dsi_instance *ex = NULL;
	service      *s  = NULL;

	pthread_rwlock_rdlock(&r->lock);
	rec *x = dsi_reg_inst_find(r, svc, endpoint, &s);
	if (x == NULL) {
		rv = DSC_ENOTFOUND;
	} else {
		if (ttl_deadline_ms != NULL) {
			*ttl_deadline_ms = x->ttl_deadline_ms;
		}
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

uint64_t
dsi_registry_revision(dsi_registry *r)
{
	pthread_rwlock_rdlock(&r->lock);
	uint64_t rev = r->revision;
	pthread_rwlock_unlock(&r->lock);
	return rev;
}

size_t
dsi_registry_count_unhealthy(dsi_registry *r, size_t *total)
{
	dsi_hash_iter  it;
	dsi_hash_node *n;
	size_t         bad = 0;
	pthread_rwlock_rdlock(&r->lock);
	dsi_hash_iter_init(&it, &r->services);
	while ((n = dsi_hash_iter_next(&it)) != NULL) {
		const service *s = DSI_CONTAINER_OF(n, service, node);
		for (size_t i = 0; i < s->n; i++) {
			bad += s->inst[i]->health == DSC_HEALTH_UNHEALTHY;
		}
	}
	*total = r->ninstances;
	pthread_rwlock_unlock(&r->lock);
	return bad;
}

size_t
dsi_registry_count(dsi_registry *r)
{
	pthread_rwlock_rdlock(&r->lock);
	size_t n = r->ninstances;
	pthread_rwlock_unlock(&r->lock);
	return n;
}

void
dsi_registry_set_protection(dsi_registry *r, double threshold)
{
	threshold = threshold < 0 ? 0 : threshold > 1 ? 1 : threshold;
	atomic_store(&r->protect_ppm, (uint32_t) (threshold * 1000000.0 + 0.5));
}
