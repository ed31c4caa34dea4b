/*
 * Views: a local copy of the registry (or of some services) kept current
 * from the publish socket by one library thread.
 *
 * Consistency comes from the order of operations and from revisions:
 *
 * - Open subscribes and waits for the SUB pipe before the first GetAll, so
 *   an event is either in the snapshot (revision <= the loaded one, and
 *   ignored) or arrives after it. A gap the PUB side may still leave while
 *   it adds our pipe is caught by the checks below.
 * - All-services view: the stream of changes has consecutive revisions, so
 *   revision == applied + 1 is applied, a larger one means events were lost
 *   and triggers a reload, and a SYNC whose revision differs from the
 *   applied one (a lost trailing event, or a restarted server counting
 *   from 0 again) does too.
 * - Per-service view: one service's revisions are not consecutive, so a
 *   lost event cannot be seen in the stream. Each watched service keeps the
 *   revision of its last GetAll and takes events newer than that; a SYNC
 *   whose revision differs from the last reload or SYNC check reloads
 *   every watched service, one GetAll(service) each. That costs one round
 *   trip per watched service per sync interval whenever anything in the
 *   registry changed, which is the price of not seeing other services'
 *   events.
 * - Every reconnect of the SUB pipe (server restart, network trouble)
 *   reloads, since anything may have happened while it was down.
 * - Failover (a list of servers): the i-th publish URL is the i-th
 *   server's. The view's one watch is on every publish URL and follows one
 *   node (client/follow.h), the one its GetAll calls go to. When that node
 *   misses two SYNCs the watch switches to another; the view moves its
 *   calls there too and goes on without a reload when the revisions join
 *   up (nodes of one cluster), or reloads when the watch reports a gap.
 *   When a reload is answered by another server (the client failed over),
 *   the watch is made to follow that one, and the view loads again from it.
 *
 * A reload builds a complete new copy and swaps it in under the write lock;
 * if a GetAll fails the old copy stays and the reload is retried at the
 * next event or SYNC (or reconnect). The first load at open does not count
 * in dsc_view_reloads. Readers take the read lock only; resolving never
 * touches the network or allocates (dsc_view_resolve_endpoint).
 *
 * on_event sees every SYNC and every change applied from an event; changes
 * that arrive through a reload are not reported one by one. Close stops the
 * thread within about POLL_MS, ending a GetAll in flight by closing the
 * client's socket; it must not be called from on_event.
 */
#include <discovery/discovery.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/dial.h"
#include "client/error.h"
#include "client/internal.h"
#include "client/urllist.h"
#include "client/viewimpl.h"
#include "client/viewdata.h"
#include "common/rwlock.h"
#include "common/name.h"
#include "common/sorted.h"
#include "common/timeutil.h"
#include "common/tls.h"

#define DEFAULT_RECV_BUFFER 1024
#define POLL_MS             100 /* how long the thread waits for an event, so close is prompt */

/* ---- loading ---- */

/* The connect count of the followed node's publish pipe. */
static uint64_t
node_connects(dsc_view *v)
{
	return dsi_watch_node_connects(v->watch, v->pubs.n > 1 ? v->watch_node : 0);
}

/*
 * Replaces the local copy with fresh GetAll answers. On failure the old
 * copy stays, the view stays stale, and err (when not NULL) says why.
 */
