/*
 * The admin endpoint: routing, access, the parked blocking queries, /v1/status,
 * life cycle. The JSON catalog is admin_catalog.c's; /readyz and /metrics are
 * admin_probes.c's; /v1/snapshot is admin_snapshot.c's; request targets are
 * parsed by admin_query.c; every reply goes out through admin_reply.c; the page
 * at / is dashboard.html, embedded at build time. Calls run one way, from here down.
 */
#include "server/admin.h"

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/name.h"
#include "common/nngutil.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/admin_catalog.h"
#include "server/admin_probes.h"
#include "server/admin_query.h"
#include "server/admin_reply.h"
#include "server/admin_snapshot.h"
#include "server/dashboard.h"

typedef enum route_kind {
	R_HEALTHZ,
	R_READYZ,
	R_METRICS,
	R_SERVICES, /* a tree: /v1/services and /v1/services/{name} */
	R_INSTANCES,
	R_DASHBOARD, /* GET /: the page */
	R_STATUS,
	R_SNAPSHOT,
	R_COUNT,
} route_kind;

typedef struct route {
	dsi_admin *a;
	route_kind kind;
} route;

/* A catalog request: its target parsed (admin_query.h), its deadline set when it came. */
typedef dsi_admin_query query;

/* A blocking query waiting for a change or its deadline; the aio is nng's handler aio. */
typedef struct parked {
	struct parked *prev, *next;
	dsi_admin     *a;
	nng_aio       *aio;
	query          q;
	bool           listed; /* in the list: whoever unlinks it answers it */
} parked;

struct dsi_admin {
	dsi_admin_options o;
	dsi_log           log;
	nng_url          *url;
	nng_http_server  *srv;
	char              bound[192];
	route             routes[R_COUNT];
	atomic_bool       ready;
	pthread_mutex_t   mtx; /* guards everything below */
	parked           *head;
	size_t            n_parked;
	uint64_t min_index; /* the smallest parked index: a change past it wakes the timer */
	nng_aio *timer;
	bool     timer_running;
	bool     stopping;
	bool     stopped;
	dsi_admin_snapshots snapshots; /* GET /v1/snapshot's, with its own lock */
};

#define TICK_MS 50 /* how often parked queries look at their deadlines */

static const char *const route_path[R_COUNT] = { "/healthz", "/readyz", "/metrics", "/v1/services",
	"/v1/instances", "/", "/v1/status", "/v1/snapshot" };

/* ---- replies ---- */

/*
 * The dashboard with its policy: its own inline script and style (by hash,
 * so no other inline code runs), requests to its own origin, nothing else.
 */
static void
reply_dashboard(nng_aio *aio)
{
	char csp[512];
	snprintf(csp, sizeof(csp),
	    "default-src 'none'; script-src %s; style-src %s; connect-src 'self'; img-src 'self'; "
	    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	    dsi_dashboard_html_script_hash, dsi_dashboard_html_style_hash);
	dsi_admin_reply_page(aio, dsi_dashboard_html, csp);
}

/* A JSON {"error": ..., "revision": ...} reply, at the current revision. */
static void
reply_error(dsi_admin *a, nng_aio *aio, uint16_t status, const char *message)
{
	dsi_admin_reply_error(aio, status, message, dsi_registry_revision(a->o.registry));
}

/* A body built once and sent to every woken query that asked the same thing. */
typedef struct built {
	bool     valid;
	query    q;
	int      status;
	char    *body;
	uint64_t rev;
} built;

static bool
same_question(const query *x, const query *y)
{
	return x->kind == y->kind && x->healthy == y->healthy
	    && strcmp(x->service, y->service) == 0;
}

/* Answers q; cache (may be NULL) reuses a body built for the same question in this round. */
static void
answer_catalog(dsi_admin *a, nng_aio *aio, const query *q, built *cache)
{
	built local = { .valid = false }, *b = cache != NULL ? cache : &local;
	if (!b->valid || !same_question(&b->q, q)) {
		free(b->body);
		b->q      = *q;
		b->status = dsi_catalog_build(
		    a->o.registry, q->kind, q->service, q->healthy, &b->body, &b->rev);
		b->valid = b->body != NULL;
	}
	if (!b->valid) {
		nng_aio_finish(aio, NNG_ENOMEM);
	} else {
		dsi_admin_reply(
		    aio, (uint16_t) b->status, "application/json", b->body, true, b->rev);
	}
	if (cache == NULL) {
		free(local.body);
	}
}

