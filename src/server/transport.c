/*
 * REP work items after nng's async server pattern: each item loops
 * RECV -> (dispatch) -> SEND -> RECV. Dispatch never blocks on I/O, so
 * callbacks stay short: a write that must be stored first parks its item
 * (WAIT) and the store's writer thread sends the reply after the commit.
 *
 * One connection must never hold the pool (docs/limits.md): every reply
 * send has a deadline, after which its connection is closed; a connection
 * with more than its share of requests in the pool is closed; connections
 * past the cap are closed as they arrive; and a sweeper thread closes
 * connections that completed no message for the idle timeout, which also
 * bounds how long a partly sent request may hold its buffer.
 */
#include "server/transport.h"

#include <dirent.h>
#include <errno.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/error.h"
#include "common/nngutil.h"
#include "common/ratelimit.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/conns.h"

#define MAX_LISTEN 16
/* nng counts the REQ header (the 4-byte request id) against the receive limit. */
#define REQ_HEADER 4
/* How often nng's accept-failure counters are read. */
#define ACCEPT_CHECK_MS 1000

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
	nng_pipe        pipe; /* the connection of the request in hand (WAIT, SEND) */
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

	/* Connection limits; set at create, read-only after. */
	dsi_conns *conns; /* the pipes and their in-flight counts; its own lock */
	size_t     max_conn_requests;
	int        idle_timeout_ms;
	int        reply_timeout_ms;
	/* The sweeper thread (idle timeout, accept failures); sweep_stop under mtx. */
	pthread_t      sweeper;
	pthread_cond_t sweep_cv;
	bool           sweeper_started;
	bool           sweep_stop;
	uint32_t      *idle_ids; /* the sweeper's scratch, max_connections entries */
	size_t         max_connections;
	/* Running totals (dsi_rep_stats) and one rate limiter per kind of line. */
	_Atomic uint64_t refused, flooded, reply_timeouts, idle_closed, accept_failures;
	dsi_ratelimit    rl_refused, rl_flooded, rl_reply, rl_idle, rl_accept, rl_fds;
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
		nng_aio_set_timeout(it->aio, NNG_DURATION_INFINITE);
		nng_ctx_recv(it->ctx, it->aio);
	}
	pthread_mutex_unlock(&s->mtx);
}

/* The request in hand is answered or dropped: its connection has one fewer in the pool. */
static void
item_release(item *it)
{
	dsi_conns_end(it->srv->conns, nng_pipe_id(it->pipe), dsi_monotonic_ms());
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
		item_release(it);
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
		item_release(it);
		return;
	}
	it->state = ITEM_SEND;
	pthread_mutex_unlock(&s->mtx);
	/* A peer that does not read must not keep this item: past the deadline it loses the
	 * connection (rep0 queues a send behind the pipe's, which waits on the peer). */
	nng_aio_set_timeout(it->aio, s->reply_timeout_ms);
	nng_aio_set_msg(it->aio, rep);
	nng_ctx_send(it->ctx, it->aio);
}

/*
 * A request arrived from it->pipe. True when that connection is within its
 * share of the pool; otherwise it is closed and the request dropped (REQ
 * clients see their calls on it fail with a connection error).
 */