static int
reload_once(dsc_view *v, dsc_error *err)
{
	dsc_instance_list *list;
	uint64_t           lo   = UINT64_MAX;
	uint64_t          *revs = NULL;
	dsi_vdata         *nd, *old;
	int                rv = 0;

	/* Read first: a reconnect after this point triggers another reload. */
	v->connects_tried = node_connects(v);
	if ((nd = calloc(1, sizeof(*nd))) == NULL
	    || (v->n_watched > 0 && (revs = calloc(v->n_watched, sizeof(*revs))) == NULL)) {
		rv = dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
		goto done;
	}
	if (v->n_watched == 0) {
		if ((rv = dsc_get_all(v->client, NULL, &list, err)) != 0) {
			goto done;
		}
		lo = list->revision;
		rv = dsi_vdata_take(nd, list, NULL);
	}
	for (size_t i = 0; i < v->n_watched && rv == 0; i++) {
		if ((rv = dsc_get_all(v->client, v->watched[i].name, &list, err)) != 0) {
			goto done;
		}
		revs[i] = list->revision;
		lo      = list->revision < lo ? list->revision : lo;
		rv      = dsi_vdata_take(nd, list, v->watched[i].name);
	}
	if (rv != 0) {
		rv = dsi_fail(err, rv, "%s", dsc_strerror(rv));
		goto done;
	}
	if (lo == UINT64_MAX) {
		lo = 0;
	}

	pthread_rwlock_wrlock(&v->lock);
	old = v->data;
	if (old != NULL) {
		/* Keep round-robin positions across reloads. */
		for (size_t i = 0; i < nd->n; i++) {
			dsi_vservice *was = dsi_vdata_find(old, nd->svc[i]->name);
			if (was != NULL) {
				atomic_store(&nd->svc[i]->cursor, atomic_load(&was->cursor));
			}
		}
	}
	v->data = nd;
	atomic_store(&v->revision, lo);
	pthread_rwlock_unlock(&v->lock);
	nd = old;

	for (size_t i = 0; i < v->n_watched; i++) {
		v->watched[i].loaded = revs[i];
	}
	v->applied  = lo;
	v->checked  = lo;
	v->connects = v->connects_tried;
	v->stale    = false;
	atomic_fetch_add(&v->reloads, 1);
done:
	dsi_vdata_free(nd);
	free(revs);
	if (rv != 0) {
		v->stale = true;
	}
	return rv;
}

static int watch_connect(dsc_view *v, size_t node, dsc_error *err);

/*
 * reload_once, then, with a server list, the same from the server that
 * answered if the client failed over to another one than the watch's:
 * the watch follows that one first. Bounded by the number of servers.
 */
static int
reload(dsc_view *v, dsc_error *err)
{
	int rv = 0;
	if (v->watch == NULL) { /* a move that could not open the new subscription */
		rv = watch_connect(v, dsi_client_current(v->client), err);
	}
	if (rv == 0) {
		rv = reload_once(v, err);
	}
	for (size_t k = 0; rv == 0 && v->pubs.n > 1 && k < v->pubs.n; k++) {
		size_t now = dsi_client_current(v->client);
		if (now == v->watch_node) {
			break;
		}
		if ((rv = watch_connect(v, now, err)) == 0) {
			rv = reload_once(v, err);
		}
	}
	if (rv != 0) {
		v->stale = true;
	}
	return rv;
}

/* Applies one change under the write lock. Returns 0 or DSC_ENOMEM. */
static int
apply(dsc_view *v, const dsc_event *ev)
{
	dsc_instance  x;
	dsi_vservice *gone = NULL;
	int           rv   = 0;

	if (ev->type == DSC_EVENT_DEREGISTERED) {
		pthread_rwlock_wrlock(&v->lock);
		dsi_vdata_remove(v->data, ev->service, ev->instance.endpoint, &x, &gone);
	} else {
		if ((rv = dsi_inst_copy(&x, &ev->instance)) != 0) {
			return rv;
		}
		pthread_rwlock_wrlock(&v->lock);
		rv = dsi_vdata_put(v->data, ev->service, &x);
	}
	if (rv == 0 && ev->revision > atomic_load(&v->revision)) {
		atomic_store(&v->revision, ev->revision);
	}
	pthread_rwlock_unlock(&v->lock);
	dsi_inst_clear(&x); /* the replaced or removed one, or the copy that did not fit */
	dsi_vservice_free(gone);
	return rv;
}

static const char *
watched_key(const void *elem)
{
	return ((const vwatched *) elem)->name;
}

static vwatched *
watched_find(dsc_view *v, const char *name)
{
	bool   found;
	size_t i = dsi_sorted_search(
	    v->watched, v->n_watched, sizeof(*v->watched), name, watched_key, &found);
	return found ? &v->watched[i] : NULL;
}

