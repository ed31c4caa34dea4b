/*
 * The store: registrations and the revision in an SQLite file, so that an
 * acknowledged write survives kill -9 and restarts.
 *
 * The in-memory registry stays the source for every read; the file is only
 * ever written, by the writer thread (writer.h), in transactions of
 * prepared registry changes. Health is not stored: after a restart every
 * instance is UNKNOWN until its first check.
 *
 * The stored revision is exact after a clean stop. While running it is a
 * reservation ahead of the registry's revision, topped up by the writer
 * when the headroom falls below DSI_STORE_LOW_WATER, so after kill -9 the
 * revision never goes backwards and jumps forward by at most
 * DSI_STORE_RESERVE (or by the revisions of one write that takes more,
 * such as the removal of a service with more instances than that).
 *
 * The writer sees the store only as a backend (store_backend.h); the
 * dsi_store_* calls below are what that backend calls, and the tests.
 */
#ifndef DSI_STORE_H
#define DSI_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "server/backend.h"
#include "server/registry.h"

#define DSI_STORE_SCHEMA 2 /* the schema version this build writes */

typedef struct dsi_store dsi_store;

/*
 * Opens path (created when missing), takes the
 * file's lock, checks it, and upgrades an older schema. On failure why says
 * what is wrong and what to do; the file is never wiped or overwritten.
 */
int dsi_store_open(
    dsi_store **out, const char *path, const dsi_log *log, char *why, size_t why_len);

/* The same check as the backend's (backend.h). */
typedef dsi_backend_check_fn dsi_store_check_fn;

/*
 * Loads every stored registration into r (health UNKNOWN, a full TTL of
 * grace) and sets its revision. Fails, saying why, when a row is not a
 * valid name and endpoint, fails check, or does not fit r's limits.
 */
int dsi_store_load(dsi_store *s, dsi_registry *r, dsi_store_check_fn check, void *check_arg,
    char *why, size_t why_len);

/*
 * One transaction at a time, by one thread (the writer). Each call returns
 * 0 or DSC_EUNAVAILABLE once any statement of the transaction has failed
 * (dsi_store_error says why); a failed commit rolls back.
 */
int dsi_store_begin(dsi_store *s);
/* The SQL of one prepared registry change (nothing for a no-op). */
int dsi_store_write(dsi_store *s, const dsi_registry_op_info *op);
int dsi_store_set_revision(dsi_store *s, uint64_t rev);
/* rev: what set_revision stored in this transaction (0: none), known once committed. */
int         dsi_store_commit(dsi_store *s, uint64_t rev);
void        dsi_store_rollback(dsi_store *s);
const char *dsi_store_error(const dsi_store *s);
const char *dsi_store_path(const dsi_store *s);
uint64_t    dsi_store_revision(const dsi_store *s); /* as last committed */

void dsi_store_close(dsi_store *s);

/* The store's connection, for the thread that owns the store. */
sqlite3 *dsi_store_db(dsi_store *s);

#endif
