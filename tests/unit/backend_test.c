/*
 * The backend contract (server/backend.h), run against every backend in
 * the kinds table: what the writer relies on whatever stores its batches.
 * A transaction is all or nothing, a commit survives closing and opening
 * again, the revision never goes backwards, a failed call fails the rest
 * of its transaction without wedging the next, and a capability a backend
 * lacks is DSC_ENOTSUP. Changes are prepared by a real registry, as the
 * writer prepares them. A new backend (etcd) adds a row to kinds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/backend.h"
#include "server/store_backend.h"
#include "server/store_snapshot.h"
#include "support/testutil.h"

/* One backend under test: fresh storage per test, opened as often as a test asks. */
typedef struct backend_kind {
	const char *name;
	/* Makes fresh, empty storage: 0 and *ctx, or -1. */
	int (*create)(void **ctx);
	/* Opens (again) the storage of ctx: 0 and *out, or an error with why. */
	int (*open)(void *ctx, const dsi_log *log, dsi_backend **out, char *why, size_t why_len);
	/* Removes the storage; after the last close. */
	void (*destroy)(void *ctx);
	/* A change this backend refuses (a failing call inside a transaction). */
	dsi_registry_op_info refused;
	bool                 sqlite; /* has DSI_BACKEND_CAP_SQLITE */
	/* After an open, revision() is the last set_revision committed (not only >= it). */
	bool keeps_reservation;
} backend_kind;

/* ---- SQLite: a data file in a scratch directory ---- */

typedef struct sqlite_ctx {
	char dir[128];
	char path[256];
} sqlite_ctx;

static int
sqlite_create(void **ctx)
{
	sqlite_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL || tu_mkdtemp(c->dir, sizeof(c->dir), "backend") != 0) {
		free(c);
		return -1;
	}
	snprintf(c->path, sizeof(c->path), "%s/discovery.db", c->dir);
	*ctx = c;
	return 0;
}

static int
sqlite_open(void *ctx, const dsi_log *log, dsi_backend **out, char *why, size_t why_len)
{
	return dsi_store_backend_open(out, ((sqlite_ctx *) ctx)->path, log, why, why_len);
}

static void
sqlite_destroy(void *ctx)
{
	tu_rmtree(((sqlite_ctx *) ctx)->dir);
	free(ctx);
}

