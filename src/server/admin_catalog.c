/*
 * JSON views of the registry for the admin endpoint (jansson only, no
 * hand-made JSON): the catalog, and GET /v1/status.
 */
#include "server/admin_catalog.h"
#include "server/admin_reply.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char *
dsi_catalog_health_name(int health)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &discovery__v1__health_state__descriptor, health);
	return v != NULL ? v->name : "HEALTH_UNKNOWN";
}

/* One Instance, with the protobuf field names; NULL when out of memory. */
static json_t *
instance_json(const dsi_instance *in)
{
	json_t *meta = json_object();
	for (size_t i = 0; meta != NULL && i < in->n_metadata; i++) {
		if (json_object_set_new(
		        meta, in->metadata[i]->key, json_string(in->metadata[i]->value))
		    != 0) {
			json_decref(meta);
			meta = NULL;
		}
	}
	if (meta == NULL) {
		return NULL;
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:I, s:I, s:s}", "service",
	    in->service, "endpoint", in->endpoint, "health", dsi_catalog_health_name(in->health),
	    "metadata", meta, "health_path", in->health_path, "ttl_ms", (json_int_t) in->ttl_ms,
	    "weight", (json_int_t) in->weight, "registered_at_ms",
	    (json_int_t) in->registered_at_ms, "last_check_ms", (json_int_t) in->last_check_ms,
	    "last_error", in->last_error != NULL ? in->last_error : "");
}

/* Per-service counts by health, from a list sorted by service. */
static json_t *
services_json(const dsi_instances *all, bool healthy_only)
{
	json_t *arr = json_array();
	size_t  i   = 0;
	while (arr != NULL && i < all->count) {
		const char *name  = all->items[i]->service;
		json_int_t  n[3]  = { 0, 0, 0 }; /* unknown, healthy, unhealthy */
		json_int_t  total = 0;
		for (; i < all->count && strcmp(all->items[i]->service, name) == 0; i++) {
			unsigned h = (unsigned) all->items[i]->health;
			n[h < 3 ? h : 0]++;
			total++;
		}
		if (healthy_only && n[1] == 0) {
			continue;
		}
		json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I}", "name", name, "instances", total,
		    "healthy", n[1], "unhealthy", n[2], "unknown", n[0]);
		if (o == NULL || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

static json_t *
instances_json(const dsi_instances *all, bool healthy_only)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr != NULL && i < all->count; i++) {
		if (healthy_only
		    && all->items[i]->health != DISCOVERY__V1__HEALTH_STATE__HEALTH_HEALTHY) {
			continue;
		}
		json_t *o = instance_json(all->items[i]);
		if (o == NULL || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

int
dsi_catalog_build(dsi_registry *r, dsi_catalog_kind kind, const char *service, bool healthy_only,
    char **body, uint64_t *rev)
{
	dsi_instances all    = { NULL, 0 };
	json_t       *o      = NULL;
	int           status = 500;

	*body = NULL;
	*rev  = dsi_registry_revision(r);
	if (dsi_registry_get_all(r, kind == DSI_CATALOG_SERVICE ? service : NULL, &all, rev) != 0) {
		goto done;
	}
	if (kind == DSI_CATALOG_SERVICE && all.count == 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "service %s is not registered", service);
		*body  = dsi_admin_error_body(msg, *rev);
		status = 404;
		goto done;
	}
	json_t *list = kind == DSI_CATALOG_SERVICES ? services_json(&all, healthy_only)
	                                            : instances_json(&all, healthy_only);
	if (list == NULL) {
		goto done;
	}
	if (kind == DSI_CATALOG_SERVICE) {
		o = json_pack("{s:I, s:s, s:o}", "revision", (json_int_t) *rev, "service", service,
		    "instances", list);
	} else {
		o = json_pack("{s:I, s:o}", "revision", (json_int_t) *rev,
		    kind == DSI_CATALOG_SERVICES ? "services" : "instances", list);
	}
	if (o != NULL && (*body = json_dumps(o, JSON_COMPACT)) != NULL) {
		status = 200;
	}
done:
	json_decref(o);
	dsi_instances_free(&all);
	return status;
}
