/* The Status call: a running server's state, copied out of its StatusResponse. */
#include <discovery/discovery.h>
#include <stdlib.h>
#include <string.h>

#include "client/error.h"
#include "client/internal.h"

void
dsc_server_status_free(dsc_server_status *st)
{
	if (st == NULL) {
		return;
	}
	free(st->version);
	for (size_t i = 0; i < st->n_listeners; i++) {
		free(st->listeners[i]);
	}
	free(st->listeners);
	free(st->publish);
	free(st->admin);
	free(st->data);
	free(st);
}

static char *
dup_or_empty(const char *s)
{
	return strdup(s != NULL ? s : "");
}

/* A deep copy of the wire message; NULL when out of memory. */
static dsc_server_status *
copy_status(const Discovery__V1__StatusResponse *w)
{
	dsc_server_status *st = calloc(1, sizeof(*st));
	if (st == NULL) {
		return NULL;
	}
	st->started_at_ms = w->started_at_ms;
	st->uptime_ms     = w->uptime_ms;
	st->revision      = w->revision;
	st->services      = w->services;
	st->instances     = w->instances;
	st->healthy       = w->healthy;
	st->unhealthy     = w->unhealthy;
	st->unknown       = w->unknown;
	st->commits       = w->commits;
	st->writes_stored = w->writes_stored;
	if ((st->version = dup_or_empty(w->version)) == NULL
	    || (st->publish = dup_or_empty(w->publish)) == NULL
	    || (st->admin = dup_or_empty(w->admin)) == NULL
	    || (st->data = dup_or_empty(w->data)) == NULL
	    || (w->n_listeners > 0
	        && (st->listeners = calloc(w->n_listeners, sizeof(*st->listeners))) == NULL)) {
		goto fail;
	}
	for (size_t i = 0; i < w->n_listeners; i++) {
		if ((st->listeners[i] = dup_or_empty(w->listeners[i])) == NULL) {
			goto fail;
		}
		st->n_listeners = i + 1;
	}
	return st;
fail:
	dsc_server_status_free(st);
	return NULL;
}

int
dsc_status(dsc_client *c, dsc_server_status **out, dsc_error *err)
{
	Discovery__V1__Request       req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__StatusRequest sr  = DISCOVERY__V1__STATUS_REQUEST__INIT;
	Discovery__V1__Response     *resp;
	int                          rv;

	if (c == NULL) {
		return dsi_fail(err, DSC_EINVAL, "client is required");
	}
	req.call_case     = DISCOVERY__V1__REQUEST__CALL_SERVER_STATUS;
	req.server_status = &sr;
	if ((rv = dsi_client_roundtrip(c, &req, &resp, err)) != 0) {
		return rv;
	}
	if (out != NULL) {
		dsc_server_status *st
		    = resp->server_status != NULL ? copy_status(resp->server_status) : NULL;
		if (st == NULL) {
			rv = resp->server_status == NULL
			    ? dsi_fail(err, DSC_EPROTO, "the server's reply carries no status")
			    : dsi_fail(err, DSC_ENOMEM, "%s", dsc_strerror(DSC_ENOMEM));
		} else {
			*out = st;
		}
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rv;
}
