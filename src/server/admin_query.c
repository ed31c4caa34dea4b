/* The admin endpoint's catalog request targets, parsed. */
#include "server/admin_query.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "server/admin.h"

int
dsi_admin_parse_wait(const char *v, int64_t *ms)
{
	char  *end;
	double n = strtod(v, &end);
	double scale;
	if (end == v || !isfinite(n) || n < 0) {
		return -1;
	}
	if (*end == 0 || strcmp(end, "s") == 0) {
		scale = 1000;
	} else if (strcmp(end, "ms") == 0) {
		scale = 1;
	} else if (strcmp(end, "m") == 0) {
		scale = 60000;
	} else {
		return -1;
	}
	double t = n * scale;
	*ms      = t > DSI_ADMIN_MAX_WAIT_MS ? DSI_ADMIN_MAX_WAIT_MS : (int64_t) t;
	return 0;
}

uint16_t
dsi_admin_query_parse(
    const char *uri, bool instances, dsi_admin_query *q, char *why, size_t why_len)
{
	char        buf[DSI_ADMIN_MAX_URI + 1];
	const char *path = buf;
	char       *qs, *save = NULL;
	int64_t     wait_ms   = DSI_ADMIN_MAX_WAIT_MS;
	bool        has_index = false;

	memset(q, 0, sizeof(*q));
	snprintf(buf, sizeof(buf), "%s", uri);
	if ((qs = strchr(buf, '?')) != NULL) {
		*qs++ = 0;
	}
	if (instances) {
		q->kind = DSI_CATALOG_INSTANCES;
	} else if (strcmp(path, "/v1/services") == 0 || strcmp(path, "/v1/services/") == 0) {
		q->kind = DSI_CATALOG_SERVICES;
	} else {
		/* nng routes only /v1/services and below here; anything else is not ours. */
		const char *name = path + strlen("/v1/services/");
		char        reason[128];
		if (strncmp(path, "/v1/services/", strlen("/v1/services/")) != 0
		    || strchr(name, '/') != NULL) {
			snprintf(why, why_len, "no such resource");
			return 404;
		}
		if (dsi_name_normalize(name, q->service, reason, sizeof(reason)) != 0) {
			snprintf(why, why_len, "bad service name: %s", reason);
			return 400;
		}
		q->kind = DSI_CATALOG_SERVICE;
	}
	for (char *kv = qs != NULL ? strtok_r(qs, "&", &save) : NULL; kv != NULL;
	     kv       = strtok_r(NULL, "&", &save)) {
		char *v = strchr(kv, '=');
		if (v != NULL) {
			*v++ = 0;
		}
		if (strcmp(kv, "healthy") == 0) {
			if (v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
				q->healthy = true;
			} else if (strcmp(v, "false") != 0 && strcmp(v, "0") != 0) {
				snprintf(why, why_len, "healthy expects true or false");
				return 400;
			}
		} else if (strcmp(kv, "index") == 0) {
			if (v == NULL || dsi_parse_uint(v, 0, UINT64_MAX, &q->index) != 0) {
				snprintf(why, why_len, "index expects a revision (a whole number)");
				return 400;
			}
			has_index = true;
		} else if (strcmp(kv, "wait") == 0) {
			if (v == NULL || dsi_admin_parse_wait(v, &wait_ms) != 0) {
				snprintf(why, why_len,
				    "wait expects a duration such as 30s, 1500ms or 5m (at most "
				    "5m)");
				return 400;
			}
		}
		/* Other parameters are ignored, as proxies and browsers add their own. */
	}
	q->blocking = has_index;
	q->wait_ms  = wait_ms;
	return 0;
}
