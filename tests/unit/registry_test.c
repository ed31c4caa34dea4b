/* Registry semantics: the rules of the contract, one case each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/registry.h"
#include "support/testutil.h"

static int
setup(void **state)
{
	dsi_registry *r;
	if (dsi_registry_create(&r, NULL) != 0) {
		return -1;
	}
	*state = r;
	return 0;
}

static int
teardown(void **state)
{
	dsi_registry_destroy(*state);
	return 0;
}

/* Registers with defaults; returns the registry's rv. */
static int
reg(dsi_registry *r, const char *svc, const char *ep, uint32_t ttl, uint32_t weight, bool *created)
{
	dsi_registration g = { .service = svc,
		.endpoint               = ep,
		.health_path            = "/health",
		.ttl_ms                 = ttl,
		.weight                 = weight };
	char             why[256];
	bool             c;
	return dsi_registry_register(
	    r, &g, 1000, NULL, created ? created : &c, NULL, why, sizeof(why));
}

static char *
resolve_ep(dsi_registry *r, const char *svc, bool healthy_only, int *rv)
{
	dsi_instance *x   = NULL;
	char         *out = NULL;
	*rv               = dsi_registry_resolve(r, svc, healthy_only, &x, NULL);
	if (*rv == 0) {
		out = strdup(x->endpoint);
		free(x);
	}
	return out;
}

static void
test_register_creates_and_is_idempotent(void **state)
{
	dsi_registry *r = *state;
	bool          created;
	uint64_t      rev;

	assert_ok(reg(r, "memory", "http://a:1", 0, 0, &created));
	assert_true(created);
	assert_int_equal(dsi_registry_revision(r), 1);
	assert_ok(reg(r, "memory", "http://a:1", 0, 0, &created));
	assert_false(created);
	/* Nothing changed, so no new revision. */
	assert_int_equal(dsi_registry_revision(r), 1);

	dsc_kv           kv = { "zone", "eu" };
	dsi_registration g  = { .service = "memory",
		 .endpoint               = "http://a:1",
		 .metadata               = &kv,
		 .n_metadata             = 1,
		 .health_path            = "/hz",
		 .ttl_ms                 = 0,
		 .weight                 = 5 };
	dsi_instance    *x;
	char             why[128];
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://a:1", DSC_HEALTH_HEALTHY, 2000, NULL, "test", NULL));
	assert_ok(dsi_registry_register(r, &g, 3000, &x, &created, &rev, why, sizeof(why)));
	assert_false(created);
	assert_int_equal(rev, 3); /* health change, then the update */
	assert_string_equal(x->health_path, "/hz");
	assert_int_equal(x->weight, 5);
	assert_int_equal(x->n_metadata, 1);
	assert_string_equal(x->metadata[0]->key, "zone");
	assert_int_equal(x->health, DISCOVERY__V1__HEALTH_STATE__HEALTH_HEALTHY); /* kept */
	assert_int_equal(x->registered_at_ms, 1000);                              /* kept */
	free(x);
	assert_int_equal(dsi_registry_count(r), 1);
}

static void
test_get_all_sorted(void **state)
{
	dsi_registry *r = *state;
	dsi_instances list;
	uint64_t      rev;
	const char   *want[][2] = { { "alpha", "http://a:1" }, { "alpha", "http://b:1" },
		  { "beta", "http://a:1" }, { "zeta", "http://a:1" }, { "zeta", "tcp://z:9" } };

	assert_ok(reg(r, "zeta", "tcp://z:9", 0, 0, NULL));
	assert_ok(reg(r, "beta", "http://a:1", 0, 0, NULL));
	assert_ok(reg(r, "alpha", "http://b:1", 0, 0, NULL));
	assert_ok(reg(r, "zeta", "http://a:1", 0, 0, NULL));
	assert_ok(reg(r, "alpha", "http://a:1", 0, 0, NULL));
	assert_ok(dsi_registry_get_all(r, NULL, &list, &rev));
	assert_int_equal(rev, 5);
	assert_int_equal(list.count, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(list.items[i]->service, want[i][0]);
		assert_string_equal(list.items[i]->endpoint, want[i][1]);
	}
	dsi_instances_free(&list);
	assert_ok(dsi_registry_get_all(r, "zeta", &list, NULL));
	assert_int_equal(list.count, 2);
	dsi_instances_free(&list);
	assert_ok(dsi_registry_get_all(r, "nosuch", &list, NULL));
	assert_int_equal(list.count, 0);
	dsi_instances_free(&list);
}

static void
test_get_all_many_services(void **state)
{
	dsi_registry *r = *state;
	dsi_instances list;
	char          name[32];
	/* Enough services to force the hash table to grow several times. */
	for (int i = 999; i >= 0; i--) {
		snprintf(name, sizeof(name), "svc-%04d", i);
		assert_ok(reg(r, name, "http://h:1", 0, 0, NULL));
	}
	assert_ok(dsi_registry_get_all(r, NULL, &list, NULL));
	assert_int_equal(list.count, 1000);
	for (size_t i = 1; i < list.count; i++) {
		assert_true(strcmp(list.items[i - 1]->service, list.items[i]->service) < 0);
	}
	dsi_instances_free(&list);
}

