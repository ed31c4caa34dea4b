/*
 * Health checker. The thread owns every target (a hash table for lookup,
 * a min-heap on due time) and one curl multi handle; other threads only
 * append to its inbox and wake it with curl_multi_wakeup. A check's
 * timeout runs from the moment it is handed to curl, and at most
 * max_inflight run at once, so hung endpoints cannot delay the others.
 */
#include "server/checker.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/dueheap.h"
#include "server/probe.h"

#define DEFER_MS 20 /* a result the store has no revision for yet is retried this soon */

/* One checked instance, owned by the checker thread. */
typedef struct target {
	struct target *hnext;
	char          *service;
	char          *endpoint;
	char          *url;
	uint32_t       ttl_ms;
	dsc_health     state; /* as last sent to the registry */
	int            ok_run;
	int            fail_run;
	dsi_due        due;      /* monotonic ms; in the heap while waiting for its turn */
	CURL          *easy;     /* while a check runs */
	dsi_probe      probe;    /* the check's own state (connect_only stays) */
	bool           gone;     /* removed while its check ran: freed when it ends */
	bool           spread;   /* the first reschedule has been randomized */
	bool           deferred; /* a result waits for the store's headroom */
	bool           deferred_ok;
	char           deferred_reason[128];
} target;

/* A registry change waiting for the thread. */
typedef struct op {
	struct op *next;
	bool       remove;
	char      *service;
	char      *endpoint;
	char      *health_path;
	uint32_t   ttl_ms;
	dsc_health health;
} op;

struct dsi_checker {
	dsi_checker_options o;
	dsi_registry       *registry;
	const dsi_log      *log;
	CURLM              *multi;
	CURLSH             *share;
	pthread_t           thread;
	bool                started;

	pthread_mutex_t mtx; /* guards the inbox and stop */
	op             *in_head, *in_tail;
	bool            stop;

	/* Below: the checker thread's alone. */
	target    **buckets;
	size_t      nbuckets;
	size_t      ntargets;
	dsi_dueheap heap;
	int         inflight;
	uint64_t    rng;
};

/* ---- pure helpers ---- */

dsc_health
dsi_check_transition(dsc_health state, bool ok, int *ok_run, int *fail_run, int rise, int fall)
{
	if (ok) {
		(*ok_run)++;
		*fail_run = 0;
	} else {
		(*fail_run)++;
		*ok_run = 0;
	}
	if (state == DSC_HEALTH_UNKNOWN) {
		return ok ? DSC_HEALTH_HEALTHY : DSC_HEALTH_UNHEALTHY;
	}
	if (ok && state != DSC_HEALTH_HEALTHY && *ok_run >= rise) {
		return DSC_HEALTH_HEALTHY;
	}
	if (!ok && state != DSC_HEALTH_UNHEALTHY && *fail_run >= fall) {
		return DSC_HEALTH_UNHEALTHY;
	}
	return state;
}

/* ---- the heap, on due time ---- */

static target *
due_target(dsi_due *d)
{
	return d != NULL ? (target *) (void *) ((char *) d - offsetof(target, due)) : NULL;
}

static void
schedule(dsi_checker *c, target *t, int64_t due)
{
	dsi_dueheap_remove(&c->heap, &t->due);
	if (!dsi_dueheap_push(&c->heap, &t->due, due)) {
		dsi_error(
		    c->log, "out of memory: %s %s is no longer checked", t->service, t->endpoint);
	}
}

/* ---- targets ---- */

static uint64_t
key_hash(const char *svc, const char *ep)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = svc; *p; p++) {
		h = (h ^ (unsigned char) *p) * 1099511628211ull;
	}
	h = (h ^ '\n') * 1099511628211ull;
	for (const char *p = ep; *p; p++) {
		h = (h ^ (unsigned char) *p) * 1099511628211ull;
	}
	return h;
}

