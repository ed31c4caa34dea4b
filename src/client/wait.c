/*
 * Waiting for services (dsc_wait_for): the one place that decides when a
 * set of services is ready, for container entrypoints and discoveryctl wait.
 *
 * It is driven by events, not by a timer:
 *
 * - It subscribes to the services' events (and SYNC) and waits, briefly,
 *   for the SUB pipe before the first check, so that a change made after a
 *   check is seen as an event.
 * - It checks every service once with IsHealthy, on a client of its own.
 * - After that a service is checked again only when something says it may
 *   have changed: an event of that service, newer than its last check, that
 *   could change the verdict (an instance that is there, and healthy when
 *   health is wanted, for an unsatisfied service; a deregistration, or a
 *   health change away from healthy, for a satisfied one); a SYNC whose
 *   revision is not that of an unsatisfied service's last check (events
 *   can be lost); or a (re)connect of the SUB pipe, after which anything
 *   may have happened, a restarted and empty server included. An idle
 *   registry costs no calls; a changing one at most one call per
 *   unsatisfied service per SYNC interval, plus one per telling event.
 * - Before returning success it checks once more the services whose last
 *   check is older than the newest one, in case an event that would have
 *   undone them was lost; so success means every service was satisfied at
 *   about the same time.
 * - While the SUB pipe is not connected there are neither events nor SYNCs:
 *   the server is down or not up yet (entrypoints often start before the
 *   registry). Then every service is checked every POLL_MS until the pipe
 *   connects; a round stops at the first call that gets no answer, since
 *   the others would fail the same way. A call made while the server is
 *   down waits (up to CALL_MS) for the client to connect, so a server that
 *   comes up is seen within the sockets' redial interval (at most 1 s).
 *
 * A call without an answer counts as "missing" and the wait goes on; only
 * errors that waiting cannot cure (a refused argument or credential, no
 * memory) end it early. The deadline is exact: a watchdog thread closes the
 * client's socket when it passes, which ends a call in flight at once.
 */
#include <discovery/discovery.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/error.h"
#include "client/internal.h"
#include "common/name.h"
#include "common/timeutil.h"
#include "common/tls.h"

#define CALL_MS    2000 /* bound on one IsHealthy call */
#define POLL_MS    500  /* check interval while the publish socket is not connected */
#define CONNECT_MS 500  /* how long the first check waits for the publish socket */
#define SLICE_MS   250  /* longest wait for one event, so that a reconnect is noticed */

/* One distinct service waited for, and what its last answered check said. */
typedef struct wsvc {
	char     name[DSI_NAME_MAX + 1];
	bool     registered;
	bool     healthy;
	bool     rev_known; /* the last check was answered OK, at revision rev */
	uint64_t rev;
} wsvc;

/* One dsc_wait_for call. */
typedef struct waiter {
	wsvc         *svc; /* distinct, normalized names */
	size_t        n;
	size_t       *map; /* caller's index -> svc index */
	dsc_wait_mode mode;
	const char   *url;
	const char   *publish_url;
	dsc_client   *client;
	dsc_watch    *watch;
	int64_t       deadline; /* monotonic ms; INT64_MAX when there is none */
	uint64_t      connects; /* the watch's connect count at the last full round */
	dsc_error     last;     /* the last call without an answer; code 0 once one answers */
	bool          answered; /* some call was answered */

	const dsc_client_options *opts; /* the caller's: token and TLS */

	/* The watchdog: closes the client's socket at the deadline unless done. */
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	bool            done;
	bool            started;
	pthread_t       thread;
} waiter;

static int64_t
min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t
left_ms(const waiter *w)
{
	int64_t left = w->deadline - dsi_monotonic_ms();
	return left > 0 ? left : 0;
}

static bool
satisfied(const waiter *w, const wsvc *s)
{
	return s->registered && (w->mode == DSC_WAIT_REGISTERED || s->healthy);
}

static bool
all_satisfied(const waiter *w)
{
	for (size_t i = 0; i < w->n; i++) {
		if (!satisfied(w, &w->svc[i])) {
			return false;
		}
	}
	return true;
}