static bool
item_admit(item *it)
{
	dsi_rep_server *s = it->srv;
	if (dsi_conns_begin(s->conns, nng_pipe_id(it->pipe), dsi_monotonic_ms())
	    <= s->max_conn_requests) {
		return true;
	}
	atomic_fetch_add(&s->flooded, 1);
	dsi_ratelimit_logf(&s->rl_flooded, s->log, DSI_LOG_WARN,
	    "closed a connection with more than %zu requests in the pool "
	    "(--max-connection-requests)",
	    s->max_conn_requests);
	nng_pipe_close(it->pipe);
	item_release(it);
	return false;
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
		req      = nng_aio_get_msg(it->aio);
		it->pipe = nng_msg_get_pipe(req);
		if (!item_admit(it)) {
			nng_msg_free(req);
			item_recv(it);
			return;
		}
		pthread_mutex_lock(&s->mtx);
		it->state = ITEM_WAIT;
		pthread_mutex_unlock(&s->mtx);
		dsi_dispatch_begin_from(
		    s->d, nng_msg_body(req), nng_msg_len(req), it->pipe, item_reply, it);
		nng_msg_free(req);
		return;
	case ITEM_SEND:
		if (rv == NNG_ETIMEDOUT) {
			/* The peer stopped reading: its connection goes, the pool stays free. */
			nng_msg_free(nng_aio_get_msg(it->aio));
			nng_aio_set_msg(it->aio, NULL);
			atomic_fetch_add(&s->reply_timeouts, 1);
			dsi_ratelimit_logf(&s->rl_reply, s->log, DSI_LOG_WARN,
			    "closed a connection that took no reply for %d ms (--reply-timeout)",
			    s->reply_timeout_ms);
			nng_pipe_close(it->pipe);
		} else if (rv != 0) {
			/* The peer went away; the message is still ours. */
			nng_msg_free(nng_aio_get_msg(it->aio));
			nng_aio_set_msg(it->aio, NULL);
			dsi_debug(s->log, "reply not delivered: %s", nng_strerror(rv));
		}
		item_release(it);
		item_recv(it);
		return;
	case ITEM_WAIT: /* no aio is running while an item waits */
	case ITEM_DONE:
		return;
	}
}

/* Admits a connection within the cap and forgets one that is gone (nng's threads). */
static void
pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	dsi_rep_server *s = arg;
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		if (dsi_conns_add(s->conns, nng_pipe_id(p), dsi_monotonic_ms()) != 0) {
			atomic_fetch_add(&s->refused, 1);
			dsi_ratelimit_logf(&s->rl_refused, s->log, DSI_LOG_WARN,
			    "refused a connection: %zu are open (--max-connections)",
			    s->max_connections);
			nng_pipe_close(p);
		}
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		dsi_conns_remove(s->conns, nng_pipe_id(p));
	}
}

/* Open descriptors of this process: limit when none is left to look; -1 if /proc cannot say. */
static long
open_fds(long limit)
{
	DIR *d = opendir("/proc/self/fd");
	long n = 0;
	if (d == NULL) {
		return errno == EMFILE ? limit : -1;
	}
	while (readdir(d) != NULL) {
		n++;
	}
	closedir(d);
	return n - 3; /* ".", ".." and the directory's own descriptor */
}

/*
 * Descriptors and failed accepts. nng 1.5.2 retries a failed accept by
 * itself (after 10 to 100 ms) and tells the application nothing; its
 * listener statistics count some failures (not, in our tests, EMFILE while
 * pipes are being negotiated), together with peers that hang up during the
 * handshake. So the descriptor count itself is watched too: at 90 % of the
 * limit, accepts (and health checks) are failing or about to.
 */
static void
check_accepts(dsi_rep_server *s, uint64_t *seen)
{
	nng_stat     *snap;
	uint64_t      total = 0;
	struct rlimit rl;

	if (nng_stats_get(&snap) == 0) {
		for (size_t i = 0; i < s->n_listen; i++) {
			total += dsi_listener_accept_failures(snap, s->listeners[i]);
		}
		nng_stats_free(snap);
	}
	long lim  = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
	     ? (long) rl.rlim_cur
	     : -1;
	long fds  = open_fds(lim);
	bool near = fds >= 0 && lim > 0 && fds * 10 >= lim * 9;
	if (near) {
		dsi_ratelimit_logf(&s->rl_fds, s->log, DSI_LOG_WARN,
		    "%ld of %ld file descriptors in use: new connections and health checks fail "
		    "(raise the hard limit or lower --max-connections)",
		    fds, lim);
	}
	if (total <= *seen) {
		return;
	}
	uint64_t delta = total - *seen;
	*seen          = total;
	atomic_fetch_add(&s->accept_failures, delta);
	dsi_ratelimit_logf(&s->rl_accept, s->log, near ? DSI_LOG_WARN : DSI_LOG_INFO,
	    "%llu connections failed in accept or handshake on the REQ/REP listeners; "
	    "%ld of %ld file descriptors in use",
	    (unsigned long long) delta, fds, lim);
}

