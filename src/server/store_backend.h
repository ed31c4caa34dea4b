/*
 * The SQLite store (store.h) as a backend (backend.h): what the writer
 * uses in single-node mode. Capabilities: DSI_BACKEND_CAP_SQLITE.
 */
#ifndef DSI_STORE_BACKEND_H
#define DSI_STORE_BACKEND_H

#include <stddef.h>

#include "common/log.h"
#include "server/backend.h"
#include "server/store.h"

/*
 * Opens path as dsi_store_open does, as a backend that owns the store
 * (dsi_backend_close closes it). 0 and *out, or an error with why.
 */
int dsi_store_backend_open(
    dsi_backend **out, const char *path, const dsi_log *log, char *why, size_t why_len);

/*
 * A backend over s, which it borrows: close the backend before s. For
 * code that also calls dsi_store_* (the tests). 0 and *out, or DSC_ENOMEM.
 */
int dsi_store_backend_borrow(dsi_backend **out, dsi_store *s);

#endif
