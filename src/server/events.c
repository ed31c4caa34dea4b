/*
 * Publisher: a FIFO of events filled under the registry lock (so it is in
 * revision order). Whoever made a change flushes it right after the lock is
 * released (the request callback, the checker), so delivery does not wait
 * for this thread to be scheduled on a busy machine; the thread publishes
 * SYNC and catches anything not flushed within 50 ms. PUB never blocks: a
 * slow subscriber loses messages, which the SYNC events let it notice.
 */
#include "server/events.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/codec.h"
#include "common/fifo.h"
#include "common/name.h"
#include "common/nngutil.h"
#include "common/ratelimit.h"
#include "common/text.h"
#include "common/timeutil.h"

/* The thread's longest nap: a change nobody flushed still goes out this soon. */
#define SAFETY_NET_MS 50

/* One queued change; reason is copied, instance owned. */
typedef struct qitem {
	dsi_fifo_node        link; /* in the queue */
	Discovery__V1__Event ev;
	char                 service[DSI_NAME_MAX + 1];
	char                 reason[128];
} qitem;

struct dsi_events {
	nng_socket      sock;
	nng_listener    listener;
	char            bound[128];
	dsi_registry   *registry;
	const dsi_log  *log;
	int             sync_interval_ms;
	size_t          max_queue;
	dsi_metrics    *metrics; /* borrowed; may be NULL */
	pthread_t       thread;
	bool            started;
	pthread_mutex_t mtx;     /* guards the queue and stop */
	pthread_mutex_t pub_mtx; /* held by whoever drains: one publisher at a time */
	pthread_cond_t  cv;
	dsi_fifo        queue; /* of qitem, by link; calloc made it empty */
	size_t          queued;
	uint64_t        dropped;
	bool            stop;
	/* Subscribers against the cap (nng's pipe callbacks); running totals. */
	size_t           max_connections;
	_Atomic size_t   subscribers;
	_Atomic uint64_t send_failed, refused;
	dsi_ratelimit    rl_refused, rl_send;
};

static void
qitem_free(qitem *q)
{
	free(q->ev.instance); /* a single-block export: one free */
	free(q);
}

void
dsi_events_enqueue(dsi_events *e, dsi_change *ch)
{
	qitem *q = calloc(1, sizeof(*q));
	if (q == NULL) {
		free(ch->instance);
		return; /* subscribers see the revision gap at the next SYNC */
	}
	discovery__v1__event__init(&q->ev);
	dsi_strlcpy(q->service, ch->service, sizeof(q->service));
	dsi_strlcpy(q->reason, ch->reason != NULL ? ch->reason : "", sizeof(q->reason));
	q->ev.service      = q->service;
	q->ev.reason       = q->reason;
	q->ev.type         = ch->type;
	q->ev.instance     = ch->instance;
	q->ev.previous     = (Discovery__V1__HealthState) ch->previous;
	q->ev.revision     = ch->revision;
	q->ev.timestamp_ms = ch->timestamp_ms;
	ch->instance       = NULL;
	if (ch->type == DISCOVERY__V1__EVENT_TYPE__EVENT_SYNC) {
		/* Clients drop a node that missed two SYNCs (docs/protocol.md). */
		q->ev.sync_interval_ms = (uint32_t) e->sync_interval_ms;
	}

	pthread_mutex_lock(&e->mtx);
	if (e->queued >= e->max_queue) {
		e->dropped++;
		pthread_mutex_unlock(&e->mtx);
		qitem_free(q);
		return;
	}
	dsi_fifo_push(&e->queue, &q->link);
	e->queued++;
	pthread_mutex_unlock(&e->mtx);
}

/*
 * nng 1.5.2's PUB drops the oldest queued message of a slow subscriber
 * without a trace or a statistic; what we can see and count is a message
 * we could not encode or nng did not take.
 */