static target **
target_slot(dsi_checker *c, const char *svc, const char *ep)
{
	target **pp = &c->buckets[key_hash(svc, ep) & (c->nbuckets - 1)];
	while (
	    *pp != NULL && (strcmp((*pp)->service, svc) != 0 || strcmp((*pp)->endpoint, ep) != 0)) {
		pp = &(*pp)->hnext;
	}
	return pp;
}

static void
target_free(target *t)
{
	dsi_probe_clear(&t->probe);
	free(t->service);
	free(t->endpoint);
	free(t->url);
	free(t);
}

static void
grow_buckets(dsi_checker *c)
{
	size_t   nb = c->nbuckets * 2;
	target **b  = calloc(nb, sizeof(*b));
	if (b == NULL) {
		return;
	}
	for (size_t i = 0; i < c->nbuckets; i++) {
		for (target *t = c->buckets[i], *next; t != NULL; t = next) {
			next     = t->hnext;
			size_t j = key_hash(t->service, t->endpoint) & (nb - 1);
			t->hnext = b[j];
			b[j]     = t;
		}
	}
	free(c->buckets);
	c->buckets  = b;
	c->nbuckets = nb;
}

static uint64_t
rand_next(dsi_checker *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return c->rng;
}

/* A delay of interval * [lo, hi) percent, so checks do not fire in lockstep. */
static int64_t
jittered(dsi_checker *c, int lo_pct, int hi_pct)
{
	int64_t span = (int64_t) c->o.interval_ms * (hi_pct - lo_pct) / 100;
	int64_t off  = span > 0 ? (int64_t) (rand_next(c) % (uint64_t) span) : 0;
	return (int64_t) c->o.interval_ms * lo_pct / 100 + off;
}

static void
apply_upsert(dsi_checker *c, op *o, int64_t now)
{
	char     url[DSI_CHECK_URL_MAX];
	bool     connect_only = false;
	target **pp           = target_slot(c, o->service, o->endpoint);
	target  *t            = *pp;

	if (dsi_check_url(o->endpoint, o->health_path, url, sizeof(url), &connect_only) != 0) {
		dsi_warn(c->log, "cannot build a check URL for %s; not checked", o->service);
		return;
	}
	if (t == NULL) {
		if ((t = calloc(1, sizeof(*t))) == NULL || (t->service = strdup(o->service)) == NULL
		    || (t->endpoint = strdup(o->endpoint)) == NULL) {
			if (t != NULL) {
				target_free(t);
			}
			dsi_error(c->log, "out of memory: %s is not checked", o->service);
			return;
		}
		t->due.idx = DSI_DUE_NONE;
		t->state   = o->health;
		*pp        = t;
		if (++c->ntargets > c->nbuckets) {
			grow_buckets(c);
		}
	}
	char *nu = strdup(url);
	if (nu != NULL) {
		free(t->url);
		t->url = nu;
	}
	t->probe.connect_only = connect_only;
	bool was_ttl          = t->ttl_ms > 0;
	t->ttl_ms             = o->ttl_ms;
	if (t->easy != NULL) {
		return; /* rescheduled when the running check ends */
	}
	if (t->due.idx == DSI_DUE_NONE || was_ttl != (t->ttl_ms > 0)) {
		/* New, or switched between polled and TTL: polled ones are checked at once. */
		schedule(c, t, t->ttl_ms > 0 ? now + t->ttl_ms : now);
	}
}

static void
apply_remove(dsi_checker *c, op *o)
{
	target **pp = target_slot(c, o->service, o->endpoint);
	target  *t  = *pp;
	if (t == NULL) {
		return;
	}
	*pp = t->hnext;
	c->ntargets--;
	dsi_dueheap_remove(&c->heap, &t->due);
	if (t->easy != NULL) {
		t->gone = true; /* freed when its check ends */
	} else {
		target_free(t);
	}
}

static void
op_free(op *o)
{
	free(o->service);
	free(o->endpoint);
	free(o->health_path);
	free(o);
}

