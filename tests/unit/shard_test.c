/*
 * Rendezvous hashing (cluster/shard.h): the owner is deterministic and does
 * not depend on the order of the names; 10,000 instances spread evenly over
 * 3 and 5 members; a departure moves only the departed member's instances
 * and a join moves instances only to the newcomer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cluster/shard.h"
#include "support/testutil.h"

#define KEYS 10000

static const char *const five[] = { "node-a", "node-b", "node-c", "node-d", "node-e" };

/* The i-th test instance: services s0..s49, endpoints on loopback ports. */
static void
instance(int i, char *service, char *endpoint)
{
	snprintf(service, 32, "svc%d", i % 50);
	snprintf(endpoint, 64, "127.0.0.1:%d", 20000 + i);
}

static void
test_deterministic(void **state)
{
	(void) state;
	const char *rev[] = { "node-e", "node-d", "node-c", "node-b", "node-a" };
	char        s[32], e[64];
	assert_int_equal(dsi_shard_owner(five, 0, "x", "y"), DSI_SHARD_NONE);
	assert_int_equal(dsi_shard_owner(five, 1, "x", "y"), 0);
	for (int i = 0; i < 1000; i++) {
		instance(i, s, e);
		size_t a = dsi_shard_owner(five, 5, s, e);
		assert_int_equal(a, dsi_shard_owner(five, 5, s, e));
		/* The same member whatever the order of the list. */
		assert_string_equal(five[a], rev[dsi_shard_owner(rev, 5, s, e)]);
	}
	/* The field boundaries count: ("ab","c") is not ("a","bc"). */
	assert_true(dsi_shard_weight("m", "ab", "c") != dsi_shard_weight("m", "a", "bc"));
	/* Stable across builds: a change of the hash would move every instance at an upgrade. */
	assert_true(dsi_shard_weight("a", "b", "c") == 0x3c1dbc39e7fa8054ULL);
	assert_true(dsi_shard_weight("node-1", "web", "127.0.0.1:8080") == 0x568169e1b63b9180ULL);
}

/* Each of n members owns KEYS/n within +-15 %. */
static void
check_spread(size_t n)
{
	int  count[5] = { 0 };
	char s[32], e[64];
	for (int i = 0; i < KEYS; i++) {
		instance(i, s, e);
		size_t o = dsi_shard_owner(five, n, s, e);
		assert_true(o < n);
		count[o]++;
	}
	int fair = KEYS / (int) n;
	for (size_t j = 0; j < n; j++) {
		print_message("%zu members: %s owns %d\n", n, five[j], count[j]);
		assert_in_range(count[j], fair * 85 / 100, fair * 115 / 100);
	}
}

static void
test_spread_3(void **state)
{
	(void) state;
	check_spread(3);
}

static void
test_spread_5(void **state)
{
	(void) state;
	check_spread(5);
}

/* Removing node-c: only node-c's instances move, and they spread over the rest. */
static void
test_departure_moves_only_its_share(void **state)
{
	(void) state;
	const char *four[] = { "node-a", "node-b", "node-d", "node-e" };
	char        s[32], e[64];
	int         moved = 0, to[4] = { 0 };
	for (int i = 0; i < KEYS; i++) {
		instance(i, s, e);
		const char *before = five[dsi_shard_owner(five, 5, s, e)];
		size_t      a      = dsi_shard_owner(four, 4, s, e);
		if (strcmp(before, "node-c") != 0) {
			assert_string_equal(before, four[a]);
		} else {
			moved++;
			to[a]++;
		}
	}
	assert_in_range(moved, KEYS / 5 * 85 / 100, KEYS / 5 * 115 / 100);
	for (int j = 0; j < 4; j++) {
		assert_true(to[j] > 0);
	}
}

/* Adding node-e to four: instances move only to node-e, about 1/5 of them. */
static void
test_join_moves_only_to_newcomer(void **state)
{
	(void) state;
	char s[32], e[64];
	int  moved = 0;
	for (int i = 0; i < KEYS; i++) {
		instance(i, s, e);
		const char *before = five[dsi_shard_owner(five, 4, s, e)];
		const char *after  = five[dsi_shard_owner(five, 5, s, e)];
		if (strcmp(before, after) != 0) {
			assert_string_equal(after, "node-e");
			moved++;
		}
	}
	assert_in_range(moved, KEYS / 5 * 85 / 100, KEYS / 5 * 115 / 100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_spread_3),
		cmocka_unit_test(test_spread_5),
		cmocka_unit_test(test_departure_moves_only_its_share),
		cmocka_unit_test(test_join_moves_only_to_newcomer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