static void
test_resolve_round_robin_all_when_none_healthy(void **state)
{
	dsi_registry *r = *state;
	int           rv, seen[3] = { 0 };
	const char   *eps[3] = { "http://a:1", "http://b:1", "http://c:1" };

	for (int i = 0; i < 3; i++) {
		assert_ok(reg(r, "memory", eps[i], 0, 0, NULL));
	}
	for (int i = 0; i < 30; i++) {
		char *ep = resolve_ep(r, "memory", false, &rv);
		assert_ok(rv);
		for (int k = 0; k < 3; k++) {
			seen[k] += strcmp(ep, eps[k]) == 0;
		}
		free(ep);
	}
	assert_int_equal(seen[0], 10);
	assert_int_equal(seen[1], 10);
	assert_int_equal(seen[2], 10);

	dsi_instance *x;
	assert_ok(dsi_registry_resolve(r, "memory", false, &x, NULL));
	assert_int_equal(
	    x->health, DISCOVERY__V1__HEALTH_STATE__HEALTH_UNKNOWN); /* tells the caller */
	free(x);
	assert_int_equal(dsi_registry_resolve(r, "memory", true, &x, NULL), DSC_EUNAVAILABLE);
	assert_int_equal(dsi_registry_resolve(r, "nosuch", false, &x, NULL), DSC_ENOTFOUND);
}

static void
test_resolve_prefers_healthy(void **state)
{
	dsi_registry *r = *state;
	int           rv;

	assert_ok(reg(r, "memory", "http://a:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://b:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://c:1", 0, 0, NULL));
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://a:1", DSC_HEALTH_UNHEALTHY, 5, "HTTP 500", "test", NULL));
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://b:1", DSC_HEALTH_HEALTHY, 5, NULL, "test", NULL));
	for (int i = 0; i < 10; i++) {
		char *ep = resolve_ep(r, "memory", i % 2 == 0, &rv);
		assert_ok(rv);
		assert_string_equal(ep, "http://b:1");
		free(ep);
	}
	/* When every instance fails, resolve still answers, and says so. */
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://b:1", DSC_HEALTH_UNHEALTHY, 6, "timeout", "test", NULL));
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://c:1", DSC_HEALTH_UNHEALTHY, 6, "refused", "test", NULL));
	dsi_instance *x;
	assert_ok(dsi_registry_resolve(r, "memory", false, &x, NULL));
	assert_int_equal(x->health, DISCOVERY__V1__HEALTH_STATE__HEALTH_UNHEALTHY);
	assert_true(x->last_error[0] != 0);
	free(x);
	assert_int_equal(dsi_registry_resolve(r, "memory", true, &x, NULL), DSC_EUNAVAILABLE);
}

static void
test_resolve_weighted(void **state)
{
	dsi_registry *r = *state;
	int           rv, heavy = 0;

	assert_ok(reg(r, "memory", "http://heavy:1", 0, 3, NULL));
	assert_ok(reg(r, "memory", "http://light:1", 0, 1, NULL));
	for (int i = 0; i < 400; i++) {
		char *ep = resolve_ep(r, "memory", false, &rv);
		assert_ok(rv);
		heavy += strcmp(ep, "http://heavy:1") == 0;
		free(ep);
	}
	assert_int_equal(heavy, 300);
}

static void
test_deregister(void **state)
{
	dsi_registry *r = *state;
	uint32_t      removed;
	uint64_t      rev;

	assert_ok(reg(r, "memory", "http://a:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://b:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://c:1", 0, 0, NULL));
	assert_ok(reg(r, "other", "http://a:1", 0, 0, NULL));
	assert_ok(dsi_registry_deregister(r, "memory", "http://b:1", &removed, &rev));
	assert_int_equal(removed, 1);
	assert_int_equal(rev, 5);
	assert_ok(dsi_registry_deregister(r, "memory", "http://b:1", &removed, &rev));
	assert_int_equal(removed, 0); /* idempotent */
	assert_int_equal(rev, 5);
	assert_ok(dsi_registry_deregister(r, "memory", NULL, &removed, &rev));
	assert_int_equal(removed, 2);
	assert_int_equal(rev, 7); /* one revision per removed instance */
	assert_ok(dsi_registry_deregister(r, "nosuch", NULL, &removed, NULL));
	assert_int_equal(removed, 0);
	dsi_instance *x;
	assert_int_equal(dsi_registry_resolve(r, "memory", false, &x, NULL), DSC_ENOTFOUND);
	assert_int_equal(dsi_registry_count(r), 1);
	/* A service that was emptied can come back. */
	assert_ok(reg(r, "memory", "http://d:1", 0, 0, NULL));
	assert_int_equal(dsi_registry_count(r), 2);
}