static void
publish_event(dsi_events *e, qitem *q)
{
	nng_msg    *msg;
	int         rv;
	const char *why = "cannot encode it";
	if (dsi_pack(&q->ev.base, &msg) == 0) {
		if ((rv = nng_sendmsg(e->sock, msg, 0)) == 0) {
			dsi_metrics_event(e->metrics);
			return;
		}
		nng_msg_free(msg);
		why = nng_strerror(rv);
	}
	atomic_fetch_add(&e->send_failed, 1);
	dsi_ratelimit_logf(&e->rl_send, e->log, DSI_LOG_WARN,
	    "an event (revision %llu) was not published: %s", (unsigned long long) q->ev.revision,
	    why);
}

/* Closes subscribers past the cap as they arrive (nng's threads). */
static void
pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	dsi_events *e = arg;
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		dsi_metrics_subscribers(e->metrics, 1); /* undone at REM_POST, refused or not */
		if (atomic_fetch_add(&e->subscribers, 1) >= e->max_connections) {
			atomic_fetch_add(&e->refused, 1);
			dsi_ratelimit_logf(&e->rl_refused, e->log, DSI_LOG_WARN,
			    "refused a subscriber: %zu are connected (--max-connections)",
			    e->max_connections);
			nng_pipe_close(p); /* REM_POST still follows and gives the slot back */
		}
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		dsi_metrics_subscribers(e->metrics, -1);
		atomic_fetch_sub(&e->subscribers, 1);
	}
}

void
dsi_events_stats_get(dsi_events *e, dsi_events_stats *out)
{
	pthread_mutex_lock(&e->mtx);
	out->queue_full = e->dropped;
	pthread_mutex_unlock(&e->mtx);
	out->send_failed = atomic_load(&e->send_failed);
	out->refused     = atomic_load(&e->refused);
}

/*
 * Publishes what is queued, in order. The caller holds pub_mtx, so batches
 * are taken and sent by one drainer at a time and never overtake each other.
 */
static void
drain(dsi_events *e)
{
	for (;;) {
		pthread_mutex_lock(&e->mtx);
		dsi_fifo_node *batch = dsi_fifo_take(&e->queue);
		e->queued            = 0;
		pthread_mutex_unlock(&e->mtx);
		if (batch == NULL) {
			return;
		}
		while (batch != NULL) {
			dsi_fifo_node *next = batch->next;
			qitem         *q    = DSI_CONTAINER_OF(batch, qitem, link);
			publish_event(e, q);
			qitem_free(q);
			batch = next;
		}
	}
}

void
dsi_events_flush(dsi_events *e)
{
	/* Someone else is publishing: it will drain what we queued too. */
	if (e != NULL && pthread_mutex_trylock(&e->pub_mtx) == 0) {
		drain(e);
		pthread_mutex_unlock(&e->pub_mtx);
	}
}

static void *
events_main(void *arg)
{
	dsi_events *e         = arg;
	int64_t     next_sync = 0; /* at once */
	uint64_t    reported  = 0;

	for (;;) {
		pthread_mutex_lock(&e->mtx);
		int64_t wait = next_sync - dsi_monotonic_ms();
		if (!e->stop && wait > 0) {
			struct timespec ts;
			dsi_realtime_after(&ts, wait < SAFETY_NET_MS ? wait : SAFETY_NET_MS);
			pthread_cond_timedwait(&e->cv, &e->mtx, &ts);
		}
		uint64_t dropped = e->dropped;
		bool     stop    = e->stop;
		pthread_mutex_unlock(&e->mtx);

		if (!stop && dsi_monotonic_ms() >= next_sync) {
			/* Through the registry, so it is ordered after every change it counts. */
			dsi_registry_sync(e->registry);
			next_sync = dsi_monotonic_ms() + e->sync_interval_ms;
		}
		pthread_mutex_lock(&e->pub_mtx);
		drain(e);
		pthread_mutex_unlock(&e->pub_mtx);
		if (dropped != reported) {
			dsi_warn(e->log, "%llu events dropped: the publish queue was full",
			    (unsigned long long) (dropped - reported));
			reported = dropped;
		}
		if (stop) {
			return NULL;
		}
	}
}

