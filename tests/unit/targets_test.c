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

/* FNV-1a of svc "\n" ep, as the table hashed before it was a dsi_hash: the values stay. */
static uint64_t
old_hash(const char *svc, const char *ep)
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

static void
test_insert_find_unlink_pop(void **state)
{
	dsi_targets ts;
	char        ep[64];
	(void) state;
	assert_ok(dsi_targets_init(&ts));
	for (int i = 0; i < N; i++) {
		snprintf(ep, sizeof(ep), "http://10.0.0.%d:%d", i % 250, 8000 + i);
		assert_null(dsi_targets_find(&ts, i % 2 ? "a" : "b", ep));
		dsi_target *t = dsi_targets_insert(&ts, i % 2 ? "a" : "b", ep);
		assert_non_null(t);
		assert_int_equal(t->s.due.idx, DSI_DUE_NONE); /* in no schedule yet */
		assert_true(t->node.hash == old_hash(t->service, t->endpoint));
	}
	assert_int_equal(dsi_targets_count(&ts), N);
	assert_true(ts.table.nbuckets >= N);
	/* Every one is found under its own key, and the service is part of the key. */
	for (int i = 0; i < N; i++) {
		snprintf(ep, sizeof(ep), "http://10.0.0.%d:%d", i % 250, 8000 + i);
		dsi_target *t = dsi_targets_find(&ts, i % 2 ? "a" : "b", ep);
		assert_non_null(t);
		assert_string_equal(t->endpoint, ep);
		assert_null(dsi_targets_find(&ts, i % 2 ? "b" : "a", ep));
	}
	/* Unlink one: gone from the table, still the caller's to free. */
	snprintf(ep, sizeof(ep), "http://10.0.0.%d:%d", 7, 8007);
	dsi_target *t = dsi_targets_find(&ts, "a", ep);
	assert_non_null(t);
	dsi_targets_remove(&ts, t);
	assert_null(dsi_targets_find(&ts, "a", ep));
	dsi_target_free(t);
	/* Popping empties it, each target once. */
	size_t n = 0;
	while ((t = dsi_targets_pop(&ts)) != NULL) {
		dsi_target_free(t);
		n++;
	}
	assert_int_equal(n, N - 1);
	assert_int_equal(dsi_targets_count(&ts), 0);
	dsi_targets_free(&ts);
	assert_null(dsi_targets_pop(&ts)); /* freed: empty */
}

/* An insert or a removal between pops restarts the walk: nothing is skipped. */
static void
test_pop_after_changes(void **state)
{
	dsi_targets ts;
	char        ep[64];
	(void) state;
	assert_ok(dsi_targets_init(&ts));
	for (int i = 0; i < 100; i++) {
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", 8000 + i);
		assert_non_null(dsi_targets_insert(&ts, "s", ep));
	}
	size_t      n = 0;
	dsi_target *t;
	for (int i = 0; (t = dsi_targets_pop(&ts)) != NULL; i++) {
		dsi_target_free(t);
		n++;
		if (i == 10) {
			assert_non_null(dsi_targets_insert(&ts, "s", "http://127.0.0.1:9999"));
		} else if (i == 20) {
			dsi_target *r = dsi_targets_find(&ts, "s", "http://127.0.0.1:9999");
			if (r != NULL) {
				dsi_targets_remove(&ts, r);
				dsi_target_free(r);
				n++;
			}
		}
	}
	assert_int_equal(n, 101);
	assert_int_equal(dsi_targets_count(&ts), 0);
	dsi_targets_free(&ts);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_unlink_pop),
		cmocka_unit_test(test_pop_after_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
