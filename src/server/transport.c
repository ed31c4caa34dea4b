/*
 * REP work items after nng's async server pattern: each item loops
 * RECV -> (dispatch) -> SEND -> RECV. Dispatch never blocks on I/O, so
 * callbacks stay short: a write that must be stored first parks its item
 * (WAIT) and the store's writer thread sends the reply after the commit.
 */
#include "server/transport.h"

#include <errno.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/nngutil.h"
#include "common/text.h"
#include "common/timeutil.h"

#define MAX_LISTEN 16
/* nng counts the REQ header (the 4-byte request id) against the receive limit. */
#define REQ_HEADER 4

typedef enum item_state {
	ITEM_RECV, /* waiting for a request */
	ITEM_WAIT, /* waiting for dispatch's reply (a write being stored) */
	ITEM_SEND, /* sending a reply */
	ITEM_DONE, /* stopped: will not be re-armed */
} item_state;

typedef struct item {
	dsi_rep_server *srv;
	nng_aio        *aio;
	nng_ctx         ctx;
	item_state      state;
} item;

struct dsi_rep_server {
	nng_socket          sock;
	nng_listener        listeners[MAX_LISTEN];
	char                bound[MAX_LISTEN][128];
	size_t              n_listen;
	item               *items;
	size_t              n_items;
	const dsi_dispatch *d;
	const dsi_log      *log;
	pthread_mutex_t     mtx; /* guards stopping, every item's state, and n_done */
	pthread_cond_t      cv;
	bool                stopping;
	bool                stopped;
	bool                aios_stopped; /* a reply now cannot be sent */
	size_t              n_done;
};

/* Marks it done; the caller holds srv->mtx. */
static void
item_finish(item *it)
{
	it->state = ITEM_DONE;
	it->srv->n_done++;
	pthread_cond_broadcast(&it->srv->cv);
}

/* Re-arms the receive unless the server is stopping. */
static void
item_recv(item *it)
{
	dsi_rep_server *s = it->srv;
	pthread_mutex_lock(&s->mtx);
	if (s->stopping) {
		item_finish(it);
	} else {
		it->state = ITEM_RECV;
		nng_ctx_recv(it->ctx, it->aio);
	}
	pthread_mutex_unlock(&s->mtx);
}

/* Dispatch's reply, on the aio's thread or the store's writer thread. */
static void
item_reply(void *arg, nng_msg *rep)
{
	item           *it = arg;
	dsi_rep_server *s  = it->srv;
	if (rep == NULL) {
		/* Out of memory even for an error reply: the peer times out. */
		dsi_error(s->log, "cannot build a reply: %s", dsi_strerror(DSC_ENOMEM));
		item_recv(it);
		return;
	}
	pthread_mutex_lock(&s->mtx);
	if (s->aios_stopped) {
		/* A write answered after the drain gave up: nng would drop it without a callback.
		 */
		item_finish(it);
		pthread_mutex_unlock(&s->mtx);
		nng_msg_free(rep);
		return;
	}
	it->state = ITEM_SEND;
	pthread_mutex_unlock(&s->mtx);
	nng_aio_set_msg(it->aio, rep);
	nng_ctx_send(it->ctx, it->aio);
}

static void
item_cb(void *arg)
{
	item           *it = arg;
	dsi_rep_server *s  = it->srv;
	int             rv = nng_aio_result(it->aio);
	nng_msg        *req;

	switch (it->state) {
	case ITEM_RECV:
		if (rv == NNG_ECANCELED || rv == NNG_ECLOSED) {
			pthread_mutex_lock(&s->mtx);
			item_finish(it);
			pthread_mutex_unlock(&s->mtx);
			return;
		}
		if (rv != 0) {
			dsi_warn(s->log, "receive failed: %s", nng_strerror(rv));
			item_recv(it);
			return;
		}
		req = nng_aio_get_msg(it->aio);
		pthread_mutex_lock(&s->mtx);
		it->state = ITEM_WAIT;
		pthread_mutex_unlock(&s->mtx);
		dsi_dispatch_begin(s->d, nng_msg_body(req), nng_msg_len(req), item_reply, it);
		nng_msg_free(req);
		return;
	case ITEM_SEND:
		if (rv != 0) {
			/* The peer went away; the message is still ours. */
			nng_msg_free(nng_aio_get_msg(it->aio));
			dsi_debug(s->log, "reply not delivered: %s", nng_strerror(rv));
		}
		item_recv(it);
		return;
	case ITEM_WAIT: /* no aio is running while an item waits */
	case ITEM_DONE:
		return;
	}
}

