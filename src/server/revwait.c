/*
 * The waiting room for requests behind their min_revision. Each slot owns
 * an nng aio used as the request's timer (nng_sleep_aio): the wait ends
 * when the timer fires or when notify (or stop) cancels it, and the aio's
 * callback, which runs exactly once either way, hands the request back.
 * Nothing polls and no thread blocks.
 *
 * Locks: notify runs under the registry's lock and takes ours, so ours is
 * never held while the registry is asked anything; the revision seen is
 * kept here (seen) instead.
 */
#include "server/revwait.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/error.h"
#include "common/nngutil.h"

typedef struct slot {
	dsi_revwait   *w;
	nng_aio       *aio;
	uint64_t       want;
	dsi_revwait_fn fn; /* NULL: free */
	void          *arg;
	char          *msg; /* the request's, for the UNAVAILABLE message */
	size_t         msg_len;
	bool           reached; /* set by notify before it cancels the timer */
} slot;

struct dsi_revwait {
	int             wait_ms;
	pthread_mutex_t mtx; /* guards everything below and every slot's fields */
	slot           *slots;
	size_t          n_slots;
	size_t          busy;     /* slots in use */
	uint64_t        seen;     /* the highest revision notify or park has seen */
	uint64_t        min_want; /* the lowest want among busy slots; UINT64_MAX: none */
	bool            stopping;
};

/* The UNAVAILABLE message: where this server is, what was asked, what to do. */
static void
behind(char *msg, size_t len, uint64_t have, uint64_t want)
{
	snprintf(msg, len,
	    "this server is at revision %llu, behind the requested %llu; retry, or ask another "
	    "server",
	    (unsigned long long) have, (unsigned long long) want);
}

/* The lowest want among busy slots; the caller holds mtx. */
static uint64_t
lowest_want(const dsi_revwait *w)
{
	uint64_t low = UINT64_MAX;
	for (size_t i = 0; i < w->n_slots; i++) {
		if (w->slots[i].fn != NULL && !w->slots[i].reached && w->slots[i].want < low) {
			low = w->slots[i].want;
		}
	}
	return low;
}

/* The timer ended: fired (0), or cancelled by notify or stop. Frees the slot, then answers. */
static void
slot_cb(void *arg)
{
	slot          *s = arg;
	dsi_revwait   *w = s->w;
	dsi_revwait_fn fn;
	void          *fn_arg;
	bool           reached;

	pthread_mutex_lock(&w->mtx);
	if (s->fn == NULL) { /* no wait was running on this slot */
		pthread_mutex_unlock(&w->mtx);
		return;
	}
	reached = s->reached || w->seen >= s->want; /* a timer that raced the change */
	fn      = s->fn;
	fn_arg  = s->arg;
	if (!reached) {
		behind(s->msg, s->msg_len, w->seen, s->want);
	}
	s->fn      = NULL;
	s->arg     = NULL;
	s->reached = false;
	w->busy--;
	w->min_want = lowest_want(w);
	pthread_mutex_unlock(&w->mtx);
	fn(fn_arg, reached ? 0 : DSC_EUNAVAILABLE);
}

int
dsi_revwait_create(dsi_revwait **out, int wait_ms, size_t max_waiters)
{
	dsi_revwait *w = calloc(1, sizeof(*w));
	int          rv;

	if (w == NULL) {
		return DSC_ENOMEM;
	}
	w->wait_ms  = wait_ms;
	w->n_slots  = max_waiters > 0 ? max_waiters : 1;
	w->min_want = UINT64_MAX;
	pthread_mutex_init(&w->mtx, NULL);
	if ((w->slots = calloc(w->n_slots, sizeof(*w->slots))) == NULL) {
		dsi_revwait_destroy(w);
		return DSC_ENOMEM;
	}
	for (size_t i = 0; i < w->n_slots; i++) {
		w->slots[i].w = w;
		if ((rv = nng_aio_alloc(&w->slots[i].aio, slot_cb, &w->slots[i])) != 0) {
			dsi_revwait_destroy(w);
			return dsi_err_from_nng(rv);
		}
	}
	*out = w;
	return 0;
}

bool
dsi_revwait_park(dsi_revwait *w, dsi_registry *r, uint64_t want, int *rv, char *msg, size_t msg_len,
    dsi_revwait_fn fn, void *arg)
{
	uint64_t now = dsi_registry_revision(r); /* before our lock: see above */
	slot    *s   = NULL;

	*rv = 0;
	if (now >= want) {
		return false;
	}
	if (w != NULL) {
		pthread_mutex_lock(&w->mtx);
		if (now > w->seen) {
			w->seen = now;
		}
		now = w->seen; /* a change notify saw since */
		for (size_t i = 0; now < want && !w->stopping && w->wait_ms > 0 && i < w->n_slots;
		     i++) {
			if (w->slots[i].fn == NULL) {
				s = &w->slots[i];
				break;
			}
		}
		if (s != NULL) {
			s->want    = want;
			s->fn      = fn;
			s->arg     = arg;
			s->msg     = msg;
			s->msg_len = msg_len;
			s->reached = false;
			w->busy++;
			w->min_want = want < w->min_want ? want : w->min_want;
			/* The callback runs on nng's thread once this returns: it takes mtx too. */
			nng_sleep_aio((nng_duration) w->wait_ms, s->aio);
		}
		pthread_mutex_unlock(&w->mtx);
	}
	if (s != NULL || now >= want) {
		return s != NULL;
	}
	behind(msg, msg_len, now, want);
	*rv = DSC_EUNAVAILABLE;
	return false;
}

void
dsi_revwait_notify(dsi_revwait *w, uint64_t revision)
{
	if (w == NULL) {
		return;
	}
	pthread_mutex_lock(&w->mtx);
	if (revision > w->seen) {
		w->seen = revision;
	}
	if (w->busy > 0 && revision >= w->min_want) {
		for (size_t i = 0; i < w->n_slots; i++) {
			slot *s = &w->slots[i];
			if (s->fn != NULL && !s->reached && s->want <= revision) {
				s->reached = true;
				nng_aio_cancel(s->aio); /* its callback runs on nng's thread */
			}
		}
		w->min_want = lowest_want(w);
	}
	pthread_mutex_unlock(&w->mtx);
}

size_t
dsi_revwait_count(dsi_revwait *w)
{
	pthread_mutex_lock(&w->mtx);
	size_t n = w->busy;
	pthread_mutex_unlock(&w->mtx);
	return n;
}

void
dsi_revwait_stop(dsi_revwait *w)
{
	if (w == NULL || w->slots == NULL) {
		return;
	}
	pthread_mutex_lock(&w->mtx);
	w->stopping = true;
	for (size_t i = 0; i < w->n_slots; i++) {
		if (w->slots[i].fn != NULL) {
			nng_aio_cancel(w->slots[i].aio);
		}
	}
	pthread_mutex_unlock(&w->mtx);
	for (size_t i = 0; i < w->n_slots; i++) {
		if (w->slots[i].aio != NULL) {
			nng_aio_stop(w->slots[i].aio); /* waits for a callback still running */
		}
	}
}

void
dsi_revwait_destroy(dsi_revwait *w)
{
	if (w == NULL) {
		return;
	}
	dsi_revwait_stop(w);
	for (size_t i = 0; w->slots != NULL && i < w->n_slots; i++) {
		if (w->slots[i].aio != NULL) {
			nng_aio_free(w->slots[i].aio);
		}
	}
	free(w->slots);
	pthread_mutex_destroy(&w->mtx);
	free(w);
}
