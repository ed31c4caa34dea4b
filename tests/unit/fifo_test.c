/*
 * The intrusive FIFO: order, pop, take, and putting a chain back in front.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/fifo.h"

/* A queued item, as a caller would embed the link. */
typedef struct item {
	int           value;
	dsi_fifo_node link;
} item;

static int
value_of(dsi_fifo_node *n)
{
	return DSI_CONTAINER_OF(n, item, link)->value;
}

/* The values along a chain, into out; returns how many. */
static size_t
values(dsi_fifo_node *chain, int *out, size_t max)
{
	size_t k = 0;
	for (; chain != NULL && k < max; chain = chain->next) {
		out[k++] = value_of(chain);
	}
	return k;
}

static void
test_push_pop(void **state)
{
	(void) state;
	dsi_fifo q;
	item     v[3] = { { .value = 0 }, { .value = 1 }, { .value = 2 } };
	dsi_fifo_init(&q);
	assert_true(dsi_fifo_empty(&q));
	assert_null(dsi_fifo_pop(&q));
	for (int i = 0; i < 3; i++) {
		dsi_fifo_push(&q, &v[i].link);
	}
	assert_false(dsi_fifo_empty(&q));
	for (int i = 0; i < 3; i++) {
		dsi_fifo_node *n = dsi_fifo_pop(&q);
		assert_non_null(n);
		assert_int_equal(value_of(n), i);
		assert_null(n->next);
	}
	assert_true(dsi_fifo_empty(&q));
	assert_null(q.tail);
	/* Usable again after draining. */
	dsi_fifo_push(&q, &v[1].link);
	assert_ptr_equal(dsi_fifo_pop(&q), &v[1].link);
}

static void
test_take(void **state)
{
	(void) state;
	dsi_fifo q    = { 0 };
	item     v[4] = { { .value = 0 }, { .value = 1 }, { .value = 2 }, { .value = 3 } };
	int      got[8];
	assert_null(dsi_fifo_take(&q));
	for (int i = 0; i < 3; i++) {
		dsi_fifo_push(&q, &v[i].link);
	}
	dsi_fifo_node *chain = dsi_fifo_take(&q);
	assert_true(dsi_fifo_empty(&q));
	assert_int_equal(values(chain, got, 8), 3);
	assert_int_equal(got[0], 0);
	assert_int_equal(got[2], 2);
	dsi_fifo_push(&q, &v[3].link); /* the tail was reset too */
	assert_int_equal(values(q.head, got, 8), 1);
	assert_ptr_equal(q.tail, &v[3].link);
}

/* A consumer takes all, handles some, and puts the rest back before newer arrivals. */
static void
test_push_front(void **state)
{
	(void) state;
	dsi_fifo q = { 0 };
	item     v[5]
	    = { { .value = 0 }, { .value = 1 }, { .value = 2 }, { .value = 3 }, { .value = 4 } };
	int got[8];
	for (int i = 0; i < 3; i++) {
		dsi_fifo_push(&q, &v[i].link);
	}
	dsi_fifo_node *chain = dsi_fifo_take(&q);
	dsi_fifo_push(&q, &v[3].link); /* arrived meanwhile */
	chain->next = NULL;            /* 0 handled, 1 and 2 left */
	dsi_fifo_push_front(&q, &v[1].link);
	assert_int_equal(values(q.head, got, 8), 3);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], 2);
	assert_int_equal(got[2], 3);
	dsi_fifo_push(&q, &v[4].link);
	assert_int_equal(values(q.head, got, 8), 4);
	assert_int_equal(got[3], 4);

	/* Into an empty queue the chain's last node becomes the tail. */
	dsi_fifo_init(&q);
	v[1].link.next = &v[2].link;
	v[2].link.next = NULL;
	dsi_fifo_push_front(&q, &v[1].link);
	assert_ptr_equal(q.tail, &v[2].link);
	dsi_fifo_push(&q, &v[0].link);
	assert_int_equal(values(q.head, got, 8), 3);
	assert_int_equal(got[2], 0);
	dsi_fifo_push_front(&q, NULL);
	assert_int_equal(values(q.head, got, 8), 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_pop),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_push_front),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
