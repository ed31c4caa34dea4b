/*
 * The writer thread: batching, conflicts, the commit with its revision
 * reservation, applying to the registry, and the replies after the lock.
 *
 * Lock order: apply_mtx, then mtx or the registry's locks (never the reverse).
 * The disk is only touched with no lock held.
 */
#include "server/writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/fifo.h"
#include "common/timeutil.h"

/* What one batch has prepared so far, for conflicts and limits. */
typedef struct planned {
	const char *service;
	const char *endpoint; /* NULL: the whole service */
	bool        creates;
} planned;

struct dsi_writer {
	dsi_backend   *store; /* the writer thread's alone once started */
	dsi_registry  *registry;
	const dsi_log *log;
	void (*after_batch)(void *);
	void     *after_batch_arg;
	pthread_t thread;
	bool      running;
	/*
	 * Held while the revision may move: by the writer while it applies a
	 * batch (memory only), by a health change between try_reserve and
	 * release. Whoever holds it checks the revision against ceiling.
	 */
	pthread_mutex_t  apply_mtx;
	pthread_mutex_t  mtx;   /* guards everything below, up to ceiling */
	pthread_cond_t   work;  /* the writer waits here */
	dsi_fifo         queue; /* of dsi_write, by link */
	dsi_fifo         tasks; /* of dsi_writer_task, by link; the head is the one running */
	bool             stopping;
	bool             counted; /* the backend numbers changes itself: no reservation */
	unsigned         seed;    /* for the pauses between lost races; the writer thread's */
	bool             topup;   /* a health change found the headroom low */
	uint64_t         commits; /* transactions committed */
	uint64_t         written; /* writes those carried */
	_Atomic uint64_t ceiling; /* the stored reservation; only the writer moves it */
	/* The batch being prepared: the writer thread's alone. */
	planned  items[DSI_STORE_BATCH];
	size_t   n;
	uint32_t creates;
	/* Where commit durations go (dsi_writer_set_metrics); NULL: nowhere. */
	_Atomic(dsi_metrics *) metrics;
};

#ifndef NDEBUG
static _Thread_local int locks_held;
#endif

static void
lock_apply(dsi_writer *wr)
{
	pthread_mutex_lock(&wr->apply_mtx);
#ifndef NDEBUG
	locks_held++;
#endif
}

static void
unlock_apply(dsi_writer *wr)
{
#ifndef NDEBUG
	locks_held--;
#endif
	pthread_mutex_unlock(&wr->apply_mtx);
}

int
dsi_writer_locks_held(void)
{
#ifndef NDEBUG
	return locks_held;
#else
	return 0;
#endif
}

/* The write a queue link belongs to; NULL for NULL, to end walks over a chain. */
static dsi_write *
write_of(dsi_fifo_node *n)
{
	return n != NULL ? DSI_CONTAINER_OF(n, dsi_write, link) : NULL;
}

/* Two writes to the same instance (or one to a whole service) wait for separate batches. */
static bool
conflicts(const dsi_writer *wr, const dsi_write *w)
{
	for (size_t i = 0; i < wr->n; i++) {
		const planned *p = &wr->items[i];
		if (strcmp(p->service, w->service) == 0
		    && (p->endpoint == NULL || w->endpoint == NULL
		        || strcmp(p->endpoint, w->endpoint) == 0)) {
			return true;
		}
	}
	return false;
}

static uint32_t
pending_in(const dsi_writer *wr, const char *service)
{
	uint32_t n = 0;
	for (size_t i = 0; i < wr->n; i++) {
		n += wr->items[i].creates && strcmp(wr->items[i].service, service) == 0;
	}
	return n;
}

/* The reservation to store when the revision is rev and a batch takes revs. */
static uint64_t
reservation(uint64_t rev, uint64_t revs)
{
	uint64_t ahead = revs + DSI_STORE_LOW_WATER;
	return rev + (ahead > DSI_STORE_RESERVE ? ahead : DSI_STORE_RESERVE);
}

/*
 * Stores the batch's SQL and, when the headroom after it would fall below
 * the low-water mark, a new reservation, in one transaction.
 */
