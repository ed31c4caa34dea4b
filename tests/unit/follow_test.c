/*
 * Following one node of several (client/follow.c): repeats dropped by
 * revision, the rings, the two-missed-SYNCs deadline, and whether a switch
 * continues cleanly or reports a gap. Items are counted, so every path
 * frees what it was given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <discovery/discovery.h>

#include "client/follow.h"

static int live_items;

/* A test item: the revision and kind it was pushed with, to check what comes out. */
typedef struct item {
	uint64_t rev;
	bool     sync;
	int      node;
} item;

static void
item_free(void *p)
{
	live_items--;
	free(p);
}

static void
push(dsi_follow *f, int node, uint64_t conn, bool sync, uint64_t rev, uint64_t digest, int64_t now)
{
	item *it = malloc(sizeof(*it));
	assert_non_null(it);
	live_items++;
	*it              = (item) { rev, sync, node };
	dsi_follow_msg m = { .item = it, .rev = rev, .digest = digest, .sync = sync };
	m.interval_ms    = sync ? 200 : 0;
	dsi_follow_push(f, (size_t) node, conn, &m, now);
}

static void
change(dsi_follow *f, int node, uint64_t rev, int64_t now)
{
	push(f, node, 1, false, rev, rev * 7919, now); /* the same change on every node */
}

static void
sync_ev(dsi_follow *f, int node, uint64_t rev, int64_t now)
{
	push(f, node, 1, true, rev, 0, now);
}

/* Pops one message and checks it; gap is the flag it must carry. */
static void
expect(dsi_follow *f, bool sync, uint64_t rev, bool gap)
{
	dsi_follow_msg m;
	bool           g;
	assert_true(dsi_follow_pop(f, &m, &g));
	item *it = m.item;
	assert_int_equal(it->rev, rev);
	assert_int_equal(it->sync, sync);
	assert_int_equal(g, gap);
	item_free(it);
}

static void
expect_none(dsi_follow *f)
{
	dsi_follow_msg m;
	bool           g;
	assert_false(dsi_follow_pop(f, &m, &g));
}

/* Both nodes publish 1..n (node 0 first) and a SYNC; node 0's are delivered once. */
static void
lockstep(dsi_follow *f, uint64_t n, int64_t now)
{
	for (uint64_t r = 1; r <= n; r++) {
		change(f, 0, r, now);
		change(f, 1, r, now);
		expect(f, false, r, false);
		expect_none(f);
	}
	sync_ev(f, 0, n, now);
	sync_ev(f, 1, n, now);
	expect(f, true, n, false);
}

static int
setup(void **state)
{
	dsi_follow *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	live_items = 0;
	assert_int_equal(dsi_follow_init(f, 3, item_free), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	dsi_follow_fini(*state);
	free(*state);
	assert_int_equal(live_items, 0);
	return 0;
}

/* Silence for two intervals of 200 ms and the margin passes at this time after t. */
#define AFTER(t) ((t) + 2 * 200 + DSI_FOLLOW_MARGIN_MS + 1)

static void
test_repeats_dropped(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 3, 1000);
	change(f, 2, 2, 1000); /* a third node, late: nothing from it */
	expect_none(f);
	assert_int_equal(f->current, 0);
	assert_int_equal(dsi_follow_tick(f, 1100), DSI_FOLLOW_STAY);
}

static void
test_clean_switch_replays_ring(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 3, 1000);
	/* Node 0 stops; node 1 goes on. */
	change(f, 1, 4, 1100);
	change(f, 1, 5, 1200);
	sync_ev(f, 1, 5, 1300);
	expect_none(f);
	assert_true(dsi_follow_deadline(f) <= AFTER(1000));
	assert_int_equal(dsi_follow_tick(f, AFTER(1000) - 1), DSI_FOLLOW_STAY);
	assert_int_equal(dsi_follow_tick(f, AFTER(1000)), DSI_FOLLOW_CLEAN);
	assert_int_equal(f->current, 1);
	expect(f, false, 4, false);
	expect(f, false, 5, false);
	expect(f, true, 5, false);
	expect_none(f);
	assert_int_equal(f->gaps, 0);
}

static void
test_clean_switch_sync_equal(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 2, 1000);
	sync_ev(f, 1, 2, 1300); /* idle: its SYNCs carry the last revision */
	assert_int_equal(dsi_follow_tick(f, AFTER(1000)), DSI_FOLLOW_CLEAN);
	expect_none(f);
	change(f, 1, 3, AFTER(1000) + 1);
	expect(f, false, 3, false);
}

static void
test_clean_switch_behind(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 2, 1000);
	change(f, 0, 3, 1000); /* node 1 has not applied 3 yet */
	expect(f, false, 3, false);
	sync_ev(f, 1, 2, 1300);
	assert_int_equal(dsi_follow_tick(f, AFTER(1000)), DSI_FOLLOW_CLEAN);
	expect_none(f);
	change(f, 1, 3, AFTER(1000) + 1); /* a repeat */
	sync_ev(f, 1, 3, AFTER(1000) + 2);
	change(f, 1, 4, AFTER(1000) + 3);
	expect(f, true, 3, false);
	expect(f, false, 4, false);
	expect_none(f);
}

