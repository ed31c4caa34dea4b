/*
 * Health checker. The thread owns every target (a hash table for lookup,
 * its schedule on due time) and one curl multi handle; other threads only
 * append to its inbox and wake it with curl_multi_wakeup. A check's
 * timeout runs from the moment it is handed to curl, and at most
 * max_inflight run at once; server/schedule.h keeps TTL expiry and
 * --deregister-after off the check slots and hung targets off most of
 * them (docs/health.md). A check this server could not run (no
 * descriptor, no memory) is no verdict: the target's health stands.
 */
#include "server/checker.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/container_of.h"
#include "common/error.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/inbox.h"
#include "server/probe.h"
#include "server/schedule.h"
#include "server/targets.h"

#define LOCAL_LOG_MS    10000 /* at most one line this often about checks not run */
#define OVERLOAD_LOG_MS 60000 /* at most one overload warning this often */
#define DEFER_MS        20    /* a result the store has no revision for yet is retried this soon */

typedef dsi_target target; /* server/targets.h */

struct dsi_checker {
	dsi_checker_options o;
	dsi_check_http      http; /* built from o.http; every probe borrows it */
	dsi_registry       *registry;
	const dsi_log      *log;
	CURLM              *multi;
	CURLSH             *share;
	pthread_t           thread;
	bool                started;

	dsi_inbox inbox; /* registry changes and stop, from any thread */
	/* A reload's settings waiting for the thread; guarded by set_mtx. */
	pthread_mutex_t      set_mtx;
	dsi_checker_settings set;
	bool                 set_pending;

	/* Below: the checker thread's alone. */
	dsi_targets targets;
	dsi_sched   sched;
	int64_t     local_logged_ms; /* when checks not run were last logged; 0: never */
	int64_t     overload_logged_ms;

	uint64_t local_errors; /* checks not run for our own reasons; atomic, any thread reads */
};

/* ---- pure helpers ---- */

