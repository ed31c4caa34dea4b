/*
 * When each health check runs: the checker's schedule, apart from curl and
 * the registry. Queues on due time (server/dueheap.h):
 *
 *   timers   TTL expiry looks, results waiting for the store, and (a queue
 *            of their own) --deregister-after looks; they need no check
 *            slot and never wait behind checks.
 *   checks   polled targets whose last check did not time out.
 *   suspect  polled targets whose last check timed out; they may hold at
 *            most half the slots (at least one), so the rest stay free for
 *            the targets that answer.
 *
 * An UNHEALTHY target that keeps timing out is also checked less often:
 * its period doubles with each further timeout, up to DSI_SCHED_BACKOFF_MAX
 * intervals, and any answer puts it back on its interval. docs/health.md
 * says what this guarantees. One owner thread; nothing here locks.
 */
#ifndef DSI_SCHEDULE_H
#define DSI_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/dueheap.h"

#define DSI_SCHED_BACKOFF_MAX 4 /* intervals between checks of a hung UNHEALTHY target, at most */

typedef enum dsi_sched_lane {
	DSI_LANE_TIMERS,
	DSI_LANE_CHECKS,
	DSI_LANE_SUSPECT,
	DSI_LANE_COUNT,
} dsi_sched_lane;

/* How a check ended, as far as its schedule cares. */
typedef enum dsi_sched_outcome {
	DSI_SCHED_ANSWERED,  /* a verdict, pass or fail, that did not wait out the timeout */
	DSI_SCHED_TIMED_OUT, /* the target held the slot for the whole timeout */
	DSI_SCHED_NOT_RUN,   /* no verdict (the server's own problem): nothing changes */
} dsi_sched_outcome;

/* One target's place in the schedule; embedded in the checker's target, so kept small. */
typedef struct dsi_sched_item {
	dsi_due  due;       /* its next check, or TTL look */
	dsi_due  reap;      /* its next --deregister-after look */
	int64_t  period_ms; /* its current period, counted in the due rate; 0: none */
	uint16_t timeouts;  /* checks in a row that timed out (saturates) */
	uint8_t  lane;      /* a dsi_sched_lane: where due is queued, or whose slots it holds */
	uint8_t  backoff;   /* its period is interval << backoff */
	bool     running;   /* its check holds a slot */
	bool     spread;    /* the first reschedule has been randomized */
} dsi_sched_item;

typedef struct dsi_sched {
	int         interval_ms, timeout_ms;
	int         max_inflight; /* slots in all */
	int         suspect_max;  /* slots the suspect lane may hold */
	int         inflight[DSI_LANE_COUNT];
	int64_t     due_per_ks; /* checks due per 1000 s, at every polled target's period */
	uint64_t    rng;
	dsi_dueheap heap[DSI_LANE_COUNT]; /* on each item's due */
	dsi_dueheap reaps;                /* on each item's reap */
} dsi_sched;

void dsi_sched_init(dsi_sched *s, int interval_ms, int timeout_ms, int max_inflight, uint64_t seed);

/*
 * New settings (a reload): each item keeps its period until its next
 * reschedule, and checks already holding slots keep them.
 */
void dsi_sched_set(dsi_sched *s, int interval_ms, int timeout_ms, int max_inflight);

/* Forgets every item (the items are the caller's) and frees the queues. */
void dsi_sched_free(dsi_sched *s);

/* Sets up an item that is in no queue. */
void dsi_sched_item_init(dsi_sched_item *it);

/*
 * (Re)queues the item's next look at time at: on the timers when it needs
 * no check (timer true: a TTL look, a deferred result), else in its check
 * lane. false: out of memory, the
 * item is in no queue.
 */
bool dsi_sched_queue(dsi_sched *s, dsi_sched_item *it, bool timer, int64_t at);

/* (Re)queues the item's next --deregister-after look at time at (false: out of memory). */
bool dsi_sched_reap_at(dsi_sched *s, dsi_sched_item *it, int64_t at);

/* Whether a --deregister-after look is queued. */
bool dsi_sched_reap_queued(const dsi_sched_item *it);

/*
 * Takes the item out of every queue and the due rate. A running check
 * keeps its slot until dsi_sched_done: its transfer still runs.
 */
void dsi_sched_forget(dsi_sched *s, dsi_sched_item *it);

/*
 * Pops the earliest timer due by now, or NULL; *reap tells which of its
 * entries it was (the --deregister-after look, or the TTL look).
 */
dsi_sched_item *dsi_sched_next_timer(dsi_sched *s, int64_t now, bool *reap);

/*
 * Pops the earliest check due by now whose lane has a free slot, and
 * gives it the slot (the caller starts it, or hands the slot back with
 * dsi_sched_done). NULL when none is due or no slot is free.
 */
dsi_sched_item *dsi_sched_next_check(dsi_sched *s, int64_t now);

/*
 * Frees the slot of a check that ended (or never started: NOT_RUN) and
 * returns the delay to its next check, from the outcome and whether the
 * target is now UNHEALTHY. The caller queues it.
 */
int64_t dsi_sched_done(dsi_sched *s, dsi_sched_item *it, dsi_sched_outcome o, bool unhealthy);

/* How long the owner may sleep from now before something is due (at most cap_ms). */
int64_t dsi_sched_wait_ms(const dsi_sched *s, int64_t now, int64_t cap_ms);

/*
 * Overload: a check is due and waits for a slot, and the checks due per
 * second exceed what the slots finish when every check times out
 * (max_inflight / timeout). The owner warns (rate-limited).
 */
bool dsi_sched_overloaded(const dsi_sched *s, int64_t now);

/* The overload warning, with the figures and what the schedule does about it; returns buf. */
const char *dsi_sched_overload_text(const dsi_sched *s, char *buf, size_t len);

double dsi_sched_due_per_s(const dsi_sched *s);      /* at every polled target's period */
double dsi_sched_capacity_per_s(const dsi_sched *s); /* max_inflight / timeout */

#endif
