/* The view's local copy: sorted services and instances, changed only under view.c's write lock. */
#include "client/viewdata.h"

#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/pick.h"
#include "common/sorted.h"

static uint32_t
inst_weight(const void *items, size_t i)
{
	return ((const dsc_instance *) items)[i].weight;
}

static bool
inst_healthy(const void *items, size_t i)
{
	return ((const dsc_instance *) items)[i].health == DSC_HEALTH_HEALTHY;
}

void
dsi_vservice_free(dsi_vservice *s)
{
	if (s != NULL) {
		for (size_t i = 0; i < s->n; i++) {
			dsi_inst_clear(&s->inst[i]);
		}
		free(s->inst);
		free(s->name);
		free(s);
	}
}

void
dsi_vdata_free(dsi_vdata *d)
{
	if (d != NULL) {
		for (size_t i = 0; i < d->n; i++) {
			dsi_vservice_free(d->svc[i]);
		}
		free(d->svc);
		free(d);
	}
}

static const char *
service_key(const void *elem)
{
	return (*(dsi_vservice *const *) elem)->name;
}

/* The index of name in d, or where it would go (*found false). */
static size_t
service_search(const dsi_vdata *d, const char *name, bool *found)
{
	return dsi_sorted_search(d->svc, d->n, sizeof(*d->svc), name, service_key, found);
}

dsi_vservice *
dsi_vdata_find(const dsi_vdata *d, const char *name)
{
	bool   found;
	size_t i = service_search(d, name, &found);
	return found ? d->svc[i] : NULL;
}

/* The service called name, created empty when absent; NULL when out of memory. */
static dsi_vservice *
service_get(dsi_vdata *d, const char *name)
{
	bool          found;
	size_t        i = service_search(d, name, &found);
	dsi_vservice *s;

	if (found) {
		return d->svc[i];
	}
	if (d->n == d->cap) {
		size_t         cap = d->cap ? d->cap * 2 : 16;
		dsi_vservice **nv  = realloc(d->svc, cap * sizeof(*nv));
		if (nv == NULL) {
			return NULL;
		}
		d->svc = nv;
		d->cap = cap;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->name = strdup(name)) == NULL) {
		free(s);
		return NULL;
	}
	atomic_init(&s->cursor, 0);
	memmove(&d->svc[i + 1], &d->svc[i], (d->n - i) * sizeof(*d->svc));
	d->svc[i] = s;
	d->n++;
	return s;
}

/* Drops the service at index i from d and returns it (for freeing outside the lock). */
static dsi_vservice *
service_unlink(dsi_vdata *d, size_t i)
{
	dsi_vservice *s = d->svc[i];
	memmove(&d->svc[i], &d->svc[i + 1], (d->n - i - 1) * sizeof(*d->svc));
	d->n--;
	return s;
}

static const char *
inst_key(const void *elem)
{
	return ((const dsc_instance *) elem)->endpoint;
}

static size_t
inst_search(const dsi_vservice *s, const char *endpoint, bool *found)
{
	return dsi_sorted_search(s->inst, s->n, sizeof(*s->inst), endpoint, inst_key, found);
}

/*
 * Moves *x into s, replacing an instance with the same endpoint. What it
 * replaces is moved into *x, so the caller frees it (outside any lock);
 * otherwise *x is zeroed. Returns 0 or DSC_ENOMEM (then *x is untouched).
 */
static int
service_put(dsi_vservice *s, dsc_instance *x)
{
	bool   found;
	size_t i = inst_search(s, x->endpoint, &found);

	if (found) {
		dsc_instance old = s->inst[i];
		s->inst[i]       = *x;
		*x               = old;
	} else {
		if (s->n == s->cap) {
			size_t        cap = s->cap ? s->cap * 2 : 4;
			dsc_instance *ni  = realloc(s->inst, cap * sizeof(*ni));
			if (ni == NULL) {
				return DSC_ENOMEM;
			}
			s->inst = ni;
			s->cap  = cap;
		}
		memmove(&s->inst[i + 1], &s->inst[i], (s->n - i) * sizeof(*s->inst));
		s->inst[i] = *x;
		s->n++;
		memset(x, 0, sizeof(*x));
	}
	return 0;
}

int
dsi_vdata_put(dsi_vdata *d, const char *service, dsc_instance *x)
{
	dsi_vservice *s = service_get(d, service);
	return s != NULL ? service_put(s, x) : DSC_ENOMEM;
}

void
dsi_vdata_remove(dsi_vdata *d, const char *service, const char *endpoint, dsc_instance *removed,
    dsi_vservice **gone)
{
	bool   found;
	size_t si = service_search(d, service, &found);

	memset(removed, 0, sizeof(*removed));
	*gone = NULL;
	if (!found) {
		return;
	}
	dsi_vservice *s = d->svc[si];
	size_t        i = inst_search(s, endpoint, &found);
	if (found) {
		*removed = s->inst[i];
		memmove(&s->inst[i], &s->inst[i + 1], (s->n - i - 1) * sizeof(*s->inst));
		s->n--;
	}
	if (s->n == 0) {
		*gone = service_unlink(d, si);
	}
}

static int
inst_cmp(const void *a, const void *b)
{
	const dsc_instance *x = a, *y = b;
	int                 c = strcmp(x->service, y->service);
	return c != 0 ? c : strcmp(x->endpoint, y->endpoint);
}

int
dsi_vdata_take(dsi_vdata *d, dsc_instance_list *list, const char *only)
{
	int rv = 0;

	/* The server sends them sorted; sorting again makes the build linear either way. */
	if (list->count > 1) {
		qsort(list->items, list->count, sizeof(*list->items), inst_cmp);
	}
	for (size_t i = 0; i < list->count && rv == 0; i++) {
		dsc_instance *x = &list->items[i];
		if (x->service[0] == 0 || x->endpoint[0] == 0
		    || (only != NULL && strcmp(x->service, only) != 0)) {
			continue;
		}
		rv = dsi_vdata_put(d, x->service, x);
	}
	dsc_instance_list_free(list); /* moved instances were zeroed, so this frees the rest */
	return rv;
}

int
dsi_vservice_pick(dsi_vservice *s, bool healthy_only, const dsc_instance **out)
{
	/* The server's --protection-threshold is not known here: 0, off. */
	dsi_pick_src src = { s->inst, s->n, inst_weight, inst_healthy, 0 };
	size_t       i;
	int          rv = dsi_pick(&src, &s->cursor, healthy_only, &i);
	if (rv == 0) {
		*out = &s->inst[i];
	}
	return rv;
}

int
dsi_vservice_copy(dsc_instance_list *list, const dsi_vservice *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (dsi_inst_copy(&list->items[list->count], &s->inst[i]) != 0) {
			return DSC_ENOMEM;
		}
		list->count++;
	}
	return 0;
}
