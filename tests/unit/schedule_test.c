/* The checker's schedule: lanes, the suspect budget, backoff, timers and the due rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/schedule.h"

#define INTERVAL 1000
#define TIMEOUT  500

/* Queues n polled items due at 0, in the lane their history puts them. */
static void
queue_all(dsi_sched *s, dsi_sched_item *v, int n, int timeouts)
{
	for (int i = 0; i < n; i++) {
		dsi_sched_item_init(&v[i]);
		v[i].timeouts = timeouts;
		assert_true(dsi_sched_queue(s, &v[i], false, 0));
	}
}

/* Starts every check a slot is free for at now; returns how many. */
static int
start_all(dsi_sched *s, int64_t now)
{
	int n = 0;
	while (dsi_sched_next_check(s, now) != NULL) {
		n++;
	}
	return n;
}

static void
test_slots_and_the_suspect_budget(void **state)
{
	dsi_sched      s;
	dsi_sched_item hung[40], live[4];
	(void) state;
	dsi_sched_init(&s, INTERVAL, TIMEOUT, 16, 1);
	queue_all(&s, hung, 40, 1); /* every one timed out last time */
	queue_all(&s, live, 4, 0);
	/* The live ones first (due no later), then suspects up to half the slots. */
	assert_int_equal(start_all(&s, 0), 4 + 8);
	for (int i = 0; i < 4; i++) {
		assert_true(live[i].running);
	}
	/* Suspects can take no more, though slots are free: the rest wait. */
	assert_null(dsi_sched_next_check(&s, 100));
	/* A live check queued now still finds a slot. */
	assert_int_equal(dsi_sched_done(&s, &live[0], DSI_SCHED_ANSWERED, false) > 0, 1);
	assert_true(dsi_sched_queue(&s, &live[0], false, 50));
	assert_ptr_equal(dsi_sched_next_check(&s, 100), &live[0]);
	dsi_sched_free(&s);
}

static void
test_all_slots_for_answering_targets(void **state)
{
	dsi_sched      s;
	dsi_sched_item v[20];
	(void) state;
	dsi_sched_init(&s, INTERVAL, TIMEOUT, 16, 1);
	queue_all(&s, v, 20, 0);
	assert_int_equal(start_all(&s, 0), 16);
	assert_false(dsi_sched_overloaded(&s, 0)); /* 20/s due, 32/s capacity */
	dsi_sched_free(&s);
}

static void
test_backoff_only_once_unhealthy(void **state)
{
	dsi_sched      s;
	dsi_sched_item it;
	(void) state;
	dsi_sched_init(&s, INTERVAL, TIMEOUT, 16, 1);
	queue_all(&s, &it, 1, 0);
	it.spread = true; /* past the first, wider spread */
	/* Timeouts while it has not fallen yet: its interval stands. */
	assert_ptr_equal(dsi_sched_next_check(&s, 0), &it);
	int64_t d = dsi_sched_done(&s, &it, DSI_SCHED_TIMED_OUT, false);
	assert_in_range(d, 900, 1100);
	assert_int_equal(it.timeouts, 1);
	/* UNHEALTHY and still timing out: 2, then 4 intervals, and no further. */
	static const int64_t want[] = { 2000, 4000, 4000, 4000 };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_true(dsi_sched_queue(&s, &it, false, 0));
		assert_int_equal(it.lane, DSI_LANE_SUSPECT);
		assert_ptr_equal(dsi_sched_next_check(&s, 0), &it);
		d = dsi_sched_done(&s, &it, DSI_SCHED_TIMED_OUT, true);
		assert_in_range(d, want[i] * 9 / 10, want[i] * 11 / 10);
	}
	/* A check that could not run changes nothing. */
	d = dsi_sched_done(&s, &it, DSI_SCHED_NOT_RUN, true);
	assert_in_range(d, 3600, 4400);
	assert_int_equal(it.timeouts, 5);
	/* Any answer: back on its interval, in the main lane. */
	d = dsi_sched_done(&s, &it, DSI_SCHED_ANSWERED, true);
	assert_in_range(d, 900, 1100);
	assert_true(dsi_sched_queue(&s, &it, false, 0));
	assert_int_equal(it.lane, DSI_LANE_CHECKS);
	assert_int_equal(it.timeouts, 0);
	dsi_sched_free(&s);
}

static void
test_timers_need_no_slot(void **state)
{
	dsi_sched      s;
	dsi_sched_item hung[16], ttl, down;
	bool           reap;
	(void) state;
	dsi_sched_init(&s, INTERVAL, TIMEOUT, 16, 1);
	queue_all(&s, hung, 16, 0);
	assert_int_equal(start_all(&s, 0), 16); /* every slot held */
	dsi_sched_item_init(&ttl);
	dsi_sched_item_init(&down);
	assert_true(dsi_sched_queue(&s, &ttl, true, 1000));
	assert_true(dsi_sched_reap_at(&s, &down, 300));
	assert_true(dsi_sched_reap_queued(&down));
	assert_int_equal(dsi_sched_wait_ms(&s, 0, 1000), 300);
	assert_null(dsi_sched_next_timer(&s, 299, &reap));
	assert_ptr_equal(dsi_sched_next_timer(&s, 1000, &reap), &down);
	assert_true(reap);
	assert_false(dsi_sched_reap_queued(&down));
	assert_ptr_equal(dsi_sched_next_timer(&s, 1000, &reap), &ttl);
	assert_false(reap);
	assert_null(dsi_sched_next_timer(&s, 5000, &reap));
	/* TTL targets count for nothing in the due rate. */
	assert_true(dsi_sched_due_per_s(&s) > 15.9 && dsi_sched_due_per_s(&s) < 16.1);
	dsi_sched_free(&s);
}

static void
test_overload_and_forget(void **state)
{
	dsi_sched      s;
	dsi_sched_item v[40];
	(void) state;
	dsi_sched_init(&s, INTERVAL, TIMEOUT, 16, 1);
	queue_all(&s, v, 40, 0);                   /* 40/s due, 16 slots of 0.5 s: 32/s */
	assert_false(dsi_sched_overloaded(&s, 0)); /* nothing waits for a slot yet */
	assert_int_equal(start_all(&s, 0), 16);
	assert_true(dsi_sched_overloaded(&s, 0));
	assert_true(dsi_sched_capacity_per_s(&s) > 31.9 && dsi_sched_capacity_per_s(&s) < 32.1);
	/* Forgetting waiting items takes them out of the rate and the queues. */
	for (int i = 16; i < 40; i++) {
		dsi_sched_forget(&s, &v[i]);
	}
	assert_false(dsi_sched_overloaded(&s, 0));
	assert_true(dsi_sched_due_per_s(&s) > 15.9 && dsi_sched_due_per_s(&s) < 16.1);
	/* A forgotten running check keeps its slot until it ends. */
	dsi_sched_forget(&s, &v[0]);
	assert_int_equal(s.inflight[DSI_LANE_CHECKS], 16);
	dsi_sched_done(&s, &v[0], DSI_SCHED_NOT_RUN, false);
	assert_int_equal(s.inflight[DSI_LANE_CHECKS], 15);
	dsi_sched_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slots_and_the_suspect_budget),
		cmocka_unit_test(test_all_slots_for_answering_targets),
		cmocka_unit_test(test_backoff_only_once_unhealthy),
		cmocka_unit_test(test_timers_need_no_slot),
		cmocka_unit_test(test_overload_and_forget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
