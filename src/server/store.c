/*
 * The SQLite store and its writer thread.
 *
 * The file is opened in WAL mode with synchronous=FULL, so a COMMIT has
 * reached the disk (fsync of the WAL) when it returns: that is what makes
 * an acknowledged write durable. locking_mode=EXCLUSIVE holds the file's
 * lock from the first write until close, which is how a second discoveryd
 * on the same file is refused, and keeps the WAL index in heap memory (no
 * -shm file).
 */
#include "server/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/endpoint.h"
#include "common/name.h"
#include "common/text.h"
#include "common/timeutil.h"

/* "DSC1": tells our files from other SQLite databases. */
#define APPLICATION_ID 0x44534331

/*
 * Schema migrations: entry i takes a file from version i to i + 1. A new
 * schema version appends an entry; old entries never change.
 */
static const char *const migrations[DSI_STORE_SCHEMA] = {
	/* 0 -> 1: the first schema. */
	"CREATE TABLE instances ("
	" service TEXT NOT NULL,"
	" endpoint TEXT NOT NULL,"
	" health_path TEXT NOT NULL,"
	" ttl_ms INTEGER NOT NULL,"
	" weight INTEGER NOT NULL,"
	" registered_at_ms INTEGER NOT NULL,"
	" PRIMARY KEY (service, endpoint)) WITHOUT ROWID;"
	"CREATE TABLE metadata ("
	" service TEXT NOT NULL,"
	" endpoint TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" value TEXT NOT NULL,"
	" PRIMARY KEY (service, endpoint, key)) WITHOUT ROWID;"
	"CREATE TABLE state (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	"INSERT INTO state (name, value) VALUES ('revision', 0);",
};

enum {
	ST_PUT,
	ST_META_CLEAR,
	ST_META_PUT,
	ST_DEL_ONE,
	ST_DEL_ONE_META,
	ST_DEL_ALL,
	ST_DEL_ALL_META,
	ST_SET_REVISION,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_COUNT,
};

static const char *const statements[ST_COUNT] = {
	[ST_PUT]          = "INSERT INTO instances"
	                    " (service, endpoint, health_path, ttl_ms, weight, registered_at_ms)"
	                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
	                    " ON CONFLICT (service, endpoint) DO UPDATE SET"
	                    " health_path = ?3, ttl_ms = ?4, weight = ?5, registered_at_ms = ?6",
	[ST_META_CLEAR]   = "DELETE FROM metadata WHERE service = ?1 AND endpoint = ?2",
	[ST_META_PUT]     = "INSERT OR REPLACE INTO metadata (service, endpoint, key, value)"
	                    " VALUES (?1, ?2, ?3, ?4)",
	[ST_DEL_ONE]      = "DELETE FROM instances WHERE service = ?1 AND endpoint = ?2",
	[ST_DEL_ONE_META] = "DELETE FROM metadata WHERE service = ?1 AND endpoint = ?2",
	[ST_DEL_ALL]      = "DELETE FROM instances WHERE service = ?1",
	[ST_DEL_ALL_META] = "DELETE FROM metadata WHERE service = ?1",
	[ST_SET_REVISION] = "UPDATE state SET value = ?1 WHERE name = 'revision'",
	[ST_BEGIN]        = "BEGIN IMMEDIATE",
	[ST_COMMIT]       = "COMMIT",
	[ST_ROLLBACK]     = "ROLLBACK",
};

/* What one batch has planned so far, for conflicts and limits. */
typedef struct planned {
	const char *service;
	const char *endpoint; /* NULL: the whole service */
	bool        creates;
} planned;

struct dsi_store_txn {
	dsi_store *s;
	planned    items[DSI_STORE_BATCH];
	size_t     n;
	uint32_t   creates;
	uint64_t   revisions; /* the batch's writes may take this many revisions */
	uint64_t   cur_revs;  /* of the write being planned */
	bool       open;      /* BEGIN done */
	int        rc;        /* the first SQLite error, or SQLITE_OK */
	char       why[256];
};