dsc_health
dsi_check_transition(
    dsc_health state, bool ok, uint16_t *ok_run, uint16_t *fail_run, int rise, int fall)
{
	uint16_t *run = ok ? ok_run : fail_run;
	if (*run < UINT16_MAX) {
		(*run)++;
	}
	*(ok ? fail_run : ok_run) = 0;
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

/* ---- the schedule, on due time ---- */

static target *
target_of(dsi_sched_item *it)
{
	return DSI_CONTAINER_OF(it, target, s);
}

/* Its next check, or TTL look, or deferred result, at due: only checks need a slot. */
static void
schedule(dsi_checker *c, target *t, int64_t due)
{
	if (!dsi_sched_queue(&c->sched, &t->s, t->ttl_ms > 0 || t->deferred, due)) {
		dsi_error(
		    c->log, "out of memory: %s %s is no longer checked", t->service, t->endpoint);
	}
}

/* Its next --deregister-after look, after ms: that needs no check slot either. */
static void
schedule_reap(dsi_checker *c, target *t, int64_t ms)
{
	if (c->o.deregister_after_ms > 0 && t->ttl_ms == 0
	    && !dsi_sched_reap_at(&c->sched, &t->s, dsi_monotonic_ms() + (ms > 0 ? ms : 1))) {
		dsi_error(c->log, "out of memory: %s is not removed when unhealthy", t->service);
	}
}

/* ---- targets ---- */

static target *
target_find(dsi_checker *c, const char *svc, const char *ep)
{
	return dsi_targets_find(&c->targets, svc, ep);
}

static void
apply_upsert(dsi_checker *c, dsi_inbox_op *o, int64_t now)
{
	char    url[DSI_CHECK_URL_MAX];
	bool    connect_only = false;
	target *t            = target_find(c, o->service, o->endpoint);

	if (dsi_check_url(o->endpoint, o->health_path, url, sizeof(url), &connect_only) != 0) {
		dsi_warn(c->log, "cannot build a check URL for %s; not checked", o->service);
		return;
	}
	if (t == NULL) {
		if ((t = dsi_targets_insert(&c->targets, o->service, o->endpoint)) == NULL) {
			dsi_error(c->log, "out of memory: %s is not checked", o->service);
			return;
		}
		t->state = o->health;
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
	if (t->s.due.idx == DSI_DUE_NONE || was_ttl != (t->ttl_ms > 0)) {
		/* New, or switched between polled and TTL: polled ones are checked at once. */
		schedule(c, t, t->ttl_ms > 0 ? now + t->ttl_ms : now);
	}
	if (t->state == DSC_HEALTH_UNHEALTHY && !dsi_sched_reap_queued(&t->s)) {
		schedule_reap(c, t, c->o.interval_ms); /* UNHEALTHY already, say after a restart */
	}
}

static void
apply_remove(dsi_checker *c, dsi_inbox_op *o)
{
	target *t = target_find(c, o->service, o->endpoint);
	if (t == NULL) {
		return;
	}
	dsi_targets_remove(&c->targets, t);
	dsi_sched_forget(&c->sched, &t->s);
	if (t->easy != NULL) {
		t->gone = true; /* freed when its check ends */
	} else {
		dsi_target_free(t);
	}
}

void
dsi_checker_notify(dsi_checker *c, const dsi_change *ch)
{
	if (dsi_inbox_post(&c->inbox, ch)) {
		curl_multi_wakeup(c->multi);
	}
}

/* ---- checks ---- */

/* Returns false when the result is deferred: the store has no revision for it yet. */
/* Logs a change of this checker's verdict. */
static void
log_transition(dsi_checker *c, const target *t, dsc_health prev, const char *reason)
{
	char          esc[96];
	dsi_log_field f[] = { DSI_LOG_STR("event", "health"), DSI_LOG_STR("service", t->service),
		DSI_LOG_STR("endpoint", t->endpoint),
		DSI_LOG_STR("health", dsi_health_name(t->state)), DSI_LOG_STR("reason", reason) };
	dsi_logf_fields(c->log, DSI_LOG_INFO, f, 5, "health %s %s: %s -> %s (%s)", t->service,
	    dsi_text_escape(t->endpoint, esc, sizeof(esc)), dsi_health_name(prev),
	    dsi_health_name(t->state), reason);
}

/* Cluster mode: the verdict goes to the writer whenever the registry does not have it. */
static bool
record_submitted(dsi_checker *c, target *t, bool ok, const char *reason)
{
	dsc_health prev = t->state, stored = DSC_HEALTH_UNKNOWN;
	bool       healthy;
	t->state = (uint8_t) dsi_check_transition(
	    (dsc_health) t->state, ok, &t->ok_run, &t->fail_run, c->o.rise, c->o.fall);
	if (dsi_registry_note_check(
	        c->registry, t->service, t->endpoint, dsi_wall_ms(), ok ? NULL : reason)
	        != 0
	    || dsi_registry_is_healthy(
	           c->registry, t->service, t->endpoint, &healthy, &stored, NULL)
	        != 0) {
		return true; /* deregistered meanwhile; its removal is in the inbox */
	}
	if (t->state != stored) {
		c->o.submit_health(c->o.store_arg, t->service, t->endpoint, t->state, reason);
	}
	if (t->state != prev) {
		log_transition(c, t, prev, reason);
	}
	return true;
}

static bool
record(dsi_checker *c, target *t, bool ok, const char *reason)
{
	if (c->o.submit_health != NULL) {
		return record_submitted(c, t, ok, reason);
	}
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
	t->state        = (uint8_t) dsi_check_transition(
	           (dsc_health) t->state, ok, &t->ok_run, &t->fail_run, c->o.rise, c->o.fall);
	int rv = dsi_registry_set_health(
	    c->registry, t->service, t->endpoint, t->state, now, ok ? NULL : reason, reason, NULL);
	if (c->o.release != NULL) {
		c->o.release(c->o.store_arg);
	}
	if (rv != 0) {
		return true; /* deregistered meanwhile; its removal is in the inbox */
	}
	if (t->state != prev) {
		log_transition(c, t, prev, reason);
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

/*
 * A check this server could not run: no verdict, so the health and the run
 * counters stand. Counted, logged now and then, and tried again in one
 * interval.
 */
static void
not_judged(dsi_checker *c, target *t, const char *reason)
{
	char     esc[96];
	int64_t  now  = dsi_monotonic_ms();
	uint64_t n    = __atomic_add_fetch(&c->local_errors, 1, __ATOMIC_RELAXED);
	t->not_judged = true;
	if (c->local_logged_ms == 0 || now - c->local_logged_ms >= LOCAL_LOG_MS) {
		c->local_logged_ms = now;
		dsi_warn(c->log,
		    "health check of %s %s not run: %s; the server's own problem, not the "
		    "target's: its health stays %s (%llu checks not run so far)",
		    t->service, dsi_text_escape(t->endpoint, esc, sizeof(esc)), reason,
		    dsi_health_name(t->state), (unsigned long long) n);
	}
	int64_t delay
	    = dsi_sched_done(&c->sched, &t->s, DSI_SCHED_NOT_RUN, t->state == DSC_HEALTH_UNHEALTHY);
	schedule(c, t, now + delay);
}

/*
 * Cluster mode: another node checks t. Its verdict is the registry's, which
 * this checker takes over, so that if t comes back to this node its
 * transitions start from the state the cluster has.
 */
static void
skip_check(dsi_checker *c, target *t)
{
	bool       healthy;
	dsc_health stored = DSC_HEALTH_UNKNOWN;
	dsi_registry_is_healthy(c->registry, t->service, t->endpoint, &healthy, &stored, NULL);
	t->state    = (uint8_t) stored;
	t->ok_run   = 0;
	t->fail_run = 0;
	int64_t delay
	    = dsi_sched_done(&c->sched, &t->s, DSI_SCHED_ANSWERED, stored == DSC_HEALTH_UNHEALTHY);
	schedule(c, t, dsi_monotonic_ms() + delay); /* ownership is looked at again then */
}

static void
start_check(dsi_checker *c, target *t)
{
	if (c->o.owns != NULL && !c->o.owns(c->o.store_arg, t->service, t->endpoint)) {
		skip_check(c, t);
		return;
	}
	CURL *e = dsi_probe_start(
	    &t->probe, t->url, c->o.timeout_ms, c->share, c->o.policy, &c->http, t);
	if (e == NULL) {
		not_judged(c, t, "curl has no memory for a transfer");
		return;
	}
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		not_judged(c, t, "curl could not start the transfer");
		return;
	}
	t->easy = e;
}

/* After a verdict: the next check (backed off if it keeps timing out), and the reap look. */
static void
rescheduled(dsi_checker *c, target *t, dsi_probe_verdict v, dsc_health prev)
{
	bool    down  = t->state == DSC_HEALTH_UNHEALTHY;
	int64_t delay = dsi_sched_done(&c->sched, &t->s,
	    v == DSI_PROBE_TIMED_OUT ? DSI_SCHED_TIMED_OUT : DSI_SCHED_ANSWERED, down);
	if (target_find(c, t->service, t->endpoint) == t) {
		schedule(c, t, dsi_monotonic_ms() + delay);
		if (down && prev != DSC_HEALTH_UNHEALTHY) {
			schedule_reap(c, t, c->o.deregister_after_ms);
		}
	}
}

static void recorded(dsi_checker *c, target *t, dsi_probe_verdict v, const char *reason);

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
	if (t->gone) {
		dsi_sched_done(&c->sched, &t->s, DSI_SCHED_NOT_RUN, false); /* frees the slot */
		dsi_target_free(t);
		return;
	}
	dsi_probe_ended(&t->probe, res);
	dsi_probe_verdict v
	    = dsi_probe_result(&t->probe, res, code, c->o.timeout_ms, reason, sizeof(reason));
	if (v == DSI_PROBE_LOCAL_ERROR) {
		not_judged(c, t, reason); /* not a check of the target: no metric either */
		return;
	}
	dsi_metrics_check(c->o.metrics, v == DSI_PROBE_OK, (int64_t) took_us * 1000);
	t->not_judged = false;
	recorded(c, t, v, reason);
}

/*
 * Records a verdict, or defers it (the store has no revision for it yet:
 * the slot is freed and the result retried on a timer), then schedules
 * what follows.
 */
static void
recorded(dsi_checker *c, target *t, dsi_probe_verdict v, const char *reason)
{
	dsc_health prev = t->state;
	t->deferred     = !record(c, t, v == DSI_PROBE_OK, reason);
	if (t->deferred) {
		t->deferred_verdict = (uint8_t) v;
		free(t->deferred_reason);
		t->deferred_reason = strdup(reason); /* NULL: a plain reason is recorded later */
		dsi_sched_done(&c->sched, &t->s, DSI_SCHED_NOT_RUN, false);
		schedule(c, t, dsi_monotonic_ms() + DEFER_MS);
		return;
	}
	if (t->state == DSC_HEALTH_UNHEALTHY) {
		reap(c, t);
	}
	rescheduled(c, t, v, prev);
}

/*
 * The --deregister-after look of an UNHEALTHY polled target, on its own
 * timer. While its checks cannot run (our problem) it is not removed: the
 * last verdict may be stale.
 */
static void
visit_reap(dsi_checker *c, target *t)
{
	if (t->ttl_ms > 0 || t->state != DSC_HEALTH_UNHEALTHY) {
		return; /* healed; TTL targets are reaped on their TTL looks */
	}
	if (!t->not_judged) {
		reap(c, t);
	}
	int step = c->o.interval_ms < c->o.deregister_after_ms ? c->o.interval_ms
	                                                       : c->o.deregister_after_ms;
	schedule_reap(c, t, step); /* until it is gone or heals */
}

/* At most once a minute: checks wait for slots, and more are due than the slots can take. */
static void
warn_overload(dsi_checker *c, int64_t now)
{
	char text[400];
	if ((c->overload_logged_ms == 0 || now - c->overload_logged_ms >= OVERLOAD_LOG_MS)
	    && dsi_sched_overloaded(&c->sched, now)) {
		c->overload_logged_ms = now;
		dsi_warn(c->log, "%s", dsi_sched_overload_text(&c->sched, text, sizeof(text)));
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
	if (target_find(c, t->service, t->endpoint) == t) {
		int64_t delay = next - wall;
		schedule(c, t, dsi_monotonic_ms() + (delay > 0 ? delay : 1));
	}
}

/* Hung checks are dropped here: removing a handle just closes its socket. */
static void
drop_targets(dsi_checker *c)
{
	for (target *t; (t = dsi_targets_pop(&c->targets)) != NULL;) {
		if (t->easy != NULL) {
			curl_multi_remove_handle(c->multi, t->easy);
			curl_easy_cleanup(t->easy);
		}
		dsi_target_free(t);
	}
	dsi_sched_free(&c->sched);
}

void
dsi_checker_reconfigure(dsi_checker *c, const dsi_checker_settings *s)
{
	pthread_mutex_lock(&c->set_mtx);
	c->set         = *s;
	c->set_pending = true;
	pthread_mutex_unlock(&c->set_mtx);
	curl_multi_wakeup(c->multi);
}

/*
 * A shorter interval (a reload): no polled target waits for the old one;
 * those due later than one new interval are spread over it.
 */
static void
pull_in_checks(dsi_checker *c, int interval_ms)
{
	int64_t       now = dsi_monotonic_ms();
	dsi_hash_iter it;
	dsi_hash_iter_init(&it, &c->targets.table);
	for (dsi_hash_node *n; (n = dsi_hash_iter_next(&it)) != NULL;) {
		target *t     = DSI_CONTAINER_OF(n, target, node);
		int64_t limit = now + ((int64_t) interval_ms << t->s.backoff);
		if (t->ttl_ms == 0 && t->easy == NULL && !t->deferred
		    && t->s.due.idx != DSI_DUE_NONE && t->s.lane != DSI_LANE_TIMERS
		    && t->s.due.at > limit) {
			schedule(
			    c, t, now + (int64_t) ((uintptr_t) t / 64 % (uintptr_t) interval_ms));
		}
	}
}

/* On the checker's thread: takes a reload's settings, if any. */
static void
take_settings(dsi_checker *c)
{
	pthread_mutex_lock(&c->set_mtx);
	bool                 pending = c->set_pending;
	dsi_checker_settings s       = c->set;
	c->set_pending               = false;
	pthread_mutex_unlock(&c->set_mtx);
	if (pending) {
		if (s.interval_ms > 0 && s.interval_ms < c->o.interval_ms) {
			pull_in_checks(c, s.interval_ms);
		}
		c->o.interval_ms         = s.interval_ms;
		c->o.timeout_ms          = s.timeout_ms;
		c->o.rise                = s.rise;
		c->o.fall                = s.fall;
		c->o.max_inflight        = s.max_inflight;
		c->o.deregister_after_ms = s.deregister_after_ms;
		dsi_sched_set(&c->sched, s.interval_ms, s.timeout_ms, s.max_inflight);
	}
}

static void *
checker_main(void *arg)
{
	dsi_checker *c = arg;

	for (;;) {
		bool          stop;
		dsi_inbox_op *ops = dsi_inbox_take(&c->inbox, &stop);
		take_settings(c);

		int64_t now = dsi_monotonic_ms();
		while (ops != NULL) {
			dsi_inbox_op *next = dsi_inbox_op_next(ops);
			if (ops->remove) {
				apply_remove(c, ops);
			} else {
				apply_upsert(c, ops, now);
			}
			dsi_inbox_op_free(ops);
			ops = next;
		}
		if (stop) {
			break;
		}
		/* Timers first, and whatever the slots: they never wait behind checks. */
		dsi_sched_item *it;
		bool            reap_look;
		while ((it = dsi_sched_next_timer(&c->sched, now, &reap_look)) != NULL) {
			target *t = target_of(it);
			if (reap_look) {
				visit_reap(c, t);
			} else if (t->deferred) {
				char *reason       = t->deferred_reason;
				t->deferred_reason = NULL;
				recorded(c, t, (dsi_probe_verdict) t->deferred_verdict,
				    reason != NULL ? reason : "check result (recorded late)");
				free(reason);
			} else {
				visit_ttl(c, t);
			}
		}
		while ((it = dsi_sched_next_check(&c->sched, now)) != NULL) {
			start_check(c, target_of(it));
		}
		warn_overload(c, now);
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
		long wait = (long) dsi_sched_wait_ms(&c->sched, dsi_monotonic_ms(), 1000);
		long ct   = -1;
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
	dsi_sched_init(&c->sched, o->interval_ms, o->timeout_ms, o->max_inflight,
	    (uint64_t) dsi_monotonic_ms() * 2654435761u ^ (uintptr_t) c);
	dsi_inbox_init(&c->inbox);
	pthread_mutex_init(&c->set_mtx, NULL);
	char why[256];
	int  rv  = dsi_targets_init(&c->targets);
	c->multi = curl_multi_init();
	c->share = curl_share_init();
	if (rv != 0 || c->multi == NULL || c->share == NULL) {
		dsi_checker_destroy(c);
		return DSC_ENOMEM;
	}
	if ((rv = dsi_check_http_build(&c->http, &o->http, why, sizeof(why))) != 0) {
		dsi_error(log, "health checks: %s", why); /* never a header value */
		dsi_checker_destroy(c);
		return rv;
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

uint64_t
dsi_checker_local_errors(dsi_checker *c)
{
	return __atomic_load_n(&c->local_errors, __ATOMIC_RELAXED);
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
	dsi_inbox_stop(&c->inbox);
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
	if (c->multi != NULL) {
		curl_multi_cleanup(c->multi);
	}
	if (c->share != NULL) {
		curl_share_cleanup(c->share);
	}
	dsi_targets_free(&c->targets);
	dsi_sched_free(&c->sched);
	dsi_inbox_destroy(&c->inbox);
	dsi_check_http_free(&c->http);
	pthread_mutex_destroy(&c->set_mtx);
	free(c);
}
