/*
 * GET /v1/snapshot's own state: at most one online copy of the data file
 * at a time, taken on the writer thread. The admin server embeds one and
 * hands it requests; this unit knows nothing of the admin server.
 */
#ifndef DSI_ADMIN_SNAPSHOT_H
#define DSI_ADMIN_SNAPSHOT_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>

#include "common/log.h"
#include "server/registry.h"
#include "server/writer.h"

typedef struct dsi_admin_snapshots {
	dsi_writer          *writer;   /* NULL: no data file (:memory:), nothing to copy */
	dsi_registry        *registry; /* for the revision the replies carry */
	const dsi_log       *log;
	pthread_mutex_t      mtx;      /* guards job, stopping and each job's http aio */
	pthread_cond_t       gone;     /* signalled when job goes back to NULL */
	struct snapshot_job *job;      /* the one being taken, or NULL */
	bool                 stopping; /* no new snapshot starts */
} dsi_admin_snapshots;

/* Everything is borrowed and must outlive s. */
void dsi_admin_snapshots_init(
    dsi_admin_snapshots *s, dsi_writer *writer, dsi_registry *registry, const dsi_log *log);

/* GET /v1/snapshot, access checked by the caller: answers aio later, from another thread. */
void dsi_admin_snapshot(dsi_admin_snapshots *s, nng_aio *aio);

/* No new snapshot starts, and waits until the one being taken is gone (the writer must be
 * stopping or stopped, or the copy must end by itself). */
void dsi_admin_snapshots_stop(dsi_admin_snapshots *s);

void dsi_admin_snapshots_fini(dsi_admin_snapshots *s);

#endif
