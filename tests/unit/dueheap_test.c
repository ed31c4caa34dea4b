/* The due-time heap: order, removal from the middle, and re-queueing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "server/dueheap.h"

#define N 200

static void
test_pops_in_due_order(void **state)
{
	dsi_dueheap h = { 0 };
	dsi_due     d[N];
	(void) state;
	srand(7);
	for (size_t i = 0; i < N; i++) {
		d[i].idx = DSI_DUE_NONE;
		assert_true(dsi_dueheap_push(&h, &d[i], rand() % 1000));
	}
	/* Take every third one out of the middle, twice (the second is a no-op). */
	for (size_t i = 0; i < N; i += 3) {
		dsi_dueheap_remove(&h, &d[i]);
		dsi_dueheap_remove(&h, &d[i]);
		assert_int_equal(d[i].idx, DSI_DUE_NONE);
	}
	int64_t last = -1;
	size_t  n    = 0;
	for (dsi_due *t; (t = dsi_dueheap_top(&h)) != NULL; n++) {
		assert_true(t->at >= last);
		last = t->at;
		dsi_dueheap_remove(&h, t);
	}
	assert_int_equal(n, N - (N + 2) / 3);
	dsi_dueheap_free(&h);
}

static void
test_requeue_moves_an_entry(void **state)
{
	dsi_dueheap h = { 0 };
	dsi_due     a = { .idx = DSI_DUE_NONE }, b = { .idx = DSI_DUE_NONE };
	(void) state;
	assert_null(dsi_dueheap_top(&h));
	assert_true(dsi_dueheap_push(&h, &a, 10));
	assert_true(dsi_dueheap_push(&h, &b, 20));
	assert_ptr_equal(dsi_dueheap_top(&h), &a);
	dsi_dueheap_remove(&h, &a); /* reschedule: out, then in at its new time */
	assert_true(dsi_dueheap_push(&h, &a, 30));
	assert_ptr_equal(dsi_dueheap_top(&h), &b);
	assert_int_equal(a.at, 30);
	dsi_dueheap_free(&h);
	assert_null(dsi_dueheap_top(&h));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pops_in_due_order),
		cmocka_unit_test(test_requeue_moves_an_entry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