struct dsi_store {
	sqlite3       *db;
	sqlite3_stmt  *st[ST_COUNT];
	char          *path;
	const dsi_log *log;
	dsi_registry  *registry;
	void (*after_batch)(void *);
	void     *after_batch_arg;
	pthread_t thread;
	bool      running;
	/*
	 * Held while the revision may move: by the writer while it applies a
	 * batch, by a health change between dsi_store_reserve and
	 * dsi_store_release; whoever holds it checks the revision against
	 * ceiling first. Taken before mtx, never after.
	 */
	pthread_mutex_t  apply_mtx;
	pthread_mutex_t  mtx;  /* guards everything below */
	pthread_cond_t   work; /* the writer waits here */
	pthread_cond_t   done; /* reserve() waits here */
	dsi_write       *head, *tail;
	bool             stopping;
	_Atomic uint64_t ceiling; /* the stored revision reservation; only grows */
	uint64_t         want;    /* a reservation reserve() asked for */
	uint64_t         failed;  /* batches that could not commit */
	uint64_t         commits; /* transactions committed */
	uint64_t         written; /* writes those carried */
	dsi_store_txn    tx;      /* the writer's; too big for its stack */
};

/* ---- opening ---- */

/* Why SQLite failed, with the advice that fits the error. */
static int
db_fail(dsi_store *s, int rc, const char *doing, char *why, size_t why_len)
{
	const char *msg = s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "data file %s is in use by another process (is another discoveryd running "
		    "on it?); stop it, or give this one its own --data",
		    s->path);
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "data file %s is damaged or not a discoveryd database (%s while %s); "
		    "discoveryd leaves it untouched: move it aside to start empty, or restore "
		    "it from a backup",
		    s->path, msg, doing);
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "cannot write data file %s (%s while %s); discoveryd needs to write the "
		    "file and create %s-wal next to it: check the directory's permissions, or "
		    "choose another --data",
		    s->path, msg, doing, s->path);
	default:
		return dsi_failf(
		    DSC_ESTATE, why, why_len, "data file %s: %s while %s", s->path, msg, doing);
	}
}

/* Runs sql that returns at most one integer (or text) in *out / text. */
static int
exec1(dsi_store *s, const char *sql, int64_t *out, char *text, size_t text_len)
{
	sqlite3_stmt *st = NULL;
	int           rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		return rc;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (out != NULL) {
			*out = sqlite3_column_int64(st, 0);
		}
		if (text != NULL) {
			const unsigned char *t = sqlite3_column_text(st, 0);
			dsi_strlcpy(text, t != NULL ? (const char *) t : "", text_len);
		}
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Refuses a file of another program, or of a newer schema; reads only. */
static int
check_identity(dsi_store *s, char *why, size_t why_len)
{
	int64_t app = 0, version = 0, tables = 0;
	int     rc;

	if ((rc = exec1(s, "PRAGMA application_id", &app, NULL, 0)) != SQLITE_OK
	    || (rc = exec1(s, "PRAGMA user_version", &version, NULL, 0)) != SQLITE_OK
	    || (rc = exec1(s, "SELECT count(*) FROM sqlite_schema", &tables, NULL, 0))
	        != SQLITE_OK) {
		return db_fail(s, rc, "reading its schema", why, why_len);
	}
	if (app != APPLICATION_ID && (app != 0 || tables != 0)) {
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "data file %s is an SQLite database of some other program "
		    "(application_id %lld, %lld tables); discoveryd leaves it untouched: give "
		    "--data a path of its own",
		    s->path, (long long) app, (long long) tables);
	}
	if (version > DSI_STORE_SCHEMA) {
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "data file %s has schema version %lld, newer than this discoveryd knows "
		    "(%d); run a newer discoveryd, or move the file aside to start empty",
		    s->path, (long long) version, DSI_STORE_SCHEMA);
	}
	return 0;
}

