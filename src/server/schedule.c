/* The checker's schedule: lanes, slots, backoff and the due rate. */
#include "server/schedule.h"

#include <stddef.h>
#include <stdio.h>

#include "common/container_of.h"

static dsi_sched_item *
item_of_due(dsi_due *d)
{
	return DSI_CONTAINER_OF(d, dsi_sched_item, due);
}

static dsi_sched_item *
item_of_reap(dsi_due *d)
{
	return DSI_CONTAINER_OF(d, dsi_sched_item, reap);
}

static bool
before(const dsi_due *a, const dsi_due *b)
{
	return b == NULL || (a != NULL && a->at <= b->at);
}

void
dsi_sched_init(dsi_sched *s, int interval_ms, int timeout_ms, int max_inflight, uint64_t seed)
{
	*s = (dsi_sched) { 0 };
	dsi_sched_set(s, interval_ms, timeout_ms, max_inflight);
	s->rng = seed != 0 ? seed : 88172645463325252ull;
}

void
dsi_sched_set(dsi_sched *s, int interval_ms, int timeout_ms, int max_inflight)
{
	s->interval_ms  = interval_ms > 0 ? interval_ms : 1;
	s->timeout_ms   = timeout_ms > 0 ? timeout_ms : 1;
	s->max_inflight = max_inflight > 0 ? max_inflight : 1;
	s->suspect_max  = s->max_inflight / 2 > 0 ? s->max_inflight / 2 : 1;
}

void
dsi_sched_free(dsi_sched *s)
{
	for (int i = 0; i < DSI_LANE_COUNT; i++) {
		dsi_dueheap_free(&s->heap[i]);
	}
	dsi_dueheap_free(&s->reaps);
	for (int i = 0; i < DSI_LANE_COUNT; i++) {
		s->inflight[i] = 0;
	}
	s->due_per_ks = 0;
}

void
dsi_sched_item_init(dsi_sched_item *it)
{
	*it          = (dsi_sched_item) { 0 };
	it->due.idx  = DSI_DUE_NONE;
	it->reap.idx = DSI_DUE_NONE;
}

/* Counts the item at period_ms (0: not at all) in the due rate. */
static void
set_period(dsi_sched *s, dsi_sched_item *it, int64_t period_ms)
{
	if (it->period_ms > 0) {
		s->due_per_ks -= 1000000 / it->period_ms;
	}
	it->period_ms = period_ms;
	if (period_ms > 0) {
		s->due_per_ks += 1000000 / period_ms;
	}
}

bool
dsi_sched_queue(dsi_sched *s, dsi_sched_item *it, bool timer, int64_t at)
{
	dsi_dueheap_remove(&s->heap[it->lane], &it->due);
	if (timer) {
		it->lane = DSI_LANE_TIMERS;
		set_period(s, it, 0);
	} else {
		it->lane = it->timeouts > 0 ? DSI_LANE_SUSPECT : DSI_LANE_CHECKS;
		if (it->period_ms == 0) {
			set_period(s, it, (int64_t) s->interval_ms << it->backoff);
		}
	}
	return dsi_dueheap_push(&s->heap[it->lane], &it->due, at);
}

bool
dsi_sched_reap_at(dsi_sched *s, dsi_sched_item *it, int64_t at)
{
	dsi_dueheap_remove(&s->reaps, &it->reap);
	return dsi_dueheap_push(&s->reaps, &it->reap, at);
}

bool
dsi_sched_reap_queued(const dsi_sched_item *it)
{
	return it->reap.idx != DSI_DUE_NONE;
}

void
dsi_sched_forget(dsi_sched *s, dsi_sched_item *it)
{
	dsi_dueheap_remove(&s->heap[it->lane], &it->due);
	dsi_dueheap_remove(&s->reaps, &it->reap);
	set_period(s, it, 0);
}

dsi_sched_item *
dsi_sched_next_timer(dsi_sched *s, int64_t now, bool *reap)
{
	dsi_due *ttl = dsi_dueheap_top(&s->heap[DSI_LANE_TIMERS]);
	dsi_due *rp  = dsi_dueheap_top(&s->reaps);
	*reap        = !before(ttl, rp);
	dsi_due *d   = *reap ? rp : ttl;
	if (d == NULL || d->at > now) {
		return NULL;
	}
	dsi_dueheap_remove(*reap ? &s->reaps : &s->heap[DSI_LANE_TIMERS], d);
	return *reap ? item_of_reap(d) : item_of_due(d);
}

static int
slots_free(const dsi_sched *s, dsi_sched_lane lane)
{
	int total = s->inflight[DSI_LANE_CHECKS] + s->inflight[DSI_LANE_SUSPECT];
	int free  = s->max_inflight - total;
	if (lane == DSI_LANE_SUSPECT && s->suspect_max - s->inflight[lane] < free) {
		free = s->suspect_max - s->inflight[lane];
	}
	return free;
}

