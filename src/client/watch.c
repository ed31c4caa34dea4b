/*
 * Watches: an nng SUB socket on discoveryd's publish URL, and the one place
 * where a published Event is decoded and validated into a dsc_event. With a
 * list of URLs the socket dials every one of them, so that a switch is
 * instant, and client/follow.c decides which node's events are delivered
 * (one node at a time; the others' are kept in rings). The SYNC deadline is
 * checked whenever dsc_watch_next runs: no thread of our own.
 */
#include <discovery/discovery.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/dial.h"
#include "client/follow.h"
#include "client/internal.h"
#include "client/urllist.h"
#include "common/codec.h"
#include "common/name.h"
#include "common/nngutil.h"
#include "common/text.h"
#include "common/timeutil.h"

#define DEFAULT_RECV_BUFFER 1024
#define DEFAULT_PROBE_MS    5000 /* dsc_watch_open_tls: bound on its first handshake */

/* The prefix every SYNC event starts with: field 2 (type), varint 5. */
static const uint8_t sync_prefix[2] = { 0x10, DISCOVERY__V1__EVENT_TYPE__EVENT_SYNC };

/* One publish URL of a list: its dialer and its pipes, under the watch's mtx. */
typedef struct wnode {
	char      *url;    /* owned */
	nng_dialer dialer; /* written before it starts, read-only after */
	uint32_t
	    pipe[2]; /* ids of its latest two pipes, newest first: a message may outlive its pipe */
	int pipes;   /* connected now */
	uint64_t connects;
} wnode;

/* One SUB socket and what its pipe callback counts. */
struct dsc_watch {
	nng_socket       sock;
	char            *url; /* the publish URL, or the list as given */
	pthread_mutex_t  mtx; /* with cv: waiting for a pipe; guards node[].pipe(s), connects */
	pthread_cond_t   cv;
	int              pipes;    /* connected now, under mtx */
	_Atomic uint64_t connects; /* pipes ever added */
	size_t           n;        /* publish URLs */
	wnode            node[DSC_MAX_SERVERS];
	dsi_follow      *follow; /* with n > 1; only the reader (dsc_watch_next's caller) uses it */
};

/* The node a dialer id belongs to, or w->n. */
static size_t
node_by_dialer(const dsc_watch *w, int id)
{
	size_t i = 0;
	while (i < w->n && nng_dialer_id(w->node[i].dialer) != id) {
		i++;
	}
	return i;
}

/* The node whose pipe this was, under mtx; w->n when unknown. */
static size_t
node_by_pipe_locked(const dsc_watch *w, uint32_t pipe)
{
	for (size_t i = 0; i < w->n; i++) {
		if (w->node[i].pipe[0] == pipe || w->node[i].pipe[1] == pipe) {
			return i;
		}
	}
	return w->n;
}