/* Brings the schema to DSI_STORE_SCHEMA, one migration at a time. */
static int
migrate(dsi_store *s, char *why, size_t why_len)
{
	int64_t version = 0;
	int     rc;

	if ((rc = exec1(s, "PRAGMA user_version", &version, NULL, 0)) != SQLITE_OK) {
		return db_fail(s, rc, "reading its schema", why, why_len);
	}
	if (version == DSI_STORE_SCHEMA) {
		return 0;
	}
	/* One transaction: a crash in the middle leaves the old version whole. */
	if ((rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK) {
		return db_fail(s, rc, "starting the schema upgrade", why, why_len);
	}
	for (int64_t v = version; v < DSI_STORE_SCHEMA; v++) {
		if ((rc = sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL)) != SQLITE_OK) {
			db_fail(s, rc, "upgrading the schema", why, why_len);
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return DSC_ESTATE;
		}
	}
	char sql[96];
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %d",
	    APPLICATION_ID, DSI_STORE_SCHEMA);
	if ((rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL)) != SQLITE_OK
	    || (rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
		db_fail(s, rc, "upgrading the schema", why, why_len);
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return DSC_ESTATE;
	}
	if (version > 0) {
		dsi_info(s->log, "data file %s upgraded from schema %lld to %d", s->path,
		    (long long) version, DSI_STORE_SCHEMA);
	}
	return 0;
}

