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

#include "client/error.h"
#include "client/internal.h"
#include "client/viewdata.h"
#include "common/rwlock.h"
#include "common/name.h"
#include "common/sorted.h"
#include "common/tls.h"

#define DEFAULT_RECV_BUFFER 1024
#define POLL_MS             100 /* how long the thread waits for an event, so close is prompt */

/* A service a per-service view watches, and the revision of its last GetAll. */
typedef struct vwatched {
	char     name[DSI_NAME_MAX + 1];
	uint64_t loaded;
} vwatched;

/* A view: the copy behind its lock, the sockets, and the thread's bookkeeping. */
struct dsc_view {
	dsc_client *client;
	dsc_watch  *watch;
	vwatched   *watched; /* sorted by name; NULL for an all-services view */
	size_t      n_watched;
	dsc_view_cb cb;
	void       *cb_arg;

	pthread_rwlock_t lock; /* the view lock: guards data; see docs/design.md */
	dsi_vdata       *data;
	_Atomic uint64_t revision; /* what dsc_view_revision reports; written under lock */
	_Atomic uint64_t reloads;

	/* Only the view thread (or open, before it starts) touches these. */
	uint64_t applied;        /* all services: the revision of the last change taken */
	uint64_t checked;        /* per service: the last reload's or SYNC check's revision */
	uint64_t connects;       /* the watch's connect count at the last good load */
	uint64_t connects_tried; /* ... and at the last reload attempt */
	bool     stale;          /* a reload is due */

	pthread_t    thread;
	bool         started;
	_Atomic bool stop;
};

/* ---- loading ---- */

/*
 * Replaces the local copy with fresh GetAll answers. On failure the old
 * copy stays, the view stays stale, and err (when not NULL) says why.
 */
