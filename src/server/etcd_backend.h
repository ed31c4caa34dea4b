/*
 * Cluster mode's backend (backend.h) on etcd: every discoveryd node of a
 * cluster stores its writes in one etcd key prefix and follows the others'
 * writes from etcd's watch, so that every node holds the same registry
 * with the same revisions and publishes the same events (docs/cluster.md).
 *
 * Each batch of the writer is one etcd transaction, "if the counter key is
 * as this node last saw it, then the batch's puts and deletes, the counter
 * moved on by the revisions the batch takes, and this node's sequence
 * number". A node that lost the race (another wrote first) catches up and
 * the writer prepares the batch again (DSC_ESTATE from commit). The counter
 * key's value also lists the batch's changes in order (the journal), so a
 * follower applies exactly the changes the writer applied, in its order.
 *
 * Capabilities: DSI_BACKEND_CAP_COUNTER.
 */
#ifndef DSI_ETCD_BACKEND_H
#define DSI_ETCD_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "common/log.h"
#include "server/backend.h"

/*
 * Writes per transaction: etcd allows 128 operations; a removal takes three
 * (the instance, its health and its alive key), and each batch adds two of
 * its own.
 */
#define DSI_ETCD_BATCH 40

typedef struct dsi_etcd_backend_options {
	const char    *endpoints;  /* "http://127.0.0.1:2379,http://127.0.0.1:22379" */
	const char    *prefix;     /* "/discovery/v1/" */
	const char    *node;       /* this node's name, in its sequence key */
	int            timeout_ms; /* each etcd call */
	dsi_etcd_tls   tls;        /* for https:// endpoints; copied */
	const dsi_log *log;
} dsi_etcd_backend_options;

/*
 * What the follower needs from the server to change the registry: lock
 * and unlock the writer's apply mutex around an apply, and publish after
 * it (outside every lock).
 */
typedef struct dsi_etcd_applier {
	void (*lock)(void *arg);
	void (*unlock)(void *arg);
	void (*after)(void *arg);
	void *arg;
} dsi_etcd_applier;

/* Connects nothing yet (load does): 0 and *out, or an error with why. */
int dsi_etcd_backend_open(
    dsi_backend **out, const dsi_etcd_backend_options *o, char *why, size_t why_len);

/*
 * After load, once the writer runs: starts the follower thread, which
 * applies other nodes' writes from load's revision on. 0 or DSC_ENOMEM.
 * dsi_backend_close stops it.
 */
int dsi_etcd_backend_follow(dsi_backend *b, const dsi_etcd_applier *a);

/*
 * Health writes from now on carry the fence (cluster/member.h) of the
 * membership view(arg) gives (nonzero: not a member now): a batch with one
 * commits only while this node is a member and no member joined since that
 * view. arg is borrowed: close the backend first.
 */
struct dsi_membership;
void dsi_etcd_backend_set_fence(
    dsi_backend *b, int (*view)(void *arg, struct dsi_membership *out), void *arg);

/*
 * TTL instances in cluster mode: alive while <prefix>alive/<service>/<hex
 * endpoint> exists, a key on an etcd lease of the instance's TTL (rounded
 * up to whole seconds, at least etcd's 2 s). A heartbeat on any node renews
 * that lease, or puts the key on a new one when it has expired. The owner
 * of the instance's checks turns alive and not alive into health writes.
 */

/*
 * Renews (service, endpoint)'s alive key for ttl_ms. 0; DSC_ENOTFOUND when
 * the instance is not in etcd; or another error with why (etcd away).
 */
int dsi_etcd_backend_heartbeat(dsi_backend *b, const char *service, const char *endpoint,
    uint32_t ttl_ms, char *why, size_t why_len);

/* Whether (service, endpoint)'s alive key exists, as the follower last saw. */
bool dsi_etcd_backend_alive(dsi_backend *b, const char *service, const char *endpoint);

/*
 * Stops the follower thread (it applies no more changes): before the writer
 * it locks through goes away. Idempotent; dsi_backend_close does it too.
 */
void dsi_etcd_backend_unfollow(dsi_backend *b);

/* The follower's counters, for tests and the logs. */
typedef struct dsi_etcd_backend_stats {
	uint64_t applied;  /* transactions of other nodes applied */
	uint64_t resyncs;  /* full reloads after a gap, a compaction or a mismatch */
	uint64_t races;    /* own transactions that lost a race and were prepared again */
	int64_t  etcd_rev; /* the etcd revision memory reflects */
} dsi_etcd_backend_stats;

void dsi_etcd_backend_stats_get(dsi_backend *b, dsi_etcd_backend_stats *out);

#endif