int
dsi_store_open(dsi_store **out, const char *path, const dsi_log *log, char *why, size_t why_len)
{
	dsi_store *s = calloc(1, sizeof(*s));
	char       mode[16];
	int64_t    ceiling = -1; /* -1: no revision row */
	int        rc, rv;

	if (s == NULL || (s->path = strdup(path)) == NULL) {
		free(s);
		snprintf(why, why_len, "out of memory");
		return DSC_ENOMEM;
	}
	s->log = log;
	pthread_mutex_init(&s->mtx, NULL);
	pthread_mutex_init(&s->apply_mtx, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->done, NULL);
	/* The writer thread takes the connection over; one thread at a time uses it. */
	rc = sqlite3_open_v2(
	    path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rv = db_fail(s, rc, "opening it", why, why_len);
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/* Never wait for a lock: another holder is another discoveryd. */
	sqlite3_busy_timeout(s->db, 0);
	/* Until the file is known to be ours, closing it must not checkpoint its WAL into it. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if ((rc = sqlite3_exec(s->db, "PRAGMA locking_mode = EXCLUSIVE", NULL, NULL, NULL))
	    != SQLITE_OK) {
		rv = db_fail(s, rc, "opening it", why, why_len);
		goto fail;
	}
	/* Only reads until the file is known to be ours: a refused file keeps its bytes. */
	char check[128] = "";
	if ((rc = exec1(s, "PRAGMA quick_check", NULL, check, sizeof(check))) != SQLITE_OK) {
		rv = db_fail(s, rc, "checking it", why, why_len);
		goto fail;
	}
	if (strcmp(check, "ok") != 0) {
		rv = db_fail(s, SQLITE_CORRUPT, "checking it", why, why_len);
		goto fail;
	}
	if ((rv = check_identity(s, why, why_len)) != 0) {
		goto fail;
	}
	if ((rc = exec1(s, "PRAGMA journal_mode = WAL", NULL, mode, sizeof(mode))) != SQLITE_OK) {
		rv = db_fail(s, rc, "opening it", why, why_len);
		goto fail;
	}
	if (strcmp(mode, "wal") != 0) {
		rv = dsi_failf(DSC_ESTATE, why, why_len,
		    "data file %s cannot use write-ahead logging (journal mode stays \"%s\"); "
		    "discoveryd needs to create %s-wal next to it: check the directory's "
		    "permissions, or choose another --data",
		    path, mode, path);
		goto fail;
	}
	if ((rc = sqlite3_exec(s->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL))
	    != SQLITE_OK) {
		rv = db_fail(s, rc, "opening it", why, why_len);
		goto fail;
	}
	if ((rv = migrate(s, why, why_len)) != 0) {
		goto fail;
	}
	/* The first write takes the exclusive lock, held from now until close. */
	if ((rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE; COMMIT", NULL, NULL, NULL)) != SQLITE_OK
	    || (rc = exec1(s, "SELECT value FROM state WHERE name = 'revision'", &ceiling, NULL, 0))
	        != SQLITE_OK) {
		rv = db_fail(s, rc, "opening it", why, why_len);
		goto fail;
	}
	if (ceiling < 0) {
		rv = dsi_failf(DSC_ESTATE, why, why_len,
		    "data file %s has no stored revision; it was changed outside discoveryd: "
		    "restore it from a backup or move it aside",
		    path);
		goto fail;
	}
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
	atomic_init(&s->ceiling, (uint64_t) ceiling);
	for (int i = 0; i < ST_COUNT; i++) {
		if ((rc = sqlite3_prepare_v3(
		         s->db, statements[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL))
		    != SQLITE_OK) {
			rv = db_fail(s, rc, "preparing its statements", why, why_len);
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	dsi_store_close(s);
	return rv;
}

/* ---- loading ---- */

static const char *
col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t != NULL ? (const char *) t : "";
}

/* The metadata of one instance, as kv pairs pointing into copies in *blob. */
static int
load_metadata(
    sqlite3_stmt *st, const char *svc, const char *ep, dsc_kv **kv, size_t *n, char ***strs)
{
	size_t cap = 0;
	int    rc;

	*kv   = NULL;
	*n    = 0;
	*strs = NULL;
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, svc, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ep, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t  ncap = cap == 0 ? 8 : cap * 2;
			dsc_kv *nkv  = realloc(*kv, ncap * sizeof(*nkv));
			char  **ns   = nkv != NULL ? realloc(*strs, 2 * ncap * sizeof(*ns)) : NULL;
			if (nkv != NULL) {
				*kv = nkv;
			}
			if (ns == NULL) {
				return SQLITE_NOMEM;
			}
			*strs = ns;
			cap   = ncap;
		}
		char *k = strdup(col_text(st, 0)), *v = strdup(col_text(st, 1));
		(*strs)[2 * *n]     = k;
		(*strs)[2 * *n + 1] = v;
		(*kv)[*n].key       = k != NULL ? k : "";
		(*kv)[*n].value     = v != NULL ? v : "";
		(*n)++;
		if (k == NULL || v == NULL) {
			return SQLITE_NOMEM;
		}
	}
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void
free_metadata(dsc_kv *kv, size_t n, char **strs)
{
	for (size_t i = 0; strs != NULL && i < 2 * n; i++) {
		free(strs[i]);
	}
	free(strs);
	free(kv);
}

/* Checks a row as a Register request would be checked; a bad row stops start-up. */
static int
load_one(dsi_store *s, dsi_registry *r, sqlite3_stmt *row, sqlite3_stmt *meta, int64_t now,
    dsi_store_check_fn check, void *check_arg, char *why, size_t why_len)
{
	const char *svc = col_text(row, 0), *ep = col_text(row, 1);
	char        name[DSI_NAME_MAX + 1], msg[256], esc[96];
	dsc_kv     *kv   = NULL;
	char      **strs = NULL;
	size_t      n    = 0;
	bool        created;
	int         rc, rv;

	if (dsi_name_normalize(svc, name, msg, sizeof(msg)) != 0 || strcmp(name, svc) != 0
	    || dsi_endpoint_validate(ep, msg, sizeof(msg)) != 0) {
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "data file %s holds an invalid instance %s %s (%s); it was changed outside "
		    "discoveryd: restore it from a backup or move it aside",
		    s->path, dsi_text_escape(svc, esc, sizeof(esc)), ep, msg);
	}
	if ((rc = load_metadata(meta, svc, ep, &kv, &n, &strs)) != SQLITE_OK) {
		free_metadata(kv, n, strs);
		return db_fail(s, rc, "loading metadata", why, why_len);
	}
	dsi_registration reg = {
		.service          = svc,
		.endpoint         = ep,
		.metadata         = kv,
		.n_metadata       = n,
		.health_path      = col_text(row, 2),
		.ttl_ms           = (uint32_t) sqlite3_column_int64(row, 3),
		.weight           = (uint32_t) sqlite3_column_int64(row, 4),
		.registered_at_ms = sqlite3_column_int64(row, 5),
	};
	if (check != NULL && check(check_arg, &reg, msg, sizeof(msg)) != 0) {
		free_metadata(kv, n, strs);
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "data file %s holds instance %s %s that this configuration refuses: %s; start "
		    "with the configuration that registered it and deregister it, or move the "
		    "file aside",
		    s->path, svc, dsi_text_escape(ep, esc, sizeof(esc)), msg);
	}
	rv = dsi_registry_register(r, &reg, now, NULL, &created, NULL, msg, sizeof(msg));
	free_metadata(kv, n, strs);
	if (rv == DSC_ELIMIT) {
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "data file %s holds more than this configuration allows: %s; raise the "
		    "limit, or start with another --data",
		    s->path, msg);
	}
	if (rv != 0) {
		return dsi_failf(DSC_ESTATE, why, why_len, "cannot load %s %s from %s: %s", svc, ep,
		    s->path, dsi_strerror(rv));
	}
	return 0;
}

