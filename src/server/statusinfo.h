/*
 * The running server's status, as the Status call (StatusResponse) and
 * GET /v1/status (the same fields as JSON) answer it: what the server
 * knows of itself (version, start, listeners, data file) plus what moves
 * (revision, counts by health, store commits), read at request time.
 */
#ifndef DSI_STATUSINFO_H
#define DSI_STATUSINFO_H

#include <discovery/v1/discovery.pb-c.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "server/registry.h"
#include "server/writer.h"

#define DSI_STATUS_MAX_LISTENERS 16 /* REQ/REP URLs reported; more are left out */

/*
 * The server's fixed facts. Strings are borrowed and outlive every reader;
 * the server fills this before it starts serving and never changes it after.
 */
typedef struct dsi_statusinfo {
	int64_t       started_wall_ms; /* Unix time */
	int64_t       started_mono_ms; /* dsi_monotonic_ms() then, for the uptime */
	const char   *data;            /* the data file, or ":memory:" */
	const char   *listeners[DSI_STATUS_MAX_LISTENERS];
	size_t        n_listeners;
	const char   *publish;
	const char   *admin;    /* NULL: off */
	dsi_registry *registry; /* required */
	dsi_writer   *writer;   /* NULL with :memory: */
} dsi_statusinfo;

/*
 * Fills out from info and the live state (info->registry copied once, no
 * lock held after). out's strings point into info or static storage; its
 * listeners array is the caller's to release with dsi_statusinfo_clear.
 * Returns 0 or DSC_ENOMEM (out then needs no clearing).
 */
int  dsi_statusinfo_fill(const dsi_statusinfo *info, Discovery__V1__StatusResponse *out);
void dsi_statusinfo_clear(Discovery__V1__StatusResponse *out);

/* st as a JSON object with the protobuf field names; NULL when out of memory. */
json_t *dsi_statusinfo_json(const Discovery__V1__StatusResponse *st);

#endif
