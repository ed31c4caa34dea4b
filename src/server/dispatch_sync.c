/*
 * dsi_dispatch_handle: dispatch for callers that wait on their own thread
 * for the Response (start-up registrations, tests), while the REP items
 * take it through a callback.
 */
#include <pthread.h>
#include <stdbool.h>

#include "common/error.h"
#include "server/dispatch.h"

/* Waits for a reply that may come from the writer thread. */
typedef struct waiter {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	nng_msg        *reply;
} waiter;

static void
wake(void *arg, nng_msg *reply)
{
	waiter *w = arg;
	pthread_mutex_lock(&w->mtx);
	w->reply = reply;
	w->done  = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

int
dsi_dispatch_handle(const dsi_dispatch *d, const void *buf, size_t len, nng_msg **reply)
{
	waiter w = { .done = false, .reply = NULL };
	pthread_mutex_init(&w.mtx, NULL);
	pthread_cond_init(&w.cv, NULL);
	dsi_dispatch_begin(d, buf, len, wake, &w);
	pthread_mutex_lock(&w.mtx);
	while (!w.done) {
		pthread_cond_wait(&w.cv, &w.mtx);
	}
	pthread_mutex_unlock(&w.mtx);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mtx);
	*reply = w.reply;
	return w.reply != NULL ? 0 : DSC_ENOMEM;
}