int
dsi_store_load(dsi_store *s, dsi_registry *r, dsi_store_check_fn check, void *check_arg, char *why,
    size_t why_len)
{
	sqlite3_stmt *row = NULL, *meta = NULL;
	int64_t       now = dsi_wall_ms();
	size_t        n   = 0;
	int           rc, rv = 0;

	rc = sqlite3_prepare_v2(s->db,
	    "SELECT service, endpoint, health_path, ttl_ms, weight, registered_at_ms"
	    " FROM instances ORDER BY service, endpoint",
	    -1, &row, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_prepare_v2(s->db,
		    "SELECT key, value FROM metadata WHERE service = ?1 AND endpoint = ?2"
		    " ORDER BY key",
		    -1, &meta, NULL);
	}
	while (rc == SQLITE_OK && (rc = sqlite3_step(row)) == SQLITE_ROW) {
		if ((rv = load_one(s, r, row, meta, now, check, check_arg, why, why_len)) != 0) {
			break;
		}
		n++;
		rc = SQLITE_OK;
	}
	if (rv == 0 && rc != SQLITE_DONE && rc != SQLITE_OK) {
		rv = db_fail(s, rc, "loading registrations", why, why_len);
	}
	sqlite3_finalize(row);
	sqlite3_finalize(meta);
	if (rv == 0) {
		uint64_t rev = atomic_load(&s->ceiling);
		dsi_registry_set_revision(r, rev);
		dsi_info(s->log, "data file %s: %zu instances restored, revision %llu", s->path, n,
		    (unsigned long long) rev);
	}
	return rv;
}

/* ---- statements ---- */

/* Records the first error of the batch; later statements are skipped. */
static int
tx_step(dsi_store_txn *tx, sqlite3_stmt *st, const char *doing)
{
	int rc = tx->rc;
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
			rc = SQLITE_OK;
		} else {
			tx->rc = rc;
			snprintf(tx->why, sizeof(tx->why), "%s while %s", sqlite3_errmsg(tx->s->db),
			    doing);
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_OK ? 0 : DSC_EUNAVAILABLE;
}

static int
tx_begin(dsi_store_txn *tx)
{
	if (tx->open || tx->rc != SQLITE_OK) {
		return tx->rc == SQLITE_OK ? 0 : DSC_EUNAVAILABLE;
	}
	tx->open = true;
	return tx_step(tx, tx->s->st[ST_BEGIN], "beginning a transaction");
}

static void
bind_key(sqlite3_stmt *st, const char *service, const char *endpoint)
{
	sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
	if (endpoint != NULL) {
		sqlite3_bind_text(st, 2, endpoint, -1, SQLITE_STATIC);
	}
}

