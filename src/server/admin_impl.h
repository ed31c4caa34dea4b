/*
 * The admin endpoint's insides: the server body and its parked blocking
 * queries, for admin.c and the parts split from it that need the server
 * (admin_snapshot.c, /v1/status in admin_catalog.c). The probes
 * (admin_probes.h) and the replies (admin_reply.h) do not see it.
 */
#ifndef DSI_ADMIN_IMPL_H
#define DSI_ADMIN_IMPL_H

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdatomic.h>

#include "common/name.h"
#include "server/admin.h"
#include "server/admin_catalog.h"
#include "server/admin_query.h"
#include "server/admin_reply.h"

typedef enum route_kind {
	R_HEALTHZ,
	R_READYZ,
	R_METRICS,
	R_SERVICES, /* a tree: /v1/services and /v1/services/{name} */
	R_INSTANCES,
	R_DASHBOARD, /* GET /: the page */
	R_STATUS,
	R_SNAPSHOT,
	R_COUNT,
} route_kind;

typedef struct route {
	dsi_admin *a;
	route_kind kind;
} route;

/* A catalog request: its target parsed (admin_query.h), its deadline set when it came. */
typedef dsi_admin_query query;

/* A blocking query waiting for a change or its deadline; the aio is nng's handler aio. */
typedef struct parked {
	struct parked *prev, *next;
	dsi_admin     *a;
	nng_aio       *aio;
	query          q;
	bool           listed; /* in the list: whoever unlinks it answers it */
} parked;

struct dsi_admin {
	dsi_admin_options o;
	dsi_log           log;
	nng_url          *url;
	nng_http_server  *srv;
	char              bound[192];
	route             routes[R_COUNT];
	atomic_bool       ready;
	pthread_mutex_t   mtx; /* guards everything below */
	parked           *head;
	size_t            n_parked;
	uint64_t min_index; /* the smallest parked index: a change past it wakes the timer */
	nng_aio *timer;
	bool     timer_running;
	bool     stopping;
	bool     stopped;
	struct snapshot_job *snapshot;      /* admin_snapshot.c's: the one being taken, or NULL */
	pthread_cond_t       snapshot_gone; /* signalled when snapshot goes back to NULL */
};

/*
 * 0 when the request may go on; otherwise the status (401, 403) with why.
 * With a token configured, always (the snapshot) or with --auth-reads.
 */
uint16_t dsi_admin_authorize(
    const dsi_admin *a, nng_http_req *req, bool always, char *why, size_t why_len);

/* A JSON {"error": ..., "revision": ...} reply at the registry's current revision. */
void dsi_admin_error(dsi_admin *a, nng_aio *aio, uint16_t status, const char *message);

/* GET /v1/status (admin_catalog.c), access checked by the caller. */
void dsi_admin_status(dsi_admin *a, nng_aio *aio);

/* GET /v1/snapshot, access checked by the caller: answers later, from another thread. */
void dsi_admin_snapshot(dsi_admin *a, nng_aio *aio);

/* Waits until no snapshot is in progress (the writer must be stopping or stopped). */
void dsi_admin_snapshot_wait(dsi_admin *a);

#endif