void
dsi_checker_notify(dsi_checker *c, const dsi_change *ch)
{
	bool remove = ch->type == DISCOVERY__V1__EVENT_TYPE__EVENT_DEREGISTERED;
	if ((ch->type != DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED
	        && ch->type != DISCOVERY__V1__EVENT_TYPE__EVENT_UPDATED && !remove)
	    || ch->instance == NULL) {
		return; /* health changes come from the checker itself, or from heartbeats */
	}
	op *o = calloc(1, sizeof(*o));
	if (o == NULL || (o->service = strdup(ch->service)) == NULL
	    || (o->endpoint = strdup(ch->instance->endpoint)) == NULL
	    || (o->health_path = strdup(ch->instance->health_path)) == NULL) {
		if (o != NULL) {
			op_free(o);
		}
		return;
	}
	o->remove = remove;
	o->ttl_ms = ch->instance->ttl_ms;
	o->health = (dsc_health) ch->instance->health;
	pthread_mutex_lock(&c->mtx);
	/* The thread takes the whole inbox at once: only the first op needs to wake it. */
	bool wake = c->in_head == NULL;
	if (c->in_tail != NULL) {
		c->in_tail->next = o;
	} else {
		c->in_head = o;
	}
	c->in_tail = o;
	pthread_mutex_unlock(&c->mtx);
	if (wake) {
		curl_multi_wakeup(c->multi);
	}
}

/* ---- checks ---- */

/* Returns false when the result is deferred: the store has no revision for it yet. */
static bool
record(dsi_checker *c, target *t, bool ok, const char *reason)
{
	/*
	 * Any result may change the state, and a change takes a revision the
	 * store must have reserved. reserve never waits for the disk (at most
	 * for the writer applying a batch in memory): with no headroom left it
	 * fails at once, and the result is recorded on a later round.
	 */
	if (c->o.reserve != NULL && c->o.reserve(c->o.store_arg) != 0) {
		return false; /* the run counters stand until it is recorded */
	}
	int64_t    now  = dsi_wall_ms();
	dsc_health prev = t->state;
	t->state
	    = dsi_check_transition(t->state, ok, &t->ok_run, &t->fail_run, c->o.rise, c->o.fall);
	int rv = dsi_registry_set_health(
	    c->registry, t->service, t->endpoint, t->state, now, ok ? NULL : reason, reason, NULL);
	if (c->o.release != NULL) {
		c->o.release(c->o.store_arg);
	}
	if (rv != 0) {
		return true; /* deregistered meanwhile; its removal is in the inbox */
	}
	if (t->state != prev) {
		char esc[96];
		dsi_info(c->log, "health %s %s: %s -> %s (%s)", t->service,
		    dsi_text_escape(t->endpoint, esc, sizeof(esc)), dsi_health_name(prev),
		    dsi_health_name(t->state), reason);
	}
	return true;
}

static void
reap(dsi_checker *c, target *t)
{
	bool removed = false;
	if (c->o.deregister_after_ms > 0 && c->o.reap != NULL) {
		/* Only due ones go to the store, which checks again before removing. */
		if (dsi_registry_reap_due(c->registry, t->service, t->endpoint,
		        c->o.deregister_after_ms, dsi_wall_ms())) {
			c->o.reap(
			    c->o.store_arg, t->service, t->endpoint, c->o.deregister_after_ms);
		}
	} else if (c->o.deregister_after_ms > 0) {
		dsi_registry_reap(c->registry, t->service, t->endpoint, c->o.deregister_after_ms,
		    dsi_wall_ms(), &removed);
		if (removed) {
			dsi_info(c->log, "removed %s after %d ms unhealthy", t->service,
			    c->o.deregister_after_ms);
		}
	}
}

static void
start_check(dsi_checker *c, target *t)
{
	CURL *e = dsi_probe_start(&t->probe, t->url, c->o.timeout_ms, c->share, c->o.policy, t);
	if (e == NULL) {
		schedule(c, t, dsi_monotonic_ms() + c->o.interval_ms);
		return;
	}
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		schedule(c, t, dsi_monotonic_ms() + c->o.interval_ms);
		return;
	}
	t->easy = e;
	c->inflight++;
}