/* Failures that mean "no answer": the service counts as missing and the wait goes on. */
static bool
no_answer(int rv)
{
	switch (rv) {
	case DSC_ETIMEDOUT:
	case DSC_ECONNREFUSED:
	case DSC_ETRANSPORT:
	case DSC_ECLOSED:
	case DSC_EPROTO:
	case DSC_EINTERNAL:
	case DSC_EUNAVAILABLE:
		return true;
	default:
		return false;
	}
}

/*
 * Asks the server about one service. Returns 0 when it answered (found or
 * not), a no_answer() code, or an error that ends the wait, described in
 * err. A service without an answer counts as missing, for it is not known
 * to be there, until a later check answers.
 */
static int
check(waiter *w, wsvc *s, dsc_error *err)
{
	dsc_error e       = { .code = 0 };
	bool      healthy = false;
	int       rv      = dsc_is_healthy(w->client, s->name, NULL, &healthy, NULL, &e);

	if (rv == 0 || rv == DSC_ENOTFOUND) {
		s->registered = rv == 0;
		s->healthy    = rv == 0 && healthy;
		/*
		 * The client records every reply's revision, NOT_FOUND's too; only an
		 * OK answer's is kept, so a missing service is checked at every SYNC.
		 */
		s->rev_known = rv == 0;
		s->rev       = rv == 0 ? dsc_client_revision(w->client) : 0;
		w->last.code = 0;
		w->answered  = true;
		return 0;
	}
	if (!no_answer(rv)) {
		return dsi_fail(err, rv, "is_healthy %s: %s", s->name,
		    e.code == rv && e.message[0] != 0 ? e.message : dsc_strerror(rv));
	}
	/* Past the deadline it is the watchdog's doing: keep the last answer for the report. */
	if (dsi_monotonic_ms() < w->deadline) {
		s->registered = false;
		s->healthy    = false;
		s->rev_known  = false;
		w->last       = e;
	}
	return rv;
}

/*
 * Checks every service (all), or every unsatisfied one; with sync, only
 * those whose last check is not known to reflect the SYNC's revision. With
 * stop_early, stops at the first call without an answer. Returns 0 or an
 * error that ends the wait.
 */
static int
check_round(waiter *w, bool all, const dsc_event *sync, bool stop_early, dsc_error *err)
{
	for (size_t i = 0; i < w->n; i++) {
		wsvc *s = &w->svc[i];
		int   rv;
		if ((!all && satisfied(w, s))
		    || (sync != NULL && s->rev_known && s->rev == sync->revision)) {
			continue;
		}
		if ((rv = check(w, s, err)) != 0) {
			if (!no_answer(rv)) {
				return rv;
			}
			if (stop_early) {
				break;
			}
		}
	}
	return 0;
}

static wsvc *
find(waiter *w, const char *name)
{
	for (size_t i = 0; i < w->n; i++) {
		if (strcmp(w->svc[i].name, name) == 0) {
			return &w->svc[i];
		}
	}
	return NULL;
}

/* True when ev could make a satisfied service unsatisfied. */
static bool
may_undo(const waiter *w, const dsc_event *ev)
{
	return ev->type == DSC_EVENT_DEREGISTERED
	    || (w->mode == DSC_WAIT_HEALTHY && ev->type == DSC_EVENT_HEALTH_CHANGED
	        && ev->instance.health != DSC_HEALTH_HEALTHY);
}

/*
 * True when ev could satisfy an unsatisfied service: an instance that is
 * there now and, when waiting for health, healthy. Others cannot help, and
 * skipping them keeps a burst of registrations from costing a call each; a
 * lost event is made up for by the next SYNC.
 */
static bool
may_satisfy(const waiter *w, const dsc_event *ev)
{
	return ev->type != DSC_EVENT_DEREGISTERED
	    && (w->mode == DSC_WAIT_REGISTERED || ev->instance.health == DSC_HEALTH_HEALTHY);
}

/*
 * Re-checks what ev says may have changed, with IsHealthy rather than from
 * the event alone, since other instances count too. Returns 0 or an error
 * that ends the wait.
 */
