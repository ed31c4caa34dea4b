/*
 * GET /v1/snapshot: an online copy of the data file. The copy is made by
 * the writer thread a few pages per step between its transactions
 * (server/store_snapshot.h says why there), so writes go on during it and
 * wait for one step at most. No nng thread waits: the handler's aio is
 * deferred, and the reply is built on nng's threads (a sleep aio of 0) once
 * the writer is done. One snapshot at a time; another gets 429.
 */
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/timeutil.h"
#include "server/admin_reply.h"
#include "server/admin_snapshot.h"
#include "server/store_snapshot.h"

/* One snapshot being taken; guarded by its owner's mtx where noted. */
typedef struct snapshot_job {
	dsi_writer_task      task; /* first */
	dsi_admin_snapshots *s;
	nng_aio             *http;  /* the handler's aio; NULL once answered (mtx) */
	nng_aio             *reply; /* runs reply_cb on nng's threads */
	dsi_store_snapshot  *sn;    /* the writer thread's until done */
	int                  rv;    /* the copy's outcome, set before reply runs */
	char                 why[256];
	int64_t              began_ms;
} snapshot_job;

/* The client went away or the server stops: answer now, and let the copy end early. */
static void
cancel_http(nng_aio *aio, void *arg, int rv)
{
	snapshot_job *j     = arg;
	bool          found = false;
	pthread_mutex_lock(&j->s->mtx);
	if (j->http == aio) {
		j->http = NULL;
		found   = true;
	}
	pthread_mutex_unlock(&j->s->mtx);
	if (found) {
		nng_aio_finish(aio, rv);
	}
}

static bool
abandoned(snapshot_job *j)
{
	pthread_mutex_lock(&j->s->mtx);
	bool gone = j->http == NULL;
	pthread_mutex_unlock(&j->s->mtx);
	return gone;
}

/* On the writer thread, between batches. */
static bool
step(dsi_writer_task *t, dsi_backend *b)
{
	snapshot_job *j        = (snapshot_job *) t;
	bool          complete = false;
	if (abandoned(j)) {
		j->rv = DSC_ECLOSED;
		return true;
	}
	if (j->sn == NULL
	    && (j->rv = dsi_store_snapshot_begin(b, &j->sn, j->why, sizeof(j->why))) != 0) {
		return true;
	}
	j->rv = dsi_store_snapshot_step(
	    j->sn, DSI_SNAPSHOT_STEP_PAGES, &complete, j->why, sizeof(j->why));
	return j->rv != 0 || complete;
}

/* On the writer thread: the copy is over (rv: DSC_EUNAVAILABLE when the writer stopped). */
static void
done(dsi_writer_task *t, int rv)
{
	snapshot_job *j = (snapshot_job *) t;
	if (rv != 0 && j->rv == 0) {
		j->rv = rv;
		snprintf(j->why, sizeof(j->why), "the server is shutting down");
	}
	dsi_store_snapshot_stop(j->sn); /* lets the store go: only its thread may */
	nng_sleep_aio(0, j->reply);
}

static void
job_free(snapshot_job *j)
{
	dsi_admin_snapshots *s = j->s;
	dsi_store_snapshot_free(j->sn);
	nng_aio_reap(j->reply); /* from its own callback: nng frees it later */
	free(j);
	pthread_mutex_lock(&s->mtx);
	s->job = NULL;
	pthread_cond_broadcast(&s->gone);
	pthread_mutex_unlock(&s->mtx);
}