static int
commit(dsi_writer *wr, dsi_write *batch, uint64_t revs, bool sql)
{
	uint64_t rev   = dsi_registry_revision(wr->registry);
	uint64_t c     = atomic_load(&wr->ceiling);
	bool     topup = c < rev + revs + DSI_STORE_LOW_WATER;
	uint64_t want  = topup ? reservation(rev, revs) : 0;

	if (!sql && !topup) {
		return 0;
	}
	int64_t began = dsi_metrics_now_ns();
	if (dsi_backend_begin(wr->store) == 0) {
		for (dsi_write *w = batch; w != NULL; w = write_of(w->link.next)) {
			if (w->rv == 0 && w->op != NULL) {
				dsi_backend_write(wr->store, dsi_registry_op_get(w->op));
			}
		}
		if (topup) {
			dsi_backend_set_revision(wr->store, want);
		}
	}
	int rv = dsi_backend_commit(wr->store, want);
	if (rv != 0) {
		return rv == DSC_ESTATE ? DSC_ESTATE : DSC_EUNAVAILABLE; /* ESTATE: a lost race */
	}
	dsi_metrics_commit(atomic_load_explicit(&wr->metrics, memory_order_relaxed), began);
	if (topup) {
		atomic_store(&wr->ceiling, want);
	}
	pthread_mutex_lock(&wr->mtx);
	wr->commits++;
	for (dsi_write *w = batch; sql && w != NULL; w = write_of(w->link.next)) {
		wr->written += w->rv == 0 && w->op != NULL;
	}
	pthread_mutex_unlock(&wr->mtx);
	return 0;
}

/*
 * Takes apply_mtx with room for the batch's revisions. Health changes may
 * have used the headroom since the commit: then a reservation is stored
 * first, with no lock held.
 */
static int
lock_for_apply(dsi_writer *wr, uint64_t revs)
{
	for (;;) {
		lock_apply(wr);
		uint64_t rev = dsi_registry_revision(wr->registry);
		if (rev + revs <= atomic_load(&wr->ceiling)) {
			return 0;
		}
		unlock_apply(wr);
		if (commit(wr, NULL, revs, false) != 0) { /* stores only a reservation: no race */
			lock_apply(wr);
			return DSC_EUNAVAILABLE;
		}
	}
}

/* Puts the writes the batch could not take back at the head of the queue, in order. */
static void
requeue(dsi_writer *wr, dsi_write *rest)
{
	pthread_mutex_lock(&wr->mtx);
	dsi_fifo_push_front(&wr->queue, &rest->link);
	pthread_mutex_unlock(&wr->mtx);
}

/*
 * A batch that lost a race to another writer of the backend is prepared
 * again for this long, with a growing random pause after the first losses
 * so that writers on several nodes do not keep colliding.
 */
#define RACE_MS       10000
#define RACE_PAUSE_MS 25

/*
 * Prepares the batch's writes, cutting it at the first write that conflicts
 * or does not fit (put back in the queue). *revs and *sql: what it stores.
 */
static dsi_write *
prepare_batch(dsi_writer *wr, dsi_write *batch, uint64_t *revs, bool *sql)
{
	dsi_fifo_node *prev = NULL; /* the last write the batch keeps */
	size_t         max  = dsi_backend_max_batch(wr->store);

	wr->n       = 0;
	wr->creates = 0;
	*revs       = 0;
	*sql        = false;
	for (dsi_write *w = batch; w != NULL; w = write_of(w->link.next)) {
		if (wr->n == max || conflicts(wr, w)) {
			if (prev != NULL) {
				prev->next = NULL;
			} else {
				batch = NULL;
			}
			requeue(wr, w);
			break;
		}
		w->op        = NULL;
		w->rv        = w->prepare(w, pending_in(wr, w->service), wr->creates);
		bool creates = false;
		if (w->rv == 0 && w->op != NULL) {
			const dsi_registry_op_info *op = dsi_registry_op_get(w->op);
			creates                        = op->creates;
			*revs += op->revisions;
			*sql = *sql || op->changes;
		}
		wr->items[wr->n++] = (planned) { w->service, w->endpoint, creates };
		wr->creates += creates;
		prev = &w->link;
	}
	return batch;
}

