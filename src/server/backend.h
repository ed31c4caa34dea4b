/*
 * The backend: where the writer (writer.h) stores each batch of prepared
 * registry changes before memory sees them. A table of functions over a
 * handle, so that the writer's batching, revision reservation, apply and
 * replies stay the same whatever holds the data: the SQLite file today
 * (store.h, dsi_store_backend), etcd next (docs/cluster.md).
 *
 * The contract every backend meets (tests/unit/backend_test.c runs it
 * against each one):
 * - One transaction at a time, on one thread: the opener until the writer
 *   starts, then the writer. begin, any number of write and at most one
 *   set_revision, then commit or rollback.
 * - Once any call of a transaction fails, it and every later call of that
 *   transaction return DSC_EUNAVAILABLE and error() says why; commit then
 *   rolls back and stores nothing. A transaction is all or nothing.
 * - commit returns 0 only when the changes and the revision are durable:
 *   after a restart, load gives them back.
 * - revision() is at least every revision a committed change took, and
 *   never goes backwards, across a close and an open too; load sets the
 *   registry's revision to it. set_revision(r) asks that it be r from the
 *   commit on: the writer stores a reservation ahead of the registry's
 *   revision there (DSI_STORE_RESERVE). SQLite keeps r itself; a backend
 *   that numbers every change durably (etcd's counter) may keep r in
 *   memory only, and answer the exact counter after an open.
 * - Anything only one backend can do is a capability, asked for by name:
 *   the others answer DSC_ENOTSUP.
 * - A backend shared with other writers (etcd: other discoveryd nodes)
 *   may lose a race: commit then returns DSC_ESTATE having stored nothing,
 *   and the writer prepares the batch again once unhold has brought memory
 *   up to date. hold/unhold bracket a batch from before its first prepare
 *   to after its apply, so that nothing else changes the registry between
 *   the two (the backend's own appliers wait for it).
 */
#ifndef DSI_BACKEND_H
#define DSI_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "server/registry.h"

/* The writer's reservation policy, the same for every backend. */
#define DSI_STORE_RESERVE   4096 /* the reservation, counted from the revision when stored */
#define DSI_STORE_LOW_WATER 1024 /* headroom below which the writer stores a new one */
#define DSI_STORE_BATCH     256  /* writes per commit at most */

typedef struct dsi_backend     dsi_backend;
typedef struct dsi_backend_ops dsi_backend_ops;

/* What only some backends can do; out's type is the capability's. */
typedef enum dsi_backend_cap {
	/* sqlite3 *: the connection, on the backend's thread only (store_snapshot.h). */
	DSI_BACKEND_CAP_SQLITE = 1,
	/*
	 * No out: the backend numbers every change durably itself (etcd's
	 * counter), so the writer stores no reservation and has no ceiling.
	 */
	DSI_BACKEND_CAP_COUNTER = 2,
} dsi_backend_cap;

/* Checks one stored registration against the rules in force: 0 or an error in msg. */
typedef int (*dsi_backend_check_fn)(void *arg, const dsi_registration *reg, char *msg, size_t len);

/* A backend's functions; static and shared by all its handles. */
struct dsi_backend_ops {
	int (*load)(dsi_backend *b, dsi_registry *r, dsi_backend_check_fn check, void *check_arg,
	    char *why, size_t why_len);
	int (*begin)(dsi_backend *b);
	int (*write)(dsi_backend *b, const dsi_registry_op_info *op);
	int (*set_revision)(dsi_backend *b, uint64_t rev);
	int (*commit)(dsi_backend *b, uint64_t rev);
	void (*rollback)(dsi_backend *b);
	const char *(*error)(const dsi_backend *b);
	const char *(*describe)(const dsi_backend *b);
	uint64_t (*revision)(const dsi_backend *b);
	int (*capability)(dsi_backend *b, dsi_backend_cap cap, void **out); /* NULL: none */
	void (*close)(dsi_backend *b);
	/* Optional (NULL: nothing to do, DSI_STORE_BATCH). */
	void (*hold)(dsi_backend *b);
	void (*unhold)(dsi_backend *b);
	size_t (*max_batch)(const dsi_backend *b);
};

/*
 * The handle: the first member of each backend's own struct, which maps it
 * back with DSI_CONTAINER_OF. Users call the functions below, never ops.
 */
struct dsi_backend {
	const dsi_backend_ops *ops;
};

/*
 * Loads everything stored into r (health UNKNOWN, a full TTL of grace) and
 * sets r's revision to revision(). Fails, saying why, when a stored
 * instance is invalid, fails check (may be NULL), or does not fit r's
 * limits; r may then hold part of it.
 */
int dsi_backend_load(dsi_backend *b, dsi_registry *r, dsi_backend_check_fn check, void *check_arg,
    char *why, size_t why_len);

/* A transaction: each returns 0 or DSC_EUNAVAILABLE (see the contract above). */
int dsi_backend_begin(dsi_backend *b);
/* Stores one prepared registry change (nothing for a no-op: changes false). */
int dsi_backend_write(dsi_backend *b, const dsi_registry_op_info *op);
int dsi_backend_set_revision(dsi_backend *b, uint64_t rev);
/* rev: what set_revision stored in this transaction (0: none), revision() once committed. */
int  dsi_backend_commit(dsi_backend *b, uint64_t rev);
void dsi_backend_rollback(dsi_backend *b); /* with or without a failure; idempotent */

/* Why the last transaction failed ("" if it did not); borrowed, valid until the next begin. */
const char *dsi_backend_error(const dsi_backend *b);
/* What the logs call it ("data file PATH"); borrowed, valid until close. */
const char *dsi_backend_describe(const dsi_backend *b);
uint64_t    dsi_backend_revision(const dsi_backend *b); /* as last committed */

/* 0 with *out, or DSC_ENOTSUP when b cannot do cap (*out untouched). */
int dsi_backend_capability(dsi_backend *b, dsi_backend_cap cap, void **out);

/*
 * Around one batch of the writer: hold before its first prepare, unhold
 * after its apply (and before a batch that lost a race is prepared again).
 */
void dsi_backend_hold(dsi_backend *b);
void dsi_backend_unhold(dsi_backend *b);

/* Writes one transaction may carry (DSI_STORE_BATCH at most). */
size_t dsi_backend_max_batch(const dsi_backend *b);

/* Closes b and frees it with its whole backend. NULL is fine. */
void dsi_backend_close(dsi_backend *b);

#endif