static void
test_is_healthy(void **state)
{
	dsi_registry *r = *state;
	bool          healthy;
	dsc_health    st;

	assert_int_equal(
	    dsi_registry_is_healthy(r, "memory", NULL, &healthy, &st, NULL), DSC_ENOTFOUND);
	assert_ok(reg(r, "memory", "http://a:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://b:1", 0, 0, NULL));
	assert_ok(dsi_registry_is_healthy(r, "memory", NULL, &healthy, &st, NULL));
	assert_false(healthy);
	assert_int_equal(st, DSC_HEALTH_UNKNOWN);
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://a:1", DSC_HEALTH_UNHEALTHY, 1, "x", "test", NULL));
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://b:1", DSC_HEALTH_UNHEALTHY, 1, "x", "test", NULL));
	assert_ok(dsi_registry_is_healthy(r, "memory", NULL, &healthy, &st, NULL));
	assert_false(healthy);
	assert_int_equal(st, DSC_HEALTH_UNHEALTHY);
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://b:1", DSC_HEALTH_HEALTHY, 2, NULL, "test", NULL));
	assert_ok(dsi_registry_is_healthy(r, "memory", NULL, &healthy, &st, NULL));
	assert_true(healthy);
	assert_int_equal(st, DSC_HEALTH_HEALTHY);
	assert_ok(dsi_registry_is_healthy(r, "memory", "http://a:1", &healthy, &st, NULL));
	assert_false(healthy);
	assert_int_equal(st, DSC_HEALTH_UNHEALTHY);
	assert_int_equal(dsi_registry_is_healthy(r, "memory", "http://zz:1", &healthy, &st, NULL),
	    DSC_ENOTFOUND);
}

static void
test_heartbeat(void **state)
{
	dsi_registry *r = *state;
	dsi_instance *x;
	uint64_t      rev;

	assert_ok(reg(r, "ttl", "http://a:1", 5000, 0, NULL));
	assert_ok(reg(r, "polled", "http://a:1", 0, 0, NULL));
	assert_ok(dsi_registry_heartbeat(r, "ttl", "http://a:1", 42, &x, &rev));
	assert_int_equal(x->health, DISCOVERY__V1__HEALTH_STATE__HEALTH_HEALTHY);
	assert_int_equal(x->last_check_ms, 42);
	assert_int_equal(rev, 3);
	free(x);
	assert_ok(dsi_registry_heartbeat(r, "ttl", "http://a:1", 43, NULL, &rev));
	assert_int_equal(rev, 3); /* still healthy: no change */
	assert_int_equal(
	    dsi_registry_heartbeat(r, "polled", "http://a:1", 1, NULL, NULL), DSC_ESTATE);
	assert_int_equal(
	    dsi_registry_heartbeat(r, "ttl", "http://b:1", 1, NULL, NULL), DSC_ENOTFOUND);
	assert_int_equal(
	    dsi_registry_heartbeat(r, "nosuch", "http://a:1", 1, NULL, NULL), DSC_ENOTFOUND);
}

static void
test_set_health_revision_only_on_change(void **state)
{
	dsi_registry *r = *state;
	uint64_t      rev;
	dsi_instances list;

	assert_ok(reg(r, "memory", "http://a:1", 0, 0, NULL));
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://a:1", DSC_HEALTH_UNHEALTHY, 10, "HTTP 500", "test", &rev));
	assert_int_equal(rev, 2);
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://a:1", DSC_HEALTH_UNHEALTHY, 20, "HTTP 503", "test", &rev));
	assert_int_equal(rev, 2);
	assert_ok(dsi_registry_get_all(r, "memory", &list, NULL));
	assert_string_equal(list.items[0]->last_error, "HTTP 503");
	assert_int_equal(list.items[0]->last_check_ms, 20);
	dsi_instances_free(&list);
	assert_int_equal(dsi_registry_set_health(
	                     r, "memory", "http://b:1", DSC_HEALTH_HEALTHY, 1, NULL, "test", NULL),
	    DSC_ENOTFOUND);
}

static void
test_metadata_sorted_last_wins_and_limited(void **state)
{
	dsi_registry    *r    = *state;
	dsc_kv           kv[] = { { "zone", "a" }, { "app", "x" }, { "zone", "b" } };
	dsi_registration g    = { .service = "memory",
		   .endpoint               = "http://a:1",
		   .metadata               = kv,
		   .n_metadata             = 3,
		   .health_path            = "/health" };
	dsi_instance    *x;
	bool             created;
	char             why[256];

	assert_ok(dsi_registry_register(r, &g, 1, &x, &created, NULL, why, sizeof(why)));
	assert_int_equal(x->n_metadata, 2);
	assert_string_equal(x->metadata[0]->key, "app");
	assert_string_equal(x->metadata[1]->key, "zone");
	assert_string_equal(x->metadata[1]->value, "b");
	free(x);

	dsc_kv many[65];
	char   keys[65][8];
	for (int i = 0; i < 65; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		many[i].key   = keys[i];
		many[i].value = "v";
	}
	g.metadata   = many;
	g.n_metadata = 65;
	assert_int_equal(
	    dsi_registry_register(r, &g, 1, NULL, &created, NULL, why, sizeof(why)), DSC_ELIMIT);
	assert_non_null(strstr(why, "64 entries"));

	char *big = malloc(5000);
	memset(big, 'v', 4999);
	big[4999]    = 0;
	dsc_kv one   = { "k", big };
	g.metadata   = &one;
	g.n_metadata = 1;
	assert_int_equal(
	    dsi_registry_register(r, &g, 1, NULL, &created, NULL, why, sizeof(why)), DSC_ELIMIT);
	free(big);

	/* The rejected updates left what was stored alone. */
	dsi_instances list;
	assert_ok(dsi_registry_get_all(r, "memory", &list, NULL));
	assert_int_equal(list.items[0]->n_metadata, 2);
	dsi_instances_free(&list);
}

