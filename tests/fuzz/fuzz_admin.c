/*
 * libFuzzer target: hostile request targets through the admin endpoint's
 * parser (dsi_admin_query_parse), as the handler sees them: a C string of at
 * most DSI_ADMIN_MAX_URI bytes (nng hands over the target up to its first
 * NUL; a longer one is answered 414 before parsing). Each input is parsed
 * both as a /v1/services and as a /v1/instances request. Built and run by
 * scripts/fuzz.sh. A check that fails aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/name.h"
#include "server/admin.h"
#include "server/admin_query.h"

#define CHECK(cond, ...)                                                          \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "fuzz_admin: check failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                             \
			fputc('\n', stderr);                                      \
			abort();                                                  \
		}                                                                 \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
one(const char *target, bool instances)
{
	dsi_admin_query q;
	char            why[192];
	memset(why, 0, sizeof(why));
	uint16_t st = dsi_admin_query_parse(target, instances, &q, why, sizeof(why));
	CHECK(st == 0 || st == 400 || st == 404, "status %u for %s", st, target);
	if (st != 0) {
		CHECK(why[0] != 0 && memchr(why, 0, sizeof(why)) != NULL, "no reason for %u", st);
		return;
	}
	CHECK(q.wait_ms >= 0 && q.wait_ms <= DSI_ADMIN_MAX_WAIT_MS, "wait %lld",
	    (long long) q.wait_ms);
	CHECK(q.blocking || q.index == 0, "an index without ?index=");
	if (instances) {
		CHECK(q.kind == DSI_CATALOG_INSTANCES, "kind %d", (int) q.kind);
		CHECK(q.service[0] == 0, "a service on /v1/instances");
	} else if (q.kind == DSI_CATALOG_SERVICE) {
		/* The name is a valid, normalized name: normalizing it again changes nothing. */
		char again[DSI_NAME_MAX + 1], reason[128];
		CHECK(strlen(q.service) > 0 && strlen(q.service) <= DSI_NAME_MAX, "name length");
		CHECK(dsi_name_normalize(q.service, again, reason, sizeof(reason)) == 0, "%s",
		    reason);
		CHECK(strcmp(again, q.service) == 0, "%s normalizes to %s", q.service, again);
		CHECK(strncmp(target, "/v1/services/", 13) == 0, "a service from %s", target);
	} else {
		CHECK(q.kind == DSI_CATALOG_SERVICES, "kind %d", (int) q.kind);
		CHECK(q.service[0] == 0, "a service on the list");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char target[DSI_ADMIN_MAX_URI + 1];
	if (size > DSI_ADMIN_MAX_URI) {
		return 0; /* the handler answers 414 before parsing */
	}
	memcpy(target, data, size);
	target[size] = 0; /* nng's string ends at the first NUL anyway */
	one(target, false);
	one(target, true);
	return 0;
}
