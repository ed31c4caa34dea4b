/*
 * The event publisher: every registry change as one serialized Event on
 * an nng PUB socket, in revision order, published by its own thread and
 * never under the registry lock. A SYNC event with the current revision
 * goes out at start and every sync interval.
 */
#ifndef DSI_EVENTS_H
#define DSI_EVENTS_H

#include <stddef.h>

#include "common/log.h"
#include "server/registry.h"
#include "common/tls.h"
#include "server/metrics.h"

typedef struct dsi_events dsi_events;

typedef struct dsi_events_options {
	const char *url;
	/* Both positive; discoveryd passes its options (defaults: the options table). */
	int    send_buffer;      /* messages queued per subscriber before nng drops */
	int    sync_interval_ms; /* SYNC period */
	size_t max_queue;        /* changes waiting for the thread; past it, dropped (0: 65536) */
	size_t max_connections;  /* subscribers at once; more are closed on arrival (0: no cap) */

	nng_tls_config *tls;     /* for a tls+ URL (the listener holds it); else NULL */
	dsi_metrics    *metrics; /* events published, subscribers; NULL: not counted */
} dsi_events_options;

/*
 * Opens and binds the PUB socket; why names the URL on failure (DSC_EINVAL
 * for a URL that is not tcp:// or tls+tcp://, see dsi_url_is_served).
 */
int dsi_events_create(dsi_events **out, const dsi_events_options *o, dsi_registry *r,
    const dsi_log *log, char *why, size_t why_len);

/* The bound URL (with the real port for ":0"). */
const char *dsi_events_url(const dsi_events *e);

/* A reload's TLS configuration for new subscribers (see dsi_rep_set_tls). */
int dsi_events_set_tls(dsi_events *e, nng_tls_config *tls);

/* Starts the thread; the first thing it publishes is a SYNC. */
int dsi_events_start(dsi_events *e);

/*
 * Queues a change (memory only: called under the registry lock). Takes
 * ownership of ch->instance.
 */
void dsi_events_enqueue(dsi_events *e, dsi_change *ch);

/*
 * Publishes what is queued, from the calling thread, unless another thread
 * is publishing right now (it takes the queue with it). Call it after a
 * change, outside the registry lock; it never blocks on subscribers.
 */
void dsi_events_flush(dsi_events *e);

/*
 * Events lost so far, each a running total: queue_full before publishing;
 * send_failed where nng refused a message (it never does for PUB in nng
 * 1.5.2, which drops for a slow subscriber silently: those drops are not
 * observable here, and subscribers see them as revision gaps at the next
 * SYNC); refused subscribers past max_connections.
 */
typedef struct dsi_events_stats {
	uint64_t queue_full;
	uint64_t send_failed;
	uint64_t refused;
} dsi_events_stats;

void dsi_events_stats_get(dsi_events *e, dsi_events_stats *out);

/* Publishes what is queued, stops the thread. Idempotent. */
void dsi_events_stop(dsi_events *e);
void dsi_events_destroy(dsi_events *e);

#endif