/* Closes connections silent for the idle timeout; watches accept failures. */
static void *
sweeper_main(void *arg)
{
	dsi_rep_server *s          = arg;
	int64_t         tick       = s->idle_timeout_ms / 4;
	int64_t         next_check = 0;
	uint64_t        seen       = 0;
	nng_stat       *snap;

	tick = tick < 50 ? 50 : tick > 1000 ? 1000 : tick;
	/* Failures from before we started are not ours to report. */
	if (nng_stats_get(&snap) == 0) {
		for (size_t i = 0; i < s->n_listen; i++) {
			seen += dsi_listener_accept_failures(snap, s->listeners[i]);
		}
		nng_stats_free(snap);
	}
	pthread_mutex_lock(&s->mtx);
	while (!s->sweep_stop) {
		struct timespec ts;
		dsi_realtime_after(&ts, tick);
		pthread_cond_timedwait(&s->sweep_cv, &s->mtx, &ts);
		if (s->sweep_stop) {
			break;
		}
		pthread_mutex_unlock(&s->mtx);
		int64_t now = dsi_monotonic_ms();
		size_t  n   = dsi_conns_idle(
		       s->conns, now, s->idle_timeout_ms, s->idle_ids, s->max_connections);
		for (size_t i = 0; i < n; i++) {
			nng_pipe p;
			p.id = s->idle_ids[i];
			nng_pipe_close(p);
			/* Gone from the table now, so the next sweep does not count it again. */
			dsi_conns_remove(s->conns, p.id);
		}
		if (n > 0) {
			atomic_fetch_add(&s->idle_closed, n);
			dsi_ratelimit_logf(&s->rl_idle, s->log, DSI_LOG_INFO,
			    "closed %zu connections with no complete request for %d ms "
			    "(--idle-timeout)",
			    n, s->idle_timeout_ms);
		}
		if (now >= next_check) {
			check_accepts(s, &seen);
			next_check = now + ACCEPT_CHECK_MS;
		}
		pthread_mutex_lock(&s->mtx);
	}
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

/* The limits' own checks; why names the settings as an operator writes them. */
static int
check_limits(const dsi_rep_options *o, char *why, size_t why_len)
{
	if (o->max_connections == 0 || o->max_connections > DSI_CONNS_MAX) {
		return dsi_failf(
		    DSC_EINVAL, why, why_len, "--max-connections must be 1 to %d", DSI_CONNS_MAX);
	}
	if (o->idle_timeout_ms <= 0 || o->reply_timeout_ms <= 0 || o->max_conn_requests == 0) {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "--idle-timeout, --reply-timeout and --max-connection-requests must be "
		    "positive");
	}
	/* Each connection may hold one partly received request of up to max_request bytes. */
	if (o->max_request > o->max_request_memory / o->max_connections) {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "--max-connections %zu x --max-request-size %zu exceeds --max-request-memory "
		    "%zu: lower one of the first two or raise the budget",
		    o->max_connections, o->max_request, o->max_request_memory);
	}
	for (size_t i = 0; i < o->n_listen; i++) {
		if (!dsi_url_is_served(o->listen[i])) {
			return dsi_failf(DSC_EINVAL, why, why_len,
			    "cannot listen on %s: only tcp:// and tls+tcp:// URLs are served",
			    o->listen[i]);
		}
	}
	return 0;
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
	if ((rv = check_limits(opts, why, why_len)) != 0) {
		return rv;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return DSC_ENOMEM;
	}
	s->d                 = d;
	s->log               = log;
	s->n_items           = opts->workers;
	s->max_connections   = opts->max_connections;
	s->idle_timeout_ms   = opts->idle_timeout_ms;
	s->reply_timeout_ms  = opts->reply_timeout_ms;
	s->max_conn_requests = opts->max_conn_requests;
	/* Half the pool at most, so one connection always leaves the rest to others. */
	if (s->max_conn_requests > opts->workers / 2) {
		s->max_conn_requests = opts->workers / 2 > 0 ? opts->workers / 2 : 1;
	}
	dsi_ratelimit_init(&s->rl_refused, DSI_RATELIMIT_DEFAULT_MS);
	dsi_ratelimit_init(&s->rl_flooded, DSI_RATELIMIT_DEFAULT_MS);
	dsi_ratelimit_init(&s->rl_reply, DSI_RATELIMIT_DEFAULT_MS);
	dsi_ratelimit_init(&s->rl_idle, DSI_RATELIMIT_DEFAULT_MS);
	dsi_ratelimit_init(&s->rl_accept, DSI_RATELIMIT_DEFAULT_MS);
	dsi_ratelimit_init(&s->rl_fds, DSI_RATELIMIT_DEFAULT_MS);
	pthread_mutex_init(&s->mtx, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->sweep_cv, NULL);
	if ((s->conns = dsi_conns_create(s->max_connections)) == NULL
	    || (s->idle_ids = calloc(s->max_connections, sizeof(*s->idle_ids))) == NULL) {
		dsi_conns_destroy(s->conns);
		pthread_cond_destroy(&s->sweep_cv);
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mtx);
		free(s);
		return DSC_ENOMEM;
	}
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		snprintf(why, why_len, "cannot open the REP socket: %s", nng_strerror(rv));
		dsi_conns_destroy(s->conns);
		free(s->idle_ids);
		pthread_cond_destroy(&s->sweep_cv);
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mtx);
		free(s);
		return dsi_err_from_nng(rv);
	}
	if ((rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, pipe_event, s)) != 0
	    || (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_event, s)) != 0) {
		snprintf(why, why_len, "cannot watch connections: %s", nng_strerror(rv));
		rv = dsi_err_from_nng(rv);
		goto fail;
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
dsi_rep_set_tls(dsi_rep_server *s, nng_tls_config *tls)
{
	int rv = 0;
	for (size_t i = 0; i < s->n_listen && rv == 0; i++) {
		if (dsi_url_is_tls(s->bound[i])) {
			rv = nng_listener_set_ptr(s->listeners[i], NNG_OPT_TLS_CONFIG, tls);
		}
	}
	return rv;
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
	if (pthread_create(&s->sweeper, NULL, sweeper_main, s) != 0) {
		return DSC_ENOMEM;
	}
	s->sweeper_started = true;
	return 0;
}

void
dsi_rep_stats_get(dsi_rep_server *s, dsi_rep_stats *out)
{
	out->refused         = atomic_load(&s->refused);
	out->flooded         = atomic_load(&s->flooded);
	out->reply_timeouts  = atomic_load(&s->reply_timeouts);
	out->idle_closed     = atomic_load(&s->idle_closed);
	out->accept_failures = atomic_load(&s->accept_failures);
	out->connections     = dsi_conns_count(s->conns);
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
	s->stopped    = true;
	s->stopping   = true;
	s->sweep_stop = true;
	pthread_cond_signal(&s->sweep_cv);
	pthread_mutex_unlock(&s->mtx);
	if (s->sweeper_started) {
		pthread_join(s->sweeper, NULL);
		s->sweeper_started = false;
	}

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
	if (!dsi_close_bounded(s->sock, DSI_CLOSE_BOUND_MS, s->log)) {
		return; /* its pipe callbacks may still run: s stays for the process exit */
	}
	free(s->items);
	free(s->idle_ids);
	dsi_conns_destroy(s->conns);
	pthread_cond_destroy(&s->sweep_cv);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
}
