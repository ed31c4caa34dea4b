/* The Status call's answer, built once for the nng contract and the admin endpoint. */
#include "server/statusinfo.h"

#include <discovery/version.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/timeutil.h"

int
dsi_statusinfo_fill(const dsi_statusinfo *info, Discovery__V1__StatusResponse *out)
{
	dsi_instances all = { NULL, 0 };
	uint64_t      rev = 0;
	int           rv;

	discovery__v1__status_response__init(out);
	if ((rv = dsi_registry_get_all(info->registry, NULL, &all, &rev)) != 0) {
		return rv;
	}
	for (size_t i = 0; i < all.count; i++) {
		switch (all.items[i]->health) {
		case DISCOVERY__V1__HEALTH_STATE__HEALTH_HEALTHY:
			out->healthy++;
			break;
		case DISCOVERY__V1__HEALTH_STATE__HEALTH_UNHEALTHY:
			out->unhealthy++;
			break;
		default:
			out->unknown++;
			break;
		}
		out->services
		    += i == 0 || strcmp(all.items[i]->service, all.items[i - 1]->service) != 0;
	}
	out->instances = (uint32_t) all.count;
	dsi_instances_free(&all);
	if (info->n_listeners > 0) {
		out->listeners = calloc(info->n_listeners, sizeof(*out->listeners));
		if (out->listeners == NULL) {
			return DSC_ENOMEM;
		}
		for (size_t i = 0; i < info->n_listeners; i++) {
			out->listeners[i] = (char *) info->listeners[i];
		}
		out->n_listeners = info->n_listeners;
	}
	out->version       = (char *) DSC_VERSION_STRING;
	out->started_at_ms = info->started_wall_ms;
	int64_t up         = dsi_monotonic_ms() - info->started_mono_ms;
	out->uptime_ms     = up > 0 ? (uint64_t) up : 0;
	out->revision      = rev;
	out->publish       = (char *) (info->publish != NULL ? info->publish : "");
	out->admin         = (char *) (info->admin != NULL ? info->admin : "");
	out->data          = (char *) (info->data != NULL ? info->data : ":memory:");
	if (info->writer != NULL) {
		dsi_writer_stats(info->writer, &out->commits, &out->writes_stored);
	}
	return 0;
}

void
dsi_statusinfo_clear(Discovery__V1__StatusResponse *out)
{
	free(out->listeners);
	out->listeners   = NULL;
	out->n_listeners = 0;
}

json_t *
dsi_statusinfo_json(const Discovery__V1__StatusResponse *st)
{
	json_t *listeners = json_array();
	for (size_t i = 0; listeners != NULL && i < st->n_listeners; i++) {
		if (json_array_append_new(listeners, json_string(st->listeners[i])) != 0) {
			json_decref(listeners);
			listeners = NULL;
		}
	}
	if (listeners == NULL) {
		return NULL;
	}
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:s, s:s, s:s, s:I, "
	                 "s:I}",
	    "version", st->version, "started_at_ms", (json_int_t) st->started_at_ms, "uptime_ms",
	    (json_int_t) st->uptime_ms, "revision", (json_int_t) st->revision, "services",
	    (json_int_t) st->services, "instances", (json_int_t) st->instances, "healthy",
	    (json_int_t) st->healthy, "unhealthy", (json_int_t) st->unhealthy, "unknown",
	    (json_int_t) st->unknown, "listeners", listeners, "publish", st->publish, "admin",
	    st->admin, "data", st->data, "commits", (json_int_t) st->commits, "writes_stored",
	    (json_int_t) st->writes_stored);
}
