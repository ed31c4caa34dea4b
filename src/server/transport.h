/*
 * The REQ/REP front: one REP socket, its listeners, and a fixed pool of
 * work items (an nng context and an aio each) that hand requests to
 * dispatch and send the replies.
 */
#ifndef DSI_TRANSPORT_H
#define DSI_TRANSPORT_H

#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>

#include "server/dispatch.h"
#include "common/log.h"
#include "common/tls.h"

typedef struct dsi_rep_server dsi_rep_server;

/* Every field is required (discoveryd passes its options; defaults: the options table). */
typedef struct dsi_rep_options {
	const char *const *listen; /* tcp:// or tls+tcp:// URLs (dsi_url_is_served) */
	size_t             n_listen;
	size_t             max_request;      /* bytes; larger requests drop the connection */
	size_t             workers;          /* contexts in the pool, at least 1 */
	nng_tls_config    *tls;              /* for tls+ URLs (each listener holds it); else NULL */
	size_t             max_connections;  /* at once; more are closed on arrival */
	int                idle_timeout_ms;  /* no complete request this long: closed */
	int                reply_timeout_ms; /* a reply not taken this long: connection closed */
	/* Requests of one connection in the pool; one more closes it. At most workers / 2. */
	size_t max_conn_requests;
	/* Bytes: max_connections x max_request (partly received requests) must fit. */
	size_t max_request_memory;
} dsi_rep_options;

/* What the limits did so far (each a running total), for logs and metrics. */
typedef struct dsi_rep_stats {
	uint64_t refused;         /* connections past max_connections */
	uint64_t flooded;         /* connections closed past max_conn_requests */
	uint64_t reply_timeouts;  /* connections closed because a reply was not taken */
	uint64_t idle_closed;     /* connections closed by the idle timeout */
	uint64_t accept_failures; /* nng's count of failed accepts and handshakes */
	size_t   connections;     /* open now */
} dsi_rep_stats;

/*
 * Opens the socket and listens on every URL; nothing is received until
 * dsi_rep_start. A URL with port 0 gets an ephemeral port: bound_url
 * reports it. Returns 0, or the nng failure as a dsc_err (dsi_err_from_nng;
 * DSC_EINVAL for a bad listener count, a URL that is not tcp or tls+tcp,
 * or limits whose product exceeds max_request_memory) with why naming the
 * URL or the settings and the cause.
 */
int dsi_rep_create(dsi_rep_server **out, const dsi_rep_options *opts, const dsi_dispatch *d,
    const dsi_log *log, char *why, size_t why_len);

/* The URL listener i is bound to, with the real port. */
const char *dsi_rep_bound_url(const dsi_rep_server *s, size_t i);

/*
 * Gives the tls+ listeners a new TLS configuration (a reload): connections
 * accepted from now on use it, those open keep theirs. Each listener holds
 * its own reference. Returns 0 or an nng error.
 */
int dsi_rep_set_tls(dsi_rep_server *s, nng_tls_config *tls);

/* Arms the work items and starts the thread that enforces the idle timeout. */
int dsi_rep_start(dsi_rep_server *s);

void dsi_rep_stats_get(dsi_rep_server *s, dsi_rep_stats *out);

/*
 * Stops accepting connections, lets requests already received be answered
 * (waiting up to drain_ms), then stops every work item. Idempotent.
 */
void dsi_rep_stop(dsi_rep_server *s, int drain_ms);

/* Stops if needed and frees everything. */
void dsi_rep_destroy(dsi_rep_server *s);

#endif