int
dsi_rep_create(dsi_rep_server **out, const dsi_rep_options *opts, const dsi_dispatch *d,
    const dsi_log *log, char *why, size_t why_len)
{
	dsi_rep_server *s;
	int             rv;

	if (opts->n_listen == 0 || opts->n_listen > MAX_LISTEN) {
		snprintf(why, why_len, "between 1 and %d listen URLs are needed", MAX_LISTEN);
		return DSC_EINVAL;
	}
	if (opts->workers == 0) {
		snprintf(why, why_len, "at least one worker is needed");
		return DSC_EINVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return DSC_ENOMEM;
	}
	s->d       = d;
	s->log     = log;
	s->n_items = opts->workers;
	pthread_mutex_init(&s->mtx, NULL);
	pthread_cond_init(&s->cv, NULL);
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		snprintf(why, why_len, "cannot open the REP socket: %s", nng_strerror(rv));
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mtx);
		free(s);
		return dsi_err_from_nng(rv);
	}
	if ((s->items = calloc(s->n_items, sizeof(*s->items))) == NULL) {
		rv = DSC_ENOMEM;
		goto fail;
	}
	s->n_done = s->n_items; /* nothing is armed until dsi_rep_start */
	for (size_t i = 0; i < s->n_items; i++) {
		item *it  = &s->items[i];
		it->srv   = s;
		it->state = ITEM_DONE;
		if ((rv = nng_aio_alloc(&it->aio, item_cb, it)) != 0
		    || (rv = nng_ctx_open(&it->ctx, s->sock)) != 0) {
			snprintf(
			    why, why_len, "cannot create the REP work pool: %s", nng_strerror(rv));
			rv = dsi_err_from_nng(rv);
			goto fail;
		}
	}
	for (size_t i = 0; i < opts->n_listen; i++) {
		nng_listener *l = &s->listeners[i];
		if ((rv = nng_listener_create(l, s->sock, opts->listen[i])) != 0
		    || (rv = nng_listener_set_size(
		            *l, NNG_OPT_RECVMAXSZ, opts->max_request + REQ_HEADER))
		        != 0
		    || (dsi_url_is_tls(opts->listen[i])
		        && (rv = nng_listener_set_ptr(*l, NNG_OPT_TLS_CONFIG, opts->tls)) != 0)
		    || (rv = nng_listener_start(*l, 0)) != 0) {
			snprintf(why, why_len, "cannot listen on %s: %s", opts->listen[i],
			    nng_strerror(rv));
			rv = dsi_err_from_nng(rv);
			goto fail;
		}
		s->n_listen++;
		dsi_listener_url(*l, opts->listen[i], s->bound[i], sizeof(s->bound[i]));
	}
	*out = s;
	return 0;
fail:
	dsi_rep_destroy(s);
	return rv;
}

const char *
dsi_rep_bound_url(const dsi_rep_server *s, size_t i)
{
	return i < s->n_listen ? s->bound[i] : NULL;
}

int
dsi_rep_start(dsi_rep_server *s)
{
	pthread_mutex_lock(&s->mtx);
	s->n_done = 0;
	pthread_mutex_unlock(&s->mtx);
	for (size_t i = 0; i < s->n_items; i++) {
		item_recv(&s->items[i]);
	}
	return 0;
}

void
dsi_rep_stop(dsi_rep_server *s, int drain_ms)
{
	struct timespec deadline;

	pthread_mutex_lock(&s->mtx);
	if (s->stopped) {
		pthread_mutex_unlock(&s->mtx);
		return;
	}
	s->stopped  = true;
	s->stopping = true;
	pthread_mutex_unlock(&s->mtx);

	for (size_t i = 0; i < s->n_listen; i++) {
		nng_listener_close(s->listeners[i]);
	}

	/*
	 * Idle items are cancelled; busy ones finish their reply and then see
	 * stopping. Cancelling under the lock is safe: nng runs the callback
	 * later on its own thread, and a busy item cannot be mid-cancel.
	 */
	dsi_realtime_after(&deadline, drain_ms);
	pthread_mutex_lock(&s->mtx);
	for (size_t i = 0; i < s->n_items; i++) {
		if (s->items[i].state == ITEM_RECV) {
			nng_aio_cancel(s->items[i].aio);
		}
	}
	while (s->n_done < s->n_items) {
		if (pthread_cond_timedwait(&s->cv, &s->mtx, &deadline) == ETIMEDOUT) {
			dsi_warn(s->log, "%zu requests still in flight after %d ms; dropping them",
			    s->n_items - s->n_done, drain_ms);
			break;
		}
	}
	pthread_mutex_unlock(&s->mtx);
	pthread_mutex_lock(&s->mtx);
	s->aios_stopped = true;
	pthread_mutex_unlock(&s->mtx);
	for (size_t i = 0; i < s->n_items; i++) {
		if (s->items[i].aio != NULL) {
			nng_aio_stop(s->items[i].aio);
		}
	}
}

void
dsi_rep_destroy(dsi_rep_server *s)
{
	if (s == NULL) {
		return;
	}
	if (s->items != NULL) {
		dsi_rep_stop(s, 0);
	}
	for (size_t i = 0; s->items != NULL && i < s->n_items; i++) {
		if (s->items[i].aio != NULL) {
			nng_aio_free(s->items[i].aio);
		}
	}
	dsi_close_bounded(s->sock, DSI_CLOSE_BOUND_MS, s->log);
	free(s->items);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
}
