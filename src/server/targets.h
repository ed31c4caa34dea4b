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

#include "server/probe.h"
#include "server/schedule.h"

/* One checked instance. */
typedef struct dsi_target {
	struct dsi_target *hnext;
	char              *service;  /* owned */
	char              *endpoint; /* owned */
	char              *url;      /* owned; what a check fetches */
	uint32_t           ttl_ms;
	dsc_health         state; /* as last sent to the registry */
	int                ok_run;
	int                fail_run;
	dsi_sched_item     s;          /* when it is next looked at (monotonic ms) */
	CURL              *easy;       /* while a check runs */
	dsi_probe          probe;      /* the check's own state (connect_only stays) */
	bool               gone;       /* removed while its check ran: freed when it ends */
	bool               not_judged; /* its last check could not run: our problem, not its */
	bool               deferred;   /* a verdict waits for the store's headroom */
	dsi_probe_verdict  deferred_verdict;
	char               deferred_reason[128];
} dsi_target;

typedef struct dsi_targets {
	dsi_target **buckets;
	size_t       nbuckets; /* a power of two */
	size_t       n;
	size_t       pop_at; /* dsi_targets_pop resumes its scan here */
} dsi_targets;

/* Returns 0 or DSC_ENOMEM. */
int dsi_targets_init(dsi_targets *ts);

/* Frees the table; empty it first (dsi_targets_pop), the targets are the caller's. */
void dsi_targets_free(dsi_targets *ts);

/* Where (svc, ep) is, or would go: *slot is the target or NULL. Valid until the next insert. */
dsi_target **dsi_targets_slot(dsi_targets *ts, const char *svc, const char *ep);

/*
 * A new target for (svc, ep), zeroed and in no schedule, put at slot (from
 * dsi_targets_slot, empty). NULL when out of memory (nothing changes).
 */
dsi_target *dsi_targets_insert(dsi_targets *ts, dsi_target **slot, const char *svc, const char *ep);

/* Takes the target at slot out of the table; the caller frees it (dsi_target_free). */
void dsi_targets_unlink(dsi_targets *ts, dsi_target **slot);

/* Takes any one target out of the table, or NULL when empty: for dropping them all. */
dsi_target *dsi_targets_pop(dsi_targets *ts);

/* Frees a target out of the table (its check's easy handle is the caller's). */
void dsi_target_free(dsi_target *t);

#endif