/* The body, built from the finished copy and sent; on nng's threads. */
static void
answer(snapshot_job *j, nng_aio *http)
{
	nng_http_res        *res;
	size_t               len   = 0;
	const unsigned char *bytes = dsi_store_snapshot_bytes(j->sn, &len);
	uint64_t             rev   = dsi_registry_revision(j->s->registry);
	char                 revtext[32];
	int                  rv;

	if (j->rv != 0 || bytes == NULL) {
		dsi_warn(j->s->log, "snapshot failed: %s", j->why[0] != 0 ? j->why : "no copy");
		dsi_admin_reply_error(http, 503, j->why[0] != 0 ? j->why : "no copy was made", rev);
		return;
	}
	snprintf(revtext, sizeof(revtext), "%llu", (unsigned long long) rev);
	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(http, rv);
		return;
	}
	/* copy_data: nng 1.5.2 cannot stream from a handler; the copy is freed with res. */
	if ((rv = nng_http_res_set_header(res, "Content-Type", "application/octet-stream")) != 0
	    || (rv = nng_http_res_set_header(res, "Cache-Control", "no-store")) != 0
	    || (rv = nng_http_res_set_header(
	            res, "Content-Disposition", "attachment; filename=\"discovery-snapshot.db\""))
	        != 0
	    || (rv = nng_http_res_set_header(res, "X-Discovery-Revision", revtext)) != 0
	    || (rv = nng_http_res_copy_data(res, bytes, len)) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(http, rv);
		return;
	}
	dsi_info(j->s->log, "snapshot of %zu bytes taken in %lld ms (revision %llu)", len,
	    (long long) (dsi_monotonic_ms() - j->began_ms), (unsigned long long) rev);
	nng_aio_set_output(http, 0, res);
	nng_aio_finish(http, 0);
}

static void
reply_cb(void *arg)
{
	snapshot_job *j = arg;
	pthread_mutex_lock(&j->s->mtx);
	nng_aio *http = j->http;
	j->http       = NULL;
	pthread_mutex_unlock(&j->s->mtx);
	if (http != NULL) {
		answer(j, http);
	}
	job_free(j);
}

void
dsi_admin_snapshots_init(
    dsi_admin_snapshots *s, dsi_writer *writer, dsi_registry *registry, const dsi_log *log)
{
	s->writer   = writer;
	s->registry = registry;
	s->log      = log;
	s->job      = NULL;
	s->stopping = false;
	pthread_mutex_init(&s->mtx, NULL);
	pthread_cond_init(&s->gone, NULL);
}

static void
refuse(dsi_admin_snapshots *s, nng_aio *aio, uint16_t status, const char *why)
{
	dsi_admin_reply_error(aio, status, why, dsi_registry_revision(s->registry));
}

void
dsi_admin_snapshot(dsi_admin_snapshots *s, nng_aio *aio)
{
	snapshot_job *j;

	if (s->writer == NULL) {
		refuse(s, aio, 409,
		    "this server keeps no data file (--data :memory:): there is nothing to copy");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL || nng_aio_alloc(&j->reply, reply_cb, j) != 0) {
		free(j);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	j->s         = s;
	j->task.step = step;
	j->task.done = done;
	j->began_ms  = dsi_monotonic_ms();
	pthread_mutex_lock(&s->mtx);
	if (s->job != NULL || s->stopping) {
		bool busy = !s->stopping;
		pthread_mutex_unlock(&s->mtx);
		nng_aio_free(j->reply);
		free(j);
		refuse(s, aio, busy ? 429 : 503,
		    busy ? "a snapshot is being taken; retry when it is done"
		         : "the server is shutting down");
		return;
	}
	/* Held across the hand-over: done cannot answer before the aio is deferred. */
	if (dsi_writer_run(s->writer, &j->task) != 0) {
		pthread_mutex_unlock(&s->mtx);
		nng_aio_free(j->reply);
		free(j);
		refuse(s, aio, 503, "the server is shutting down");
		return;
	}
	s->job  = j;
	j->http = aio;
	nng_aio_defer(aio, cancel_http, j);
	pthread_mutex_unlock(&s->mtx);
}

void
dsi_admin_snapshots_stop(dsi_admin_snapshots *s)
{
	pthread_mutex_lock(&s->mtx);
	s->stopping = true;
	while (s->job != NULL) {
		pthread_cond_wait(&s->gone, &s->mtx);
	}
	pthread_mutex_unlock(&s->mtx);
}

void
dsi_admin_snapshots_fini(dsi_admin_snapshots *s)
{
	pthread_cond_destroy(&s->gone);
	pthread_mutex_destroy(&s->mtx);
}