static void
test_instance_limits(void **state)
{
	dsi_registry       *r;
	dsi_registry_limits l;
	char                why[256];
	bool                created;
	(void) state;

	dsi_registry_limits_default(&l);
	l.max_instances             = 3;
	l.max_instances_per_service = 2;
	assert_ok(dsi_registry_create(&r, &l));
	assert_ok(reg(r, "a", "http://1:1", 0, 0, NULL));
	assert_ok(reg(r, "a", "http://2:1", 0, 0, NULL));
	dsi_registration g = { .service = "a", .endpoint = "http://3:1", .health_path = "/health" };
	assert_int_equal(
	    dsi_registry_register(r, &g, 1, NULL, &created, NULL, why, sizeof(why)), DSC_ELIMIT);
	assert_non_null(strstr(why, "service a"));
	/* Updating an existing instance is not blocked by the limit. */
	assert_ok(reg(r, "a", "http://2:1", 0, 7, NULL));
	assert_ok(reg(r, "b", "http://1:1", 0, 0, NULL));
	g.service = "c";
	assert_int_equal(
	    dsi_registry_register(r, &g, 1, NULL, &created, NULL, why, sizeof(why)), DSC_ELIMIT);
	assert_non_null(strstr(why, "3 instances"));
	assert_int_equal(dsi_registry_count(r), 3);
	dsi_registry_destroy(r);
}

/* Prepares a register of g at now_ms and drops it; returns the rv, the decision through the
 * pointers. */
static int
plan(dsi_registry *r, const dsi_registration *g, uint32_t pending_service, uint32_t pending_total,
    int64_t now_ms, bool *creates, bool *changes, int64_t *at, char *why)
{
	dsi_registry_op *op = NULL;
	int              rv = dsi_registry_prepare_register(
	                 r, g, pending_service, pending_total, now_ms, false, &op, why, 256);
	if (rv == 0) {
		const dsi_registry_op_info *info = dsi_registry_op_get(op);
		*creates                         = info->creates;
		*changes                         = info->changes;
		*at                              = info->registered_at_ms;
		assert_int_equal(info->revisions, info->changes ? 1 : 0);
		dsi_registry_op_free(op);
	}
	return rv;
}

static void
test_prepare_register(void **state)
{
	dsi_registry    *r    = *state;
	dsc_kv           kv[] = { { "zone", "a" }, { "zone", "b" } };
	dsi_registration g    = { .service = "memory",
		   .endpoint               = "http://a:1",
		   .metadata               = kv,
		   .n_metadata             = 2,
		   .health_path            = "/health",
		   .weight                 = 2 };
	bool             creates, changes, created;
	int64_t          at;
	char             why[256];

	/* A new instance: it would be created now, and planning changes nothing. */
	assert_ok(plan(r, &g, 0, 0, 5000, &creates, &changes, &at, why));
	assert_true(creates);
	assert_true(changes);
	assert_int_equal(at, 5000);
	assert_int_equal(dsi_registry_count(r), 0);
	assert_int_equal(dsi_registry_revision(r), 0);
	/* A registration's own time is the new instance's. */
	g.registered_at_ms = 1234;
	assert_ok(plan(r, &g, 0, 0, 5000, &creates, &changes, &at, why));
	assert_true(creates);
	assert_int_equal(at, 1234);
	assert_ok(dsi_registry_register(r, &g, 5000, NULL, &created, NULL, why, sizeof(why)));
	assert_true(created);

	/* The same again, later: no creation, no change, the instance's own time. */
	g.registered_at_ms = 0;
	assert_ok(plan(r, &g, 0, 0, 9000, &creates, &changes, &at, why));
	assert_false(creates);
	assert_false(changes);
	assert_int_equal(at, 1234);
	g.registered_at_ms = 4321; /* ignored for an existing instance */
	assert_ok(plan(r, &g, 0, 0, 9000, &creates, &changes, &at, why));
	assert_int_equal(at, 1234);
	assert_false(changes);

	/* The stored metadata is zone=b: given once, it is the same; zone=a differs. */
	dsc_kv b = { "zone", "b" }, a = { "zone", "a" };
	g.metadata   = &b;
	g.n_metadata = 1;
	assert_ok(plan(r, &g, 0, 0, 9000, &creates, &changes, &at, why));
	assert_false(changes);
	g.metadata = &a;
	assert_ok(plan(r, &g, 0, 0, 9000, &creates, &changes, &at, why));
	assert_false(creates);
	assert_true(changes);
	g.metadata = &b;

	/* Each stored field counts as a change. */
	g.weight = 3;
	assert_ok(plan(r, &g, 0, 0, 9000, &creates, &changes, &at, why));
	assert_true(changes);
	g.weight      = 2;
	g.health_path = "/hz";
	assert_ok(plan(r, &g, 0, 0, 9000, &creates, &changes, &at, why));
	assert_true(changes);
	g.health_path = "/health";
	g.ttl_ms      = 1000;
	assert_ok(plan(r, &g, 0, 0, 9000, &creates, &changes, &at, why));
	assert_true(changes);
	g.ttl_ms = 0;
	assert_ok(plan(r, &g, 0, 0, 9000, &creates, &changes, &at, why));
	assert_false(changes);

	/* None of the plans changed the registry. */
	assert_int_equal(dsi_registry_revision(r), 1);
	dsi_instances list;
	assert_ok(dsi_registry_get_all(r, "memory", &list, NULL));
	assert_int_equal(list.count, 1);
	assert_int_equal(list.items[0]->weight, 2);
	assert_int_equal(list.items[0]->registered_at_ms, 1234);
	dsi_instances_free(&list);
}

