/* The checker's target table: lookup by (service, endpoint), growth, removal and popping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "server/targets.h"
#include "support/testutil.h"

#define N 1000 /* past several doublings of the 64 buckets */

static void
test_insert_find_unlink_pop(void **state)
{
	dsi_targets ts;
	char        ep[64];
	(void) state;
	assert_ok(dsi_targets_init(&ts));
	for (int i = 0; i < N; i++) {
		snprintf(ep, sizeof(ep), "http://10.0.0.%d:%d", i % 250, 8000 + i);
		dsi_target **slot = dsi_targets_slot(&ts, i % 2 ? "a" : "b", ep);
		assert_null(*slot);
		dsi_target *t = dsi_targets_insert(&ts, slot, i % 2 ? "a" : "b", ep);
		assert_non_null(t);
		assert_int_equal(t->s.due.idx, DSI_DUE_NONE); /* in no schedule yet */
	}
	assert_int_equal(ts.n, N);
	assert_true(ts.nbuckets >= N);
	/* Every one is found under its own key, and the service is part of the key. */
	for (int i = 0; i < N; i++) {
		snprintf(ep, sizeof(ep), "http://10.0.0.%d:%d", i % 250, 8000 + i);
		dsi_target *t = *dsi_targets_slot(&ts, i % 2 ? "a" : "b", ep);
		assert_non_null(t);
		assert_string_equal(t->endpoint, ep);
		assert_null(*dsi_targets_slot(&ts, i % 2 ? "b" : "a", ep));
	}
	/* Unlink one: gone from the table, still the caller's to free. */
	snprintf(ep, sizeof(ep), "http://10.0.0.%d:%d", 7, 8007);
	dsi_target **slot = dsi_targets_slot(&ts, "a", ep);
	dsi_target  *t    = *slot;
	dsi_targets_unlink(&ts, slot);
	assert_null(*dsi_targets_slot(&ts, "a", ep));
	dsi_target_free(t);
	/* Popping empties it, each target once. */
	size_t n = 0;
	while ((t = dsi_targets_pop(&ts)) != NULL) {
		dsi_target_free(t);
		n++;
	}
	assert_int_equal(n, N - 1);
	assert_int_equal(ts.n, 0);
	dsi_targets_free(&ts);
	assert_null(dsi_targets_pop(&ts)); /* freed: empty */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_unlink_pop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
