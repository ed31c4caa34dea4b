/* The one load-balancing rule: weighted round-robin, healthy first, the protection threshold. */
#include <discovery/discovery.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/pick.h"

typedef struct item {
	uint32_t weight;
	bool     healthy;
} item;

static uint32_t
weight(const void *items, size_t i)
{
	return ((const item *) items)[i].weight;
}

static bool
healthy(const void *items, size_t i)
{
	return ((const item *) items)[i].healthy;
}

/* How often each of n items is picked in rounds picks. */
static int
count(const item *v, size_t n, uint32_t protect_ppm, bool healthy_only, int rounds, int *hits)
{
	dsi_pick_src     src    = { v, n, weight, healthy, protect_ppm };
	_Atomic uint64_t cursor = 0;
	for (size_t i = 0; i < n; i++) {
		hits[i] = 0;
	}
	for (int r = 0; r < rounds; r++) {
		size_t i;
		int    rv = dsi_pick(&src, &cursor, healthy_only, &i);
		if (rv != 0) {
			return rv;
		}
		assert_true(i < n);
		hits[i]++;
	}
	return 0;
}

static void
test_weighted_round_robin(void **state)
{
	const item v[] = { { 1, true }, { 3, true }, { 0, true } }; /* 0 counts as 1 */
	int        hits[3];
	(void) state;
	assert_int_equal(count(v, 3, 0, true, 50, hits), 0);
	assert_int_equal(hits[0], 10);
	assert_int_equal(hits[1], 30);
	assert_int_equal(hits[2], 10);
}

static void
test_healthy_first(void **state)
{
	const item v[]    = { { 1, false }, { 1, true }, { 1, false } };
	const item none[] = { { 1, false }, { 1, false } };
	int        hits[3];
	(void) state;
	assert_int_equal(count(v, 3, 0, true, 9, hits), 0);
	assert_int_equal(hits[1], 9);
	assert_int_equal(count(v, 3, 0, false, 9, hits), 0);
	assert_int_equal(hits[1], 9); /* all only when none is healthy */
	assert_int_equal(count(none, 2, 0, true, 1, hits), DSC_EUNAVAILABLE);
	assert_int_equal(count(none, 2, 0, false, 4, hits), 0);
	assert_int_equal(hits[0], 2);
	assert_int_equal(count(v, 0, 0, false, 1, hits), DSC_ENOTFOUND);
}

static void
test_protection_threshold(void **state)
{
	/* 1 of 4 healthy, the healthy one heavy: protection counts instances, not weights. */
	const item v[]    = { { 10, true }, { 1, false }, { 1, false }, { 1, false } };
	const item none[] = { { 1, false }, { 1, false } };
	const item half[] = { { 1, true }, { 1, false } };
	int        hits[4];
	(void) state;
	assert_int_equal(count(v, 4, 250000, true, 26, hits), 0); /* 1/4 is not below 1/4 */
	assert_int_equal(hits[0], 26);
	assert_int_equal(count(v, 4, 250001, true, 26, hits), 0); /* below: among all */
	assert_int_equal(hits[0], 20);
	assert_int_equal(hits[1] + hits[2] + hits[3], 6);
	assert_int_equal(count(none, 2, 500000, true, 4, hits), 0); /* not UNAVAILABLE */
	assert_int_equal(hits[0], 2);
	assert_int_equal(count(half, 2, 500000, true, 4, hits), 0);
	assert_int_equal(hits[0], 4);
	assert_int_equal(count(half, 2, 1000000, true, 4, hits), 0); /* 1.0: any failure */
	assert_int_equal(hits[1], 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weighted_round_robin),
		cmocka_unit_test(test_healthy_first),
		cmocka_unit_test(test_protection_threshold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