static void
test_prepare_register_limits_count_pending(void **state)
{
	dsi_registry       *r;
	dsi_registry_limits l;
	bool                creates, changes;
	int64_t             at;
	char                why[256];
	(void) state;

	dsi_registry_limits_default(&l);
	l.max_instances             = 4;
	l.max_instances_per_service = 3;
	assert_ok(dsi_registry_create(&r, &l));
	assert_ok(reg(r, "a", "http://1:1", 0, 0, NULL));
	dsi_registration g = { .service = "a", .endpoint = "http://2:1", .health_path = "/health" };

	/* In the service: 1 held + 1 pending leaves room for a third, not a fourth. */
	assert_ok(plan(r, &g, 1, 1, 1, &creates, &changes, &at, why));
	assert_true(creates);
	assert_int_equal(plan(r, &g, 2, 2, 1, &creates, &changes, &at, why), DSC_ELIMIT);
	assert_non_null(strstr(why, "service a"));

	/* In total: pending instances of other services count too. */
	g.service = "b";
	assert_ok(plan(r, &g, 0, 2, 1, &creates, &changes, &at, why));
	assert_int_equal(plan(r, &g, 0, 3, 1, &creates, &changes, &at, why), DSC_ELIMIT);
	assert_non_null(strstr(why, "4 instances"));

	/* An update creates nothing, so pending creations do not block it. */
	g.service  = "a";
	g.endpoint = "http://1:1";
	g.weight   = 9;
	assert_ok(plan(r, &g, 10, 10, 1, &creates, &changes, &at, why));
	assert_false(creates);
	assert_true(changes);

	/* Metadata limits are checked as register checks them. */
	dsc_kv many[65];
	char   keys[65][8];
	for (int i = 0; i < 65; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		many[i].key   = keys[i];
		many[i].value = "v";
	}
	g.metadata   = many;
	g.n_metadata = 65;
	assert_int_equal(plan(r, &g, 0, 0, 1, &creates, &changes, &at, why), DSC_ELIMIT);
	assert_non_null(strstr(why, "64 entries"));

	assert_int_equal(dsi_registry_count(r), 1);
	assert_int_equal(dsi_registry_revision(r), 1);
	dsi_registry_destroy(r);
}

/* How many instances a deregister prepared now would remove. */
static uint32_t
count_matching(dsi_registry *r, const char *svc, const char *ep)
{
	dsi_registry_op *op = NULL;
	assert_ok(dsi_registry_prepare_deregister(r, svc, ep, &op));
	const dsi_registry_op_info *info = dsi_registry_op_get(op);
	uint32_t                    n    = info->removes;
	assert_int_equal(info->revisions, n);
	assert_int_equal(info->changes, n > 0);
	dsi_registry_op_free(op);
	return n;
}

static void
test_prepare_deregister_counts(void **state)
{
	dsi_registry *r = *state;
	uint32_t      removed;

	assert_int_equal(count_matching(r, "memory", NULL), 0);
	assert_int_equal(count_matching(r, "memory", "http://a:1"), 0);
	assert_ok(reg(r, "memory", "http://a:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://b:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://c:1", 0, 0, NULL));
	assert_ok(reg(r, "other", "http://a:1", 0, 0, NULL));
	assert_int_equal(count_matching(r, "memory", NULL), 3);
	assert_int_equal(count_matching(r, "memory", "http://b:1"), 1);
	assert_int_equal(count_matching(r, "memory", "http://zz:1"), 0);
	assert_int_equal(count_matching(r, "other", NULL), 1);
	assert_int_equal(count_matching(r, "nosuch", "http://a:1"), 0);

	/* It predicts what deregister removes. */
	assert_ok(dsi_registry_deregister(r, "memory", "http://b:1", &removed, NULL));
	assert_int_equal(removed, 1);
	assert_int_equal(count_matching(r, "memory", "http://b:1"), 0);
	assert_int_equal(count_matching(r, "memory", NULL), 2);
	assert_ok(dsi_registry_deregister(r, "memory", NULL, &removed, NULL));
	assert_int_equal(removed, 2);
	assert_int_equal(count_matching(r, "memory", NULL), 0);
	assert_int_equal(count_matching(r, "other", NULL), 1);
}

