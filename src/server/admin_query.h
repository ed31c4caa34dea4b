/*
 * The admin endpoint's catalog requests as their targets say them: the path
 * (/v1/services, /v1/services/{name}, /v1/instances) and the query string
 * (healthy, index, wait). Pure parsing, no server: fuzzed on its own
 * (tests/fuzz/fuzz_admin.c).
 */
#ifndef DSI_ADMIN_QUERY_H
#define DSI_ADMIN_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/name.h"
#include "server/admin_catalog.h"

typedef struct dsi_admin_query {
	dsi_catalog_kind kind;
	char             service[DSI_NAME_MAX + 1]; /* normalized; "" unless kind is SERVICE */
	bool             healthy;                   /* ?healthy=true */
	bool             blocking;                  /* ?index= was given */
	uint64_t         index;
	int64_t          wait_ms;     /* ?wait=, at most DSI_ADMIN_MAX_WAIT_MS (the default) */
	int64_t          deadline_ms; /* monotonic; the caller's, from wait_ms */
} dsi_admin_query;

/*
 * Parses target (path and query string, at most DSI_ADMIN_MAX_URI bytes;
 * longer is the caller's 414) into q. instances: the target came to
 * /v1/instances (its path says nothing more). Returns 0, or the HTTP status
 * to answer with (400, 404), with why. Unknown parameters are ignored.
 */
uint16_t dsi_admin_query_parse(
    const char *target, bool instances, dsi_admin_query *q, char *why, size_t why_len);

/* "30s", "1500ms", "5m", "2" (seconds) into ms, capped at DSI_ADMIN_MAX_WAIT_MS; 0 or -1. */
int dsi_admin_parse_wait(const char *v, int64_t *ms);

#endif