/* GET /v1/status: the Status call's answer as JSON. */
static void
answer_status(dsi_admin *a, nng_aio *aio)
{
	Discovery__V1__StatusResponse st;
	dsi_statusinfo                bare = { .registry = a->o.registry };

	if (!atomic_load(&a->ready)) { /* the status is filled in before the server starts */
		reply_error(a, aio, 503, "the server is still starting");
		return;
	}
	if (dsi_statusinfo_fill(a->o.status != NULL ? a->o.status : &bare, &st) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	dsi_admin_reply_json(aio, 200, dsi_statusinfo_json(&st), st.revision);
	dsi_statusinfo_clear(&st);
}

/* ---- access ---- */

/*
 * 0 when the request may go on; otherwise the status (401, 403) with why.
 * With a token configured, always (the snapshot) or with --auth-reads.
 */
static uint16_t
authorize(const dsi_admin *a, nng_http_req *req, bool always, char *why, size_t why_len)
{
	const char *token = atomic_load(&a->o.token); /* once: a reload may swap it */
	if (token == NULL || (!a->o.auth_reads && !always)) {
		return 0;
	}
	const char *h = nng_http_req_get_header(req, "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == 0) {
		snprintf(why, why_len, "this needs Authorization: Bearer <token>%s",
		    always ? "" : " (--auth-reads)");
		return 401;
	}
	if (!dsi_secret_equal(h + 7, token)) {
		snprintf(why, why_len, "the auth token was not accepted");
		return 403;
	}
	return 0;
}

/* ---- parking ---- */

static void
unlink_locked(dsi_admin *a, parked *p)
{
	if (p->prev != NULL) {
		p->prev->next = p->next;
	} else {
		a->head = p->next;
	}
	if (p->next != NULL) {
		p->next->prev = p->prev;
	}
	p->prev = p->next = NULL;
	p->listed         = false;
	a->n_parked--;
}

/* nng gives up on the request (its connection closes, the server stops). */
static void
cancel_parked(nng_aio *aio, void *arg, int rv)
{
	parked    *p     = arg;
	dsi_admin *a     = p->a;
	bool       found = false;

	pthread_mutex_lock(&a->mtx);
	if (p->listed) {
		unlink_locked(a, p);
		found = true;
	}
	pthread_mutex_unlock(&a->mtx);
	if (found) { /* otherwise the timer took it and answers it */
		free(p);
		nng_aio_finish(aio, rv);
	}
}

/* The timer: answers what is due (a change past its index, its deadline, a stop). */
static void
timer_cb(void *arg)
{
	dsi_admin *a     = arg;
	parked    *ready = NULL;

	pthread_mutex_lock(&a->mtx);
	int64_t  now = dsi_monotonic_ms();
	uint64_t rev = dsi_registry_revision(a->o.registry), min = UINT64_MAX;
	for (parked *p = a->head, *next; p != NULL; p = next) {
		next = p->next;
		if (a->stopping || rev > p->q.index || now >= p->q.deadline_ms) {
			unlink_locked(a, p);
			p->next = ready;
			ready   = p;
		} else if (p->q.index < min) {
			min = p->q.index;
		}
	}
	a->min_index = min;
	if (a->head != NULL && !a->stopping) {
		nng_sleep_aio(TICK_MS, a->timer);
	} else {
		a->timer_running = false;
	}
	pthread_mutex_unlock(&a->mtx);
	built cache = { .valid = false };
	while (ready != NULL) {
		parked *p = ready;
		ready     = p->next;
		answer_catalog(a, p->aio, &p->q, &cache);
		free(p);
	}
	free(cache.body);
}

/* Parks the query; false when it must be answered now (503 with why, or now). */
static bool
park(dsi_admin *a, nng_aio *aio, const query *q, bool *full)
{
	parked *p   = calloc(1, sizeof(*p));
	size_t  cap = a->o.max_parked > 0 ? a->o.max_parked : DSI_ADMIN_MAX_PARKED;
	bool    kick;

	*full = false;
	if (p == NULL) {
		return false;
	}
	p->a   = a;
	p->aio = aio;
	p->q   = *q;
	pthread_mutex_lock(&a->mtx);
	if (a->stopping || a->n_parked >= cap) {
		*full = !a->stopping;
		pthread_mutex_unlock(&a->mtx);
		free(p);
		return false;
	}
	p->next = a->head;
	if (a->head != NULL) {
		a->head->prev = p;
	}
	a->head   = p;
	p->listed = true;
	a->n_parked++;
	if (a->n_parked == 1 || q->index < a->min_index) {
		a->min_index = q->index;
	}
	nng_aio_defer(aio, cancel_parked, p);
	kick             = !a->timer_running;
	a->timer_running = true;
	if (kick) {
		nng_sleep_aio(TICK_MS, a->timer);
	}
	pthread_mutex_unlock(&a->mtx);
	/* A change between the caller's look at the revision and now: see it at once. */
	if (dsi_registry_revision(a->o.registry) > q->index) {
		nng_aio_cancel(a->timer);
	}
	return true;
}

void
dsi_admin_notify(dsi_admin *a)
{
	if (a == NULL) {
		return;
	}
	pthread_mutex_lock(&a->mtx);
	bool wake = a->n_parked > 0 && a->timer_running
	    && dsi_registry_revision(a->o.registry) > a->min_index;
	pthread_mutex_unlock(&a->mtx);
	if (wake) {
		nng_aio_cancel(a->timer); /* its callback runs at once, on nng's threads */
	}
}

/* ---- the handler ---- */

static void
handle(nng_aio *aio)
{
	nng_http_req     *req = nng_aio_get_input(aio, 0);
	nng_http_handler *h   = nng_aio_get_input(aio, 1);
	route            *rt  = nng_http_handler_get_data(h);
	dsi_admin        *a   = rt->a;
	const char       *uri = nng_http_req_get_uri(req);
	char              why[192];
	uint16_t          st;
	query             q;

	if (strlen(uri) > DSI_ADMIN_MAX_URI) {
		reply_error(a, aio, 414, "the request target is too long");
		return;
	}
	switch (rt->kind) {
	case R_HEALTHZ:
		dsi_admin_reply_json(aio, 200, json_pack("{s:s}", "status", "serving"),
		    dsi_registry_revision(a->o.registry));
		return;
	case R_DASHBOARD: /* no data in it: its reads are /v1/ requests, checked as such */
		reply_dashboard(aio);
		return;
	case R_READYZ:
		dsi_admin_readyz(
		    aio, a->o.registry, a->o.require, a->o.n_require, atomic_load(&a->ready));
		return;
	default:
		break;
	}
	if ((st = authorize(a, req, rt->kind == R_SNAPSHOT, why, sizeof(why))) != 0) {
		reply_error(a, aio, st, why);
		return;
	}
	if (rt->kind == R_METRICS) {
		dsi_admin_metrics(
		    aio, a->o.metrics, a->o.registry, a->o.writer, dsi_admin_parked(a));
		return;
	}
	if (rt->kind == R_SNAPSHOT) {
		dsi_admin_snapshot(&a->snapshots, aio);
		return;
	}
	if (rt->kind == R_STATUS) {
		answer_status(a, aio);
		return;
	}
	if ((st = dsi_admin_query_parse(uri, rt->kind == R_INSTANCES, &q, why, sizeof(why))) != 0) {
		reply_error(a, aio, st, why);
		return;
	}
	q.deadline_ms = dsi_monotonic_ms() + q.wait_ms;
	if (q.blocking && dsi_registry_revision(a->o.registry) <= q.index) {
		bool full;
		if (park(a, aio, &q, &full)) {
			return;
		}
		if (full) {
			reply_error(
			    a, aio, 503, "too many blocking queries are waiting; retry later");
			return;
		}
	}
	answer_catalog(a, aio, &q, NULL);
}

/* ---- life cycle ---- */

/* The bound address as a URL, with the real port. */
static void
bound_url(dsi_admin *a)
{
	nng_sockaddr sa;
	char         host[128] = "";
	if (nng_http_server_get_addr(a->srv, &sa) == 0
	    && (sa.s_family == NNG_AF_INET || sa.s_family == NNG_AF_INET6)) {
		dsi_sockaddr_text(&sa, host, sizeof(host));
	}
	if (host[0] != 0) {
		snprintf(a->bound, sizeof(a->bound), "%s://%s", a->url->u_scheme, host);
	} else {
		snprintf(a->bound, sizeof(a->bound), "%s", a->o.url);
	}
}

int
dsi_admin_create(
    dsi_admin **out, const dsi_admin_options *o, const dsi_log *log, char *why, size_t why_len)
{
	dsi_admin *a = calloc(1, sizeof(*a));
	int        rv;

	if (a == NULL) {
		return DSC_ENOMEM;
	}
	a->o = *o;
	if (log != NULL) {
		a->log = *log;
	}
	pthread_mutex_init(&a->mtx, NULL);
	dsi_admin_snapshots_init(&a->snapshots, o->writer, o->registry, &a->log);
	if ((rv = nng_aio_alloc(&a->timer, timer_cb, a)) != 0) {
		goto fail;
	}
	if ((rv = nng_url_parse(&a->url, o->url)) != 0
	    || (strcmp(a->url->u_scheme, "http") != 0 && strcmp(a->url->u_scheme, "https") != 0)) {
		snprintf(why, why_len,
		    "--admin %s: expects http://HOST:PORT, https://HOST:PORT or off", o->url);
		rv = DSC_EINVAL;
		goto out;
	}
	if (strcmp(a->url->u_scheme, "https") == 0 && o->tls == NULL) {
		snprintf(why, why_len, "--admin %s: https needs --tls-cert and --tls-key", o->url);
		rv = DSC_EINVAL;
		goto out;
	}
	if ((rv = nng_http_server_hold(&a->srv, a->url)) != 0
	    || (o->tls != NULL && strcmp(a->url->u_scheme, "https") == 0
	        && (rv = nng_http_server_set_tls(a->srv, o->tls)) != 0)) {
		goto fail;
	}
	for (int i = 0; i < R_COUNT; i++) {
		nng_http_handler *h;
		a->routes[i].a    = a;
		a->routes[i].kind = (route_kind) i;
		if ((rv = nng_http_handler_alloc(&h, route_path[i], handle)) != 0) {
			goto fail;
		}
		if ((rv = nng_http_handler_set_data(h, &a->routes[i], NULL)) != 0
		    || (i == R_SERVICES && (rv = nng_http_handler_set_tree(h)) != 0)
		    || (rv = nng_http_server_add_handler(a->srv, h)) != 0) {
			nng_http_handler_free(h);
			goto fail;
		}
	}
	if ((rv = nng_http_server_start(a->srv)) != 0) {
		goto fail;
	}
	bound_url(a);
	*out = a;
	return 0;
fail:
	snprintf(
	    why, why_len, "cannot serve the admin endpoint on %s: %s", o->url, nng_strerror(rv));
	rv = dsi_err_from_nng(rv);
out:
	a->stopped = true; /* never served */
	dsi_admin_destroy(a);
	return rv;
}

void
dsi_admin_set_token(dsi_admin *a, const char *token)
{
	if (a != NULL) {
		atomic_store(&a->o.token, token);
	}
}

int
dsi_admin_set_tls(dsi_admin *a, nng_tls_config *tls)
{
	return a != NULL && strcmp(a->url->u_scheme, "https") == 0
	    ? nng_http_server_set_tls(a->srv, tls)
	    : 0;
}

const char *
dsi_admin_url(const dsi_admin *a)
{
	return a->bound;
}

void
dsi_admin_start(dsi_admin *a)
{
	atomic_store(&a->ready, true);
}

size_t
dsi_admin_parked(dsi_admin *a)
{
	pthread_mutex_lock(&a->mtx);
	size_t n = a->n_parked;
	pthread_mutex_unlock(&a->mtx);
	return n;
}

void
dsi_admin_stop(dsi_admin *a)
{
	if (a == NULL || a->stopped) {
		return;
	}
	a->stopped = true;
	atomic_store(&a->ready, false);
	pthread_mutex_lock(&a->mtx);
	a->stopping = true;
	pthread_mutex_unlock(&a->mtx);
	nng_aio_stop(a->timer);
	/* What the timer did not take: answered here, with what is current. */
	timer_cb(a);
	nng_http_server_stop(a->srv);
}

void
dsi_admin_destroy(dsi_admin *a)
{
	if (a == NULL) {
		return;
	}
	dsi_admin_stop(a);
	dsi_admin_snapshots_stop(&a->snapshots);
	if (a->srv != NULL) {
		nng_http_server_release(a->srv);
	}
	nng_aio_free(a->timer);
	nng_url_free(a->url);
	dsi_admin_snapshots_fini(&a->snapshots);
	pthread_mutex_destroy(&a->mtx);
	free(a);
}
