/*
 * The admin endpoint's JSON catalog: services, one service's instances,
 * every instance, built with jansson from the registry's exported copies
 * (never under its lock). Field names are the protobuf Instance's.
 */
#ifndef DSI_ADMIN_CATALOG_H
#define DSI_ADMIN_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "server/registry.h"

typedef enum dsi_catalog_kind {
	DSI_CATALOG_SERVICES,  /* GET /v1/services */
	DSI_CATALOG_SERVICE,   /* GET /v1/services/{name} */
	DSI_CATALOG_INSTANCES, /* GET /v1/instances */
} dsi_catalog_kind;

/*
 * Builds the reply body for kind (service: the normalized name, for
 * DSI_CATALOG_SERVICE only); healthy_only keeps HEALTHY instances (for
 * services: those with at least one). Returns the HTTP status (200, 404 for
 * an unknown service, 500), with *body (JSON text, the caller frees it) and
 * *rev, the revision the body shows; on 500, *body may be NULL.
 */
int dsi_catalog_build(dsi_registry *r, dsi_catalog_kind kind, const char *service,
    bool healthy_only, char **body, uint64_t *rev);

/* The wire name of a health state: "HEALTH_HEALTHY", ... */
const char *dsi_catalog_health_name(int health);

#endif