static int
reload(dsc_view *v, dsc_error *err)
{
	dsc_instance_list *list;
	uint64_t           lo   = UINT64_MAX;
	uint64_t          *revs = NULL;
	dsi_vdata         *nd, *old;
	int                rv = 0;

	/* Read first: a reconnect after this point triggers another reload. */
	v->connects_tried = dsi_watch_connects(v->watch);
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

static void
handle(dsc_view *v, const dsc_event *ev)
{
	bool taken;
	if (dsi_watch_connects(v->watch) != v->connects) {
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
		int        rv = dsc_watch_next(v->watch, POLL_MS, &ev);
		if (rv == 0) {
			handle(v, ev);
			dsc_event_free(ev);
		} else if (rv == DSC_ETIMEDOUT) {
			/* Idle: still notice a reconnect, once per reconnect. */
			if (dsi_watch_connects(v->watch) != v->connects_tried) {
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

/* Opens the SUB socket on the normalized names and waits, bounded, until it is connected. */
static int
watch_connect(dsc_view *v, const char *publish_url, int32_t recv_buffer, const dsc_tls_options *tls,
    dsc_error *err)
{
	const char **names = NULL;
	int          rv;

	if (v->n_watched > 0 && (names = calloc(v->n_watched, sizeof(*names))) == NULL) {
		return dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
	}
	for (size_t i = 0; i < v->n_watched; i++) {
		names[i] = v->watched[i].name;
	}
	rv = dsi_watch_open(&v->watch, publish_url, names, v->n_watched,
	    recv_buffer > 0 ? recv_buffer : DEFAULT_RECV_BUFFER, tls,
	    dsi_client_timeout(v->client));
	free(names);
	if (rv != 0) {
		return dsi_fail(err, rv, "cannot watch %s: %s", publish_url, dsc_strerror(rv));
	}
	/* Subscribe before the snapshot, so that no change falls in between. */
	if (!dsi_watch_wait_connected(v->watch, dsi_client_timeout(v->client))) {
		return dsi_fail(err, DSC_ECONNREFUSED, "cannot connect to %s", publish_url);
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
	if ((rv = watched_init(v, opts->services, opts->n_services, err)) != 0) {
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
	if ((rv = watch_connect(v, publish_url, opts->recv_buffer, &opts->client.tls, err)) != 0
	    || (rv = reload(v, err)) != 0) {
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

/* Resolves the normalized name under the read lock, which the caller holds. */
static int
resolve_locked(dsc_view *v, const char *name, bool healthy_only, const dsc_instance **out)
{
	dsi_vservice *s = dsi_vdata_find(v->data, name);
	return s != NULL ? dsi_vservice_pick(s, healthy_only, out) : DSC_ENOTFOUND;
}

int
dsc_view_resolve(dsc_view *v, const char *service, bool healthy_only, dsc_instance **out)
{
	const dsc_instance *x;
	dsc_instance       *copy = NULL;
	char                name[DSI_NAME_MAX + 1], why[8];
	int                 rv;

	if (v == NULL || dsi_name_normalize(service, name, why, sizeof(why)) != 0) {
		return DSC_EINVAL;
	}
	pthread_rwlock_rdlock(&v->lock);
	rv = resolve_locked(v, name, healthy_only, &x);
	if (rv == 0 && out != NULL) {
		if ((copy = malloc(sizeof(*copy))) == NULL || dsi_inst_copy(copy, x) != 0) {
			free(copy);
			copy = NULL;
			rv   = DSC_ENOMEM;
		}
	}
	pthread_rwlock_unlock(&v->lock);
	if (rv == 0 && out != NULL) {
		*out = copy;
	}
	return rv;
}

int
dsc_view_resolve_endpoint(
    dsc_view *v, const char *service, bool healthy_only, char *buf, size_t len)
{
	const dsc_instance *x;
	char                name[DSI_NAME_MAX + 1], why[8];
	int                 rv;

	if (v == NULL || buf == NULL || len == 0
	    || dsi_name_normalize(service, name, why, sizeof(why)) != 0) {
		return DSC_EINVAL;
	}
	pthread_rwlock_rdlock(&v->lock);
	if ((rv = resolve_locked(v, name, healthy_only, &x)) == 0) {
		size_t n = strlen(x->endpoint);
		if (n < len) {
			memcpy(buf, x->endpoint, n + 1);
		} else {
			rv = DSC_ELIMIT;
		}
	}
	pthread_rwlock_unlock(&v->lock);
	return rv;
}

int
dsc_view_get_all(dsc_view *v, const char *service, dsc_instance_list **out)
{
	char               name[DSI_NAME_MAX + 1], why[8];
	dsc_instance_list *list;
	dsi_vservice      *one = NULL;
	size_t             n   = 0;
	int                rv  = 0;

	if (v == NULL || out == NULL) {
		return DSC_EINVAL;
	}
	bool all = service == NULL || service[0] == 0;
	if (!all && dsi_name_normalize(service, name, why, sizeof(why)) != 0) {
		return DSC_EINVAL;
	}
	if ((list = calloc(1, sizeof(*list))) == NULL) {
		return DSC_ENOMEM;
	}
	pthread_rwlock_rdlock(&v->lock);
	if (all) {
		for (size_t i = 0; i < v->data->n; i++) {
			n += v->data->svc[i]->n;
		}
	} else if ((one = dsi_vdata_find(v->data, name)) != NULL) {
		n = one->n;
	}
	if (n > 0 && (list->items = calloc(n, sizeof(*list->items))) == NULL) {
		rv = DSC_ENOMEM;
	}
	for (size_t i = 0; rv == 0 && all && i < v->data->n; i++) {
		rv = dsi_vservice_copy(list, v->data->svc[i]);
	}
	if (rv == 0 && one != NULL) {
		rv = dsi_vservice_copy(list, one);
	}
	list->revision = atomic_load(&v->revision);
	pthread_rwlock_unlock(&v->lock);
	if (rv != 0) {
		dsc_instance_list_free(list);
		return rv;
	}
	*out = list;
	return 0;
}
