/* Start-up registration from the configuration, and the --require check. */
#include "server/boot.h"

#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/name.h"
#include "common/request.h"
#include "common/status.h"
#include "server/dispatch.h"
#include "server/registry.h"

int
dsi_boot_register(dsi_server *s, const dsi_boot_instance *b, char *why, size_t why_len)
{
	dsi_dispatch            *d    = dsi_server_dispatch(s);
	Discovery__V1__Request  *req  = NULL;
	Discovery__V1__Response *resp = NULL;
	nng_msg                 *msg = NULL, *reply = NULL;
	int                      rv;
	dsc_registration         reg = {
		        .service     = b->service,
		        .endpoint    = b->endpoint,
		        .metadata    = b->metadata,
		        .n_metadata  = b->n_metadata,
		        .health_path = b->health_path,
		        .ttl_ms      = b->ttl_ms,
		        .weight      = b->weight,
	};

	if ((rv = dsi_request_register_new(&req, &reg)) != 0) {
		goto out;
	}
	req->auth_token = (char *) (d->token != NULL ? d->token : "");
	/* Bytes in, bytes out: start-up registrations take the network's path. */
	rv = DSC_ENOMEM;
	if (dsi_pack(&req->base, &msg) != 0
	    || dsi_dispatch_handle(d, nng_msg_body(msg), nng_msg_len(msg), &reply) != 0) {
		goto out;
	}
	if ((rv = dsi_unpack(&discovery__v1__response__descriptor, nng_msg_body(reply),
	         nng_msg_len(reply), (ProtobufCMessage **) &resp))
	    != 0) {
		goto out;
	}
	rv = dsi_err_from_status(resp->status);
	snprintf(why, why_len, "%s", resp->message);
out:
	if (rv == DSC_ENOMEM) {
		snprintf(why, why_len, "out of memory");
	}
	if (resp != NULL) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	if (msg != NULL) {
		nng_msg_free(msg);
	}
	if (reply != NULL) {
		nng_msg_free(reply);
	}
	dsi_request_free(req);
	return rv;
}

size_t
dsi_boot_missing(dsi_server *s, const char *const *names, size_t n, char *missing, size_t len)
{
	size_t count = 0;
	missing[0]   = 0;
	for (size_t i = 0; i < n; i++) {
		char          name[DSI_NAME_MAX + 1], why[256];
		dsi_instances list = { NULL, 0 };
		bool          here = dsi_name_normalize(names[i], name, why, sizeof(why)) == 0
		    && dsi_registry_get_all(dsi_server_registry(s), name, &list, NULL) == 0
		    && list.count > 0;
		dsi_instances_free(&list);
		if (!here) {
			size_t used = strlen(missing);
			snprintf(missing + used, len - used, "%s%s", count ? ", " : "", names[i]);
			count++;
		}
	}
	return count;
}

int
dsi_boot_run(dsi_server *s, const dsi_config *cfg, FILE *err)
{
	char why[512], missing[1024];
	for (size_t i = 0; i < cfg->n_boot; i++) {
		const dsi_boot_instance *b = &cfg->boot[i];
		if (dsi_boot_register(s, b, why, sizeof(why)) != 0) {
			fprintf(
			    err, "discoveryd: %s: service %s: %s\n", b->origin, b->service, why);
			return 2;
		}
	}
	const dsi_server_options *o = &cfg->options;
	if (dsi_boot_missing(s, o->require, o->n_require, missing, sizeof(missing)) > 0) {
		fprintf(err, "discoveryd: required services are not registered: %s\n", missing);
		return 1;
	}
	return 0;
}
