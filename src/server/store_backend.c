/* The SQLite store behind the backend interface: each call is the dsi_store_* of the same name. */
#include "server/store_backend.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/container_of.h"
#include "common/error.h"

/* A dsi_store seen as a backend. */
typedef struct sqlite_backend {
	dsi_backend base; /* first: what callers hold */
	dsi_store  *store;
	bool        owns;    /* close closes store */
	char        label[]; /* "data file PATH" */
} sqlite_backend;

static dsi_store *
store_of(dsi_backend *b)
{
	return DSI_CONTAINER_OF(b, sqlite_backend, base)->store;
}

static const sqlite_backend *
const_of(const dsi_backend *b)
{
	return (const sqlite_backend *) (const void *) b; /* base is the first member */
}

static int
sq_load(dsi_backend *b, dsi_registry *r, dsi_backend_check_fn check, void *check_arg, char *why,
    size_t why_len)
{
	return dsi_store_load(store_of(b), r, check, check_arg, why, why_len);
}

static int
sq_begin(dsi_backend *b)
{
	return dsi_store_begin(store_of(b));
}

static int
sq_write(dsi_backend *b, const dsi_registry_op_info *op)
{
	return dsi_store_write(store_of(b), op);
}

static int
sq_set_revision(dsi_backend *b, uint64_t rev)
{
	return dsi_store_set_revision(store_of(b), rev);
}

static int
sq_commit(dsi_backend *b, uint64_t rev)
{
	return dsi_store_commit(store_of(b), rev);
}

static void
sq_rollback(dsi_backend *b)
{
	dsi_store_rollback(store_of(b));
}

static const char *
sq_error(const dsi_backend *b)
{
	return dsi_store_error(const_of(b)->store);
}

static const char *
sq_describe(const dsi_backend *b)
{
	return const_of(b)->label;
}

static uint64_t
sq_revision(const dsi_backend *b)
{
	return dsi_store_revision(const_of(b)->store);
}

/* The connection, for store_snapshot.c on the store's thread (the writer). */
static int
sq_capability(dsi_backend *b, dsi_backend_cap cap, void **out)
{
	if (cap != DSI_BACKEND_CAP_SQLITE) {
		return DSC_ENOTSUP;
	}
	*out = dsi_store_db(store_of(b));
	return 0;
}

static void
sq_close(dsi_backend *b)
{
	sqlite_backend *sb = DSI_CONTAINER_OF(b, sqlite_backend, base);
	if (sb->owns) {
		dsi_store_close(sb->store);
	}
	free(sb);
}

static const dsi_backend_ops sqlite_ops = {
	.load         = sq_load,
	.begin        = sq_begin,
	.write        = sq_write,
	.set_revision = sq_set_revision,
	.commit       = sq_commit,
	.rollback     = sq_rollback,
	.error        = sq_error,
	.describe     = sq_describe,
	.revision     = sq_revision,
	.capability   = sq_capability,
	.close        = sq_close,
};

static int
wrap(dsi_backend **out, dsi_store *s, bool owns)
{
	const char     *path = dsi_store_path(s);
	size_t          len  = sizeof("data file ") + strlen(path);
	sqlite_backend *sb   = malloc(sizeof(*sb) + len);
	if (sb == NULL) {
		return DSC_ENOMEM;
	}
	sb->base.ops = &sqlite_ops;
	sb->store    = s;
	sb->owns     = owns;
	snprintf(sb->label, len, "data file %s", path);
	*out = &sb->base;
	return 0;
}

int
dsi_store_backend_open(
    dsi_backend **out, const char *path, const dsi_log *log, char *why, size_t why_len)
{
	dsi_store *s;
	int        rv = dsi_store_open(&s, path, log, why, why_len);
	if (rv == 0 && (rv = wrap(out, s, true)) != 0) {
		snprintf(why, why_len, "out of memory");
		dsi_store_close(s);
	}
	return rv;
}

int
dsi_store_backend_borrow(dsi_backend **out, dsi_store *s)
{
	return wrap(out, s, false);
}
