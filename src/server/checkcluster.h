/*
 * The checker's verdicts in cluster mode (checker.h: submit_health, owns,
 * ttl_alive): a state change is handed to the writer (and etcd) instead of
 * being made here, by the instance's owner alone, and a TTL instance is
 * alive while its heartbeat key exists. The checker thread calls these.
 */
#ifndef DSI_CHECKCLUSTER_H
#define DSI_CHECKCLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "server/checker.h"
#include "server/registry.h"
#include "server/targets.h"

/* Logs a change of this node's verdict on t (from prev to t->state). */
void dsi_check_log_transition(
    const dsi_log *log, const dsi_target *t, dsc_health prev, const char *reason);

/*
 * One check's result: moves t's verdict (rise and fall), records the check
 * time and error locally, and hands the verdict to submit_health whenever
 * the registry does not have it (a lost write is handed again next time).
 */
void dsi_cluster_check_record(const dsi_checker_options *o, dsi_registry *r, const dsi_log *log,
    dsi_target *t, bool ok, const char *reason);

/*
 * t is another node's to check: its verdict becomes the registry's, so that
 * if t comes back to this node its transitions start from the cluster's state.
 */
void dsi_cluster_check_skip(dsi_registry *r, dsi_target *t);

/*
 * A TTL instance's look: if this node owns it, HEALTHY while alive,
 * UNHEALTHY once not alive after its grace. Returns when to look again
 * (ms), or -1 when the instance is gone.
 */
int64_t dsi_cluster_check_ttl(
    const dsi_checker_options *o, dsi_registry *r, const dsi_log *log, dsi_target *t);

/*
 * Self-preservation for --deregister-after (Eureka's): while more than half
 * of at least DSI_PROTECT_MIN instances are unhealthy, no instance is
 * removed for being unhealthy. So many failing at once more likely means
 * this server's network or a shared dependency than every service gone.
 * The state is the checker thread's; looked at most once a second.
 */
#define DSI_PROTECT_MIN 4
typedef struct dsi_check_protect {
	int64_t checked_ms;
	bool    on;
} dsi_check_protect;

bool dsi_check_deregister_protected(dsi_registry *r, const dsi_log *log, dsi_check_protect *p);

#endif