/* Decides what a change event means for the copy; true when it was applied. */
static bool
handle_change(dsc_view *v, const dsc_event *ev)
{
	if (v->stale && reload(v, NULL) != 0) {
		return false; /* retried at the next event or SYNC */
	}
	if (v->n_watched > 0) {
		vwatched *w = watched_find(v, ev->service);
		if (w == NULL || ev->revision <= w->loaded) {
			return false; /* not ours, or already in the last GetAll */
		}
	} else if (ev->revision <= v->applied) {
		return false; /* already in the snapshot */
	} else if (ev->revision != v->applied + 1) {
		reload(v, NULL); /* events were lost: this one is in the reload */
		return false;
	}
	if (apply(v, ev) != 0) {
		v->stale = true;
		return false;
	}
	v->applied = ev->revision;
	return true;
}

static void
handle_sync(dsc_view *v, const dsc_event *ev)
{
	uint64_t want = v->n_watched > 0 ? v->checked : v->applied;
	if (ev->revision != want) {
		v->stale = true;
	}
	if (v->stale) {
		reload(v, NULL);
	}
}

/*
 * With a list of publish URLs: when the watch has switched node, calls go
 * there too, and that node's pipe is the one whose reconnects count; a
 * switch that was a gap makes the copy stale.
 */
static void
follow_check(dsc_view *v)
{
	if (v->pubs.n < 2 || v->watch == NULL) {
		return;
	}
	size_t node = dsi_watch_node(v->watch);
	if (node != v->watch_node && node < v->pubs.n) {
		v->watch_node = node;
		dsi_client_set_current(v->client, node);
		v->connects = v->connects_tried = node_connects(v);
	}
	if (dsi_watch_gaps(v->watch) != v->gaps) {
		v->gaps  = dsi_watch_gaps(v->watch);
		v->stale = true;
	}
}

static void
handle(dsc_view *v, const dsc_event *ev)
{
	bool taken;
	follow_check(v);
	if (node_connects(v) != v->connects) {
		v->stale = true; /* reconnected: anything may have happened meanwhile */
	}
	if (ev->type == DSC_EVENT_SYNC) {
		handle_sync(v, ev);
		taken = true;
	} else {
		taken = handle_change(v, ev);
	}
	if (taken && v->cb != NULL) {
		v->cb(v->cb_arg, ev);
	}
}