static int
on_event(waiter *w, const dsc_event *ev, dsc_error *err)
{
	wsvc *s;
	int   rv;

	if (ev->type == DSC_EVENT_SYNC) {
		return check_round(w, false, ev, false, err);
	}
	if ((s = find(w, ev->service)) == NULL || (s->rev_known && ev->revision <= s->rev)) {
		return 0; /* not ours, or already in the last check */
	}
	if (satisfied(w, s) ? !may_undo(w, ev) : !may_satisfy(w, ev)) {
		return 0;
	}
	rv = check(w, s, err);
	return no_answer(rv) ? 0 : rv; /* no answer: the next SYNC or reconnect re-checks */
}

/*
 * Before success: re-checks each service whose last check is older than the
 * newest one, in case an event that would have undone it was lost (as can
 * happen while the server's PUB side is still adding our pipe). One round
 * only, so that a busy registry cannot keep the wait from ending. Returns 0
 * or an error that ends the wait; the caller looks at all_satisfied again.
 */
static int
confirm(waiter *w, dsc_error *err)
{
	uint64_t newest = 0;

	for (size_t i = 0; i < w->n; i++) {
		newest = w->svc[i].rev > newest ? w->svc[i].rev : newest;
	}
	for (size_t i = 0; i < w->n; i++) {
		int rv;
		if (w->svc[i].rev != newest && (rv = check(w, &w->svc[i], err)) != 0
		    && !no_answer(rv)) {
			return rv;
		}
	}
	return 0;
}

/* The wait itself, once the watch and the client are open. Returns 0, DSC_ETIMEDOUT or an error. */
static int
run(waiter *w, dsc_error *err)
{
	int64_t next_poll;
	int     rv;

	/*
	 * Subscribed before the first check, so that later changes come as events;
	 * SYNC and confirm() make up for one lost while the server adds our pipe.
	 */
	dsi_watch_wait_connected(w->watch, (int32_t) min64(left_ms(w), CONNECT_MS));
	next_poll = dsi_monotonic_ms();
	for (;;) {
		bool     connected = dsi_watch_wait_connected(w->watch, 0);
		uint64_t connects  = dsi_watch_connects(w->watch);
		int64_t  left;

		rv = 0;
		if (connected && connects != w->connects) {
			/*
			 * (Re)connected: anything may have changed while we were not,
			 * satisfied services included (a restarted server starts empty).
			 */
			w->connects = connects;
			rv          = check_round(w, true, NULL, false, err);
		} else if (!connected && dsi_monotonic_ms() >= next_poll) {
			/* No events without a connection: check now and then instead. */
			rv        = check_round(w, true, NULL, true, err);
			next_poll = dsi_monotonic_ms() + POLL_MS;
		}
		if (rv == 0 && all_satisfied(w) && (rv = confirm(w, err)) == 0
		    && all_satisfied(w)) {
			return 0;
		}
		if (rv != 0) {
			return rv;
		}
		if ((left = left_ms(w)) == 0) {
			return DSC_ETIMEDOUT;
		}
		if (!connected) {
			int64_t until_poll = next_poll - dsi_monotonic_ms();
			dsi_watch_wait_connected(
			    w->watch, (int32_t) min64(left, until_poll > 0 ? until_poll : 0));
			continue;
		}

		dsc_event *ev = NULL;
		rv            = dsc_watch_next(w->watch, (int) min64(left, SLICE_MS), &ev);
		if (rv == DSC_ETIMEDOUT) {
			continue;
		}
		if (rv == DSC_ENOMEM) {
			struct timespec ts = { 0, 10 * 1000000L }; /* back off, then try again */
			nanosleep(&ts, NULL);
			continue;
		}
		if (rv != 0) {
			return dsi_fail(
			    err, rv, "watching %s: %s", dsi_watch_url(w->watch), dsc_strerror(rv));
		}
		/* After a reconnect, the full round at the top of the loop covers this event. */
		if (dsi_watch_connects(w->watch) == w->connects) {
			rv = on_event(w, ev, err);
		}
		dsc_event_free(ev);
		if (rv != 0) {
			return rv;
		}
	}
}

/* ---- the watchdog ---- */

