/*
 * The SQLite file: schema, migrations, loading, and the statements the
 * writer thread (writer.c) runs in its transactions.
 *
 * The file is opened in WAL mode with synchronous=FULL, so a COMMIT has
 * reached the disk (fsync of the WAL) when it returns: that is what makes
 * an acknowledged write durable. locking_mode=EXCLUSIVE holds the file's
 * lock from the first write until close, which is how a second discoveryd
 * on the same file is refused, and keeps the WAL index in heap memory (no
 * -shm file).
 */
#include "server/store.h"

#include <sqlite3.h>
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
	/* 1 -> 2: each instance's origin (dsi_origin: 0 the API, 1 the configuration). Rows of
	 * schema 1 count as the API's: configuration never removes what it cannot tell is its own.
	 */
	"ALTER TABLE instances ADD COLUMN origin INTEGER NOT NULL DEFAULT 0;",
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
	                    " (service, endpoint, health_path, ttl_ms, weight, registered_at_ms, origin)"
	                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	                    " ON CONFLICT (service, endpoint) DO UPDATE SET health_path = ?3,"
	                    " ttl_ms = ?4, weight = ?5, registered_at_ms = ?6, origin = ?7",
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

struct dsi_store {
	sqlite3       *db; /* used by one thread at a time: the opener, then the writer */
	sqlite3_stmt  *st[ST_COUNT];
	char          *path;
	const dsi_log *log;
	uint64_t       revision; /* as stored */
	int            rc;       /* the open transaction's first error, or SQLITE_OK */
	char           why[256];
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
	s->revision = (uint64_t) ceiling;
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
		.origin = sqlite3_column_int64(row, 6) == DSI_ORIGIN_CONFIG ? DSI_ORIGIN_CONFIG
		                                                            : DSI_ORIGIN_API,
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
	    "SELECT service, endpoint, health_path, ttl_ms, weight, registered_at_ms, origin"
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
		uint64_t rev = s->revision;
		dsi_registry_set_revision(r, rev);
		dsi_info(s->log, "data file %s: %zu instances restored, revision %llu", s->path, n,
		    (unsigned long long) rev);
	}
	return rv;
}

/* ---- statements ---- */

/* Records the first error of the transaction; later statements are skipped. */
static void
step(dsi_store *s, sqlite3_stmt *st, const char *doing)
{
	if (s->rc == SQLITE_OK) {
		int rc = sqlite3_step(st);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
			s->rc = rc;
			snprintf(
			    s->why, sizeof(s->why), "%s while %s", sqlite3_errmsg(s->db), doing);
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

static int
result(const dsi_store *s)
{
	return s->rc == SQLITE_OK ? 0 : DSC_EUNAVAILABLE;
}

int
dsi_store_begin(dsi_store *s)
{
	s->rc     = SQLITE_OK;
	s->why[0] = 0;
	step(s, s->st[ST_BEGIN], "beginning a transaction");
	return result(s);
}

static void
bind_key(sqlite3_stmt *st, const char *service, const char *endpoint)
{
	sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
	if (endpoint != NULL) {
		sqlite3_bind_text(st, 2, endpoint, -1, SQLITE_STATIC);
	}
}

/* Stores a register: an insert, or a full replacement of the row and its metadata. */
static void
put(dsi_store *s, const dsi_registry_op_info *op)
{
	sqlite3_stmt **st = s->st;
	bind_key(st[ST_PUT], op->service, op->endpoint);
	sqlite3_bind_text(st[ST_PUT], 3, op->health_path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st[ST_PUT], 4, op->ttl_ms);
	sqlite3_bind_int64(st[ST_PUT], 5, op->weight);
	sqlite3_bind_int64(st[ST_PUT], 6, op->registered_at_ms);
	sqlite3_bind_int64(st[ST_PUT], 7, op->origin);
	step(s, st[ST_PUT], "storing an instance");
	if (!op->creates) {
		bind_key(st[ST_META_CLEAR], op->service, op->endpoint);
		step(s, st[ST_META_CLEAR], "storing metadata");
	}
	/* The prepared metadata: keys unique, so plain inserts. */
	const char *cur = op->meta;
	for (uint32_t i = 0; i < op->n_meta; i++) {
		const char *key = cur, *value = cur + strlen(cur) + 1;
		cur = value + strlen(value) + 1;
		bind_key(st[ST_META_PUT], op->service, op->endpoint);
		sqlite3_bind_text(st[ST_META_PUT], 3, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st[ST_META_PUT], 4, value, -1, SQLITE_STATIC);
		step(s, st[ST_META_PUT], "storing metadata");
	}
}

int
dsi_store_write(dsi_store *s, const dsi_registry_op_info *op)
{
	if (!op->changes || op->sets_health) { /* health is not kept in the file */
		return result(s);              /* nothing to store */
	}
	if (op->removes == 0) {
		put(s, op);
		return result(s);
	}
	sqlite3_stmt *inst = s->st[op->endpoint != NULL ? ST_DEL_ONE : ST_DEL_ALL];
	sqlite3_stmt *meta = s->st[op->endpoint != NULL ? ST_DEL_ONE_META : ST_DEL_ALL_META];
	bind_key(inst, op->service, op->endpoint);
	step(s, inst, "deleting an instance");
	bind_key(meta, op->service, op->endpoint);
	step(s, meta, "deleting metadata");
	return result(s);
}

int
dsi_store_set_revision(dsi_store *s, uint64_t rev)
{
	sqlite3_bind_int64(s->st[ST_SET_REVISION], 1, (int64_t) rev);
	step(s, s->st[ST_SET_REVISION], "storing the revision");
	if (s->rc == SQLITE_OK && sqlite3_changes(s->db) != 1) {
		s->rc = SQLITE_CORRUPT;
		snprintf(s->why, sizeof(s->why), "the stored revision is missing");
	}
	return result(s);
}

int
dsi_store_commit(dsi_store *s, uint64_t rev)
{
	step(s, s->st[ST_COMMIT], "committing");
	if (s->rc != SQLITE_OK) {
		dsi_store_rollback(s);
		return DSC_EUNAVAILABLE;
	}
	if (rev != 0) {
		s->revision = rev;
	}
	return 0;
}

void
dsi_store_rollback(dsi_store *s)
{
	/* SQLite leaves some errors' transactions open, and ends others itself. */
	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_step(s->st[ST_ROLLBACK]);
		sqlite3_reset(s->st[ST_ROLLBACK]);
	}
	if (s->rc == SQLITE_OK) {
		s->rc = SQLITE_ABORT;
	}
}

const char *
dsi_store_error(const dsi_store *s)
{
	return s->why;
}

const char *
dsi_store_path(const dsi_store *s)
{
	return s->path;
}

uint64_t
dsi_store_revision(const dsi_store *s)
{
	return s->revision;
}

void
dsi_store_close(dsi_store *s)
{
	if (s == NULL) {
		return;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(s->st[i]);
	}
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK) {
		dsi_warn(s->log, "data file %s: %s while closing", s->path, sqlite3_errmsg(s->db));
	}
	free(s->path);
	free(s);
}

/* For the backend's SQLite capability (store_backend.c), on the store's thread. */
sqlite3 *
dsi_store_db(dsi_store *s)
{
	return s->db;
}
