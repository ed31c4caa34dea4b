/* Field rules for hostile input, and the screen that runs before decoding. */
#include "server/validate.h"

#include <stdio.h>
#include <string.h>

#include "common/text.h"
#include "server/endpoint.h"

#define META_KEY_MAX    128
#define TTL_MIN_MS      100u
#define TTL_MAX_MS      86400000u
#define FIELDS_PER_META 3  /* a metadata entry, its key and its value */
#define FIELDS_SPARE    64 /* every other field, repeats and unknown fields included */

static const dsi_registry_limits *
limits_or_defaults(const dsi_registry_limits *limits, dsi_registry_limits *defaults)
{
	if (limits != NULL) {
		return limits;
	}
	dsi_registry_limits_default(defaults);
	return defaults;
}

int
dsi_validate_request_bytes(const dsi_registry_limits *limits, const void *buf, size_t len,
    dsi_wirescan *scan, char *msg, size_t n)
{
	dsi_registry_limits        defaults;
	const dsi_registry_limits *l = limits_or_defaults(limits, &defaults);
	size_t budget = (size_t) FIELDS_PER_META * l->max_metadata_entries + FIELDS_SPARE;

	if (dsi_wirescan_run(&discovery__v1__request__descriptor, buf, len, scan) != 0) {
		snprintf(msg, n, "request is not a discovery.v1.Request message (%zu bytes)", len);
		return DSC_EINVAL;
	}
	/* Metadata is the Request's only repeated field. */
	if (scan->repeated > l->max_metadata_entries) {
		snprintf(msg, n,
		    "metadata has %zu entries as sent (duplicate keys count); the limit is %u "
		    "entries",
		    scan->repeated, l->max_metadata_entries);
		return DSC_ELIMIT;
	}
	if (scan->fields > budget) {
		snprintf(msg, n, "request has %zu fields; at most %zu are accepted", scan->fields,
		    budget);
		return DSC_EINVAL;
	}
	return 0;
}

int
dsi_validate_metadata_sent(const dsi_registry_limits *limits,
    const Discovery__V1__RegisterRequest *rq, char *msg, size_t n)
{
	dsi_registry_limits        defaults;
	const dsi_registry_limits *l     = limits_or_defaults(limits, &defaults);
	size_t                     bytes = 0;

	for (size_t i = 0; i < rq->n_metadata; i++) {
		bytes += strlen(rq->metadata[i]->key) + strlen(rq->metadata[i]->value);
	}
	if (rq->n_metadata > l->max_metadata_entries || bytes > l->max_metadata_bytes) {
		snprintf(msg, n,
		    "metadata has %zu entries and %zu bytes as sent (duplicate keys count); the "
		    "limits are %u entries and %u bytes",
		    rq->n_metadata, bytes, l->max_metadata_entries, l->max_metadata_bytes);
		return DSC_ELIMIT;
	}
	return 0;
}

int
dsi_validate_registration(const dsi_netpolicy *policy, unsigned schemes,
    const dsi_registration *reg, char *msg, size_t len)
{
	char host[DSI_ENDPOINT_MAX + 1], why[256], esc[96];

	if (policy != NULL && dsi_endpoint_host(reg->endpoint, host, sizeof(host)) == 0
	    && !dsi_netpolicy_permits_host(policy, host, why, sizeof(why))) {
		snprintf(msg, len, "endpoint \"%s\" is refused: %s",
		    dsi_text_escape(reg->endpoint, esc, sizeof(esc)), why);
		return DSC_EINVAL;
	}
	if (dsi_endpoint_scheme_check(schemes, reg->endpoint, why, sizeof(why)) != 0) {
		snprintf(msg, len, "endpoint \"%s\": %s",
		    dsi_text_escape(reg->endpoint, esc, sizeof(esc)), why);
		return DSC_EINVAL;
	}
	/* The path as stored: a leading '/' and at most DSI_HEALTH_PATH_MAX bytes after it. */
	if (reg->health_path[0] != '/' || strlen(reg->health_path) > DSI_HEALTH_PATH_MAX + 1) {
		snprintf(msg, len, "health_path is longer than %d bytes", DSI_HEALTH_PATH_MAX);
		return DSC_EINVAL;
	}
	for (const char *p = reg->health_path; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '#') {
			snprintf(msg, len,
			    "health_path \"%s\" may only hold visible ASCII, without '#'",
			    dsi_text_escape(reg->health_path, esc, sizeof(esc)));
			return DSC_EINVAL;
		}
	}
	if (reg->ttl_ms != 0 && (reg->ttl_ms < TTL_MIN_MS || reg->ttl_ms > TTL_MAX_MS)) {
		snprintf(msg, len, "ttl_ms must be 0 (checked by the server) or 100-86400000");
		return DSC_EINVAL;
	}
	for (size_t i = 0; i < reg->n_metadata; i++) {
		const char *key = reg->metadata[i].key, *val = reg->metadata[i].value;
		if (key[0] == 0 || strlen(key) > META_KEY_MAX || strpbrk(key, " =") != NULL
		    || !dsi_text_is_clean(key)) {
			snprintf(msg, len,
			    "metadata key \"%s\" must be 1-128 bytes of UTF-8 without spaces, '=' "
			    "or control characters",
			    dsi_text_escape(key, esc, sizeof(esc)));
			return DSC_EINVAL;
		}
		if (!dsi_text_is_clean(val)) {
			snprintf(msg, len,
			    "metadata value for \"%s\" must be UTF-8 without control characters",
			    dsi_text_escape(key, esc, sizeof(esc)));
			return DSC_EINVAL;
		}
	}
	return 0;
}

void
dsi_validate_health_path(const char *given, char *out, size_t len)
{
	const char *hp = given != NULL && given[0] != 0 ? given : "health";
	snprintf(out, len, "%s%s", hp[0] == '/' ? "" : "/", hp);
}
