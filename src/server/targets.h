/*
 * The health checker's targets: one per checked instance, in a hash table
 * on (service, endpoint). An implementation header of server/checker.c:
 * the checker's thread owns the table and every target; nothing locks.
 */
#ifndef DSI_TARGETS_H
#define DSI_TARGETS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <discovery/discovery.h>

#include "common/hash.h"
#include "server/probe.h"
#include "server/schedule.h"

/* One checked instance. */
/*
 * One checked instance. There is one per registered instance, so its size
 * is the checker's share of bench scenario 5's bytes per instance: service
 * and endpoint share the allocation, rare state is allocated when needed.
 */
typedef struct dsi_target {
	dsi_hash_node  node;            /* in dsi_targets, keyed by (service, endpoint) */
	char          *service;         /* in the same allocation, after the struct */
	char          *endpoint;        /* in the same allocation, after the struct */
	char          *url;             /* owned; what a check fetches */
	CURL          *easy;            /* while a check runs */
	char          *deferred_reason; /* owned, while deferred (NULL when out of memory) */
	dsi_sched_item s;               /* when it is next looked at (monotonic ms) */
	dsi_probe      probe;           /* the check's own state (connect_only stays) */
	uint32_t       ttl_ms;
	uint16_t       ok_run;           /* passes in a row (saturates) */
	uint16_t       fail_run;         /* failures in a row (saturates) */
	uint8_t        state;            /* a dsc_health: as last sent to the registry */
	bool           gone;             /* removed while its check ran: freed when it ends */
	bool           not_judged;       /* its last check could not run: our problem, not its */
	bool           deferred;         /* a verdict waits for the store's headroom */
	uint8_t        deferred_verdict; /* a dsi_probe_verdict */
} dsi_target;

/* The table; its fields are the module's. */
typedef struct dsi_targets {
	dsi_hash      table;   /* of dsi_target, by node */
	dsi_hash_iter pop_it;  /* where dsi_targets_pop resumes */
	bool          popping; /* pop_it is valid: nothing but pops since it started */
} dsi_targets;

/* Returns 0 or DSC_ENOMEM. */
int dsi_targets_init(dsi_targets *ts);

/* Frees the table; empty it first (dsi_targets_pop), the targets are the caller's. */
void dsi_targets_free(dsi_targets *ts);

size_t dsi_targets_count(const dsi_targets *ts);

/* The target for (svc, ep), or NULL. */
dsi_target *dsi_targets_find(const dsi_targets *ts, const char *svc, const char *ep);

/*
 * A new target for (svc, ep), which must not be in the table yet, zeroed
 * and in no schedule. NULL when out of memory (nothing changes).
 */
dsi_target *dsi_targets_insert(dsi_targets *ts, const char *svc, const char *ep);

/* Takes t, which is in the table, out of it; the caller frees it (dsi_target_free). */
void dsi_targets_remove(dsi_targets *ts, dsi_target *t);

/* Takes any one target out of the table, or NULL when empty: for dropping them all. */
dsi_target *dsi_targets_pop(dsi_targets *ts);

/* Frees a target out of the table (its check's easy handle is the caller's). */
void dsi_target_free(dsi_target *t);

#endif