static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	dsc_watch *w  = arg;
	uint32_t   id = (uint32_t) nng_pipe_id(p);
	pthread_mutex_lock(&w->mtx);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		size_t i = node_by_dialer(w, nng_dialer_id(nng_pipe_dialer(p)));
		w->pipes++;
		atomic_fetch_add(&w->connects, 1);
		if (i < w->n) {
			w->node[i].pipe[1] = w->node[i].pipe[0];
			w->node[i].pipe[0] = id;
			w->node[i].pipes++;
			w->node[i].connects++;
		}
	} else {
		size_t i = node_by_pipe_locked(w, id);
		w->pipes--;
		if (i < w->n) {
			w->node[i].pipes--;
		}
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

/* Subscribes to one topic; the wire form of Event makes topics byte prefixes. */
static int
subscribe(dsc_watch *w, const void *topic, size_t len)
{
	return dsi_err_from_nng(nng_socket_set(w->sock, NNG_OPT_SUB_SUBSCRIBE, topic, len));
}

/*
 * Subscribes to every service (none listed) or to each listed one, as
 * 0x0A, len(name), name: the encoding of Event.service = name, which is
 * field 1 and so always first. SYNC events have no service and start with
 * the type field instead, so per-service watches also take that prefix.
 */
static int
subscribe_all(dsc_watch *w, const char *const *services, size_t n)
{
	int rv;
	if (n == 0) {
		return subscribe(w, "", 0);
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t topic[DSI_NAME_MAX + 3];
		char    name[DSI_NAME_MAX + 1], why[128];
		if (dsi_name_normalize(services[i], name, why, sizeof(why)) != 0) {
			return DSC_EINVAL;
		}
		size_t len = strlen(name); /* at most 63: a one-byte varint */
		topic[0]   = 0x0A;
		topic[1]   = (uint8_t) len;
		memcpy(topic + 2, name, len);
		if ((rv = subscribe(w, topic, len + 2)) != 0) {
			return rv;
		}
	}
	return subscribe(w, sync_prefix, sizeof(sync_prefix));
}

/* Dials publish URL i of the list from w's socket; 0 or a dsc_err. */
static int
watch_dial(dsc_watch *w, size_t i, const dsc_tls_options *tls, int32_t probe_ms)
{
	nng_tls_config *cfg = NULL;
	const char     *url = w->node[i].url;
	int             rv;

	if ((rv = dsi_client_tls(&cfg, url, tls, NULL, 0)) != 0) {
		return rv;
	}
	/* Only a refused handshake is final; the background dial waits out the rest. */
	if (cfg != NULL && probe_ms > 0 && dsi_probe(url, cfg, probe_ms) == DSC_ETLS) {
		rv = DSC_ETLS;
	} else {
		/* In the background, so it works before the server is up and redials. */
		rv = dsi_dial_id(w->sock, url, cfg, &w->node[i].dialer);
	}
	if (cfg != NULL) {
		nng_tls_config_free(cfg);
	}
	return rv;
}

static void
follow_free(void *item)
{
	dsc_event_free(item);
}

int
dsi_watch_open(dsc_watch **out, const char *publish_url, const char *const *services,
    size_t n_services, int32_t recv_buffer, const dsc_tls_options *tls, int32_t probe_ms)
{
	dsc_watch   *w;
	dsi_url_list urls;
	char         why[256];
	int          rv;

	if (out == NULL || publish_url == NULL || publish_url[0] == 0) {
		return DSC_EINVAL;
	}
	if (services == NULL) {
		n_services = 0;
	}
	if ((rv = dsi_url_list_parse(&urls, publish_url, why, sizeof(why))) != 0) {
		return rv; /* dsc_url_list_check says why */
	}
	if ((w = calloc(1, sizeof(*w))) == NULL || (w->url = strdup(publish_url)) == NULL) {
		free(w);
		dsi_url_list_free(&urls);
		return DSC_ENOMEM;
	}
	if ((rv = nng_sub0_open(&w->sock)) != 0) {
		free(w->url);
		free(w);
		dsi_url_list_free(&urls);
		return dsi_err_from_nng(rv);
	}
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cv, NULL);
	nng_socket_set_int(
	    w->sock, NNG_OPT_RECVBUF, recv_buffer > 0 ? recv_buffer : DEFAULT_RECV_BUFFER);
	nng_socket_set_ms(w->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(w->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_pipe_notify(w->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, w);
	nng_pipe_notify(w->sock, NNG_PIPE_EV_REM_POST, pipe_cb, w);
	/* The URLs are the nodes' now; the dialers start after the last is in place. */
	w->n = urls.n;
	for (size_t i = 0; i < urls.n; i++) {
		w->node[i].url = urls.url[i];
		urls.url[i]    = NULL;
	}
	dsi_url_list_free(&urls);
	rv = subscribe_all(w, services, n_services);
	if (rv == 0 && w->n > 1) {
		if ((w->follow = malloc(sizeof(*w->follow))) == NULL) {
			rv = DSC_ENOMEM;
		} else if ((rv = dsi_follow_init(w->follow, w->n, follow_free)) != 0) {
			free(w->follow);
			w->follow = NULL;
		}
	}
	for (size_t i = 0; rv == 0 && i < w->n; i++) {
		rv = watch_dial(w, i, tls, probe_ms);
	}
	if (rv != 0) {
		dsc_watch_close(w);
		return rv;
	}
	*out = w;
	return 0;
}

int
dsc_watch_open(
    dsc_watch **out, const char *publish_url, const char *const *services, size_t n_services)
{
	return dsi_watch_open(out, publish_url, services, n_services, 0, NULL, 0);
}

int
dsc_watch_open_tls(dsc_watch **out, const char *publish_url, const char *const *services,
    size_t n_services, const dsc_tls_options *tls)
{
	return dsi_watch_open(out, publish_url, services, n_services, 0, tls, DEFAULT_PROBE_MS);
}

/* What dsc_watch_close releases once the socket is closed. */
static void
watch_free(void *arg)
{
	dsc_watch *w = arg;
	if (w->follow != NULL) {
		dsi_follow_fini(w->follow);
		free(w->follow);
	}
	for (size_t i = 0; i < w->n; i++) {
		free(w->node[i].url);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mtx);
	free(w->url);
	free(w);
}

void
dsc_watch_close(dsc_watch *w)
{
	if (w != NULL) {
		/*
		 * After a close no pipe callback can run. A close that nng 1.5.2
		 * wedges (see dsi_close_bounded) frees w when it ends, if it ever
		 * does: until then its callbacks may still touch w.
		 */
		if (dsi_close_bounded_then(w->sock, DSI_CLOSE_BOUND_MS, NULL, watch_free, w)) {
			watch_free(w);
		}
	}
}

uint64_t
dsi_watch_connects(dsc_watch *w)
{
	return atomic_load(&w->connects);
}

size_t
dsi_watch_node(const dsc_watch *w)
{
	return w->follow != NULL ? w->follow->current : 0;
}

uint64_t
dsi_watch_gaps(const dsc_watch *w)
{
	return w->follow != NULL ? w->follow->gaps : 0;
}

void
dsi_watch_follow(dsc_watch *w, size_t node)
{
	if (w->follow != NULL && node < w->n) {
		dsi_follow_force(w->follow, node, dsi_monotonic_ms());
	}
}

uint64_t
dsi_watch_node_connects(dsc_watch *w, size_t node)
{
	uint64_t n;
	pthread_mutex_lock(&w->mtx);
	n = node < w->n ? w->node[node].connects : 0;
	pthread_mutex_unlock(&w->mtx);
	return n;
}

bool
dsi_watch_wait_node(dsc_watch *w, size_t node, int32_t timeout_ms)
{
	int64_t deadline = dsi_monotonic_ms() + timeout_ms;
	bool    up;

	pthread_mutex_lock(&w->mtx);
	while (node < w->n && w->node[node].pipes == 0 && dsi_monotonic_ms() < deadline) {
		struct timespec ts;
		dsi_realtime_after(&ts, deadline - dsi_monotonic_ms());
		pthread_cond_timedwait(&w->cv, &w->mtx, &ts);
	}
	up = node < w->n && w->node[node].pipes > 0;
	pthread_mutex_unlock(&w->mtx);
	return up;
}

const char *
dsi_watch_url(const dsc_watch *w)
{
	return w->url;
}

bool
dsi_watch_wait_connected(dsc_watch *w, int32_t timeout_ms)
{
	int64_t deadline = dsi_monotonic_ms() + timeout_ms;
	bool    up;

	pthread_mutex_lock(&w->mtx);
	while (w->pipes == 0 && dsi_monotonic_ms() < deadline) {
		struct timespec ts;
		dsi_realtime_after(&ts, deadline - dsi_monotonic_ms());
		pthread_cond_timedwait(&w->cv, &w->mtx, &ts);
	}
	up = w->pipes > 0;
	pthread_mutex_unlock(&w->mtx);
	return up;
}

/* The node a message came from, and its pipe id; false when its pipe is long gone. */
static bool
msg_node(dsc_watch *w, nng_msg *msg, size_t *node, uint32_t *pipe)
{
	nng_pipe p = nng_msg_get_pipe(msg);
	*pipe      = (uint32_t) nng_pipe_id(p);
	pthread_mutex_lock(&w->mtx);
	*node = node_by_pipe_locked(w, *pipe);
	pthread_mutex_unlock(&w->mtx);
	if (*node == w->n) {
		*node
		    = node_by_dialer(w, nng_dialer_id(nng_pipe_dialer(p))); /* not announced yet */
	}
	return *node < w->n;
}

/*
 * Hands the decoded ev from msg's node to the follower (which then owns
 * it), and what is due, in *out: the next event of the followed node, after
 * a switch if the followed node missed two SYNCs. A switch that is a gap
 * flags the SYNC it starts with in its reason, for callers to see.
 */
static void
follow_msg(dsc_watch *w, nng_msg *msg, dsc_event *ev, uint32_t interval_ms)
{
	size_t   node;
	uint32_t pipe;
	if (!msg_node(w, msg, &node, &pipe)) {
		dsc_event_free(ev);
		return;
	}
	dsi_follow_msg m = {
		.item        = ev,
		.rev         = ev->revision,
		.sync        = ev->type == DSC_EVENT_SYNC,
		.digest      = ev->type == DSC_EVENT_SYNC ? 0 : dsi_event_digest(ev),
		.interval_ms = interval_ms,
	};
	dsi_follow_push(w->follow, node, pipe, &m, dsi_monotonic_ms());
}

/* The next event due from the follower, after a switch if one is due; NULL: none. */
static dsc_event *
follow_due(dsc_watch *w)
{
	dsi_follow_msg m;
	bool           gap;
	dsi_follow_tick(w->follow, dsi_monotonic_ms());
	if (!dsi_follow_pop(w->follow, &m, &gap)) {
		return NULL;
	}
	dsc_event *ev = m.item;
	if (gap && ev->type == DSC_EVENT_SYNC) {
		char  buf[DSI_URL_MAX + 80];
		char *why;
		snprintf(buf, sizeof(buf), "switched to %s: events may have been missed",
		    w->node[w->follow->current].url);
		if ((why = strdup(buf)) != NULL) {
			free(ev->reason);
			ev->reason = why;
		}
	}
	return ev;
}

int
dsc_watch_next(dsc_watch *w, int timeout_ms, dsc_event **out)
{
	nng_aio *aio;
	int64_t  deadline = dsi_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int      rv;

	if (w == NULL || out == NULL) {
		return DSC_EINVAL;
	}
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		return dsi_err_from_nng(rv);
	}
	for (;;) {
		nng_duration left = NNG_DURATION_INFINITE;
		int64_t      now  = dsi_monotonic_ms();
		bool         cut  = false; /* the wait ends early for the follower's deadline */
		dsc_event   *due_ev;
		if (w->follow != NULL && (due_ev = follow_due(w)) != NULL) {
			*out = due_ev;
			rv   = 0;
			break;
		}
		if (timeout_ms >= 0) {
			int64_t ms = deadline - now;
			/* A zero timeout still takes a message that is already queued. */
			left = ms > 0 ? (nng_duration) ms : NNG_DURATION_ZERO;
		}
		if (w->follow != NULL) {
			int64_t due = dsi_follow_deadline(w->follow) - now + 1;
			if (due > 0 && (left == NNG_DURATION_INFINITE || due < left)) {
				left = (nng_duration) (due < INT32_MAX ? due : INT32_MAX);
				cut  = true;
			}
		}
		nng_aio_set_timeout(aio, left);
		nng_recv_aio(w->sock, aio);
		nng_aio_wait(aio);
		if ((rv = nng_aio_result(aio)) != 0) {
			rv = dsi_err_from_nng(rv);
			if (rv == DSC_ETIMEDOUT && cut) {
				continue; /* time for the follower to look again */
			}
			break;
		}
		nng_msg   *msg = nng_aio_get_msg(aio);
		uint32_t   interval_ms;
		dsc_event *ev = NULL;
		rv = dsi_event_decode(nng_msg_body(msg), nng_msg_len(msg), &ev, &interval_ms);
		if (rv == 0 && w->follow != NULL) {
			follow_msg(w, msg, ev, interval_ms);
			nng_msg_free(msg);
			continue;
		}
		nng_msg_free(msg);
		if (rv != DSC_EPROTO) {
			if (rv == 0) {
				*out = ev;
			}
			break; /* an event, or out of memory */
		}
		/* Not an Event we can use (a newer or broken publisher): skip it. */
	}
	nng_aio_free(aio);
	return rv;
}
