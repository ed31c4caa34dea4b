/*
 * The writer thread: the one path by which registrations and removals
 * reach the backend (backend.h: the data file) and then the registry.
 *
 * Writes queue here from any thread. The writer takes what is queued as
 * one batch (no two writes to the same instance in one batch), prepares
 * each write's registry change once (dsi_registry_prepare_*), stores the
 * batch's changes and, when the headroom is low, a new revision reservation
 * in one backend transaction (group commit), then, under the apply mutex,
 * commits the prepared changes to the registry, and answers every write
 * after releasing it. A commit that fails changes nothing in memory, so the
 * backend and the registry never diverge.
 *
 * Health changes happen outside the writer (the checker) and take
 * revisions from the headroom with dsi_writer_try_reserve, which never
 * waits for the disk.
 */
#ifndef DSI_WRITER_H
#define DSI_WRITER_H

#include <stdint.h>

#include "common/fifo.h"
#include "common/log.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/backend.h"

typedef struct dsi_writer dsi_writer;
typedef struct dsi_write  dsi_write;

/*
 * One write waiting for the writer thread; the submitter owns it until
 * reply runs (reply may free it).
 */
struct dsi_write {
	const char *service;
	const char *endpoint; /* NULL: the whole service */
	/*
	 * On the writer thread, before the commit: decides the write, setting
	 * op to the prepared change (or leaving it NULL: nothing to store),
	 * or returns an error. pending_* are instances the batch creates
	 * before this write; the limits count them.
	 */
	int (*prepare)(dsi_write *w, uint32_t pending_service, uint32_t pending_total);
	/*
	 * After the commit, under the apply mutex: with rv 0 commits op to
	 * the registry; otherwise frees op and keeps the error (why: the
	 * commit's reason, NULL for the prepare's own error). Memory only.
	 */
	void (*apply)(dsi_write *w, int rv, const char *why);
	/* Then, with no lock of the writer's held: answers. May free w. */
	void (*reply)(dsi_write *w);
	dsi_registry_op *op;
	int              rv;   /* prepare's result */
	dsi_fifo_node    link; /* in the writer's queue, then in its batch */
};

/*
 * A long job on the data file (a snapshot), run by the writer thread a step
 * at a time between batches, so that writes wait for one step at most,
 * never for the whole job. step runs on the writer thread with no lock of
 * the writer's held and returns true when the job is complete; done then
 * runs there once with 0. If the writer stops first, done runs with
 * DSC_EUNAVAILABLE instead (and step no more). The submitter owns t; done
 * may free it.
 */
typedef struct dsi_writer_task dsi_writer_task;
struct dsi_writer_task {
	bool (*step)(dsi_writer_task *t, dsi_backend *b);
	void (*done)(dsi_writer_task *t, int rv);
	dsi_fifo_node link; /* in the writer's task queue */
};

/*
 * Starts the writer thread on b (borrowed: close it after
 * dsi_writer_destroy) and r; after_batch (may be NULL) runs on it after
 * each batch has been answered, outside every lock.
 */
int dsi_writer_start(dsi_writer **out, dsi_backend *b, dsi_registry *r, const dsi_log *log,
    void (*after_batch)(void *), void *arg);

/* Queues w; or, once stopping, answers it at once with DSC_EUNAVAILABLE. */
void dsi_writer_submit(dsi_writer *wr, dsi_write *w);

/* Queues t: 0, or DSC_EUNAVAILABLE (t untouched, done not called) once stopping. */
int dsi_writer_run(dsi_writer *wr, dsi_writer_task *t);

/*
 * For a change made outside the writer (health): returns 0 holding the
 * right to take one revision until dsi_writer_release, or DSC_EUNAVAILABLE
 * at once when the stored reservation has no headroom left (the writer is
 * asked for more; try again on a later round). Never waits for the disk:
 * at most for the writer applying a batch in memory.
 */
int  dsi_writer_try_reserve(dsi_writer *wr);
void dsi_writer_release(dsi_writer *wr);

/*
 * From now on, each commit's duration goes to m (the commit histogram of
 * GET /metrics); NULL stops it. Safe while the writer runs.
 */
void dsi_writer_set_metrics(dsi_writer *wr, dsi_metrics *m);

/* Transactions committed, and the writes they carried: their ratio is the batching. */
void dsi_writer_stats(dsi_writer *wr, uint64_t *commits, uint64_t *writes);

/*
 * Answers what is queued, stores the exact revision (so that a restart
 * resumes at it), then stops the thread. Idempotent.
 */
void dsi_writer_stop(dsi_writer *wr);
void dsi_writer_destroy(dsi_writer *wr);

/*
 * Debug builds: how many of the writer's locks this thread holds, so that
 * code which must run without them (a reply) can assert it. 0 with NDEBUG.
 */
int dsi_writer_locks_held(void);

#endif