int
dsi_events_create(dsi_events **out, const dsi_events_options *o, dsi_registry *r,
    const dsi_log *log, char *why, size_t why_len)
{
	dsi_events *e;
	int         rv;

	if (o->sync_interval_ms <= 0 || o->send_buffer <= 0) {
		return dsi_failf(DSC_EINVAL, why, why_len, "the event options must be positive");
	}
	if (!dsi_url_is_served(o->url)) {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "cannot publish on %s: only tcp:// and tls+tcp:// URLs are served", o->url);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		return DSC_ENOMEM;
	}
	e->registry         = r;
	e->log              = log;
	e->sync_interval_ms = o->sync_interval_ms;
	e->max_queue        = o->max_queue > 0 ? o->max_queue : 65536;
	e->max_connections  = o->max_connections > 0 ? o->max_connections : SIZE_MAX;
	dsi_ratelimit_init(&e->rl_refused, DSI_RATELIMIT_DEFAULT_MS);
	dsi_ratelimit_init(&e->rl_send, DSI_RATELIMIT_DEFAULT_MS);
	e->metrics = o->metrics;
	pthread_mutex_init(&e->mtx, NULL);
	pthread_mutex_init(&e->pub_mtx, NULL);
	pthread_cond_init(&e->cv, NULL);
	if ((rv = nng_pub0_open(&e->sock)) != 0) {
		snprintf(why, why_len, "cannot open the PUB socket: %s", nng_strerror(rv));
		dsi_events_destroy(e);
		return dsi_err_from_nng(rv);
	}
	/* nng's default of 16 messages per subscriber drops bursts at once. */
	nng_socket_set_int(e->sock, NNG_OPT_SENDBUF, o->send_buffer);
	if ((rv = nng_pipe_notify(e->sock, NNG_PIPE_EV_ADD_PRE, pipe_event, e)) != 0
	    || (rv = nng_pipe_notify(e->sock, NNG_PIPE_EV_REM_POST, pipe_event, e)) != 0) {
		snprintf(why, why_len, "cannot watch subscribers: %s", nng_strerror(rv));
		dsi_events_destroy(e);
		return dsi_err_from_nng(rv);
	}
	if ((rv = nng_listener_create(&e->listener, e->sock, o->url)) != 0
	    || (dsi_url_is_tls(o->url)
	        && (rv = nng_listener_set_ptr(e->listener, NNG_OPT_TLS_CONFIG, o->tls)) != 0)
	    || (rv = nng_listener_start(e->listener, 0)) != 0) {
		snprintf(why, why_len, "cannot publish on %s: %s", o->url, nng_strerror(rv));
		dsi_events_destroy(e);
		return dsi_err_from_nng(rv);
	}
	dsi_listener_url(e->listener, o->url, e->bound, sizeof(e->bound));
	*out = e;
	return 0;
}

const char *
dsi_events_url(const dsi_events *e)
{
	return e->bound;
}

int
dsi_events_set_tls(dsi_events *e, nng_tls_config *tls)
{
	return dsi_url_is_tls(e->bound) ? nng_listener_set_ptr(e->listener, NNG_OPT_TLS_CONFIG, tls)
	                                : 0;
}

int
dsi_events_start(dsi_events *e)
{
	if (pthread_create(&e->thread, NULL, events_main, e) != 0) {
		return DSC_ENOMEM;
	}
	e->started = true;
	return 0;
}

void
dsi_events_stop(dsi_events *e)
{
	if (e == NULL || !e->started) {
		return;
	}
	pthread_mutex_lock(&e->mtx);
	e->stop = true;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mtx);
	pthread_join(e->thread, NULL);
	e->started = false;
}

void
dsi_events_destroy(dsi_events *e)
{
	if (e == NULL) {
		return;
	}
	dsi_events_stop(e);
	for (dsi_fifo_node *n; (n = dsi_fifo_pop(&e->queue)) != NULL;) {
		qitem_free(DSI_CONTAINER_OF(n, qitem, link));
	}
	if (nng_socket_id(e->sock) > 0 && !dsi_close_bounded(e->sock, DSI_CLOSE_BOUND_MS, e->log)) {
		return; /* its pipe callbacks may still run: e stays for the process exit */
	}
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->pub_mtx);
	pthread_mutex_destroy(&e->mtx);
	free(e);
}
