/*
 * The HTTP admin endpoint (--admin URL), served by nng's own HTTP server:
 * probes (/healthz, /readyz), the JSON catalog (/v1/services,
 * /v1/services/{name}, /v1/instances) with blocking queries, and
 * Prometheus metrics (/metrics), and a live dashboard page (/). Read-only:
 * writes stay on REQ/REP.
 *
 * Blocking queries (?index=N&wait=D) park the handler's nng_aio in a list:
 * no thread waits per request. dsi_admin_notify (after every change,
 * outside the registry lock) and one nng sleep timer answer them.
 */
#ifndef DSI_ADMIN_H
#define DSI_ADMIN_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/log.h"
#include "common/tls.h"
#include "common/tokenfile.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/statusinfo.h"
#include "server/writer.h"

#define DSI_ADMIN_MAX_PARKED  4096   /* blocking queries waiting at once; 503 beyond */
#define DSI_ADMIN_MAX_WAIT_MS 300000 /* a longer ?wait= is cut to this (5 min) */
#define DSI_ADMIN_MAX_URI     2048   /* a longer request target gets 414 */

typedef struct dsi_admin dsi_admin;

/* Everything is borrowed and must outlive the admin server. */
typedef struct dsi_admin_options {
	const char           *url; /* http://HOST:PORT or https://HOST:PORT */
	nng_tls_config       *tls; /* the server's, for https://; NULL: none configured */
	dsi_registry         *registry;
	dsi_metrics          *metrics;
	dsi_writer           *writer;     /* store commits; NULL with :memory: */
	dsi_token_ref         token;      /* NULL: no authentication; see dsi_admin_set_token */
	bool                  auth_reads; /* /v1/ and /metrics need the token */
	const char *const    *require;    /* services /readyz waits for */
	size_t                n_require;
	size_t                max_parked; /* 0: DSI_ADMIN_MAX_PARKED */
	const dsi_statusinfo *status;     /* GET /v1/status; NULL: the registry's state alone */
} dsi_admin_options;

/*
 * Binds and starts serving (before dsi_admin_start, /readyz answers 503
 * "starting"). Returns 0, or a dsc_err with why naming the URL.
 */
int dsi_admin_create(
    dsi_admin **out, const dsi_admin_options *o, const dsi_log *log, char *why, size_t why_len);

/* The bound URL, with the real port for ":0". */
const char *dsi_admin_url(const dsi_admin *a);

/* The server is up: /readyz may answer 200 from now on. */
void dsi_admin_start(dsi_admin *a);

/* After a registry change, outside its lock: wakes blocking queries. Cheap. */
void dsi_admin_notify(dsi_admin *a);

/* A reload's new token (borrowed, outliving the admin server); a NULL a is fine. */
void dsi_admin_set_token(dsi_admin *a, const char *token);

/* A reload's TLS configuration for new https connections; 0 or an nng error. */
int dsi_admin_set_tls(dsi_admin *a, nng_tls_config *tls);

/* Answers every parked query with what is current, then stops serving. Idempotent. */
void dsi_admin_stop(dsi_admin *a);

/* NULL is fine. */
void dsi_admin_destroy(dsi_admin *a);

/* Blocking queries waiting now (for tests and the bench). */
size_t dsi_admin_parked(dsi_admin *a);

#endif
