/*
 * An online copy of the data file (GET /v1/snapshot), taken with SQLite's
 * backup API into an in-memory database, a few pages per step. The store's
 * connection is the source: it holds the file's exclusive lock (store.c),
 * so no second connection could read the file. The steps therefore run on
 * the writer thread between its transactions (dsi_writer_run), and since
 * the writer's own connection makes every change, SQLite carries each
 * commit made during the copy into it: the finished copy is the file as of
 * its last step, which includes every write acknowledged before it began.
 */
#ifndef DSI_STORE_SNAPSHOT_H
#define DSI_STORE_SNAPSHOT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/backend.h"

#define DSI_SNAPSHOT_STEP_PAGES 64 /* pages copied per step: writes wait for one step */

typedef struct dsi_store_snapshot dsi_store_snapshot;

/*
 * Starts a copy of b's SQLite file (its DSI_BACKEND_CAP_SQLITE connection).
 * On b's thread. Returns 0, or with why: DSC_ENOTSUP when b keeps no SQLite
 * file, DSC_ENOMEM, DSC_EUNAVAILABLE.
 */
int dsi_store_snapshot_begin(dsi_backend *b, dsi_store_snapshot **out, char *why, size_t why_len);

/*
 * Copies up to pages more pages (<= 0: all that remain). On the store's
 * thread. Returns 0 with *complete telling whether the copy is whole (then
 * the source is let go), or DSC_EUNAVAILABLE with why (the copy is then
 * abandoned and the source let go).
 */
int dsi_store_snapshot_step(
    dsi_store_snapshot *sn, int pages, bool *complete, char *why, size_t why_len);

/* Abandons an unfinished copy, letting the source go. On the store's thread; idempotent. */
void dsi_store_snapshot_stop(dsi_store_snapshot *sn);

/*
 * The complete copy's bytes: a valid data file (borrowed from sn, valid
 * until dsi_store_snapshot_free). NULL before completion. Any thread.
 */
const unsigned char *dsi_store_snapshot_bytes(dsi_store_snapshot *sn, size_t *len);

/* After dsi_store_snapshot_stop or completion; any thread. NULL is fine. */
void dsi_store_snapshot_free(dsi_store_snapshot *sn);

#endif