static void recorded(dsi_checker *c, target *t, bool ok, const char *reason);

static void
finish_check(dsi_checker *c, CURL *e, CURLcode res)
{
	target *t;
	long    code = 0;
	char    reason[128];

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &t);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_off_t took_us = 0;
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &took_us);
	curl_multi_remove_handle(c->multi, e);
	curl_easy_cleanup(e);
	t->easy = NULL;
	c->inflight--;
	if (t->gone) {
		target_free(t);
		return;
	}
	bool ok = dsi_probe_result(&t->probe, res, code, c->o.timeout_ms, reason, sizeof(reason));
	dsi_metrics_check(c->o.metrics, ok, (int64_t) took_us * 1000);
	recorded(c, t, ok, reason);
}

/* Records a result (or defers it), then schedules the next check. */
static void
recorded(dsi_checker *c, target *t, bool ok, const char *reason)
{
	t->deferred = !record(c, t, ok, reason);
	if (t->deferred) {
		t->deferred_ok = ok;
		snprintf(t->deferred_reason, sizeof(t->deferred_reason), "%s", reason);
		schedule(c, t, dsi_monotonic_ms() + DEFER_MS);
		return;
	}
	if (t->state == DSC_HEALTH_UNHEALTHY) {
		reap(c, t);
	}
	/* The first reschedule spreads a burst of registrations over the interval. */
	int64_t delay = t->spread ? jittered(c, 90, 110) : jittered(c, 50, 150);
	t->spread     = true;
	if (*target_slot(c, t->service, t->endpoint) == t) {
		schedule(c, t, dsi_monotonic_ms() + (delay > 0 ? delay : 1));
	}
}

static void
visit_ttl(dsi_checker *c, target *t)
{
	int64_t wall = dsi_wall_ms(), next = 0;
	if (c->o.reserve != NULL && c->o.reserve(c->o.store_arg) != 0) {
		schedule(c, t, dsi_monotonic_ms() + DEFER_MS); /* no revision yet: soon again */
		return;
	}
	int rv = dsi_registry_ttl_expire(c->registry, t->service, t->endpoint, wall, &next);
	if (c->o.release != NULL) {
		c->o.release(c->o.store_arg);
	}
	if (rv != 0) {
		return; /* gone; its removal is in the inbox */
	}
	reap(c, t);
	if (*target_slot(c, t->service, t->endpoint) == t) {
		int64_t delay = next - wall;
		schedule(c, t, dsi_monotonic_ms() + (delay > 0 ? delay : 1));
	}
}

/* Hung checks are dropped here: removing a handle just closes its socket. */
static void
drop_targets(dsi_checker *c)
{
	for (size_t i = 0; c->buckets != NULL && i < c->nbuckets; i++) {
		for (target *t = c->buckets[i], *next; t != NULL; t = next) {
			next = t->hnext;
			if (t->easy != NULL) {
				curl_multi_remove_handle(c->multi, t->easy);
				curl_easy_cleanup(t->easy);
			}
			target_free(t);
		}
		c->buckets[i] = NULL;
	}
	dsi_dueheap_free(&c->heap);
	c->ntargets = 0;
	c->inflight = 0;
}

