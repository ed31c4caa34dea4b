/*
 * The view's local copy (view.c's impl header, as nng's sockimpl.h): the
 * services and their instances, sorted for binary search, with the
 * round-robin state resolves share. No locking here: view.c holds its
 * rwlock around every call, the write lock for anything that changes a copy.
 */
#ifndef DSI_CLIENT_VIEWDATA_H
#define DSI_CLIENT_VIEWDATA_H

#include <discovery/discovery.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One service of the local copy: instances sorted by endpoint, and resolve state. */
typedef struct dsi_vservice {
	char            *name;
	dsc_instance    *inst;
	size_t           n, cap;
	_Atomic uint64_t cursor; /* bumped by concurrent resolves under the read lock */
} dsi_vservice;

/* The local copy: services sorted by name. A reload replaces it whole. */
typedef struct dsi_vdata {
	dsi_vservice **svc;
	size_t         n, cap;
} dsi_vdata;

/* Frees s and every instance it holds; NULL is a no-op. */
void dsi_vservice_free(dsi_vservice *s);

/* Frees d, its services and their instances; NULL is a no-op. */
void dsi_vdata_free(dsi_vdata *d);

/* The service called name in d, or NULL. */
dsi_vservice *dsi_vdata_find(const dsi_vdata *d, const char *name);

/*
 * Moves *x into service (created when absent), replacing an instance with
 * the same endpoint. What it replaces is moved into *x, so the caller frees
 * it (outside any lock); otherwise *x is zeroed. Returns 0 or DSC_ENOMEM
 * (then *x is untouched).
 */
int dsi_vdata_put(dsi_vdata *d, const char *service, dsc_instance *x);

/*
 * Takes service's instance at endpoint out of d into *removed (zeroed when
 * there is none); a service left empty is unlinked into *gone (else NULL).
 * The caller frees both, outside any lock.
 */
void dsi_vdata_remove(dsi_vdata *d, const char *service, const char *endpoint,
    dsc_instance *removed, dsi_vservice **gone);

/*
 * Moves every instance of list into d and frees list. only, when not NULL,
 * is the one service the list may hold (a GetAll(service) answer); other
 * instances, and any without a service or endpoint, are dropped. Returns 0
 * or DSC_ENOMEM (d then holds part of list; list is freed either way).
 */
int dsi_vdata_take(dsi_vdata *d, dsc_instance_list *list, const char *only);

/*
 * Picks an instance of s by the server's own rule (dsi_pick); *out points
 * into s, valid while the caller holds the view's lock. Returns 0,
 * DSC_ENOTFOUND or DSC_EUNAVAILABLE.
 */
int dsi_vservice_pick(dsi_vservice *s, bool healthy_only, const dsc_instance **out);

/*
 * Appends copies of s's instances to list->items, which the caller sized;
 * list->count counts what was copied. Returns 0 or DSC_ENOMEM.
 */
int dsi_vservice_copy(dsc_instance_list *list, const dsi_vservice *s);

#endif