/* Prepares, commits, applies and answers one batch (possibly empty: a reservation). */
static void
run_batch(dsi_writer *wr, dsi_write *batch)
{
	dsi_write *w, *next;
	uint64_t   revs = 0;
	bool       sql  = false;
	char       why[400];
	int        rv;

	int64_t give_up = 0;
	for (int attempt = 0;; attempt++) {
		dsi_backend_hold(wr->store);
		batch = prepare_batch(wr, batch, &revs, &sql);
		rv    = commit(wr, batch, revs, sql);
		if (rv != DSC_ESTATE) {
			break;
		}
		if (give_up == 0) {
			give_up = dsi_monotonic_ms() + RACE_MS;
		} else if (dsi_monotonic_ms() > give_up) {
			break;
		}
		/* Another writer of the backend went first: decide again on what it wrote. */
		for (w = batch; w != NULL; w = write_of(w->link.next)) {
			dsi_registry_op_free(w->op);
			w->op = NULL;
		}
		dsi_backend_unhold(wr->store);
		if (attempt >= 2) {
			int  most = attempt * 3 < RACE_PAUSE_MS ? attempt * 3 : RACE_PAUSE_MS;
			long ms   = 1 + (long) (rand_r(&wr->seed) % (unsigned) most);
			struct timespec ts = { 0, ms * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	if (rv == 0) {
		rv = lock_for_apply(wr, revs);
	} else {
		rv = DSC_EUNAVAILABLE;
		lock_apply(wr);
	}
	if (rv != 0) {
		snprintf(why, sizeof(why), "the change could not be stored (%s); retry later",
		    dsi_backend_error(wr->store));
		dsi_error(wr->log, "%s: %s", dsi_backend_describe(wr->store),
		    dsi_backend_error(wr->store));
	}
	for (w = batch; w != NULL; w = write_of(w->link.next)) {
		w->apply(w, rv != 0 ? rv : w->rv, rv != 0 ? why : NULL);
	}
	unlock_apply(wr);
	dsi_backend_unhold(wr->store);
	for (w = batch; w != NULL; w = next) {
		next = write_of(w->link.next); /* reply may free w */
		w->reply(w);
	}
	if (wr->after_batch != NULL) {
		wr->after_batch(wr->after_batch_arg);
	}
}

/* At a clean stop: the revision as it is, so that a restart resumes exactly there. */
static void
store_exact(dsi_writer *wr)
{
	lock_apply(wr);
	uint64_t rev = dsi_registry_revision(wr->registry);
	if (rev != atomic_load(&wr->ceiling) && !wr->counted) {
		if (dsi_backend_begin(wr->store) != 0
		    || dsi_backend_set_revision(wr->store, rev) != 0
		    || dsi_backend_commit(wr->store, rev) != 0) {
			dsi_backend_rollback(wr->store);
			dsi_warn(wr->log, "%s: the last revision was not stored (%s)",
			    dsi_backend_describe(wr->store), dsi_backend_error(wr->store));
		} else {
			atomic_store(
			    &wr->ceiling, rev); /* no headroom is left: nothing moves now */
		}
	}
	unlock_apply(wr);
}

static dsi_writer_task *
task_of(dsi_fifo_node *n)
{
	return n != NULL ? DSI_CONTAINER_OF(n, dsi_writer_task, link) : NULL;
}

/* One step of the oldest task, between batches; called and returns with mtx held. */
static void
step_task_locked(dsi_writer *wr)
{
	dsi_writer_task *t = task_of(wr->tasks.head);
	pthread_mutex_unlock(&wr->mtx);
	bool complete = t->step(t, wr->store);
	pthread_mutex_lock(&wr->mtx);
	if (complete) {
		dsi_fifo_pop(&wr->tasks);
		pthread_mutex_unlock(&wr->mtx);
		t->done(t, 0);
		pthread_mutex_lock(&wr->mtx);
	}
}

static void *
writer_main(void *arg)
{
	dsi_writer *wr = arg;

	pthread_mutex_lock(&wr->mtx);
	for (;;) {
		while (dsi_fifo_empty(&wr->queue) && !wr->topup && !wr->stopping
		    && dsi_fifo_empty(&wr->tasks)) {
			pthread_cond_wait(&wr->work, &wr->mtx);
		}
		if (dsi_fifo_empty(&wr->queue) && !wr->topup
		    && (wr->stopping || dsi_fifo_empty(&wr->tasks))) {
			break; /* stopping, and no write is left (tasks are dropped) */
		}
		if (!dsi_fifo_empty(&wr->queue) || wr->topup) {
			dsi_write *batch = write_of(dsi_fifo_take(&wr->queue));
			wr->topup        = false;
			pthread_mutex_unlock(&wr->mtx);
			run_batch(wr, batch);
			pthread_mutex_lock(&wr->mtx);
		}
		if (!dsi_fifo_empty(&wr->tasks) && !wr->stopping) {
			step_task_locked(wr);
		}
	}
	dsi_writer_task *dropped = task_of(dsi_fifo_take(&wr->tasks));
	pthread_mutex_unlock(&wr->mtx);
	while (dropped != NULL) {
		dsi_writer_task *t = dropped;
		dropped            = task_of(t->link.next);
		t->done(t, DSC_EUNAVAILABLE); /* may free t */
	}
	store_exact(wr);
	return NULL;
}

int
dsi_writer_start(dsi_writer **out, dsi_backend *b, dsi_registry *r, const dsi_log *log,
    void (*after_batch)(void *), void *arg)
{
	dsi_writer *wr = calloc(1, sizeof(*wr));
	if (wr == NULL) {
		return DSC_ENOMEM;
	}
	wr->store           = b;
	wr->registry        = r;
	wr->log             = log;
	wr->after_batch     = after_batch;
	wr->after_batch_arg = arg;
	wr->counted         = dsi_backend_capability(b, DSI_BACKEND_CAP_COUNTER, NULL) == 0;
	/* headroom before the first health change needs it; none with a counting backend */
	wr->topup = !wr->counted;
	atomic_init(&wr->ceiling, wr->counted ? UINT64_MAX / 2 : dsi_backend_revision(b));
	pthread_mutex_init(&wr->apply_mtx, NULL);
	pthread_mutex_init(&wr->mtx, NULL);
	pthread_cond_init(&wr->work, NULL);
	if (pthread_create(&wr->thread, NULL, writer_main, wr) != 0) {
		dsi_writer_destroy(wr);
		return DSC_ENOMEM;
	}
	wr->running = true;
	*out        = wr;
	return 0;
}

void
dsi_writer_submit(dsi_writer *wr, dsi_write *w)
{
	w->op = NULL;
	pthread_mutex_lock(&wr->mtx);
	if (!wr->running || wr->stopping) {
		pthread_mutex_unlock(&wr->mtx);
		w->apply(w, DSC_EUNAVAILABLE, "the server is shutting down");
		w->reply(w);
		return;
	}
	dsi_fifo_push(&wr->queue, &w->link);
	pthread_cond_signal(&wr->work);
	pthread_mutex_unlock(&wr->mtx);
}

int
dsi_writer_run(dsi_writer *wr, dsi_writer_task *t)
{
	pthread_mutex_lock(&wr->mtx);
	if (!wr->running || wr->stopping) {
		pthread_mutex_unlock(&wr->mtx);
		return DSC_EUNAVAILABLE;
	}
	t->link.next = NULL;
	dsi_fifo_push(&wr->tasks, &t->link);
	pthread_cond_signal(&wr->work);
	pthread_mutex_unlock(&wr->mtx);
	return 0;
}

static void
ask_topup(dsi_writer *wr)
{
	pthread_mutex_lock(&wr->mtx);
	if (!wr->topup && !wr->stopping) {
		wr->topup = true;
		pthread_cond_signal(&wr->work);
	}
	pthread_mutex_unlock(&wr->mtx);
}

int
dsi_writer_try_reserve(dsi_writer *wr)
{
	lock_apply(wr);
	uint64_t rev = dsi_registry_revision(wr->registry);
	uint64_t c   = atomic_load(&wr->ceiling);
	if (rev + 1 <= c) {
		if (c - rev < DSI_STORE_LOW_WATER) {
			ask_topup(wr); /* mtx alone: the writer never holds it across the disk */
		}
		return 0; /* held until dsi_writer_release */
	}
	unlock_apply(wr);
	ask_topup(wr);
	return DSC_EUNAVAILABLE;
}

void
dsi_writer_release(dsi_writer *wr)
{
	unlock_apply(wr);
}

void
dsi_writer_set_metrics(dsi_writer *wr, dsi_metrics *m)
{
	if (wr != NULL) {
		atomic_store(&wr->metrics, m);
	}
}

void
dsi_writer_stats(dsi_writer *wr, uint64_t *commits, uint64_t *writes)
{
	pthread_mutex_lock(&wr->mtx);
	*commits = wr->commits;
	*writes  = wr->written;
	pthread_mutex_unlock(&wr->mtx);
}

void
dsi_writer_stop(dsi_writer *wr)
{
	if (wr == NULL) {
		return;
	}
	pthread_mutex_lock(&wr->mtx);
	bool join    = wr->running && !wr->stopping;
	wr->stopping = true;
	pthread_cond_broadcast(&wr->work);
	pthread_mutex_unlock(&wr->mtx);
	if (join) {
		pthread_join(wr->thread, NULL);
	}
	pthread_mutex_lock(&wr->mtx);
	wr->running = false;
	pthread_mutex_unlock(&wr->mtx);
}

void
dsi_writer_destroy(dsi_writer *wr)
{
	if (wr == NULL) {
		return;
	}
	dsi_writer_stop(wr);
	pthread_cond_destroy(&wr->work);
	pthread_mutex_destroy(&wr->mtx);
	pthread_mutex_destroy(&wr->apply_mtx);
	free(wr);
}