static const backend_kind kinds[] = {
	{
	    .name    = "sqlite",
	    .create  = sqlite_create,
	    .open    = sqlite_open,
	    .destroy = sqlite_destroy,
	    /* A NULL health path breaks NOT NULL inside SQLite. */
	    .refused
	    = { .creates = true, .changes = true, .service = "broken", .endpoint = "http://b:80" },
	    .sqlite            = true,
	    .keeps_reservation = true,
	},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* ---- the fixture: one backend, and the registry that prepares its changes ---- */

typedef struct fixture {
	const backend_kind *kind;
	void               *ctx;
	dsi_log             log;
	dsi_registry_limits limits;
	dsi_registry       *src; /* prepares changes, as the writer's registry does */
	dsi_backend        *b;
	uint64_t            taken; /* revisions of the changes committed so far */
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		return -1;
	}
	f->kind = *state;
	f->log  = (dsi_log) { .level = DSI_LOG_ERROR, .out = NULL }; /* quiet */
	dsi_registry_limits_default(&f->limits);
	if (f->kind->create(&f->ctx) != 0 || dsi_registry_create(&f->src, &f->limits) != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	dsi_backend_close(f->b);
	dsi_registry_destroy(f->src);
	f->kind->destroy(f->ctx);
	free(f);
	return 0;
}

static void
open_backend(fixture *f)
{
	char why[512] = "";
	int  rv       = f->kind->open(f->ctx, &f->log, &f->b, why, sizeof(why));
	if (rv != 0) {
		fail_msg("%s: open: %s (%s)", f->kind->name, dsi_strerror(rv), why);
	}
}

/* Closes and opens again: what a restart sees. */
static void
reopen(fixture *f)
{
	dsi_backend_close(f->b);
	f->b = NULL;
	open_backend(f);
}

/* A fresh registry loaded from the backend; the caller destroys it. */
static dsi_registry *
load(fixture *f)
{
	dsi_registry *r;
	char          why[512] = "";
	assert_ok(dsi_registry_create(&r, &f->limits));
	int rv = dsi_backend_load(f->b, r, NULL, NULL, why, sizeof(why));
	if (rv != 0) {
		fail_msg("%s: load: %s (%s)", f->kind->name, dsi_strerror(rv), why);
	}
	return r;
}

/* A register prepared by src (committed to it by done()). */
static dsi_registry_op *
prep_register(
    fixture *f, const char *svc, const char *ep, const dsc_kv *meta, size_t n_meta, uint32_t weight)
{
	dsi_registration reg = {
		.service          = svc,
		.endpoint         = ep,
		.metadata         = meta,
		.n_metadata       = n_meta,
		.health_path      = "/health",
		.ttl_ms           = 0,
		.weight           = weight,
		.registered_at_ms = 1700000000000,
	};
	dsi_registry_op *op;
	char             why[256];
	assert_ok(dsi_registry_prepare_register(
	    f->src, &reg, 0, 0, 1700000000000, false, &op, why, sizeof(why)));
	return op;
}

static dsi_registry_op *
prep_deregister(fixture *f, const char *svc, const char *ep)
{
	dsi_registry_op *op;
	assert_ok(dsi_registry_prepare_deregister(f->src, svc, ep, &op));
	return op;
}

/*
 * Writes op in the open transaction (which the test then commits) and
 * commits it to src, as the writer does after the backend's commit.
 */
static void
write_op(fixture *f, dsi_registry_op *op)
{
	assert_ok(dsi_backend_write(f->b, dsi_registry_op_get(op)));
	f->taken += dsi_registry_op_get(op)->revisions;
	dsi_registry_commit(f->src, op, NULL, NULL);
}

/*
 * revision() after an open: never below a revision a committed change
 * took, nor above what was asked; exactly stored (the last set_revision
 * committed) for a backend that keeps the reservation.
 */
static void
expect_reopened_revision(fixture *f, uint64_t stored)
{
	uint64_t rev = dsi_backend_revision(f->b);
	assert_true(rev >= f->taken);
	assert_true(rev <= (stored > f->taken ? stored : f->taken));
	if (f->kind->keeps_reservation) {
		assert_int_equal(rev, stored);
	}
}

/* The one instance of svc at ep in r, or NULL; free with dsi_instances_free(list). */
static dsi_instance *
find(dsi_registry *r, const char *svc, const char *ep, dsi_instances *list)
{
	*list = (dsi_instances) { 0 };
	if (dsi_registry_get_all(r, svc, list, NULL) != 0) {
		return NULL;
	}
	for (size_t i = 0; i < list->count; i++) {
		if (strcmp(list->items[i]->endpoint, ep) == 0) {
			return list->items[i];
		}
	}
	return NULL;
}

/* ---- the contract ---- */

/* New storage holds nothing at revision 0, and says what it is. */
static void
test_fresh_is_empty(void **state)
{
	fixture *f = *state;
	open_backend(f);
	assert_int_equal(dsi_backend_revision(f->b), 0);
	assert_string_not_equal(dsi_backend_describe(f->b), "");
	dsi_registry *r = load(f);
	assert_int_equal(dsi_registry_count(r), 0);
	assert_int_equal(dsi_registry_revision(r), 0);
	dsi_registry_destroy(r);
}

/* A committed transaction is there after a restart, revision included, exactly as prepared. */
static void
test_commit_is_durable(void **state)
{
	fixture     *f    = *state;
	const dsc_kv kv[] = { { "zone", "a" }, { "version", "1.2" } };
	open_backend(f);
	assert_ok(dsi_backend_begin(f->b));
	write_op(f, prep_register(f, "api", "http://127.0.0.1:8080", kv, 2, 7));
	write_op(f, prep_register(f, "api", "http://127.0.0.1:8081", NULL, 0, 1));
	assert_ok(dsi_backend_set_revision(f->b, 4096));
	assert_ok(dsi_backend_commit(f->b, 4096));
	assert_int_equal(dsi_backend_revision(f->b), 4096);
	assert_string_equal(dsi_backend_error(f->b), "");

	reopen(f);
	expect_reopened_revision(f, 4096);
	dsi_registry *r = load(f);
	assert_int_equal(dsi_registry_count(r), 2);
	assert_int_equal(dsi_registry_revision(r), dsi_backend_revision(f->b));
	dsi_instances list;
	dsi_instance *in = find(r, "api", "http://127.0.0.1:8080", &list);
	assert_non_null(in);
	assert_int_equal(in->weight, 7);
	assert_string_equal(in->health_path, "/health");
	assert_int_equal(in->registered_at_ms, 1700000000000);
	assert_int_equal(in->n_metadata, 2);
	assert_string_equal(in->metadata[0]->key, "version"); /* sorted by key */
	assert_string_equal(in->metadata[0]->value, "1.2");
	assert_string_equal(in->metadata[1]->key, "zone");
	dsi_instances_free(&list);
	dsi_registry_destroy(r);
}

/* commit(0): no set_revision in the transaction, so the revision asked for stays. */
static void
test_commit_without_revision_keeps_it(void **state)
{
	fixture *f = *state;
	open_backend(f);
	assert_ok(dsi_backend_begin(f->b));
	assert_ok(dsi_backend_set_revision(f->b, 100));
	assert_ok(dsi_backend_commit(f->b, 100));
	assert_ok(dsi_backend_begin(f->b));
	write_op(f, prep_register(f, "api", "http://127.0.0.1:8080", NULL, 0, 1));
	assert_ok(dsi_backend_commit(f->b, 0));
	assert_int_equal(dsi_backend_revision(f->b), 100);
	reopen(f);
	expect_reopened_revision(f, 100);
	dsi_registry *r = load(f);
	assert_int_equal(dsi_registry_count(r), 1);
	dsi_registry_destroy(r);
}

/* A rolled-back transaction leaves nothing, and a second rollback is harmless. */
static void
test_rollback_stores_nothing(void **state)
{
	fixture *f = *state;
	open_backend(f);
	assert_ok(dsi_backend_begin(f->b));
	dsi_registry_op *op = prep_register(f, "api", "http://127.0.0.1:8080", NULL, 0, 1);
	assert_ok(dsi_backend_write(f->b, dsi_registry_op_get(op)));
	dsi_registry_op_free(op);
	assert_ok(dsi_backend_set_revision(f->b, 4096));
	dsi_backend_rollback(f->b);
	dsi_backend_rollback(f->b);
	assert_int_equal(dsi_backend_revision(f->b), 0);
	reopen(f);
	assert_int_equal(dsi_backend_revision(f->b), 0);
	dsi_registry *r = load(f);
	assert_int_equal(dsi_registry_count(r), 0);
	dsi_registry_destroy(r);
}

/*
 * A refused change fails every later call of its transaction and the
 * commit, stores none of it, says why, and the next transaction works.
 */
static void
test_failed_call_fails_the_transaction(void **state)
{
	fixture *f = *state;
	open_backend(f);
	assert_ok(dsi_backend_begin(f->b));
	dsi_registry_op *good = prep_register(f, "api", "http://127.0.0.1:8080", NULL, 0, 1);
	assert_ok(dsi_backend_write(f->b, dsi_registry_op_get(good)));
	dsi_registry_op_free(good);
	assert_int_equal(dsi_backend_write(f->b, &f->kind->refused), DSC_EUNAVAILABLE);
	assert_int_equal(dsi_backend_set_revision(f->b, 4096), DSC_EUNAVAILABLE);
	assert_int_equal(dsi_backend_commit(f->b, 4096), DSC_EUNAVAILABLE);
	assert_string_not_equal(dsi_backend_error(f->b), "");
	assert_int_equal(dsi_backend_revision(f->b), 0);

	assert_ok(dsi_backend_begin(f->b));
	assert_string_equal(dsi_backend_error(f->b), "");
	write_op(f, prep_register(f, "api", "http://127.0.0.1:8081", NULL, 0, 1));
	assert_ok(dsi_backend_set_revision(f->b, 50));
	assert_ok(dsi_backend_commit(f->b, 50));
	reopen(f);
	expect_reopened_revision(f, 50);
	dsi_registry *r = load(f);
	dsi_instances list;
	assert_int_equal(dsi_registry_count(r), 1);
	assert_non_null(find(r, "api", "http://127.0.0.1:8081", &list));
	dsi_instances_free(&list);
	dsi_registry_destroy(r);
}

/* A register of an existing instance replaces it whole, metadata included. */
static void
test_update_replaces(void **state)
{
	fixture     *f     = *state;
	const dsc_kv old[] = { { "a", "1" }, { "b", "2" } };
	const dsc_kv new[] = { { "c", "3" } };
	open_backend(f);
	assert_ok(dsi_backend_begin(f->b));
	write_op(f, prep_register(f, "api", "http://127.0.0.1:8080", old, 2, 1));
	assert_ok(dsi_backend_commit(f->b, 0));
	assert_ok(dsi_backend_begin(f->b));
	write_op(f, prep_register(f, "api", "http://127.0.0.1:8080", new, 1, 9));
	assert_ok(dsi_backend_commit(f->b, 0));
	reopen(f);
	dsi_registry *r = load(f);
	dsi_instances list;
	dsi_instance *in = find(r, "api", "http://127.0.0.1:8080", &list);
	assert_non_null(in);
	assert_int_equal(in->weight, 9);
	assert_int_equal(in->n_metadata, 1);
	assert_string_equal(in->metadata[0]->key, "c");
	dsi_instances_free(&list);
	dsi_registry_destroy(r);
}

/* Removals of one instance and of a whole service; a no-op write stores nothing. */
static void
test_removals_and_noops(void **state)
{
	fixture *f = *state;
	open_backend(f);
	assert_ok(dsi_backend_begin(f->b));
	write_op(f, prep_register(f, "api", "http://127.0.0.1:1", NULL, 0, 1));
	write_op(f, prep_register(f, "api", "http://127.0.0.1:2", NULL, 0, 1));
	write_op(f, prep_register(f, "db", "http://127.0.0.1:3", NULL, 0, 1));
	write_op(f, prep_register(f, "db", "http://127.0.0.1:4", NULL, 0, 1));
	assert_ok(dsi_backend_commit(f->b, 0));

	assert_ok(dsi_backend_begin(f->b));
	write_op(f, prep_deregister(f, "api", "http://127.0.0.1:1"));
	write_op(f, prep_deregister(f, "db", NULL));
	dsi_registry_op *noop = prep_deregister(f, "nothing", NULL);
	assert_false(dsi_registry_op_get(noop)->changes);
	write_op(f, noop);
	assert_ok(dsi_backend_commit(f->b, 0));

	reopen(f);
	dsi_registry *r = load(f);
	dsi_instances list;
	assert_int_equal(dsi_registry_count(r), 1);
	assert_non_null(find(r, "api", "http://127.0.0.1:2", &list));
	dsi_instances_free(&list);
	dsi_registry_destroy(r);
}

/* load fails, saying why, when check refuses a stored instance. */
static int
refuse_all(void *arg, const dsi_registration *reg, char *msg, size_t len)
{
	(void) arg;
	snprintf(msg, len, "%s is refused", reg->service);
	return DSC_EINVAL;
}

static void
test_load_refused_by_check(void **state)
{
	fixture *f = *state;
	open_backend(f);
	assert_ok(dsi_backend_begin(f->b));
	write_op(f, prep_register(f, "api", "http://127.0.0.1:8080", NULL, 0, 1));
	assert_ok(dsi_backend_commit(f->b, 0));
	reopen(f);
	dsi_registry *r;
	char          why[512] = "";
	assert_ok(dsi_registry_create(&r, &f->limits));
	assert_int_not_equal(dsi_backend_load(f->b, r, refuse_all, NULL, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "api is refused"));
	dsi_registry_destroy(r);
}

/* Capabilities: the ones the kind has, DSC_ENOTSUP for the rest, *out untouched then. */
static void
test_capabilities(void **state)
{
	fixture *f   = *state;
	void    *out = &out;
	open_backend(f);
	int rv = dsi_backend_capability(f->b, DSI_BACKEND_CAP_SQLITE, &out);
	if (f->kind->sqlite) {
		assert_ok(rv);
		assert_non_null(out);
	} else {
		assert_int_equal(rv, DSC_ENOTSUP);
		assert_ptr_equal(out, &out);
	}
	out = &out;
	assert_int_equal(dsi_backend_capability(f->b, (dsi_backend_cap) 9999, &out), DSC_ENOTSUP);
	assert_ptr_equal(out, &out);
}

/* ---- a backend with no capability at all: what the snapshot says to it ---- */

static const char *
bare_describe(const dsi_backend *b)
{
	(void) b;
	return "a bare backend";
}

/* The snapshot asks for the SQLite connection and refuses a backend without one. */
static void
test_snapshot_needs_sqlite(void **state)
{
	(void) state;
	static const dsi_backend_ops ops      = { .describe = bare_describe };
	dsi_backend                  bare     = { .ops = &ops };
	dsi_store_snapshot          *sn       = NULL;
	char                         why[256] = "";
	void                        *out      = NULL;
	assert_int_equal(dsi_backend_capability(&bare, DSI_BACKEND_CAP_SQLITE, &out), DSC_ENOTSUP);
	assert_int_equal(dsi_store_snapshot_begin(&bare, &sn, why, sizeof(why)), DSC_ENOTSUP);
	assert_null(sn);
	assert_non_null(strstr(why, "a bare backend keeps no SQLite file"));
}

/* ---- every case against every kind ---- */

typedef struct contract_case {
	const char *name;
	void (*fn)(void **state);
} contract_case;

static const contract_case cases[] = {
	{ "fresh_is_empty", test_fresh_is_empty },
	{ "commit_is_durable", test_commit_is_durable },
	{ "commit_without_revision_keeps_it", test_commit_without_revision_keeps_it },
	{ "rollback_stores_nothing", test_rollback_stores_nothing },
	{ "failed_call_fails_the_transaction", test_failed_call_fails_the_transaction },
	{ "update_replaces", test_update_replaces },
	{ "removals_and_noops", test_removals_and_noops },
	{ "load_refused_by_check", test_load_refused_by_check },
	{ "capabilities", test_capabilities },
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

int
main(void)
{
	struct CMUnitTest tests[N_KINDS * N_CASES + 1];
	char              names[N_KINDS * N_CASES][96];
	size_t            n = 0;

	for (size_t k = 0; k < N_KINDS; k++) {
		for (size_t c = 0; c < N_CASES; c++, n++) {
			snprintf(
			    names[n], sizeof(names[n]), "%s: %s", kinds[k].name, cases[c].name);
			tests[n] = (struct CMUnitTest) {
				.name          = names[n],
				.test_func     = cases[c].fn,
				.setup_func    = setup,
				.teardown_func = teardown,
				.initial_state = (void *) &kinds[k],
			};
		}
	}
	tests[n++] = (struct CMUnitTest) { .name = "snapshot_needs_sqlite",
		.test_func                       = test_snapshot_needs_sqlite };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