static void
test_overflowed_ring_is_a_gap(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 2, 1000);
	for (uint64_t r = 3; r <= 2 + DSI_FOLLOW_RING + 5; r++) {
		change(f, 1, r, 1100);
	}
	sync_ev(f, 1, 2 + DSI_FOLLOW_RING + 5, 1200);
	assert_int_equal(dsi_follow_tick(f, AFTER(1000)), DSI_FOLLOW_GAP);
	expect(f, true, 2 + DSI_FOLLOW_RING + 5, true);
	expect_none(f);
	assert_int_equal(f->gaps, 1);
}

static void
test_ring_starting_at_next_is_clean(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 2, 1000);
	/* The ring just full: its oldest is 3, the change after the last delivered. */
	for (uint64_t r = 3; r <= 2 + DSI_FOLLOW_RING - 1; r++) {
		change(f, 1, r, 1100);
	}
	sync_ev(f, 1, 2 + DSI_FOLLOW_RING - 1, 1200);
	assert_int_equal(f->node[1].ring.n, DSI_FOLLOW_RING);
	assert_int_equal(dsi_follow_tick(f, AFTER(1000)), DSI_FOLLOW_CLEAN);
	for (uint64_t r = 3; r <= 2 + DSI_FOLLOW_RING - 1; r++) {
		expect(f, false, r, false);
	}
	expect(f, true, 2 + DSI_FOLLOW_RING - 1, false);
	expect_none(f);
}

static void
test_other_registry_is_a_gap(void **state)
{
	dsi_follow *f = *state;
	/* Independent servers: the same revisions, different changes. */
	change(f, 0, 1, 1000);
	push(f, 1, 1, false, 1, 12345, 1000);
	sync_ev(f, 0, 1, 1000);
	expect(f, false, 1, false);
	expect(f, true, 1, false);
	sync_ev(f, 1, 1, 1300);
	assert_int_equal(dsi_follow_tick(f, AFTER(1000)), DSI_FOLLOW_GAP);
	expect(f, true, 1, true); /* flagged, though the revision is the same */
	push(f, 1, 1, false, 2, 999, AFTER(1000) + 1);
	expect(f, false, 2, false);
}

static void
test_unknown_kin_is_a_gap(void **state)
{
	dsi_follow *f = *state;
	/* No change seen on both: nothing says they are one registry. */
	sync_ev(f, 0, 7, 1000);
	sync_ev(f, 1, 7, 1000);
	expect(f, true, 7, false);
	sync_ev(f, 1, 7, 1300);
	assert_int_equal(dsi_follow_tick(f, AFTER(1000)), DSI_FOLLOW_GAP);
	expect(f, true, 7, true);
}

static void
test_lower_revision_after_gap(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 5, 1000);
	push(f, 1, 2, true, 1, 0, 1300); /* node 1 restarted empty: a new connection */
	assert_int_equal(f->node[1].ring.n, 1);
	assert_int_equal(dsi_follow_tick(f, AFTER(1000)), DSI_FOLLOW_GAP);
	expect(f, true, 1, true);
	push(f, 1, 2, false, 2, 5, AFTER(1000) + 1);
	expect(f, false, 2, false);
}

static void
test_no_live_standby_stays(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 2, 1000);
	/* Node 1's last SYNC is as old as node 0's; node 2 never sent one. */
	change(f, 2, 3, 1000);
	assert_int_equal(dsi_follow_tick(f, AFTER(1000)), DSI_FOLLOW_STAY);
	assert_int_equal(f->current, 0);
	sync_ev(f, 0, 2, AFTER(1000) + 5); /* back */
	assert_int_equal(dsi_follow_tick(f, AFTER(1000) + 10), DSI_FOLLOW_STAY);
	expect(f, true, 2, false);
}

static void
test_default_interval_before_sync(void **state)
{
	dsi_follow *f = *state;
	change(f, 0, 1, 1000);
	expect(f, false, 1, false);
	assert_int_equal(dsi_follow_deadline(f),
	    1000 + 2 * DSI_FOLLOW_DEFAULT_INTERVAL_MS + DSI_FOLLOW_MARGIN_MS);
	sync_ev(f, 0, 1, 2000);
	assert_int_equal(dsi_follow_deadline(f), 2000 + 2 * 200 + DSI_FOLLOW_MARGIN_MS);
}

static void
test_reconnect_of_followed_forgets_last(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 5, 1000);
	push(f, 0, 9, true, 0, 0, 1100); /* restarted from 0 */
	push(f, 0, 9, false, 1, 1, 1101);
	expect(f, true, 0, false);
	expect(f, false, 1, false);
}

static void
test_reconnect_of_standby_clears_its_ring(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 3, 1000);
	push(f, 1, 2, true, 3, 0, 1300); /* a new connection: events may have been missed */
	assert_int_equal(f->node[1].ring.n, 1);
	assert_int_equal(dsi_follow_tick(f, AFTER(1000)), DSI_FOLLOW_GAP);
}

static void
test_force(void **state)
{
	dsi_follow *f = *state;
	lockstep(f, 3, 1000);
	change(f, 1, 4, 1000);
	dsi_follow_force(f, 1, 1000);
	assert_int_equal(f->current, 1);
	assert_int_equal(f->gaps, 1);
	expect_none(f); /* its past is in the snapshot the caller loads next */
	change(f, 1, 2, 1001);
	expect(f, false, 2, false); /* nothing to compare with: delivered */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_repeats_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_switch_replays_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_switch_sync_equal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_switch_behind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflowed_ring_is_a_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_ring_starting_at_next_is_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_registry_is_a_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_kin_is_a_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lower_revision_after_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_live_standby_stays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_interval_before_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reconnect_of_followed_forgets_last, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reconnect_of_standby_clears_its_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_force, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