static void *
watchdog_main(void *arg)
{
	waiter *w = arg;

	pthread_mutex_lock(&w->mtx);
	while (!w->done && dsi_monotonic_ms() < w->deadline) {
		struct timespec ts;
		dsi_realtime_after(&ts, w->deadline - dsi_monotonic_ms());
		pthread_cond_timedwait(&w->cv, &w->mtx, &ts);
	}
	if (!w->done) {
		dsi_client_shutdown(w->client); /* ends a call in flight at once */
	}
	pthread_mutex_unlock(&w->mtx);
	return NULL;
}

/*
 * Starts the watchdog. Without it (no thread to be had) the wait still
 * works, but a call in flight at the deadline may end up to CALL_MS late.
 */
static void
watchdog_start(waiter *w)
{
	w->started = pthread_create(&w->thread, NULL, watchdog_main, w) == 0;
}

static void
watchdog_stop(waiter *w)
{
	if (w->started) {
		pthread_mutex_lock(&w->mtx);
		w->done = true;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mtx);
		pthread_join(w->thread, NULL);
		w->started = false;
	}
}

/* ---- setup and the result ---- */

/*
 * Normalizes the caller's names into distinct services, writing each
 * normalized name into status (when given) as it goes.
 */
static int
services_init(
    waiter *w, const char *const *services, size_t n, dsc_wait_status *status, dsc_error *err)
{
	char why[256];

	if ((w->svc = calloc(n, sizeof(*w->svc))) == NULL
	    || (w->map = calloc(n, sizeof(*w->map))) == NULL) {
		return dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
	}
	for (size_t i = 0; i < n; i++) {
		char  name[DSI_NAME_MAX + 1];
		wsvc *s;
		if (dsi_name_normalize(services[i], name, why, sizeof(why)) != 0) {
			return dsi_fail(err, DSC_EINVAL, "%s", why);
		}
		if ((s = find(w, name)) == NULL) {
			s = &w->svc[w->n++];
			memcpy(s->name, name, sizeof(name));
		}
		w->map[i] = (size_t) (s - w->svc);
		if (status != NULL) {
			memcpy(status[i].service, name, sizeof(name));
		}
	}
	return 0;
}

/* Opens the watch on the distinct names, then the client. */
static int
open_sockets(waiter *w, dsc_error *err)
{
	dsc_client_options o;
	const char       **names;
	int                rv;

	/* dsc_client_open would only say DSC_EINVAL. */
	if ((dsi_url_is_tls(w->url) || dsi_url_is_tls(w->publish_url))
	    && (rv = dsc_tls_check(&w->opts->tls, err)) != 0) {
		return rv;
	}
	if ((names = calloc(w->n, sizeof(*names))) == NULL) {
		return dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
	}
	for (size_t i = 0; i < w->n; i++) {
		names[i] = w->svc[i].name;
	}
	rv = dsi_watch_open(&w->watch, w->publish_url, names, w->n, 0, &w->opts->tls,
	    (int32_t) min64(left_ms(w), CALL_MS));
	free(names);
	if (rv != 0) {
		return dsi_fail(err, rv, "cannot watch %s: %s", w->publish_url, dsc_strerror(rv));
	}
	o                    = *w->opts;
	o.timeout_ms         = CALL_MS;
	o.require_connection = false;
	if ((rv = dsc_client_open(&w->client, w->url, &o)) != 0) {
		return dsi_fail(
		    err, rv, "cannot open a client on %s: %s", w->url, dsc_strerror(rv));
	}
	return 0;
}

/* A message that fills up ends in "...". */
typedef struct msgbuf {
	char  *buf;
	size_t cap;
	size_t len;
} msgbuf;

static void msg_add(msgbuf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
msg_add(msgbuf *m, const char *fmt, ...)
{
	va_list ap;
	int     k;

	if (m->len + 1 >= m->cap) {
		return;
	}
	va_start(ap, fmt);
	k = vsnprintf(m->buf + m->len, m->cap - m->len, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t) k >= m->cap - m->len) {
		m->len = m->cap - 1;
		memcpy(m->buf + m->cap - 4, "...", 4);
	} else {
		m->len += (size_t) k;
	}
}

/* "; missing: a, b" for the services that want(), nothing when there are none. */
static void
msg_list(msgbuf *m, const waiter *w, const char *label, bool (*want)(const wsvc *))
{
	const char *sep = "; ";

	for (size_t i = 0; i < w->n; i++) {
		if (want(&w->svc[i])) {
			msg_add(m, "%s%s%s", sep, sep[0] == ';' ? label : "", w->svc[i].name);
			sep = ", ";
		}
	}
}