int
dsi_store_put(dsi_store_txn *tx, const dsi_registration *reg)
{
	sqlite3_stmt **st = tx->s->st;
	int            rv;

	if ((rv = tx_begin(tx)) != 0) {
		return rv;
	}
	bind_key(st[ST_PUT], reg->service, reg->endpoint);
	sqlite3_bind_text(st[ST_PUT], 3, reg->health_path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st[ST_PUT], 4, reg->ttl_ms);
	sqlite3_bind_int64(st[ST_PUT], 5, reg->weight);
	sqlite3_bind_int64(st[ST_PUT], 6, reg->registered_at_ms);
	tx_step(tx, st[ST_PUT], "storing an instance");
	bind_key(st[ST_META_CLEAR], reg->service, reg->endpoint);
	tx_step(tx, st[ST_META_CLEAR], "storing metadata");
	/* In order: for a key given twice the later value replaces the earlier. */
	for (size_t i = 0; i < reg->n_metadata; i++) {
		bind_key(st[ST_META_PUT], reg->service, reg->endpoint);
		sqlite3_bind_text(st[ST_META_PUT], 3, reg->metadata[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st[ST_META_PUT], 4, reg->metadata[i].value, -1, SQLITE_STATIC);
		tx_step(tx, st[ST_META_PUT], "storing metadata");
	}
	return tx->rc == SQLITE_OK ? 0 : DSC_EUNAVAILABLE;
}

int
dsi_store_delete(dsi_store_txn *tx, const char *service, const char *endpoint)
{
	sqlite3_stmt **st = tx->s->st;
	int            rv;

	if ((rv = tx_begin(tx)) != 0) {
		return rv;
	}
	sqlite3_stmt *inst = st[endpoint != NULL ? ST_DEL_ONE : ST_DEL_ALL];
	sqlite3_stmt *meta = st[endpoint != NULL ? ST_DEL_ONE_META : ST_DEL_ALL_META];
	bind_key(inst, service, endpoint);
	tx_step(tx, inst, "deleting an instance");
	bind_key(meta, service, endpoint);
	tx_step(tx, meta, "deleting metadata");
	return tx->rc == SQLITE_OK ? 0 : DSC_EUNAVAILABLE;
}

void
dsi_store_pending(
    const dsi_store_txn *tx, const char *service, uint32_t *in_service, uint32_t *total)
{
	uint32_t n = 0;
	for (size_t i = 0; i < tx->n; i++) {
		if (tx->items[i].creates && strcmp(tx->items[i].service, service) == 0) {
			n++;
		}
	}
	*in_service = n;
	*total      = tx->creates;
}

void
dsi_store_note_revisions(dsi_store_txn *tx, uint64_t n)
{
	tx->cur_revs = n;
}

void
dsi_store_note_create(dsi_store_txn *tx)
{
	/* The write being planned is items[n]; it is recorded after its plan. */
	tx->items[tx->n].creates = true;
	tx->creates++;
}

/* ---- the writer ---- */

/* Two writes to the same instance (or one to a whole service) wait for separate batches. */
static bool
conflicts(const dsi_store_txn *tx, const dsi_write *w)
{
	for (size_t i = 0; i < tx->n; i++) {
		const planned *p = &tx->items[i];
		if (strcmp(p->service, w->service) == 0
		    && (p->endpoint == NULL || w->endpoint == NULL
		        || strcmp(p->endpoint, w->endpoint) == 0)) {
			return true;
		}
	}
	return false;
}

/* Ends a failed transaction; SQLite leaves some errors' transactions open. */
static int
tx_fail(dsi_store *s)
{
	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_step(s->st[ST_ROLLBACK]);
		sqlite3_reset(s->st[ST_ROLLBACK]);
	}
	return DSC_EUNAVAILABLE;
}

/* Stores the reservation c in the open transaction and commits it. */
static int
tx_commit(dsi_store *s, dsi_store_txn *tx, uint64_t c)
{
	if (tx_begin(tx) != 0) {
		return tx_fail(s);
	}
	sqlite3_bind_int64(s->st[ST_SET_REVISION], 1, (int64_t) c);
	tx_step(tx, s->st[ST_SET_REVISION], "storing the revision");
	if (tx->rc == SQLITE_OK && sqlite3_changes(s->db) != 1) {
		tx->rc = SQLITE_CORRUPT;
		snprintf(tx->why, sizeof(tx->why), "the stored revision is missing");
	}
	if (tx->rc == SQLITE_OK) {
		tx_step(tx, s->st[ST_COMMIT], "committing");
	}
	if (tx->rc != SQLITE_OK) {
		return tx_fail(s);
	}
	/* Only the writer raises it; readers compare against it without its locks. */
	atomic_store(&s->ceiling, c);
	return 0;
}

/*
 * Commits the batch's SQL, if any, and whatever revision reservation it or
 * a waiting dsi_store_reserve needs. Health changes cannot pass the stored
 * reservation, so the registry is at most at max(rev, ceiling) when the
 * batch is applied, and a new reservation counted from there covers the
 * revisions the batch's writes may take.
 */