static void *
view_main(void *arg)
{
	dsc_view *v = arg;

	while (!atomic_load(&v->stop)) {
		dsc_event *ev = NULL;
		int rv = v->watch != NULL ? dsc_watch_next(v->watch, POLL_MS, &ev) : DSC_ETIMEDOUT;
		if (rv == 0) {
			handle(v, ev);
			dsc_event_free(ev);
		} else if (rv == DSC_ETIMEDOUT) {
			/* Idle: still notice a switch, and a reconnect once per reconnect. */
			if (v->watch != NULL) {
				follow_check(v);
			}
			if (v->watch == NULL || node_connects(v) != v->connects_tried) {
				reload(v, NULL);
			}
		} else if (rv == DSC_ECLOSED) {
			break;
		} else {
			struct timespec ts = { 0, 10 * 1000000L }; /* out of memory: back off */
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

/* ---- the API ---- */

void
dsc_view_options_init(dsc_view_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	dsc_client_options_init(&opts->client);
	opts->recv_buffer = DEFAULT_RECV_BUFFER;
}

static int
watched_cmp(const void *a, const void *b)
{
	return strcmp(((const vwatched *) a)->name, ((const vwatched *) b)->name);
}

/* Normalizes, sorts and deduplicates the services a view watches. */
static int
watched_init(dsc_view *v, const char *const *services, size_t n, dsc_error *err)
{
	char why[256];
	if (services == NULL || n == 0) {
		return 0;
	}
	if ((v->watched = calloc(n, sizeof(*v->watched))) == NULL) {
		return dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
	}
	for (size_t i = 0; i < n; i++) {
		if (dsi_name_normalize(services[i], v->watched[i].name, why, sizeof(why)) != 0) {
			return dsi_fail(err, DSC_EINVAL, "%s", why);
		}
	}
	qsort(v->watched, n, sizeof(*v->watched), watched_cmp);
	v->n_watched = 1;
	for (size_t i = 1; i < n; i++) {
		if (strcmp(v->watched[i].name, v->watched[v->n_watched - 1].name) != 0) {
			v->watched[v->n_watched++] = v->watched[i];
		}
	}
	return 0;
}

/*
 * Opens the SUB socket, once: on the publish URL (the only one when a
 * single URL serves every server), or on all of them, on the normalized
 * names. The view keeps it until it closes.
 */
static int
watch_open(dsc_view *v, dsc_error *err)
{
	const char **names                                     = NULL;
	char         list[DSC_MAX_SERVERS * (DSI_URL_MAX + 1)] = "";
	int          rv;

	if (v->n_watched > 0 && (names = calloc(v->n_watched, sizeof(*names))) == NULL) {
		return dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
	}
	for (size_t i = 0; i < v->n_watched; i++) {
		names[i] = v->watched[i].name;
	}
	for (size_t i = 0; i < v->pubs.n; i++) {
		strcat(list, i > 0 ? "," : "");
		strcat(list, v->pubs.url[i]); /* each at most DSI_URL_MAX: it fits */
	}
	rv = dsi_watch_open(&v->watch, list, names, v->n_watched, v->recv_buffer, &v->tls,
	    dsi_client_timeout(v->client));
	free(names);
	if (rv != 0) {
		return dsi_fail(err, rv, "cannot watch %s: %s", list, dsc_strerror(rv));
	}
	v->gaps = dsi_watch_gaps(v->watch);
	return 0;
}

/*
 * Makes the watch follow server node's publish URL and waits, bounded,
 * until that pipe is connected: subscribed before the snapshot the caller
 * loads next, so that no change falls in between.
 */
static int
watch_connect(dsc_view *v, size_t node, dsc_error *err)
{
	size_t at = v->pubs.n > 1 ? node : 0;
	int    rv;

	if (v->watch == NULL && (rv = watch_open(v, err)) != 0) {
		return rv;
	}
	dsi_watch_follow(v->watch, at);
	v->watch_node = node;
	v->gaps       = dsi_watch_gaps(v->watch); /* the reload that follows covers it */
	if (!dsi_watch_wait_node(v->watch, at, dsi_client_timeout(v->client))) {
		return dsi_fail(err, DSC_ECONNREFUSED, "cannot connect to %s", v->pubs.url[at]);
	}
	return 0;
}

/*
 * The first subscription: on every publish URL, following the first node
 * in list order that connects; calls start there too.
 */
static int
watch_first(dsc_view *v, dsc_error *err)
{
	size_t node = 0;
	int    rv;

	if ((rv = watch_open(v, err)) != 0) {
		return rv;
	}
	/* A quick refusal skips a dead server without waiting out the timeout. */
	while (node + 1 < v->pubs.n && !dsi_watch_wait_node(v->watch, node, 0)
	    && dsi_probe(v->pubs.url[node], NULL, dsi_client_timeout(v->client)) != 0) {
		node++;
	}
	for (; node < v->pubs.n; node++) {
		if ((rv = watch_connect(v, node, err)) == 0) {
			if (v->pubs.n > 1) {
				dsi_client_set_current(v->client, node);
			}
			break;
		}
	}
	return rv;
}

/* Copies what the view keeps of opts: TLS paths and the publish URLs. */
static int
keep_opts(dsc_view *v, const char *url, const char *publish_url, const dsc_view_options *opts,
    dsc_error *err)
{
	const char  *src[4] = { opts->client.tls.ca_file, opts->client.tls.cert_file,
		 opts->client.tls.key_file, opts->client.tls.server_name };
	dsi_url_list reqs;
	char         why[256];
	int          rv;

	for (size_t i = 0; i < 4; i++) {
		if (src[i] != NULL && (v->tls_s[i] = strdup(src[i])) == NULL) {
			return dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
		}
	}
	v->tls.ca_file     = v->tls_s[0];
	v->tls.cert_file   = v->tls_s[1];
	v->tls.key_file    = v->tls_s[2];
	v->tls.server_name = v->tls_s[3];
	v->recv_buffer     = opts->recv_buffer > 0 ? opts->recv_buffer : DEFAULT_RECV_BUFFER;
	if ((rv = dsi_url_list_parse(&reqs, url, why, sizeof(why))) != 0) {
		return dsi_fail(err, rv, "url: %s", why);
	}
	size_t n = reqs.n;
	dsi_url_list_free(&reqs);
	if ((rv = dsi_url_list_parse(&v->pubs, publish_url, why, sizeof(why))) != 0) {
		return dsi_fail(err, rv, "publish_url: %s", why);
	}
	if (v->pubs.n != 1 && v->pubs.n != n) {
		return dsi_fail(err, DSC_EINVAL,
		    "%zu publish URLs for %zu servers: give one publish URL per server, in the "
		    "same order, or one for all",
		    v->pubs.n, n);
	}
	return 0;
}

int
dsc_view_open(dsc_view **out, const char *url, const char *publish_url,
    const dsc_view_options *opts, dsc_error *err)
{
	dsc_view_options def;
	dsc_view        *v;
	int              rv;

	if (out == NULL || url == NULL || url[0] == 0 || publish_url == NULL
	    || publish_url[0] == 0) {
		return dsi_fail(err, DSC_EINVAL, "out, url and publish_url are required");
	}
	if (opts == NULL) {
		dsc_view_options_init(&def);
		opts = &def;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		return dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
	}
	if ((rv = dsi_rwlock_init(&v->lock)) != 0) { /* writer-preferring */
		free(v);
		return dsi_fail(err, rv, "cannot create the view's lock");
	}
	atomic_init(&v->revision, 0);
	atomic_init(&v->reloads, 0);
	atomic_init(&v->stop, false);
	v->cb     = opts->on_event;
	v->cb_arg = opts->on_event_arg;
	if ((rv = watched_init(v, opts->services, opts->n_services, err)) != 0
	    || (rv = keep_opts(v, url, publish_url, opts, err)) != 0) {
		goto fail;
	}
	/* dsc_client_open would only say DSC_EINVAL. */
	if ((dsi_url_is_tls(url) || dsi_url_is_tls(publish_url))
	    && (rv = dsc_tls_check(&opts->client.tls, err)) != 0) {
		goto fail;
	}
	if ((rv = dsc_client_open(&v->client, url, &opts->client)) != 0) {
		rv = dsi_fail(err, rv, "cannot open a client on %s: %s", url, dsc_strerror(rv));
		goto fail;
	}
	if ((rv = watch_first(v, err)) != 0 || (rv = reload(v, err)) != 0) {
		goto fail;
	}
	atomic_store(&v->reloads, 0); /* the first load is not a reload */
	if (pthread_create(&v->thread, NULL, view_main, v) != 0) {
		rv = dsi_fail(err, DSC_ENOMEM, "cannot start the view thread");
		goto fail;
	}
	v->started = true;
	*out       = v;
	return 0;

fail:
	dsc_view_close(v);
	return rv;
}

void
dsc_view_close(dsc_view *v)
{
	if (v == NULL) {
		return;
	}
	if (v->started) {
		atomic_store(&v->stop, true);
		if (v->client != NULL) {
			dsi_client_shutdown(v->client); /* ends a GetAll in flight at once */
		}
		pthread_join(v->thread, NULL);
	}
	dsc_watch_close(v->watch);
	dsc_client_close(v->client);
	dsi_vdata_free(v->data);
	free(v->watched);
	dsi_url_list_free(&v->pubs);
	for (size_t i = 0; i < 4; i++) {
		free(v->tls_s[i]);
	}
	pthread_rwlock_destroy(&v->lock);
	free(v);
}

uint64_t
dsc_view_revision(dsc_view *v)
{
	return v != NULL ? atomic_load(&v->revision) : 0;
}

uint64_t
dsc_view_reloads(dsc_view *v)
{
	return v != NULL ? atomic_load(&v->reloads) : 0;
}