static void
test_set_revision_forward_only(void **state)
{
	dsi_registry *r = *state;
	uint64_t      rev;

	dsi_registry_set_revision(r, 100);
	assert_int_equal(dsi_registry_revision(r), 100);
	dsi_registry_set_revision(r, 50); /* never back */
	assert_int_equal(dsi_registry_revision(r), 100);
	dsi_registry_set_revision(r, 100);
	assert_int_equal(dsi_registry_revision(r), 100);
	/* Changes count on from there. */
	assert_ok(reg(r, "memory", "http://a:1", 0, 0, NULL));
	assert_int_equal(dsi_registry_revision(r), 101);
	dsi_registry_set_revision(r, 0);
	dsi_instances list;
	assert_ok(dsi_registry_get_all(r, NULL, &list, &rev));
	assert_int_equal(rev, 101);
	dsi_instances_free(&list);
	dsi_registry_set_revision(r, 5000);
	assert_int_equal(dsi_registry_revision(r), 5000);
}

static void
test_reap(void **state)
{
	dsi_registry *r = *state;
	bool          removed;
	uint64_t      rev;

	assert_ok(reg(r, "memory", "http://a:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://b:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://c:1", 0, 0, NULL));
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://a:1", DSC_HEALTH_UNHEALTHY, 1000, "HTTP 500", "test", NULL));
	/* Still unhealthy: the time it became so stays 1000. */
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://a:1", DSC_HEALTH_UNHEALTHY, 1400, "HTTP 500", "test", &rev));

	/* Not yet due: reap leaves it. */
	assert_false(dsi_registry_reap_due(r, "memory", "http://a:1", 500, 1499));
	assert_ok(dsi_registry_reap(r, "memory", "http://a:1", 500, 1499, &removed));
	assert_false(removed);
	assert_int_equal(dsi_registry_count(r), 3);
	assert_int_equal(dsi_registry_revision(r), rev);

	/* Due after 500 ms of it: removed, as one change. */
	assert_true(dsi_registry_reap_due(r, "memory", "http://a:1", 500, 1500));
	assert_ok(dsi_registry_reap(r, "memory", "http://a:1", 500, 1500, &removed));
	assert_true(removed);
	assert_int_equal(count_matching(r, "memory", "http://a:1"), 0);
	assert_int_equal(dsi_registry_revision(r), rev + 1);
	assert_false(dsi_registry_reap_due(r, "memory", "http://a:1", 0, 99999));
	assert_int_equal(
	    dsi_registry_reap(r, "memory", "http://a:1", 0, 99999, &removed), DSC_ENOTFOUND);
	assert_false(removed);

	/* Healthy again: never due. UNKNOWN is never due either. */
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://b:1", DSC_HEALTH_UNHEALTHY, 1000, "x", "test", NULL));
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://b:1", DSC_HEALTH_HEALTHY, 1200, NULL, "test", NULL));
	assert_false(dsi_registry_reap_due(r, "memory", "http://b:1", 0, 99999));
	assert_false(dsi_registry_reap_due(r, "memory", "http://c:1", 0, 99999));
	assert_ok(dsi_registry_reap(r, "memory", "http://c:1", 0, 99999, &removed));
	assert_false(removed);
	dsi_registry_op *op = NULL;
	assert_ok(dsi_registry_prepare_reap(r, "memory", "http://c:1", 0, 99999, &op));
	assert_int_equal(dsi_registry_op_get(op)->removes, 0);
	dsi_registry_op_free(op);

	/* A prepared reap removes whatever the state by its commit: the removal is stored. */
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://b:1", DSC_HEALTH_UNHEALTHY, 1300, "x", "test", NULL));
	assert_ok(dsi_registry_prepare_reap(r, "memory", "http://b:1", 0, 1300, &op));
	assert_int_equal(dsi_registry_op_get(op)->removes, 1);
	assert_int_equal(dsi_registry_op_get(op)->revisions, 1);
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://b:1", DSC_HEALTH_HEALTHY, 1350, NULL, "test", NULL));
	assert_int_equal(dsi_registry_count(r), 2); /* preparing changed nothing */
	dsi_registry_commit(r, op, NULL, NULL);
	assert_int_equal(count_matching(r, "memory", "http://b:1"), 0);
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://c:1", DSC_HEALTH_UNHEALTHY, 1300, "x", "test", NULL));
	assert_ok(dsi_registry_reap(r, "memory", "http://c:1", 0, 1300, &removed));
	assert_true(removed);
	/* The last one took the service with it. */
	dsi_instance *x;
	assert_int_equal(dsi_registry_resolve(r, "memory", false, &x, NULL), DSC_ENOTFOUND);
	assert_int_equal(dsi_registry_count(r), 0);
	assert_int_equal(dsi_registry_revision(r), rev + 1 + 2 + 3 + 2);
	assert_int_equal(
	    dsi_registry_reap(r, "nosuch", "http://a:1", 0, 1, &removed), DSC_ENOTFOUND);
	assert_false(removed);
	/* An emptied service can come back. */
	assert_ok(reg(r, "memory", "http://c:1", 0, 0, NULL));
	assert_int_equal(dsi_registry_count(r), 1);
}