static bool
is_missing(const wsvc *s)
{
	return !s->registered;
}

static bool
is_unhealthy(const wsvc *s)
{
	return s->registered && !s->healthy;
}

/*
 * "timed out after 2 s; missing: a; unhealthy: b", then why the server
 * could not tell, if that was so (a service it never answered for counts
 * as missing), and whether events could not be had.
 */
static void
timeout_message(const waiter *w, int timeout_ms, dsc_error *err)
{
	msgbuf m = { err->message, sizeof(err->message), 0 };

	err->code       = DSC_ETIMEDOUT;
	err->message[0] = 0;
	if (timeout_ms % 1000 == 0) {
		msg_add(&m, "timed out after %d s", timeout_ms / 1000);
	} else {
		msg_add(&m, "timed out after %g s", timeout_ms / 1000.0);
	}
	msg_list(&m, w, "missing: ", is_missing);
	if (w->mode == DSC_WAIT_HEALTHY) {
		msg_list(&m, w, "unhealthy: ", is_unhealthy);
	}
	if (w->last.code != 0) {
		msg_add(&m, "; %s",
		    w->last.message[0] != 0 ? w->last.message : dsc_strerror(w->last.code));
	} else if (!w->answered) {
		msg_add(&m, "; no answer from %s", w->url);
	}
	if (w->watch != NULL && dsi_watch_connects(w->watch) == 0) {
		msg_add(&m, "; cannot subscribe to %s", w->publish_url);
	}
}

int
dsc_wait_for(const char *url, const char *publish_url, const char *const *services, size_t n,
    dsc_wait_mode mode, int timeout_ms, dsc_wait_status *status, dsc_error *err)
{
	return dsc_wait_for_opts(
	    url, publish_url, services, n, mode, timeout_ms, NULL, status, err);
}

int
dsc_wait_for_opts(const char *url, const char *publish_url, const char *const *services, size_t n,
    dsc_wait_mode mode, int timeout_ms, const dsc_client_options *opts, dsc_wait_status *status,
    dsc_error *err)
{
	dsc_client_options def;
	waiter             w;
	int                rv;

	if (url == NULL || url[0] == 0 || publish_url == NULL || publish_url[0] == 0
	    || (services == NULL && n > 0)
	    || (mode != DSC_WAIT_HEALTHY && mode != DSC_WAIT_REGISTERED)) {
		return dsi_fail(
		    err, DSC_EINVAL, "url, publish_url, services and a wait mode are required");
	}
	if (status != NULL && n > 0) {
		memset(status, 0, n * sizeof(*status));
	}
	if (n == 0) {
		return 0; /* nothing to wait for */
	}
	if (opts == NULL) {
		dsc_client_options_init(&def);
		opts = &def;
	}
	memset(&w, 0, sizeof(w));
	w.opts        = opts;
	w.mode        = mode;
	w.url         = url;
	w.publish_url = publish_url;
	w.deadline    = timeout_ms < 0 ? INT64_MAX : dsi_monotonic_ms() + timeout_ms;
	pthread_mutex_init(&w.mtx, NULL);
	pthread_cond_init(&w.cv, NULL);

	if ((rv = services_init(&w, services, n, status, err)) == 0
	    && (rv = open_sockets(&w, err)) == 0) {
		/* With no timeout there is no deadline, and 0 checks once (each call bounded). */
		if (timeout_ms > 0) {
			watchdog_start(&w);
		}
		rv = run(&w, err);
		watchdog_stop(&w);
	}
	if (rv == DSC_ETIMEDOUT && err != NULL) {
		timeout_message(&w, timeout_ms, err);
	}
	if (status != NULL && w.map != NULL) {
		for (size_t i = 0; i < n; i++) {
			status[i].registered = w.svc[w.map[i]].registered;
			status[i].healthy    = w.svc[w.map[i]].healthy;
		}
	}
	dsc_watch_close(w.watch);
	dsc_client_close(w.client);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mtx);
	free(w.svc);
	free(w.map);
	return rv;
}
