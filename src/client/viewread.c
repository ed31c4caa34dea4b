/*
 * Lookups in a view's local copy: resolving and listing under the read
 * lock, with no network round trip (the copy is kept by view.c).
 */
#include <discovery/discovery.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "client/viewdata.h"
#include "client/viewimpl.h"
#include "common/name.h"

/* Resolves the normalized name under the read lock, which the caller holds. */
static int
resolve_locked(dsc_view *v, const char *name, bool healthy_only, const dsc_instance **out)
{
	dsi_vservice *s = dsi_vdata_find(v->data, name);
	return s != NULL ? dsi_vservice_pick(s, healthy_only, out) : DSC_ENOTFOUND;
}

int
dsc_view_resolve(dsc_view *v, const char *service, bool healthy_only, dsc_instance **out)
{
	const dsc_instance *x;
	dsc_instance       *copy = NULL;
	char                name[DSI_NAME_MAX + 1], why[8];
	int                 rv;

	if (v == NULL || dsi_name_normalize(service, name, why, sizeof(why)) != 0) {
		return DSC_EINVAL;
	}
	pthread_rwlock_rdlock(&v->lock);
	rv = resolve_locked(v, name, healthy_only, &x);
	if (rv == 0 && out != NULL) {
		if ((copy = malloc(sizeof(*copy))) == NULL || dsi_inst_copy(copy, x) != 0) {
			free(copy);
			copy = NULL;
			rv   = DSC_ENOMEM;
		}
	}
	pthread_rwlock_unlock(&v->lock);
	if (rv == 0 && out != NULL) {
		*out = copy;
	}
	return rv;
}

int
dsc_view_resolve_endpoint(
    dsc_view *v, const char *service, bool healthy_only, char *buf, size_t len)
{
	const dsc_instance *x;
	char                name[DSI_NAME_MAX + 1], why[8];
	int                 rv;

	if (v == NULL || buf == NULL || len == 0
	    || dsi_name_normalize(service, name, why, sizeof(why)) != 0) {
		return DSC_EINVAL;
	}
	pthread_rwlock_rdlock(&v->lock);
	if ((rv = resolve_locked(v, name, healthy_only, &x)) == 0) {
		size_t n = strlen(x->endpoint);
		if (n < len) {
			memcpy(buf, x->endpoint, n + 1);
		} else {
			rv = DSC_ELIMIT;
		}
	}
	pthread_rwlock_unlock(&v->lock);
	return rv;
}

int
dsc_view_get_all(dsc_view *v, const char *service, dsc_instance_list **out)
{
	char               name[DSI_NAME_MAX + 1], why[8];
	dsc_instance_list *list;
	dsi_vservice      *one = NULL;
	size_t             n   = 0;
	int                rv  = 0;

	if (v == NULL || out == NULL) {
		return DSC_EINVAL;
	}
	bool all = service == NULL || service[0] == 0;
	if (!all && dsi_name_normalize(service, name, why, sizeof(why)) != 0) {
		return DSC_EINVAL;
	}
	if ((list = calloc(1, sizeof(*list))) == NULL) {
		return DSC_ENOMEM;
	}
	pthread_rwlock_rdlock(&v->lock);
	if (all) {
		for (size_t i = 0; i < v->data->n; i++) {
			n += v->data->svc[i]->n;
		}
	} else if ((one = dsi_vdata_find(v->data, name)) != NULL) {
		n = one->n;
	}
	if (n > 0 && (list->items = calloc(n, sizeof(*list->items))) == NULL) {
		rv = DSC_ENOMEM;
	}
	for (size_t i = 0; rv == 0 && all && i < v->data->n; i++) {
		rv = dsi_vservice_copy(list, v->data->svc[i]);
	}
	if (rv == 0 && one != NULL) {
		rv = dsi_vservice_copy(list, one);
	}
	list->revision = atomic_load(&v->revision);
	pthread_rwlock_unlock(&v->lock);
	if (rv != 0) {
		dsc_instance_list_free(list);
		return rv;
	}
	*out = list;
	return 0;
}
