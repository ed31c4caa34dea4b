/* The connection table: the cap, in-flight counts, idleness, and deletion under churn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>

#include "server/conns.h"

static void
test_cap(void **state)
{
	dsi_conns *c = dsi_conns_create(3);
	(void) state;

	assert_non_null(c);
	assert_int_equal(dsi_conns_add(c, 10, 0), 0);
	assert_int_equal(dsi_conns_add(c, 11, 0), 0);
	assert_int_equal(dsi_conns_add(c, 11, 0), -1); /* already there */
	assert_int_equal(dsi_conns_add(c, 0, 0), -1);  /* not a pipe id */
	assert_int_equal(dsi_conns_add(c, 12, 0), 0);
	assert_int_equal(dsi_conns_add(c, 13, 0), -1); /* full */
	assert_int_equal(dsi_conns_count(c), 3);
	dsi_conns_remove(c, 11);
	dsi_conns_remove(c, 99); /* unknown: nothing */
	assert_int_equal(dsi_conns_add(c, 13, 0), 0);
	assert_int_equal(dsi_conns_count(c), 3);
	dsi_conns_destroy(c);
	assert_null(dsi_conns_create(0));
	assert_null(dsi_conns_create(DSI_CONNS_MAX + 1));
}

static void
test_inflight_and_idle(void **state)
{
	dsi_conns *c = dsi_conns_create(8);
	uint32_t   ids[8];
	(void) state;

	assert_int_equal(dsi_conns_add(c, 1, 0), 0);
	assert_int_equal(dsi_conns_add(c, 2, 0), 0);
	assert_int_equal(dsi_conns_begin(c, 1, 100), 1);
	assert_int_equal(dsi_conns_begin(c, 1, 100), 2);
	assert_int_equal(dsi_conns_begin(c, 7, 100), 0); /* unknown */
	/* At 1000 with 500 ms idle: 2 is silent; 1 has requests in the pool. */
	assert_int_equal(dsi_conns_idle(c, 1000, 500, ids, 8), 1);
	assert_int_equal(ids[0], 2);
	dsi_conns_end(c, 1, 900);
	dsi_conns_end(c, 1, 900);
	dsi_conns_end(c, 1, 900); /* one too many: stays at 0 */
	assert_int_equal(dsi_conns_idle(c, 1000, 500, ids, 8), 1);
	assert_int_equal(dsi_conns_idle(c, 1400, 500, ids, 8), 2);
	assert_int_equal(dsi_conns_idle(c, 1400, 500, ids, 1), 1); /* cap respected */
	dsi_conns_destroy(c);
}

/* Random churn against a plain array: lookups stay right across backward shifts. */
static void
test_churn(void **state)
{
	enum { MAX = 64, IDS = 200, STEPS = 20000 };
	static bool in[IDS + 1];
	dsi_conns  *c = dsi_conns_create(MAX);
	size_t      n = 0;
	unsigned    r = 12345;
	(void) state;

	for (int step = 0; step < STEPS; step++) {
		r           = r * 1103515245u + 12345u;
		uint32_t id = 1 + (r >> 8) % IDS;
		if (in[id]) {
			assert_int_equal(dsi_conns_begin(c, id, step), 1);
			dsi_conns_end(c, id, step);
			dsi_conns_remove(c, id);
			in[id] = false;
			n--;
		} else {
			int rv = dsi_conns_add(c, id, step);
			assert_int_equal(rv, n < MAX ? 0 : -1);
			if (rv == 0) {
				in[id] = true;
				n++;
			}
		}
		assert_int_equal(dsi_conns_count(c), n);
	}
	for (uint32_t id = 1; id <= IDS; id++) {
		assert_int_equal(dsi_conns_begin(c, id, 0), in[id] ? 1 : 0);
	}
	dsi_conns_destroy(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_inflight_and_idle),
		cmocka_unit_test(test_churn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