/* The check lane whose earliest entry is due first and has a slot, or DSI_LANE_TIMERS. */
static dsi_sched_lane
ready_lane(const dsi_sched *s, int64_t *at)
{
	dsi_sched_lane best = DSI_LANE_TIMERS;
	for (dsi_sched_lane l = DSI_LANE_CHECKS; l <= DSI_LANE_SUSPECT; l++) {
		dsi_due *d = dsi_dueheap_top(&s->heap[l]);
		if (d != NULL && slots_free(s, l) > 0 && (best == DSI_LANE_TIMERS || d->at < *at)) {
			best = l;
			*at  = d->at;
		}
	}
	return best;
}

dsi_sched_item *
dsi_sched_next_check(dsi_sched *s, int64_t now)
{
	int64_t        at   = 0;
	dsi_sched_lane lane = ready_lane(s, &at);
	if (lane == DSI_LANE_TIMERS || at > now) {
		return NULL;
	}
	dsi_due *d = dsi_dueheap_top(&s->heap[lane]);
	dsi_dueheap_remove(&s->heap[lane], d);
	dsi_sched_item *it = item_of_due(d);
	it->running        = true;
	s->inflight[lane]++;
	return it;
}

static uint64_t
rand_next(dsi_sched *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

/* period * [lo, hi) percent, so checks do not fire in lockstep. */
static int64_t
jittered(dsi_sched *s, int64_t period, int lo_pct, int hi_pct)
{
	int64_t span = period * (hi_pct - lo_pct) / 100;
	int64_t off  = span > 0 ? (int64_t) (rand_next(s) % (uint64_t) span) : 0;
	return period * lo_pct / 100 + off;
}

int64_t
dsi_sched_done(dsi_sched *s, dsi_sched_item *it, dsi_sched_outcome o, bool unhealthy)
{
	if (it->running) {
		s->inflight[it->lane]--;
		it->running = false;
	}
	if (o == DSI_SCHED_ANSWERED) {
		it->timeouts = 0;
		it->backoff  = 0;
	} else if (o == DSI_SCHED_TIMED_OUT) {
		if (it->timeouts < UINT16_MAX) {
			it->timeouts++;
		}
		/* Backing off never delays a fall: only targets already UNHEALTHY slow down. */
		if (unhealthy && (1 << (it->backoff + 1)) <= DSI_SCHED_BACKOFF_MAX) {
			it->backoff++;
		} else if (!unhealthy) {
			it->backoff = 0;
		}
	}
	set_period(s, it, (int64_t) s->interval_ms << it->backoff);
	/* The first reschedule spreads a burst of registrations over the interval. */
	int64_t delay = it->spread ? jittered(s, it->period_ms, 90, 110)
	                           : jittered(s, it->period_ms, 50, 150);
	it->spread    = true;
	return delay > 0 ? delay : 1;
}

int64_t
dsi_sched_wait_ms(const dsi_sched *s, int64_t now, int64_t cap_ms)
{
	int64_t  wait = cap_ms, at = 0;
	dsi_due *ttl = dsi_dueheap_top(&s->heap[DSI_LANE_TIMERS]);
	dsi_due *rp  = dsi_dueheap_top(&s->reaps);
	dsi_due *t   = before(ttl, rp) ? ttl : rp;
	if (t != NULL && t->at - now < wait) {
		wait = t->at - now;
	}
	if (ready_lane(s, &at) != DSI_LANE_TIMERS && at - now < wait) {
		wait = at - now;
	}
	return wait > 0 ? wait : 0;
}

bool
dsi_sched_overloaded(const dsi_sched *s, int64_t now)
{
	bool waiting = false;
	for (dsi_sched_lane l = DSI_LANE_CHECKS; l <= DSI_LANE_SUSPECT; l++) {
		dsi_due *d = dsi_dueheap_top(&s->heap[l]);
		waiting    = waiting || (d != NULL && d->at <= now && slots_free(s, l) <= 0);
	}
	return waiting && dsi_sched_due_per_s(s) > dsi_sched_capacity_per_s(s);
}

double
dsi_sched_due_per_s(const dsi_sched *s)
{
	return (double) s->due_per_ks / 1000.0;
}

double
dsi_sched_capacity_per_s(const dsi_sched *s)
{
	return (double) s->max_inflight * 1000.0 / (double) s->timeout_ms;
}

const char *
dsi_sched_overload_text(const dsi_sched *s, char *buf, size_t len)
{
	snprintf(buf, len,
	    "health checks are saturated: %.1f checks/s are due, and %d slots finish %.1f/s "
	    "when checks time out (--max-checks / --health-timeout); targets that keep timing "
	    "out hold at most %d slots and back off to %d intervals (docs/health.md)",
	    dsi_sched_due_per_s(s), s->max_inflight, dsi_sched_capacity_per_s(s), s->suspect_max,
	    DSI_SCHED_BACKOFF_MAX);
	return buf;
}