static int
commit(dsi_store *s, dsi_store_txn *tx, uint64_t rev, uint64_t want)
{
	uint64_t ceiling = atomic_load(&s->ceiling);
	uint64_t c       = (rev > ceiling ? rev : ceiling) + tx->revisions + DSI_STORE_RESERVE;

	if (tx->rc != SQLITE_OK) {
		return tx_fail(s);
	}
	bool writes = tx->open; /* the batch's own SQL, not only a reservation */
	if (!writes && want <= ceiling) {
		return 0; /* nothing to store: lock_for_apply checks the headroom */
	}
	if (tx_commit(s, tx, c > want ? c : want) != 0) {
		return DSC_EUNAVAILABLE;
	}
	pthread_mutex_lock(&s->mtx);
	s->commits++;
	s->written += writes ? tx->n : 0;
	pthread_mutex_unlock(&s->mtx);
	return 0;
}

/*
 * Takes apply_mtx for the batch's apply. A batch without SQL (heartbeats)
 * has committed nothing: when health changes have used up the headroom, a
 * reservation is stored first.
 */
static int
lock_for_apply(dsi_store *s, dsi_store_txn *tx)
{
	for (;;) {
		pthread_mutex_lock(&s->apply_mtx);
		uint64_t need = dsi_registry_revision(s->registry) + tx->revisions;
		if (need <= atomic_load(&s->ceiling)) {
			return 0;
		}
		pthread_mutex_unlock(&s->apply_mtx);
		tx->open   = false; /* a transaction of its own, for the reservation */
		tx->rc     = SQLITE_OK;
		tx->why[0] = 0;
		if (tx_commit(s, tx, need + DSI_STORE_RESERVE) != 0) {
			pthread_mutex_lock(&s->apply_mtx);
			return DSC_EUNAVAILABLE;
		}
	}
}

/* Plans, commits and applies one batch; returns the commit's result. */
static int
run_batch(dsi_store *s, dsi_write *batch, uint64_t want)
{
	dsi_store_txn *tx = &s->tx;
	dsi_write     *w, *next, *rest = NULL, **tail = &batch;
	size_t         n = 0;
	char           why[400];

	memset(tx, 0, sizeof(*tx));
	tx->s  = s;
	tx->rc = SQLITE_OK;
	for (w = batch; w != NULL; w = w->next) {
		if (n == DSI_STORE_BATCH || conflicts(tx, w)) {
			rest  = w;
			*tail = NULL;
			break;
		}
		tx->items[n] = (planned) { w->service, w->endpoint, false };
		tx->cur_revs = 1;
		w->rv        = w->plan(w, tx);
		tx->revisions += tx->cur_revs;
		tx->n = ++n;
		tail  = &w->next;
	}
	/* Writes the next batch must plan: back to the head of the queue, in order. */
	if (rest != NULL) {
		pthread_mutex_lock(&s->mtx);
		dsi_write *last = rest;
		while (last->next != NULL) {
			last = last->next;
		}
		last->next = s->head;
		if (s->head == NULL) {
			s->tail = last;
		}
		s->head = rest;
		pthread_mutex_unlock(&s->mtx);
	}

	int rv = commit(s, tx, dsi_registry_revision(s->registry), want);
	if (rv == 0) {
		rv = lock_for_apply(s, tx);
	} else {
		pthread_mutex_lock(&s->apply_mtx);
	}
	if (rv != 0) {
		snprintf(why, sizeof(why),
		    "the change could not be stored (%s) and was not applied; retry later",
		    tx->why);
		dsi_error(s->log, "data file %s: %s", s->path, tx->why);
	}
	pthread_mutex_lock(&s->mtx);
	if (rv != 0) {
		s->failed++;
	}
	pthread_cond_broadcast(&s->done);
	pthread_mutex_unlock(&s->mtx);

	for (w = batch; w != NULL; w = next) {
		next = w->next; /* apply may free w */
		if (rv != 0) {
			w->apply(w, rv, why);
		} else {
			w->apply(w, w->rv, NULL);
		}
	}
	pthread_mutex_unlock(&s->apply_mtx);
	if (s->after_batch != NULL) {
		s->after_batch(s->after_batch_arg);
	}
	return rv;
}

