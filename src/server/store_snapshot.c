/* The online copy of the data file: SQLite's backup API into a private memdb database. */
#include "server/store_snapshot.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/error.h"

struct dsi_store_snapshot {
	sqlite3        *dst;    /* the copy: an in-memory (memdb) database, ours alone */
	sqlite3_backup *backup; /* NULL once complete or stopped */
	bool            complete;
	unsigned char  *bytes; /* dst's serialized image, borrowed from dst */
	sqlite3_int64   len;
};

int
dsi_store_snapshot_begin(dsi_backend *b, dsi_store_snapshot **out, char *why, size_t why_len)
{
	dsi_store_snapshot *sn;
	void               *src = NULL; /* the store's connection */
	int                 rc;

	if (dsi_backend_capability(b, DSI_BACKEND_CAP_SQLITE, &src) != 0) {
		snprintf(why, why_len, "%s keeps no SQLite file to copy", dsi_backend_describe(b));
		return DSC_ENOTSUP;
	}
	if ((sn = calloc(1, sizeof(*sn))) == NULL) {
		snprintf(why, why_len, "out of memory");
		return DSC_ENOMEM;
	}
	/* A name without a leading '/' keeps the memdb database private to this connection. */
	rc = sqlite3_open_v2("snapshot", &sn->dst,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, "memdb");
	if (rc != SQLITE_OK) {
		snprintf(why, why_len, "cannot create the copy: %s",
		    sn->dst != NULL ? sqlite3_errmsg(sn->dst) : sqlite3_errstr(rc));
		goto fail;
	}
	sn->backup = sqlite3_backup_init(sn->dst, "main", (sqlite3 *) src, "main");
	if (sn->backup == NULL) {
		snprintf(why, why_len, "cannot start the copy: %s", sqlite3_errmsg(sn->dst));
		goto fail;
	}
	*out = sn;
	return 0;
fail:
	dsi_store_snapshot_free(sn);
	return DSC_EUNAVAILABLE;
}

int
dsi_store_snapshot_step(
    dsi_store_snapshot *sn, int pages, bool *complete, char *why, size_t why_len)
{
	*complete = sn->complete;
	if (sn->complete) {
		return 0;
	}
	if (sn->backup == NULL) {
		snprintf(why, why_len, "the copy was abandoned");
		return DSC_EUNAVAILABLE;
	}
	int rc = sqlite3_backup_step(sn->backup, pages > 0 ? pages : -1);
	if (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		return 0; /* more to copy (busy: try again on the next step) */
	}
	dsi_store_snapshot_stop(sn);
	if (rc != SQLITE_DONE) {
		snprintf(why, why_len, "copying the data file: %s", sqlite3_errstr(rc));
		return DSC_EUNAVAILABLE;
	}
	/* NOCOPY: memdb hands out its own buffer, so the copy is not made twice. */
	sn->bytes = sqlite3_serialize(sn->dst, "main", &sn->len, SQLITE_SERIALIZE_NOCOPY);
	if (sn->bytes == NULL) {
		snprintf(why, why_len, "reading the copy: %s", sqlite3_errmsg(sn->dst));
		return DSC_EUNAVAILABLE;
	}
	/*
	 * The header's file format versions (offsets 18 and 19) came from the
	 * WAL-mode source: 2 would make every reader of the copy look for a
	 * -wal file. 1 (rollback journal) opens anywhere, read-only and in
	 * memory included; discoveryd turns WAL on again when it opens it.
	 */
	if (sn->len >= 20 && sn->bytes[18] == 2 && sn->bytes[19] == 2) {
		sn->bytes[18] = 1;
		sn->bytes[19] = 1;
	}
	sn->complete = true;
	*complete    = true;
	return 0;
}

void
dsi_store_snapshot_stop(dsi_store_snapshot *sn)
{
	if (sn != NULL && sn->backup != NULL) {
		sqlite3_backup_finish(sn->backup);
		sn->backup = NULL;
	}
}

const unsigned char *
dsi_store_snapshot_bytes(dsi_store_snapshot *sn, size_t *len)
{
	if (!sn->complete) {
		return NULL;
	}
	*len = (size_t) sn->len;
	return sn->bytes;
}

void
dsi_store_snapshot_free(dsi_store_snapshot *sn)
{
	if (sn == NULL) {
		return;
	}
	dsi_store_snapshot_stop(sn);
	sqlite3_close(sn->dst);
	free(sn);
}
