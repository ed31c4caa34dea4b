/*
 * The health checker: one thread, one curl multi handle. It schedules
 * probes (server/probe.h: GET <endpoint><health_path> for HTTP(S)
 * instances, a TCP connect for tcp:// ones), turns their results into
 * health with rise/fall, and expires TTL instances whose heartbeats stop.
 * Results go to the registry, never with network I/O under the registry lock.
 */
#ifndef DSI_CHECKER_H
#define DSI_CHECKER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/log.h"
#include "server/checkhttp.h"
#include "server/netpolicy.h"
#include "server/metrics.h"
#include "server/registry.h"

typedef struct dsi_checker dsi_checker;

typedef struct dsi_checker_options {
	int interval_ms;         /* between checks of one instance */
	int timeout_ms;          /* per check, from the check's own start */
	int rise;                /* consecutive passes to become HEALTHY */
	int fall;                /* consecutive failures to become UNHEALTHY */
	int max_inflight;        /* checks running at once */
	int deregister_after_ms; /* 0: never remove unhealthy instances */
	/* Addresses checks may connect to; NULL: any. */
	const dsi_netpolicy *policy;
	/* What HTTP(S) checks trust, present and send; built once at create. */
	dsi_check_http_options http;
	/* Called after each result recorded in the registry, outside its lock. */
	void (*after_change)(void *arg);
	void *after_change_arg;
	/*
	 * With a store: reserve runs before a health change may bump the
	 * revision and release after it; reserve never waits for the disk
	 * (nonzero: no revision now, the result is recorded on a later round),
	 * and reap takes over --deregister-after removals, which must be stored
	 * before they happen.
	 */
	int (*reserve)(void *arg);
	void (*release)(void *arg);
	void (*reap)(void *arg, const char *service, const char *endpoint, int after_ms);
	/*
	 * Cluster mode: a change of state is not made here but handed to
	 * submit_health (through the writer and the cluster's store, which
	 * apply it on every node); whenever the checker's verdict differs from
	 * the registry's state it is handed again. Check times and errors stay
	 * on this node. reserve and release are then unused.
	 */
	void (*submit_health)(void *arg, const char *service, const char *endpoint,
	    dsc_health health, const char *reason);
	/* Cluster mode: whether this node checks the instance now (NULL: always). */
	bool (*owns)(void *arg, const char *service, const char *endpoint);
	void        *store_arg;
	dsi_metrics *metrics; /* checks by result and duration; NULL: not counted */
} dsi_checker_options;

/*
 * Returns 0, DSC_ENOMEM, or DSC_EINVAL when o->http does not build (the
 * configuration checks it first: dsi_check_http_build says why).
 */
int dsi_checker_create(
    dsi_checker **out, const dsi_checker_options *o, dsi_registry *r, const dsi_log *log);

/* Tells the checker about a registry change (memory only; any thread). */
void dsi_checker_notify(dsi_checker *c, const dsi_change *ch);

/* The settings a reload (SIGHUP) changes; the same meaning as in dsi_checker_options. */
typedef struct dsi_checker_settings {
	int interval_ms;
	int timeout_ms;
	int rise;
	int fall;
	int max_inflight;
	int deregister_after_ms;
} dsi_checker_settings;

/*
 * Hands new settings to the checker's thread (any thread): checks started
 * from then on use them. A shorter interval brings forward the checks due
 * later than one new interval; a longer one applies from each target's
 * next reschedule.
 */
void dsi_checker_reconfigure(dsi_checker *c, const dsi_checker_settings *s);

int dsi_checker_start(dsi_checker *c);

/* Checks not run for a reason of this server's own (no descriptor, no memory); any thread. */
uint64_t dsi_checker_local_errors(dsi_checker *c);

/* Stops promptly, even with hung checks in flight. Idempotent. */
void dsi_checker_stop(dsi_checker *c);
void dsi_checker_destroy(dsi_checker *c);

/*
 * Applies one result to the run counters and returns the new state. From
 * UNKNOWN the first result decides; after that it takes rise passes or
 * fall failures in a row to change. The counters saturate at UINT16_MAX.
 */
dsc_health dsi_check_transition(
    dsc_health state, bool ok, uint16_t *ok_run, uint16_t *fail_run, int rise, int fall);

#endif