static void *
writer_main(void *arg)
{
	dsi_store *s = arg;

	pthread_mutex_lock(&s->mtx);
	for (;;) {
		while (s->head == NULL && s->want <= atomic_load(&s->ceiling) && !s->stopping) {
			pthread_cond_wait(&s->work, &s->mtx);
		}
		if (s->head == NULL && s->want <= atomic_load(&s->ceiling)) {
			break; /* stopping, and nothing is left */
		}
		dsi_write *batch = s->head;
		uint64_t   want  = s->want;
		s->head = s->tail = NULL;
		pthread_mutex_unlock(&s->mtx);
		int rv = run_batch(s, batch, want);
		pthread_mutex_lock(&s->mtx);
		if (rv != 0 && s->want == want) {
			s->want = 0; /* a failed reservation is not retried in a loop */
		}
	}
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

int
dsi_store_start(dsi_store *s, dsi_registry *r, void (*after_batch)(void *), void *arg)
{
	s->registry        = r;
	s->after_batch     = after_batch;
	s->after_batch_arg = arg;
	if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
		return DSC_ENOMEM;
	}
	s->running = true;
	return 0;
}

void
dsi_store_submit(dsi_store *s, dsi_write *w)
{
	w->next = NULL;
	pthread_mutex_lock(&s->mtx);
	if (!s->running || s->stopping) {
		pthread_mutex_unlock(&s->mtx);
		w->apply(w, DSC_EUNAVAILABLE, "the server is shutting down");
		return;
	}
	if (s->tail != NULL) {
		s->tail->next = w;
	} else {
		s->head = w;
	}
	s->tail = w;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mtx);
}

int
dsi_store_reserve(dsi_store *s)
{
	for (;;) {
		pthread_mutex_lock(&s->apply_mtx);
		uint64_t need = dsi_registry_revision(s->registry) + 1;
		if (need <= atomic_load(&s->ceiling)) {
			return 0; /* held until dsi_store_release */
		}
		pthread_mutex_unlock(&s->apply_mtx);

		/* Ask the writer for a reservation and wait for its commit. */
		pthread_mutex_lock(&s->mtx);
		uint64_t failed = s->failed;
		if (s->want < need + DSI_STORE_RESERVE) {
			s->want = need + DSI_STORE_RESERVE;
		}
		pthread_cond_signal(&s->work);
		while (atomic_load(&s->ceiling) < need && s->failed == failed && s->running
		    && !s->stopping) {
			pthread_cond_wait(&s->done, &s->mtx);
		}
		bool ok = atomic_load(&s->ceiling) >= need;
		pthread_mutex_unlock(&s->mtx);
		if (!ok) {
			return DSC_EUNAVAILABLE;
		}
	}
}

void
dsi_store_release(dsi_store *s)
{
	pthread_mutex_unlock(&s->apply_mtx);
}

void
dsi_store_stats(dsi_store *s, uint64_t *commits, uint64_t *writes)
{
	pthread_mutex_lock(&s->mtx);
	*commits = s->commits;
	*writes  = s->written;
	pthread_mutex_unlock(&s->mtx);
}

void
dsi_store_stop(dsi_store *s)
{
	if (s == NULL) {
		return;
	}
	pthread_mutex_lock(&s->mtx);
	bool join   = s->running && !s->stopping;
	s->stopping = true;
	pthread_cond_broadcast(&s->work);
	pthread_cond_broadcast(&s->done);
	pthread_mutex_unlock(&s->mtx);
	if (join) {
		pthread_join(s->thread, NULL);
	}
	pthread_mutex_lock(&s->mtx);
	s->running = false;
	pthread_mutex_unlock(&s->mtx);
}

void
dsi_store_close(dsi_store *s)
{
	if (s == NULL) {
		return;
	}
	dsi_store_stop(s);
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(s->st[i]);
	}
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK) {
		dsi_warn(s->log, "data file %s: %s while closing", s->path, sqlite3_errmsg(s->db));
	}
	pthread_cond_destroy(&s->done);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->mtx);
	pthread_mutex_destroy(&s->apply_mtx);
	free(s->path);
	free(s);
}
