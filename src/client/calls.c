/*
 * libdiscovery's calls: each builds its Request, makes the one round trip
 * (client.c, which picks the server and fails over), and copies the
 * Response into caller-owned structs.
 */
#include <discovery/discovery.h>
#include <stdlib.h>

#include "client/error.h"
#include "client/internal.h"
#include "common/request.h"

/* ---- copies out of the wire types ---- */

/* Hands a copy of src to *out when the caller wants one. */
static int
instance_out(const Discovery__V1__Instance *src, dsc_instance **out, dsc_error *err)
{
	dsc_instance *x;
	if (out == NULL) {
		return 0;
	}
	if (src == NULL) {
		return dsi_fail(err, DSC_EPROTO, "the reply carries no instance");
	}
	if ((x = malloc(sizeof(*x))) == NULL || dsi_inst_from_pb(x, src) != 0) {
		free(x);
		return dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
	}
	*out = x;
	return 0;
}

/* ---- the calls ---- */

static int
need(const char *s, const char *what, dsc_error *err)
{
	if (s == NULL || s[0] == 0) {
		return dsi_fail(err, DSC_EINVAL, "%s is required", what);
	}
	return 0;
}

static char *
or_empty(const char *s)
{
	return (char *) (s != NULL ? s : "");
}

int
dsc_register(dsc_client *c, const dsc_registration *reg, dsc_instance **out, dsc_error *err)
{
	Discovery__V1__Request  *req  = NULL;
	Discovery__V1__Response *resp = NULL;
	int                      rv;

	if (c == NULL || reg == NULL) {
		return dsi_fail(err, DSC_EINVAL, "client and registration are required");
	}
	if ((rv = need(reg->service, "service", err)) != 0
	    || (rv = need(reg->endpoint, "endpoint", err)) != 0) {
		return rv;
	}
	if ((rv = dsi_request_register_new(&req, reg)) != 0) {
		return dsi_fail(err, rv, "%s",
		    rv == DSC_EINVAL ? "metadata is required when n_metadata > 0"
		                     : dsc_strerror(rv));
	}
	rv = dsi_client_roundtrip(c, req, &resp, err);
	dsi_request_free(req);
	if (rv == 0) {
		rv = instance_out(resp->register_->instance, out, err);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rv;
}

int
dsc_resolve(
    dsc_client *c, const char *service, bool healthy_only, dsc_instance **out, dsc_error *err)
{
	Discovery__V1__Request        req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__ResolveRequest rr  = DISCOVERY__V1__RESOLVE_REQUEST__INIT;
	Discovery__V1__Response      *resp;
	int                           rv;

	if (c == NULL || (rv = need(service, "service", err)) != 0) {
		return c == NULL ? dsi_fail(err, DSC_EINVAL, "client is required") : rv;
	}
	rr.service      = (char *) service;
	rr.healthy_only = healthy_only;
	req.call_case   = DISCOVERY__V1__REQUEST__CALL_RESOLVE;
	req.resolve     = &rr;
	if ((rv = dsi_client_roundtrip(c, &req, &resp, err)) == 0) {
		rv = instance_out(resp->resolve->instance, out, err);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rv;
}

int
dsc_deregister(
    dsc_client *c, const char *service, const char *endpoint, uint32_t *removed, dsc_error *err)
{
	Discovery__V1__Request           req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__DeregisterRequest dr  = DISCOVERY__V1__DEREGISTER_REQUEST__INIT;
	Discovery__V1__Response         *resp;
	int                              rv;

	if (c == NULL || (rv = need(service, "service", err)) != 0) {
		return c == NULL ? dsi_fail(err, DSC_EINVAL, "client is required") : rv;
	}
	dr.service     = (char *) service;
	dr.endpoint    = or_empty(endpoint);
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_DEREGISTER;
	req.deregister = &dr;
	if ((rv = dsi_client_roundtrip(c, &req, &resp, err)) == 0) {
		if (removed != NULL) {
			*removed = resp->deregister->removed;
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rv;
}

int
dsc_is_healthy(dsc_client *c, const char *service, const char *endpoint, bool *healthy,
    dsc_health *state, dsc_error *err)
{
	Discovery__V1__Request          req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__IsHealthyRequest hr  = DISCOVERY__V1__IS_HEALTHY_REQUEST__INIT;
	Discovery__V1__Response        *resp;
	int                             rv;

	if (c == NULL || (rv = need(service, "service", err)) != 0) {
		return c == NULL ? dsi_fail(err, DSC_EINVAL, "client is required") : rv;
	}
	hr.service     = (char *) service;
	hr.endpoint    = or_empty(endpoint);
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_IS_HEALTHY;
	req.is_healthy = &hr;
	if ((rv = dsi_client_roundtrip(c, &req, &resp, err)) == 0) {
		if (healthy != NULL) {
			*healthy = resp->is_healthy->healthy;
		}
		if (state != NULL) {
			*state = (dsc_health) resp->is_healthy->state;
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rv;
}

int
dsc_get_all(dsc_client *c, const char *service, dsc_instance_list **out, dsc_error *err)
{
	Discovery__V1__Request       req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__GetAllRequest gr  = DISCOVERY__V1__GET_ALL_REQUEST__INIT;
	Discovery__V1__Response     *resp;
	dsc_instance_list           *list = NULL;
	int                          rv;

	if (c == NULL) {
		return dsi_fail(err, DSC_EINVAL, "client is required");
	}
	gr.service    = or_empty(service);
	req.call_case = DISCOVERY__V1__REQUEST__CALL_GET_ALL;
	req.get_all   = &gr;
	if ((rv = dsi_client_roundtrip(c, &req, &resp, err)) != 0) {
		return rv;
	}
	if (out == NULL) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return 0;
	}
	const Discovery__V1__GetAllResponse *g = resp->get_all;
	if ((list = calloc(1, sizeof(*list))) == NULL
	    || (g->n_instances > 0
	        && (list->items = calloc(g->n_instances, sizeof(*list->items))) == NULL)) {
		rv = dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
	}
	for (size_t i = 0; rv == 0 && i < g->n_instances; i++) {
		if (dsi_inst_from_pb(&list->items[i], g->instances[i]) != 0) {
			rv = dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
		} else {
			list->count = i + 1;
		}
	}
	if (list != NULL) {
		list->revision = g->revision;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (rv != 0) {
		dsc_instance_list_free(list);
		return rv;
	}
	*out = list;
	return 0;
}

int
dsc_heartbeat(
    dsc_client *c, const char *service, const char *endpoint, dsc_instance **out, dsc_error *err)
{
	Discovery__V1__Request          req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__HeartbeatRequest hr  = DISCOVERY__V1__HEARTBEAT_REQUEST__INIT;
	Discovery__V1__Response        *resp;
	int                             rv;

	if (c == NULL || (rv = need(service, "service", err)) != 0
	    || (rv = need(endpoint, "endpoint", err)) != 0) {
		return c == NULL ? dsi_fail(err, DSC_EINVAL, "client is required") : rv;
	}
	hr.service    = (char *) service;
	hr.endpoint   = (char *) endpoint;
	req.call_case = DISCOVERY__V1__REQUEST__CALL_HEARTBEAT;
	req.heartbeat = &hr;
	if ((rv = dsi_client_roundtrip(c, &req, &resp, err)) == 0) {
		rv = instance_out(resp->heartbeat->instance, out, err);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	return rv;
}
