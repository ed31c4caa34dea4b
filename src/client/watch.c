/*
 * Watches: an nng SUB socket on discoveryd's publish URL (or on every URL
 * of a list: SUB takes events from whichever server is up, as the Python
 * client's Watch does), and the one place where a published Event is
 * decoded and validated into a dsc_event.
 */
#include <discovery/discovery.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/dial.h"
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

/* One SUB socket and what its pipe callback counts. */
struct dsc_watch {
	nng_socket       sock;
	char            *url; /* the publish URL, or the list as given */
	pthread_mutex_t  mtx; /* with cv: waiting for a pipe */
	pthread_cond_t   cv;
	int              pipes;    /* connected now, under mtx */
	_Atomic uint64_t connects; /* pipes ever added */
};

const char *
dsc_event_type_name(dsc_event_type t)
{
	switch (t) {
	case DSC_EVENT_REGISTERED:
		return "registered";
	case DSC_EVENT_DEREGISTERED:
		return "deregistered";
	case DSC_EVENT_HEALTH_CHANGED:
		return "health_changed";
	case DSC_EVENT_UPDATED:
		return "updated";
	case DSC_EVENT_SYNC:
		return "sync";
	case DSC_EVENT_UNSPECIFIED:
		break;
	}
	return "unspecified";
}

static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	dsc_watch *w = arg;
	(void) p;
	pthread_mutex_lock(&w->mtx);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		w->pipes++;
		atomic_fetch_add(&w->connects, 1);
	} else {
		w->pipes--;
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

/* Dials one publish URL of the list from w's socket; 0 or a dsc_err. */
static int
watch_dial(dsc_watch *w, const char *url, const dsc_tls_options *tls, int32_t probe_ms)
{
	nng_tls_config *cfg = NULL;
	int             rv;

	if ((rv = dsi_client_tls(&cfg, url, tls, NULL, 0)) != 0) {
		return rv;
	}
	/* Only a refused handshake is final; the background dial waits out the rest. */
	if (cfg != NULL && probe_ms > 0 && dsi_probe(url, cfg, probe_ms) == DSC_ETLS) {
		rv = DSC_ETLS;
	} else {
		/* In the background, so it works before the server is up and redials. */
		rv = dsi_dial(w->sock, url, cfg);
	}
	if (cfg != NULL) {
		nng_tls_config_free(cfg);
	}
	return rv;
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
	rv = subscribe_all(w, services, n_services);
	for (size_t i = 0; rv == 0 && i < urls.n; i++) {
		rv = watch_dial(w, urls.url[i], tls, probe_ms);
	}
	dsi_url_list_free(&urls);
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

/* ---- decoding ---- */

static bool
health_ok(int h)
{
	return h >= DSC_HEALTH_UNKNOWN && h <= DSC_HEALTH_UNHEALTHY;
}

/*
 * Every check an Event must pass before anyone sees it. A SYNC needs only
 * its type; a change needs a valid, normalized service name that matches
 * its instance's, a non-empty endpoint and known health states.
 */
static bool
event_valid(const Discovery__V1__Event *e)
{
	char name[DSI_NAME_MAX + 1], why[128];

	if (e->type == DISCOVERY__V1__EVENT_TYPE__EVENT_SYNC) {
		return true;
	}
	if (e->type < DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED
	    || e->type > DISCOVERY__V1__EVENT_TYPE__EVENT_UPDATED) {
		return false;
	}
	if (e->instance == NULL || dsi_name_normalize(e->service, name, why, sizeof(why)) != 0
	    || strcmp(name, e->service) != 0 || e->instance->service == NULL
	    || strcmp(e->instance->service, e->service) != 0 || e->instance->endpoint == NULL
	    || e->instance->endpoint[0] == 0) {
		return false;
	}
	return health_ok((int) e->instance->health) && health_ok((int) e->previous);
}

/* Copies a validated wire event into a new dsc_event. Returns 0 or DSC_ENOMEM. */
static int
event_copy(const Discovery__V1__Event *e, dsc_event **out)
{
	dsc_event *ev = calloc(1, sizeof(*ev));
	bool       sync;

	if (ev == NULL) {
		return DSC_ENOMEM;
	}
	sync             = e->type == DISCOVERY__V1__EVENT_TYPE__EVENT_SYNC;
	ev->type         = (dsc_event_type) e->type;
	ev->previous     = (dsc_health) e->previous;
	ev->revision     = e->revision;
	ev->timestamp_ms = e->timestamp_ms;
	ev->service      = strdup(sync || e->service == NULL ? "" : e->service);
	ev->reason       = strdup(e->reason != NULL ? e->reason : "");
	if (ev->service == NULL || ev->reason == NULL
	    || dsi_inst_from_pb(&ev->instance, sync ? NULL : e->instance) != 0) {
		dsc_event_free(ev);
		return DSC_ENOMEM;
	}
	*out = ev;
	return 0;
}

/*
 * Decodes one message: 0 and *out, or DSC_EPROTO for bytes that are not a
 * valid Event (the caller skips them), or DSC_ENOMEM.
 */
static int
event_decode(const void *buf, size_t len, dsc_event **out)
{
	Discovery__V1__Event *e = NULL;
	int                   rv;

	if (dsi_unpack(&discovery__v1__event__descriptor, buf, len, (ProtobufCMessage **) &e)
	    != 0) {
		return DSC_EPROTO;
	}
	rv = event_valid(e) ? event_copy(e, out) : DSC_EPROTO;
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return rv;
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
		if (timeout_ms >= 0) {
			int64_t ms = deadline - dsi_monotonic_ms();
			/* A zero timeout still takes a message that is already queued. */
			left = ms > 0 ? (nng_duration) ms : NNG_DURATION_ZERO;
		}
		nng_aio_set_timeout(aio, left);
		nng_recv_aio(w->sock, aio);
		nng_aio_wait(aio);
		if ((rv = nng_aio_result(aio)) != 0) {
			rv = dsi_err_from_nng(rv);
			break;
		}
		nng_msg *msg = nng_aio_get_msg(aio);
		rv           = event_decode(nng_msg_body(msg), nng_msg_len(msg), out);
		nng_msg_free(msg);
		if (rv != DSC_EPROTO) {
			break; /* an event, or out of memory */
		}
		/* Not an Event we can use (a newer or broken publisher): skip it. */
	}
	nng_aio_free(aio);
	return rv;
}

void
dsc_event_free(dsc_event *ev)
{
	if (ev != NULL) {
		free(ev->service);
		free(ev->reason);
		dsi_inst_clear(&ev->instance);
		free(ev);
	}
}
