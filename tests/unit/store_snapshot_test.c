/*
 * The online copy of the data file (server/store_snapshot.c), in process:
 * a copy taken a page at a time while commits go on through the same
 * connection holds them, passes integrity_check, and is a data file the
 * store opens again; an abandoned copy lets the store go on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/store.h"
#include "server/store_backend.h"
#include "server/store_snapshot.h"
#include "support/testutil.h"

typedef struct fixture {
	char         dir[128];
	char         path[256];
	dsi_log      log;
	dsi_store   *store;
	dsi_backend *backend; /* borrows store: what the writer thread hands the snapshot */
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	char     why[512];
	if (f == NULL || tu_mkdtemp(f->dir, sizeof(f->dir), "store-snapshot") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/discovery.db", f->dir);
	f->log.level = DSI_LOG_ERROR;
	if (dsi_store_open(&f->store, f->path, &f->log, why, sizeof(why)) != 0) {
		fprintf(stderr, "%s\n", why);
		return -1;
	}
	if (dsi_store_backend_borrow(&f->backend, f->store) != 0) {
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	dsi_backend_close(f->backend);
	dsi_store_close(f->store);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

static void
store_revision(dsi_store *s, uint64_t rev)
{
	assert_ok(dsi_store_begin(s));
	assert_ok(dsi_store_set_revision(s, rev));
	assert_ok(dsi_store_commit(s, rev));
}

/* The stored revision of a database image, and its integrity_check. */
static int64_t
image_revision(const unsigned char *bytes, size_t len)
{
	sqlite3       *db;
	sqlite3_stmt  *st;
	unsigned char *copy = sqlite3_malloc64(len);
	int64_t        rev  = -1;
	memcpy(copy, bytes, len);
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_deserialize(db, "main", copy, (sqlite3_int64) len, (sqlite3_int64) len,
	        SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY),
	    SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *) sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(
	                     db, "SELECT value FROM state WHERE name = 'revision'", -1, &st, NULL),
	    SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW) {
		rev = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rev;
}

static void
test_copy_follows_commits(void **state)
{
	fixture            *f = *state;
	dsi_store_snapshot *sn;
	char                why[256];
	bool                complete = false;
	int                 steps    = 0;

	store_revision(f->store, 100);
	assert_ok(dsi_store_snapshot_begin(f->backend, &sn, why, sizeof(why)));
	size_t len;
	assert_null(dsi_store_snapshot_bytes(sn, &len));
	while (!complete) {
		assert_ok(dsi_store_snapshot_step(sn, 1, &complete, why, sizeof(why)));
		/* A commit between two steps, through the store's own connection. */
		if (steps++ == 0) {
			store_revision(f->store, 200);
		}
		assert_true(steps < 1000);
	}
	assert_true(steps > 1);
	const unsigned char *bytes = dsi_store_snapshot_bytes(sn, &len);
	assert_non_null(bytes);
	assert_int_equal(image_revision(bytes, len), 200);

	/* The copy is a data file the store opens (as discoveryd --data FILE would). */
	char  copy[300], why2[512];
	FILE *out;
	snprintf(copy, sizeof(copy), "%s/copy.db", f->dir);
	assert_non_null(out = fopen(copy, "wb"));
	assert_int_equal(fwrite(bytes, 1, len, out), len);
	assert_int_equal(fclose(out), 0);
	dsi_store_snapshot_free(sn);
	dsi_store *again;
	assert_int_equal(dsi_store_open(&again, copy, &f->log, why2, sizeof(why2)), 0);
	assert_int_equal(dsi_store_revision(again), 200);
	dsi_store_close(again);

	/* The store goes on after the copy. */
	store_revision(f->store, 300);
}

static void
test_abandoned_copy(void **state)
{
	fixture            *f = *state;
	dsi_store_snapshot *sn;
	char                why[256];
	bool                complete;

	assert_ok(dsi_store_snapshot_begin(f->backend, &sn, why, sizeof(why)));
	assert_ok(dsi_store_snapshot_step(sn, 1, &complete, why, sizeof(why)));
	assert_false(complete);
	dsi_store_snapshot_stop(sn);
	dsi_store_snapshot_stop(sn); /* idempotent */
	assert_int_equal(
	    dsi_store_snapshot_step(sn, 1, &complete, why, sizeof(why)), DSC_EUNAVAILABLE);
	dsi_store_snapshot_free(sn);
	dsi_store_snapshot_free(NULL);
	store_revision(f->store, 500);
	assert_int_equal(dsi_store_revision(f->store), 500);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy_follows_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandoned_copy, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