static void
test_registered_at_for_new_instances(void **state)
{
	dsi_registry    *r = *state;
	dsi_registration g = { .service = "memory",
		.endpoint               = "http://a:1",
		.health_path            = "/health",
		.registered_at_ms       = 777 };
	dsi_instance    *x;
	bool             created;
	uint32_t         removed;
	char             why[256];

	assert_ok(dsi_registry_register(r, &g, 5000, &x, &created, NULL, why, sizeof(why)));
	assert_true(created);
	assert_int_equal(x->registered_at_ms, 777);
	free(x);
	/* An update keeps the instance's time, whatever the registration says. */
	g.registered_at_ms = 999;
	g.weight           = 4;
	assert_ok(dsi_registry_register(r, &g, 6000, &x, &created, NULL, why, sizeof(why)));
	assert_false(created);
	assert_int_equal(x->weight, 4);
	assert_int_equal(x->registered_at_ms, 777);
	free(x);
	/* 0 means now. */
	g.endpoint         = "http://b:1";
	g.registered_at_ms = 0;
	assert_ok(dsi_registry_register(r, &g, 7000, &x, &created, NULL, why, sizeof(why)));
	assert_int_equal(x->registered_at_ms, 7000);
	free(x);
	/* A new instance after a deregistration is new again. */
	assert_ok(dsi_registry_deregister(r, "memory", "http://a:1", &removed, NULL));
	g.endpoint = "http://a:1";
	assert_ok(dsi_registry_register(r, &g, 8000, &x, &created, NULL, why, sizeof(why)));
	assert_true(created);
	assert_int_equal(x->registered_at_ms, 8000);
	free(x);
}

/* Writers and readers at once: counts stay exact, revisions only grow. */
typedef struct {
	dsi_registry *r;
	int           id;
} worker_arg;

static void *
worker(void *p)
{
	worker_arg *a = p;
	char        ep[64];
	for (int i = 0; i < 500; i++) {
		snprintf(ep, sizeof(ep), "http://w%d-%d:1", a->id, i);
		if (reg(a->r, "shared", ep, 0, 0, NULL) != 0) {
			return (void *) 1;
		}
		dsi_instance *x = NULL;
		if (dsi_registry_resolve(a->r, "shared", false, &x, NULL) != 0) {
			return (void *) 2;
		}
		free(x);
		if (i % 2 == 1) {
			uint32_t removed;
			dsi_registry_deregister(a->r, "shared", ep, &removed, NULL);
			if (removed != 1) {
				return (void *) 3;
			}
		}
	}
	return NULL;
}

static void
test_concurrent(void **state)
{
	dsi_registry *r = *state;
	pthread_t     t[8];
	worker_arg    a[8];
	for (int i = 0; i < 8; i++) {
		a[i] = (worker_arg) { r, i };
		pthread_create(&t[i], NULL, worker, &a[i]);
	}
	for (int i = 0; i < 8; i++) {
		void *res;
		pthread_join(t[i], &res);
		assert_null(res);
	}
	assert_int_equal(dsi_registry_count(r), 8 * 250);
	assert_int_equal(dsi_registry_revision(r), 8 * 500 + 8 * 250);
}

/* ---- out of memory: a failure changes nothing and publishes nothing ---- */

/* Counts the observer's calls, freeing the copies it is handed. */
static void
count_changes(void *arg, dsi_change *ch)
{
	(*(int *) arg)++;
	free(ch->instance);
}

/* Everything a reader can see, as one string, to compare before and after. */
static void
snapshot(dsi_registry *r, char *out, size_t len)
{
	dsi_instances list;
	uint64_t      rev;
	size_t        used = 0;
	assert_ok(dsi_registry_get_all(r, NULL, &list, &rev));
	used += (size_t) snprintf(out + used, len - used, "rev %llu;", (unsigned long long) rev);
	for (size_t i = 0; i < list.count && used < len; i++) {
		const dsi_instance *x = list.items[i];
		used += (size_t) snprintf(out + used, len - used, "%s %s %s %u %u %zu;", x->service,
		    x->endpoint, x->health_path, x->ttl_ms, x->weight, x->n_metadata);
		for (size_t k = 0; k < x->n_metadata && used < len; k++) {
			used += (size_t) snprintf(out + used, len - used, "%s=%s,",
			    x->metadata[k]->key, x->metadata[k]->value);
		}
	}
	dsi_instances_free(&list);
}

