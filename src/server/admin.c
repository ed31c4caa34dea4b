/*
 * The admin endpoint: routing, access, the parked blocking queries, life
 * cycle. The JSON catalog is admin_catalog.c's; /readyz and /metrics are
 * admin_probes.c's.
 */
#include "server/admin.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/name.h"
#include "common/nngutil.h"
#include "common/parse.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/admin_impl.h"

#define TICK_MS 50 /* how often parked queries look at their deadlines */

static const char *const route_path[R_COUNT]
    = { "/healthz", "/readyz", "/metrics", "/v1/services", "/v1/instances" };

/* ---- replies ---- */

void
dsi_admin_reply(
    nng_aio *aio, uint16_t status, const char *ctype, const char *body, bool with_rev, uint64_t rev)
{
	nng_http_res *res;
	char          revtext[32];
	int           rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	snprintf(revtext, sizeof(revtext), "%llu", (unsigned long long) rev);
	if ((rv = nng_http_res_set_status(res, status)) != 0
	    || (rv = nng_http_res_set_header(res, "Content-Type", ctype)) != 0
	    || (rv = nng_http_res_set_header(res, "Cache-Control", "no-store")) != 0
	    || (with_rev
	        && (rv = nng_http_res_set_header(res, "X-Discovery-Revision", revtext)) != 0)
	    || (status == 401
	        && (rv = nng_http_res_set_header(res, "WWW-Authenticate", "Bearer")) != 0)
	    || (rv = nng_http_res_copy_data(res, body, strlen(body))) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

/* A JSON {"error": ..., "revision": ...} reply; body text owned here. */
static void
reply_error(dsi_admin *a, nng_aio *aio, uint16_t status, const char *message)
{
	uint64_t rev  = dsi_registry_revision(a->o.registry);
	char    *body = dsi_catalog_error(message, rev);
	if (body == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	dsi_admin_reply(aio, status, "application/json", body, true, rev);
	free(body);
}

void
dsi_admin_reply_json(nng_aio *aio, uint16_t status, json_t *o, uint64_t rev)
{
	char *body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (body == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	dsi_admin_reply(aio, status, "application/json", body, true, rev);
	free(body);
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

/* ---- parsing ---- */

/* "30s", "1500ms", "5m", "2" (seconds): into ms, capped at the maximum wait. */
static int
parse_wait(const char *v, int64_t *ms)
{
	char  *end;
	double n = strtod(v, &end);
	double scale;
	if (end == v || !isfinite(n) || n < 0) {
		return -1;
	}
	if (*end == 0 || strcmp(end, "s") == 0) {
		scale = 1000;
	} else if (strcmp(end, "ms") == 0) {
		scale = 1;
	} else if (strcmp(end, "m") == 0) {
		scale = 60000;
	} else {
		return -1;
	}
	double t = n * scale;
	*ms      = t > DSI_ADMIN_MAX_WAIT_MS ? DSI_ADMIN_MAX_WAIT_MS : (int64_t) t;
	return 0;
}

/*
 * The catalog request in uri (path and query). Returns 0, or the HTTP
 * status to answer with, with why.
 */
static uint16_t
parse_catalog(route_kind kind, const char *uri, query *q, char *why, size_t why_len)
{
	char        buf[DSI_ADMIN_MAX_URI + 1];
	const char *path = buf;
	char       *qs, *save = NULL;
	int64_t     wait_ms   = DSI_ADMIN_MAX_WAIT_MS;
	bool        has_index = false;

	memset(q, 0, sizeof(*q));
	snprintf(buf, sizeof(buf), "%s", uri);
	if ((qs = strchr(buf, '?')) != NULL) {
		*qs++ = 0;
	}
	if (kind == R_INSTANCES) {
		q->kind = DSI_CATALOG_INSTANCES;
	} else if (strcmp(path, "/v1/services") == 0 || strcmp(path, "/v1/services/") == 0) {
		q->kind = DSI_CATALOG_SERVICES;
	} else {
		const char *name = path + strlen("/v1/services/");
		char        reason[128];
		if (strchr(name, '/') != NULL) {
			snprintf(why, why_len, "no such resource");
			return 404;
		}
		if (dsi_name_normalize(name, q->service, reason, sizeof(reason)) != 0) {
			snprintf(why, why_len, "bad service name: %s", reason);
			return 400;
		}
		q->kind = DSI_CATALOG_SERVICE;
	}
	for (char *kv = qs != NULL ? strtok_r(qs, "&", &save) : NULL; kv != NULL;
	     kv       = strtok_r(NULL, "&", &save)) {
		char *v = strchr(kv, '=');
		if (v != NULL) {
			*v++ = 0;
		}
		if (strcmp(kv, "healthy") == 0) {
			if (v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
				q->healthy = true;
			} else if (strcmp(v, "false") != 0 && strcmp(v, "0") != 0) {
				snprintf(why, why_len, "healthy expects true or false");
				return 400;
			}
		} else if (strcmp(kv, "index") == 0) {
			if (v == NULL || dsi_parse_uint(v, 0, UINT64_MAX, &q->index) != 0) {
				snprintf(why, why_len, "index expects a revision (a whole number)");
				return 400;
			}
			has_index = true;
		} else if (strcmp(kv, "wait") == 0) {
			if (v == NULL || parse_wait(v, &wait_ms) != 0) {
				snprintf(why, why_len,
				    "wait expects a duration such as 30s, 1500ms or 5m (at most "
				    "5m)");
				return 400;
			}
		}
		/* Other parameters are ignored, as proxies and browsers add their own. */
	}
	q->blocking    = has_index;
	q->deadline_ms = dsi_monotonic_ms() + wait_ms;
	return 0;
}

/* ---- access ---- */

/* 0 when the request may read; otherwise the status (401, 403) with why. */
static uint16_t
authorize(const dsi_admin *a, nng_http_req *req, char *why, size_t why_len)
{
	if (a->o.token == NULL || !a->o.auth_reads) {
		return 0;
	}
	const char *h = nng_http_req_get_header(req, "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == 0) {
		snprintf(why, why_len, "this needs Authorization: Bearer <token> (--auth-reads)");
		return 401;
	}
	if (!dsi_secret_equal(h + 7, a->o.token)) {
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
	case R_READYZ:
		dsi_admin_readyz(a, aio);
		return;
	default:
		break;
	}
	if ((st = authorize(a, req, why, sizeof(why))) != 0) {
		reply_error(a, aio, st, why);
		return;
	}
	if (rt->kind == R_METRICS) {
		dsi_admin_metrics(a, aio);
		return;
	}
	if ((st = parse_catalog(rt->kind, uri, &q, why, sizeof(why))) != 0) {
		reply_error(a, aio, st, why);
		return;
	}
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
	char         host[64] = "";
	if (nng_http_server_get_addr(a->srv, &sa) == 0 && sa.s_family == NNG_AF_INET) {
		inet_ntop(AF_INET, &sa.s_in.sa_addr, host, sizeof(host));
		snprintf(a->bound, sizeof(a->bound), "%s://%s:%u", a->url->u_scheme, host,
		    (unsigned) ntohs(sa.s_in.sa_port));
	} else if (nng_http_server_get_addr(a->srv, &sa) == 0 && sa.s_family == NNG_AF_INET6) {
		inet_ntop(AF_INET6, sa.s_in6.sa_addr, host, sizeof(host));
		snprintf(a->bound, sizeof(a->bound), "%s://[%s]:%u", a->url->u_scheme, host,
		    (unsigned) ntohs(sa.s_in6.sa_port));
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
	if (a->srv != NULL) {
		nng_http_server_release(a->srv);
	}
	nng_aio_free(a->timer);
	nng_url_free(a->url);
	pthread_mutex_destroy(&a->mtx);
	free(a);
}
