/*
 * The registry's insides, shared by registry.c (tables, reads, health) and
 * registry_op.c (prepared changes) and by nothing else.
 */
#ifndef DSI_REGISTRY_IMPL_H
#define DSI_REGISTRY_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/hash.h"
#include "common/name.h"
#include "server/registry.h"

/* Room an exported copy keeps for last_error, which health may change under a prepared change. */
#define DSI_LAST_ERROR_MAX 512

/* One instance as stored. Metadata is a blob of "key\0value\0" pairs, sorted. */
typedef struct rec {
	char      *endpoint;
	char      *health_path;
	char      *last_error; /* NULL: none; shorter than DSI_LAST_ERROR_MAX */
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
	uint8_t    origin; /* a dsi_origin; fits the padding after health */
} rec;

/* One service: its instances sorted by endpoint, and its resolve cursor. */
typedef struct service {
	dsi_hash_node    node; /* in the registry's services, keyed by name */
	char             name[DSI_NAME_MAX + 1];
	rec            **inst;
	size_t           n;
	size_t           cap;
	_Atomic uint64_t cursor; /* bumped by concurrent resolves under the read lock */
} service;

struct dsi_registry {
	/*
	 * Taken by the in-memory write calls around prepare and commit, so that
	 * nothing changes instances in between (with a store, the writer thread
	 * is the only one that does). Taken before lock.
	 */
	pthread_mutex_t     wmtx;
	pthread_rwlock_t    lock;     /* the registry lock (docs/design.md): everything below */
	dsi_hash            services; /* of service, by name */
	size_t              ninstances;
	uint64_t            revision;
	dsi_registry_limits limits;
	dsi_change_fn       observer;
	void               *observer_arg;
	_Atomic long        fail_after;  /* tests: allocations left before failing; -1 never */
	_Atomic uint32_t    protect_ppm; /* --protection-threshold, parts per million; 0: off */
};

service *dsi_reg_service_find(const dsi_registry *r, const char *name);
service *dsi_reg_service_of(dsi_hash_node *n); /* NULL for NULL */
/* Links s (allocated by the caller, with its name set) into the table. */
void   dsi_reg_service_link(dsi_registry *r, service *s);
void   dsi_reg_service_remove(dsi_registry *r, service *s);
size_t dsi_reg_inst_search(const service *s, const char *endpoint, bool *found);
rec *dsi_reg_inst_find(const dsi_registry *r, const char *svc, const char *endpoint, service **sp);
void dsi_reg_rec_free(rec *x);
/* Sets health and the check fields (taking err); a change of state is one registry change. */
void dsi_reg_set_health(dsi_registry *r, const service *s, rec *x, dsc_health health,
    int64_t now_ms, char *err, const char *reason);
void dsi_reg_store_rev(const dsi_registry *r, uint64_t *rev);

/* The size of an exported copy of x with room for a last_error of DSI_LAST_ERROR_MAX. */
size_t        dsi_reg_export_size(const char *svc, const rec *x);
dsi_instance *dsi_reg_export_to(void *block, const char *svc, const rec *x);
dsi_instance *dsi_reg_rec_export(const char *svc, const rec *x); /* allocated; NULL: no memory */

/*
 * Counts one change under the write lock and hands it to the observer;
 * block (NULL: allocate) is the copy's memory, from dsi_reg_export_size.
 */
void dsi_reg_note_change(dsi_registry *r, Discovery__V1__EventType type, const char *svc,
    const rec *x, dsc_health previous, int64_t now_ms, const char *reason, void *block);

#endif
