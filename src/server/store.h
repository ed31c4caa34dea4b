/*
 * The store: registrations and the revision in an SQLite file, so that an
 * acknowledged write survives kill -9 and restarts.
 *
 * The in-memory registry stays the source for every read; the store only
 * ever writes, from one writer thread. A write is planned against the
 * registry (validated, turned into SQL), committed together with whatever
 * else is waiting (group commit), and only then applied to the registry and
 * answered. A commit that fails changes nothing in memory, so the file and
 * the registry never diverge.
 *
 * Health is not stored: after a restart every instance is UNKNOWN until its
 * first check. The revision is stored as a reservation that is always at
 * least the registry's revision, so it never goes backwards across a
 * restart (it may jump forward by up to DSI_STORE_RESERVE).
 */
#ifndef DSI_STORE_H
#define DSI_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "server/registry.h"

#define DSI_STORE_SCHEMA  1    /* the schema version this build writes */
#define DSI_STORE_RESERVE 4096 /* revisions reserved ahead by each commit */
#define DSI_STORE_BATCH   256  /* writes per commit at most */

typedef struct dsi_store     dsi_store;
typedef struct dsi_store_txn dsi_store_txn;
typedef struct dsi_write     dsi_write;

/*
 * One write waiting for the writer thread. plan runs first, on the writer
 * thread: it checks the write against the registry (which only the writer
 * changes, apart from health) and states its SQL with dsi_store_put and
 * dsi_store_delete. Then, after the commit, apply runs with rv 0 to change
 * the registry, or with the plan's error or the commit's (why says which)
 * to answer without changing anything. apply may free the write.
 */
struct dsi_write {
	const char *service;
	const char *endpoint; /* NULL: the whole service */
	int (*plan)(dsi_write *w, dsi_store_txn *tx);
	void (*apply)(dsi_write *w, int rv, const char *why);
	dsi_write *next;
	int        rv; /* the plan's result */
};

/*
 * Opens path (created when missing), takes the
 * file's lock, checks it, and upgrades an older schema. On failure why says
 * what is wrong and what to do; the file is never wiped or overwritten.
 */
int dsi_store_open(
    dsi_store **out, const char *path, const dsi_log *log, char *why, size_t why_len);

/* Checks one stored registration against the rules in force: 0 or an error in msg. */
typedef int (*dsi_store_check_fn)(void *arg, const dsi_registration *reg, char *msg, size_t len);

/*
 * Loads every stored registration into r (health UNKNOWN, a full TTL of
 * grace) and sets its revision. Fails, saying why, when a row is not a
 * valid name and endpoint, fails check, or does not fit r's limits.
 */
int dsi_store_load(dsi_store *s, dsi_registry *r, dsi_store_check_fn check, void *check_arg,
    char *why, size_t why_len);

/*
 * Starts the writer thread; after_batch (may be NULL) runs on it after each
 * batch has been applied, outside every lock.
 */
int dsi_store_start(dsi_store *s, dsi_registry *r, void (*after_batch)(void *), void *arg);

/* Queues w; its apply runs on the writer thread, or at once when stopped. */
void dsi_store_submit(dsi_store *s, dsi_write *w);

/*
 * For a change made outside the writer (health): blocks until the stored
 * reservation covers one more revision, and returns 0 holding the right
 * to take it until dsi_store_release. DSC_EUNAVAILABLE when it cannot be
 * stored; the caller must then not change the registry.
 */
int  dsi_store_reserve(dsi_store *s);
void dsi_store_release(dsi_store *s);

/* Transactions committed, and the writes they carried: their ratio is the batching. */
void dsi_store_stats(dsi_store *s, uint64_t *commits, uint64_t *writes);

/* Applies what is queued, then stops the writer thread. Idempotent. */
void dsi_store_stop(dsi_store *s);
void dsi_store_close(dsi_store *s);

/* ---- for plan functions ---- */

/* Stores reg (an insert, or a full replacement of the row and its metadata). */
int dsi_store_put(dsi_store_txn *tx, const dsi_registration *reg);

/* Deletes one instance, or every instance of service when endpoint is NULL. */
int dsi_store_delete(dsi_store_txn *tx, const char *service, const char *endpoint);

/*
 * Instances this batch has already planned to create, in service and in
 * total: limits must count them, as the registry does not hold them yet.
 */
void dsi_store_pending(
    const dsi_store_txn *tx, const char *service, uint32_t *in_service, uint32_t *total);

/* Tells the batch that the write being planned creates an instance. */
void dsi_store_note_create(dsi_store_txn *tx);

/* The write being planned may take n revisions (one, unless it says so). */
void dsi_store_note_revisions(dsi_store_txn *tx, uint64_t n);

#endif
