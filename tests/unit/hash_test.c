/*
 * The intrusive hash table: find/insert/remove, growth, many keys, removal
 * during a walk, and a failed growth that leaves the table usable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "support/testutil.h"

#define MANY 5000

/* A keyed item, as a caller would embed the node. */
typedef struct item {
	char          key[32];
	int           value;
	bool          seen;
	dsi_hash_node node;
} item;

static bool
item_match(const dsi_hash_node *n, const void *key)
{
	return strcmp(DSI_CONTAINER_OF(n, item, node)->key, key) == 0;
}

static item *
find(const dsi_hash *h, const char *key)
{
	dsi_hash_node *n = dsi_hash_find(h, dsi_hash_str(key), key);
	return n != NULL ? DSI_CONTAINER_OF(n, item, node) : NULL;
}

static item *
make_items(size_t n)
{
	item *v = calloc(n, sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		snprintf(v[i].key, sizeof(v[i].key), "svc-%zu", i);
		v[i].value = (int) i;
	}
	return v;
}

static void
test_insert_find_remove(void **state)
{
	(void) state;
	dsi_hash h;
	item    *v = make_items(3);
	assert_ok(dsi_hash_init(&h, 4, item_match));
	assert_null(find(&h, "svc-0"));
	for (int i = 0; i < 3; i++) {
		dsi_hash_insert(&h, &v[i].node, dsi_hash_str(v[i].key));
	}
	assert_int_equal(dsi_hash_count(&h), 3);
	assert_ptr_equal(find(&h, "svc-1"), &v[1]);
	assert_null(find(&h, "svc-3"));
	dsi_hash_remove(&h, &v[1].node);
	assert_int_equal(dsi_hash_count(&h), 2);
	assert_null(find(&h, "svc-1"));
	assert_ptr_equal(find(&h, "svc-0"), &v[0]);
	assert_ptr_equal(find(&h, "svc-2"), &v[2]);
	dsi_hash_fini(&h);
	free(v);
}

/* Keys with the same hash still tell apart by match. */
static void
test_collisions(void **state)
{
	(void) state;
	dsi_hash h;
	item    *v = make_items(3);
	assert_ok(dsi_hash_init(&h, 1, item_match));
	for (int i = 0; i < 3; i++) {
		dsi_hash_insert(&h, &v[i].node, 7);
	}
	for (int i = 0; i < 3; i++) {
		assert_ptr_equal(dsi_hash_find(&h, 7, v[i].key), &v[i].node);
	}
	assert_null(dsi_hash_find(&h, 7, "other"));
	assert_null(dsi_hash_find(&h, 8, v[0].key));
	dsi_hash_fini(&h);
	free(v);
}

/* Composite keys: mixing the parts matches hashing them joined. */
static void
test_mix(void **state)
{
	(void) state;
	uint64_t a = dsi_hash_mix(DSI_HASH_SEED, "web", 3);
	a          = dsi_hash_mix(a, "\n", 1);
	a          = dsi_hash_mix(a, "10.0.0.1:80", 11);
	assert_true(a == dsi_hash_str("web\n10.0.0.1:80"));
	assert_true(dsi_hash_str("") == DSI_HASH_SEED);
}

static void
test_growth_many_keys(void **state)
{
	(void) state;
	dsi_hash h;
	item    *v = make_items(MANY);
	assert_ok(dsi_hash_init(&h, 3, item_match));
	assert_int_equal(h.nbuckets, 4);
	for (size_t i = 0; i < MANY; i++) {
		dsi_hash_insert(&h, &v[i].node, dsi_hash_str(v[i].key));
		assert_true(h.nbuckets >= dsi_hash_count(&h));
	}
	assert_int_equal(dsi_hash_count(&h), MANY);
	assert_true((h.nbuckets & (h.nbuckets - 1)) == 0);
	for (size_t i = 0; i < MANY; i++) {
		assert_ptr_equal(find(&h, v[i].key), &v[i]);
	}
	for (size_t i = 0; i < MANY; i += 2) {
		dsi_hash_remove(&h, &v[i].node);
	}
	for (size_t i = 0; i < MANY; i++) {
		assert_true((find(&h, v[i].key) != NULL) == (i % 2 == 1));
	}
	dsi_hash_fini(&h);
	free(v);
}

/* A walk sees every node once, and may remove (and free) the node it is on. */
static void
test_iterate_remove(void **state)
{
	(void) state;
	dsi_hash      h;
	dsi_hash_iter it;
	item         *v = make_items(100);
	assert_ok(dsi_hash_init(&h, 8, item_match));
	for (size_t i = 0; i < 100; i++) {
		dsi_hash_insert(&h, &v[i].node, dsi_hash_str(v[i].key));
	}
	size_t seen = 0;
	dsi_hash_iter_init(&it, &h);
	for (dsi_hash_node *n; (n = dsi_hash_iter_next(&it)) != NULL;) {
		item *x = DSI_CONTAINER_OF(n, item, node);
		assert_false(x->seen);
		x->seen = true;
		seen++;
		if (x->value % 3 == 0) {
			dsi_hash_remove(&h, n);
			memset(&x->node, 0xa5, sizeof(x->node)); /* as if freed */
		}
	}
	assert_int_equal(seen, 100);
	assert_null(dsi_hash_iter_next(&it));
	assert_int_equal(dsi_hash_count(&h), 100 - 34);
	/* Drain it all by walking, as a destroy does. */
	dsi_hash_iter_init(&it, &h);
	for (dsi_hash_node *n; (n = dsi_hash_iter_next(&it)) != NULL;) {
		dsi_hash_remove(&h, n);
	}
	assert_int_equal(dsi_hash_count(&h), 0);
	dsi_hash_iter_init(&it, &h);
	assert_null(dsi_hash_iter_next(&it));
	dsi_hash_fini(&h);
	free(v);
}

static void *
no_alloc(size_t n, size_t size)
{
	(void) n;
	(void) size;
	return NULL;
}

/* With growth failing, inserts still land and finds still work; it grows once it can. */
static void
test_growth_failure(void **state)
{
	(void) state;
	dsi_hash h;
	item    *v = make_items(64);
	assert_ok(dsi_hash_init(&h, 2, item_match));
	h.alloc = no_alloc;
	for (size_t i = 0; i < 32; i++) {
		dsi_hash_insert(&h, &v[i].node, dsi_hash_str(v[i].key));
	}
	assert_int_equal(h.nbuckets, 2);
	assert_int_equal(dsi_hash_count(&h), 32);
	for (size_t i = 0; i < 32; i++) {
		assert_ptr_equal(find(&h, v[i].key), &v[i]);
	}
	dsi_hash_remove(&h, &v[5].node);
	assert_null(find(&h, v[5].key));
	h.alloc = calloc;
	for (size_t i = 32; i < 64; i++) {
		dsi_hash_insert(&h, &v[i].node, dsi_hash_str(v[i].key));
	}
	assert_true(h.nbuckets > 2);
	for (size_t i = 0; i < 64; i++) {
		assert_true((find(&h, v[i].key) != NULL) == (i != 5));
	}
	dsi_hash_fini(&h);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_remove),
		cmocka_unit_test(test_collisions),
		cmocka_unit_test(test_mix),
		cmocka_unit_test(test_growth_many_keys),
		cmocka_unit_test(test_iterate_remove),
		cmocka_unit_test(test_growth_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
