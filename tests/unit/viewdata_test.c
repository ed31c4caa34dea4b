/* The view's local copy: sorted puts, replacements, removals, loads, picks and copies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <discovery/discovery.h>

#include "client/internal.h"
#include "client/viewdata.h"

/* A heap instance of service at endpoint, as the view keeps them. */
static dsc_instance
inst(const char *service, const char *endpoint, dsc_health h, uint32_t weight)
{
	dsc_instance t = { 0 }, x;
	t.service      = (char *) service;
	t.endpoint     = (char *) endpoint;
	t.health       = h;
	t.weight       = weight;
	assert_int_equal(dsi_inst_copy(&x, &t), 0);
	return x;
}

static dsi_vdata *
vdata_new(void)
{
	dsi_vdata *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	return d;
}

static void
test_put_sorts_and_replaces(void **state)
{
	dsi_vdata   *d = vdata_new();
	dsc_instance x;
	(void) state;

	const char *order[] = { "b", "a", "c" };
	for (size_t i = 0; i < 3; i++) {
		x = inst("svc", order[i], DSC_HEALTH_HEALTHY, 1);
		assert_int_equal(dsi_vdata_put(d, "svc", &x), 0);
		assert_null(x.endpoint); /* moved in: x is zeroed */
	}
	x = inst("other", "z", DSC_HEALTH_HEALTHY, 1);
	assert_int_equal(dsi_vdata_put(d, "other", &x), 0);

	assert_int_equal(d->n, 2);
	assert_string_equal(d->svc[0]->name, "other");
	dsi_vservice *s = dsi_vdata_find(d, "svc");
	assert_non_null(s);
	assert_int_equal(s->n, 3);
	assert_string_equal(s->inst[0].endpoint, "a");
	assert_string_equal(s->inst[2].endpoint, "c");
	assert_null(dsi_vdata_find(d, "missing"));

	/* The same endpoint replaces; the old one comes back to be freed. */
	x = inst("svc", "b", DSC_HEALTH_UNHEALTHY, 9);
	assert_int_equal(dsi_vdata_put(d, "svc", &x), 0);
	assert_string_equal(x.endpoint, "b");
	assert_int_equal(x.weight, 1);
	dsi_inst_clear(&x);
	assert_int_equal(s->n, 3);
	assert_int_equal(s->inst[1].weight, 9);
	dsi_vdata_free(d);
}

static void
test_remove(void **state)
{
	dsi_vdata    *d = vdata_new();
	dsc_instance  x, removed;
	dsi_vservice *gone;
	(void) state;

	x = inst("svc", "a", DSC_HEALTH_HEALTHY, 1);
	assert_int_equal(dsi_vdata_put(d, "svc", &x), 0);
	x = inst("svc", "b", DSC_HEALTH_HEALTHY, 1);
	assert_int_equal(dsi_vdata_put(d, "svc", &x), 0);

	dsi_vdata_remove(d, "nope", "a", &removed, &gone);
	assert_null(removed.endpoint);
	assert_null(gone);
	dsi_vdata_remove(d, "svc", "nope", &removed, &gone);
	assert_null(removed.endpoint);
	assert_null(gone);

	dsi_vdata_remove(d, "svc", "a", &removed, &gone);
	assert_string_equal(removed.endpoint, "a");
	assert_null(gone);
	dsi_inst_clear(&removed);
	assert_int_equal(dsi_vdata_find(d, "svc")->n, 1);

	/* The last instance takes its service with it. */
	dsi_vdata_remove(d, "svc", "b", &removed, &gone);
	assert_string_equal(removed.endpoint, "b");
	assert_non_null(gone);
	assert_string_equal(gone->name, "svc");
	assert_int_equal(d->n, 0);
	dsi_inst_clear(&removed);
	dsi_vservice_free(gone);
	dsi_vdata_free(d);
	dsi_vdata_free(NULL);
	dsi_vservice_free(NULL);
}

/* A GetAll answer moves in whole; `only` and nameless instances filter it. */
static void
test_take(void **state)
{
	dsc_instance_list *list = calloc(1, sizeof(*list));
	dsi_vdata         *d    = vdata_new();
	(void) state;

	assert_non_null(list);
	list->items = calloc(4, sizeof(*list->items));
	assert_non_null(list->items);
	list->items[0] = inst("b", "e2", DSC_HEALTH_HEALTHY, 1);
	list->items[1] = inst("a", "e1", DSC_HEALTH_HEALTHY, 1);
	list->items[2] = inst("b", "e1", DSC_HEALTH_HEALTHY, 1);
	list->items[3] = inst("b", "", DSC_HEALTH_HEALTHY, 1);
	list->count    = 4;
	assert_int_equal(dsi_vdata_take(d, list, "b"), 0); /* frees list */
	assert_int_equal(d->n, 1);
	assert_int_equal(d->svc[0]->n, 2);
	assert_string_equal(d->svc[0]->inst[0].endpoint, "e1");
	dsi_vdata_free(d);
}

static void
test_pick_and_copy(void **state)
{
	dsi_vdata          *d = vdata_new();
	dsc_instance        x;
	const dsc_instance *got;
	dsc_instance_list   list = { 0 };
	(void) state;

	x = inst("svc", "a", DSC_HEALTH_UNHEALTHY, 1);
	assert_int_equal(dsi_vdata_put(d, "svc", &x), 0);
	dsi_vservice *s = dsi_vdata_find(d, "svc");
	assert_int_equal(dsi_vservice_pick(s, true, &got), DSC_EUNAVAILABLE);
	assert_int_equal(dsi_vservice_pick(s, false, &got), 0);
	assert_string_equal(got->endpoint, "a");

	x = inst("svc", "b", DSC_HEALTH_HEALTHY, 1);
	assert_int_equal(dsi_vdata_put(d, "svc", &x), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(dsi_vservice_pick(s, false, &got), 0);
		assert_string_equal(got->endpoint, "b"); /* healthy ones first */
	}

	list.items = calloc(s->n, sizeof(*list.items));
	assert_non_null(list.items);
	assert_int_equal(dsi_vservice_copy(&list, s), 0);
	assert_int_equal(list.count, 2);
	assert_string_equal(list.items[1].endpoint, "b");
	for (size_t i = 0; i < list.count; i++) {
		dsi_inst_clear(&list.items[i]);
	}
	free(list.items);
	dsi_vdata_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_sorts_and_replaces),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_pick_and_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