/*
 * Runs op with the n-th allocation failing, for n = 0, 1, ... until op
 * succeeds: every failure is DSC_ENOMEM with the registry and the observer
 * untouched. Returns how many allocations op needed.
 */
static int
fail_each_allocation(dsi_registry *r, int *changes, int (*op)(dsi_registry *r))
{
	static char before[8192], after[8192];
	for (int n = 0; n < 100; n++) {
		snapshot(r, before, sizeof(before));
		int seen = *changes;
		dsi_registry_fail_alloc_after(r, n);
		int rv = op(r);
		dsi_registry_fail_alloc_after(r, -1);
		if (rv == 0) {
			return n;
		}
		assert_int_equal(rv, DSC_ENOMEM);
		snapshot(r, after, sizeof(after));
		assert_string_equal(after, before);
		assert_int_equal(*changes, seen);
	}
	fail_msg("still failing after 100 allocations");
	return -1;
}

static int
op_register_new(dsi_registry *r)
{
	dsc_kv           kv[] = { { "zone", "a" }, { "rack", "r1" } };
	dsi_registration g    = { .service = "fresh",
		   .endpoint               = "http://n:1",
		   .metadata               = kv,
		   .n_metadata             = 2,
		   .health_path            = "/health" };
	dsi_instance    *x    = NULL;
	bool             created;
	char             why[256];
	int rv = dsi_registry_register(r, &g, 1000, &x, &created, NULL, why, sizeof(why));
	if (rv == 0) {
		assert_true(created);
		assert_string_equal(x->endpoint, "http://n:1");
		assert_int_equal(x->n_metadata, 2);
		free(x);
	}
	return rv;
}

static int
op_register_update(dsi_registry *r)
{
	dsc_kv           kv = { "zone", "b" };
	dsi_registration g  = { .service = "memory",
		 .endpoint               = "http://a:1",
		 .metadata               = &kv,
		 .n_metadata             = 1,
		 .health_path            = "/hz",
		 .weight                 = 5 };
	dsi_instance    *x  = NULL;
	bool             created;
	char             why[256];
	int rv = dsi_registry_register(r, &g, 1000, &x, &created, NULL, why, sizeof(why));
	if (rv == 0) {
		assert_false(created);
		assert_int_equal(x->weight, 5);
		free(x);
	}
	return rv;
}

static int
op_deregister_one(dsi_registry *r)
{
	uint32_t removed;
	int      rv = dsi_registry_deregister(r, "memory", "http://b:1", &removed, NULL);
	if (rv == 0) {
		assert_int_equal(removed, 1);
	}
	return rv;
}

static int
op_deregister_service(dsi_registry *r)
{
	uint32_t removed;
	int      rv = dsi_registry_deregister(r, "memory", NULL, &removed, NULL);
	if (rv == 0) {
		assert_int_equal(removed, 2);
	}
	return rv;
}

static void
test_out_of_memory_changes_nothing(void **state)
{
	dsi_registry *r       = *state;
	int           changes = 0;

	assert_ok(reg(r, "memory", "http://a:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://b:1", 0, 0, NULL));
	assert_ok(reg(r, "memory", "http://c:1", 0, 0, NULL));
	assert_ok(dsi_registry_set_health(
	    r, "memory", "http://c:1", DSC_HEALTH_UNHEALTHY, 1000, "HTTP 500", "test", NULL));
	dsi_registry_set_observer(r, count_changes, &changes);

	/* A new instance in a new service: several allocations, each one may fail. */
	assert_true(fail_each_allocation(r, &changes, op_register_new) > 3);
	assert_int_equal(changes, 1);
	assert_true(fail_each_allocation(r, &changes, op_register_update) > 3);
	assert_int_equal(changes, 2);
	assert_true(fail_each_allocation(r, &changes, op_deregister_one) > 1);
	assert_int_equal(changes, 3);
	assert_true(fail_each_allocation(r, &changes, op_deregister_service) > 1);
	assert_int_equal(changes, 5);
	assert_int_equal(dsi_registry_count(r), 1);
	dsi_registry_set_observer(r, NULL, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_register_creates_and_is_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_all_sorted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_all_many_services, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_resolve_round_robin_all_when_none_healthy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_prefers_healthy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_weighted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deregister, setup, teardown),
		cmocka_unit_test_setup_teardown(test_is_healthy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_set_health_revision_only_on_change, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_metadata_sorted_last_wins_and_limited, setup, teardown),
		cmocka_unit_test(test_instance_limits),
		cmocka_unit_test_setup_teardown(test_prepare_register, setup, teardown),
		cmocka_unit_test(test_prepare_register_limits_count_pending),
		cmocka_unit_test_setup_teardown(test_prepare_deregister_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_out_of_memory_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_revision_forward_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reap, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_registered_at_for_new_instances, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