static void *
checker_main(void *arg)
{
	dsi_checker *c = arg;

	for (;;) {
		pthread_mutex_lock(&c->mtx);
		op  *ops   = c->in_head;
		bool stop  = c->stop;
		c->in_head = c->in_tail = NULL;
		pthread_mutex_unlock(&c->mtx);

		int64_t now = dsi_monotonic_ms();
		while (ops != NULL) {
			op *next = ops->next;
			if (ops->remove) {
				apply_remove(c, ops);
			} else {
				apply_upsert(c, ops, now);
			}
			op_free(ops);
			ops = next;
		}
		if (stop) {
			break;
		}
		target *t;
		while ((t = due_target(dsi_dueheap_top(&c->heap))) != NULL && t->due.at <= now
		    && (c->inflight < c->o.max_inflight || t->ttl_ms > 0 || t->deferred)) {
			dsi_dueheap_remove(&c->heap, &t->due);
			if (t->deferred) {
				char reason[sizeof(t->deferred_reason)];
				memcpy(reason, t->deferred_reason, sizeof(reason));
				recorded(c, t, t->deferred_ok, reason);
			} else if (t->ttl_ms > 0) {
				visit_ttl(c, t);
			} else {
				start_check(c, t);
			}
		}
		int running;
		curl_multi_perform(c->multi, &running);
		CURLMsg *m;
		int      left;
		while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
			if (m->msg == CURLMSG_DONE) {
				finish_check(c, m->easy_handle, m->data.result);
			}
		}
		if (c->o.after_change != NULL) {
			c->o.after_change(
			    c->o.after_change_arg); /* publish what this round changed */
		}
		long wait = 1000;
		if ((t = due_target(dsi_dueheap_top(&c->heap))) != NULL
		    && c->inflight < c->o.max_inflight) {
			int64_t d = t->due.at - dsi_monotonic_ms();
			wait      = d < 0 ? 0 : (d < wait ? (long) d : wait);
		}
		long ct = -1;
		curl_multi_timeout(c->multi, &ct);
		if (ct >= 0 && ct < wait) {
			wait = ct;
		}
		curl_multi_poll(c->multi, NULL, 0, (int) wait, NULL);
	}

	drop_targets(c);
	return NULL;
}

/* ---- life cycle ---- */

int
dsi_checker_create(
    dsi_checker **out, const dsi_checker_options *o, dsi_registry *r, const dsi_log *log)
{
	dsi_checker *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return DSC_ENOMEM;
	}
	c->o        = *o;
	c->registry = r;
	c->log      = log;
	c->nbuckets = 64;
	c->rng      = (uint64_t) dsi_monotonic_ms() * 2654435761u ^ (uintptr_t) c;
	if (c->rng == 0) {
		c->rng = 88172645463325252ull;
	}
	pthread_mutex_init(&c->mtx, NULL);
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	c->multi   = curl_multi_init();
	c->share   = curl_share_init();
	if (c->buckets == NULL || c->multi == NULL || c->share == NULL) {
		dsi_checker_destroy(c);
		return DSC_ENOMEM;
	}
	/*
	 * Debian's libcurl resolves with one thread per lookup; sharing the DNS
	 * cache keeps 10,000 checks of one host from resolving 10,000 times.
	 * Only this thread uses the handles, so the share needs no lock.
	 */
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	*out = c;
	return 0;
}

int
dsi_checker_start(dsi_checker *c)
{
	if (pthread_create(&c->thread, NULL, checker_main, c) != 0) {
		return DSC_ENOMEM;
	}
	c->started = true;
	return 0;
}

void
dsi_checker_stop(dsi_checker *c)
{
	if (c == NULL || !c->started) {
		return;
	}
	pthread_mutex_lock(&c->mtx);
	c->stop = true;
	pthread_mutex_unlock(&c->mtx);
	curl_multi_wakeup(c->multi);
	pthread_join(c->thread, NULL);
	c->started = false;
}

void
dsi_checker_destroy(dsi_checker *c)
{
	if (c == NULL) {
		return;
	}
	dsi_checker_stop(c);
	drop_targets(c);
	while (c->in_head != NULL) {
		op *next = c->in_head->next;
		op_free(c->in_head);
		c->in_head = next;
	}
	if (c->multi != NULL) {
		curl_multi_cleanup(c->multi);
	}
	if (c->share != NULL) {
		curl_share_cleanup(c->share);
	}
	free(c->buckets);
	dsi_dueheap_free(&c->heap);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}
