/*
 * The REQ/REP front: one REP socket, its listeners, and a fixed pool of
 * work items (an nng context and an aio each) that hand requests to
 * dispatch and send the replies.
 */
#ifndef DSI_TRANSPORT_H
#define DSI_TRANSPORT_H

#include <nng/nng.h>
#include <stddef.h>

#include "server/dispatch.h"
#include "common/log.h"
#include "common/tls.h"

typedef struct dsi_rep_server dsi_rep_server;

typedef struct dsi_rep_options {
	const char *const *listen; /* URLs */
	size_t             n_listen;
	size_t             max_request; /* bytes; larger requests drop the connection */
	size_t             workers; /* contexts in the pool, at least 1 (default: options table) */
	nng_tls_config    *tls;     /* for tls+ URLs (each listener holds it); else NULL */
} dsi_rep_options;

/*
 * Opens the socket and listens on every URL; nothing is received until
 * dsi_rep_start. A URL with port 0 gets an ephemeral port: bound_url
 * reports it. Returns 0, or the nng failure as a dsc_err (dsi_err_from_nng;
 * DSC_EINVAL for a bad listener count) with why naming the URL and the cause.
 */
int dsi_rep_create(dsi_rep_server **out, const dsi_rep_options *opts, const dsi_dispatch *d,
    const dsi_log *log, char *why, size_t why_len);

/* The URL listener i is bound to, with the real port. */
const char *dsi_rep_bound_url(const dsi_rep_server *s, size_t i);

int dsi_rep_start(dsi_rep_server *s);

/*
 * Stops accepting connections, lets requests already received be answered
 * (waiting up to drain_ms), then stops every work item. Idempotent.
 */
void dsi_rep_stop(dsi_rep_server *s, int drain_ms);

/* Stops if needed and frees everything. */
void dsi_rep_destroy(dsi_rep_server *s);

#endif
