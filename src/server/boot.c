/*
 * The configuration's instances: registered at start and reconciled on
 * reload, and the --require check.
 */
#include "server/boot.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/error.h"
#include "common/name.h"
#include "common/request.h"
#include "common/status.h"
#include "common/text.h"
#include "server/dispatch.h"
#include "server/registry.h"

/*
 * Sends req (its token set here) through a copy of the server's dispatcher
 * whose registrations are the configuration's: bytes in, bytes out, so the
 * configuration takes the network's path and meets the same rules.
 */
static int
boot_call(dsi_server *s, Discovery__V1__Request *req, char *why, size_t why_len)
{
	dsi_dispatch             d = *dsi_server_dispatch(s); /* handle returns after the reply */
	Discovery__V1__Response *resp = NULL;
	nng_msg                 *msg = NULL, *reply = NULL;
	const char              *token = atomic_load(&d.token);
	int                      rv    = DSC_ENOMEM;

	d.origin        = DSI_ORIGIN_CONFIG;
	req->auth_token = (char *) (token != NULL ? token : "");
	if (dsi_pack(&req->base, &msg) != 0
	    || dsi_dispatch_handle(&d, nng_msg_body(msg), nng_msg_len(msg), &reply) != 0) {
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
	return rv;
}

int
dsi_boot_register(dsi_server *s, const dsi_boot_instance *b, char *why, size_t why_len)
{
	Discovery__V1__Request *req = NULL;
	dsc_registration        reg = {
		       .service     = b->service,
		       .endpoint    = b->endpoint,
		       .metadata    = b->metadata,
		       .n_metadata  = b->n_metadata,
		       .health_path = b->health_path,
		       .ttl_ms      = b->ttl_ms,
		       .weight      = b->weight,
	};
	int rv = dsi_request_register_new(&req, &reg);
	if (rv != 0) {
		snprintf(why, why_len, "%s", dsi_strerror(rv));
		return rv;
	}
	rv = boot_call(s, req, why, why_len);
	dsi_request_free(req);
	return rv;
}

/* Deregisters one instance as a Deregister request would. */
static int
boot_deregister(dsi_server *s, const char *service, const char *endpoint, char *why, size_t len)
{
	Discovery__V1__DeregisterRequest dr  = DISCOVERY__V1__DEREGISTER_REQUEST__INIT;
	Discovery__V1__Request           req = DISCOVERY__V1__REQUEST__INIT;
	dr.service                           = (char *) service;
	dr.endpoint                          = (char *) endpoint;
	req.call_case                        = DISCOVERY__V1__REQUEST__CALL_DEREGISTER;
	req.deregister                       = &dr;
	return boot_call(s, &req, why, len);
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

static bool
named(const dsi_boot_instance *boot, size_t n, const char *service, const char *endpoint)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(boot[i].service, service) == 0
		    && strcmp(boot[i].endpoint, endpoint) == 0) {
			return true;
		}
	}
	return false;
}

int
dsi_boot_reconcile(dsi_server *s, const dsi_boot_instance *boot, size_t n, bool stop,
    const dsi_log *log, dsi_boot_counts *counts, char *why, size_t why_len)
{
	dsi_instances had = { NULL, 0 };
	char          msg[512], esc[96];
	int           rv = 0;

	*counts = (dsi_boot_counts) { 0 };
	if (dsi_registry_get_origin(dsi_server_registry(s), DSI_ORIGIN_CONFIG, &had) != 0) {
		return dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const dsi_boot_instance *b   = &boot[i];
		bool                     old = false;
		for (size_t j = 0; j < had.count && !old; j++) {
			old = strcmp(had.items[j]->service, b->service) == 0
			    && strcmp(had.items[j]->endpoint, b->endpoint) == 0;
		}
		if ((rv = dsi_boot_register(s, b, msg, sizeof(msg))) != 0) {
			if (stop) {
				dsi_failf(rv, why, why_len, "%s: service %s: %s", b->origin,
				    b->service, msg);
				goto out;
			}
			dsi_error(
			    log, "%s: service %s not registered: %s", b->origin, b->service, msg);
			counts->failed++;
			rv = 0;
			continue;
		}
		if (!old) {
			dsi_info(log, "configuration: registered %s %s (%s)", b->service,
			    dsi_text_escape(b->endpoint, esc, sizeof(esc)), b->origin);
			counts->added++;
		}
	}
	/* What the configuration registered and no longer names; the API's are never touched. */
	for (size_t j = 0; j < had.count; j++) {
		const dsi_instance *x = had.items[j];
		if (named(boot, n, x->service, x->endpoint)) {
			continue;
		}
		dsi_text_escape(x->endpoint, esc, sizeof(esc));
		if (boot_deregister(s, x->service, x->endpoint, msg, sizeof(msg)) != 0) {
			dsi_error(log,
			    "configuration: %s %s no longer configured, but not deregistered: %s",
			    x->service, esc, msg);
			counts->failed++;
			continue;
		}
		dsi_info(log, "configuration: deregistered %s %s (no longer configured)",
		    x->service, esc);
		counts->removed++;
	}
out:
	dsi_instances_free(&had);
	return rv;
}

int
dsi_boot_run(dsi_server *s, const dsi_config *cfg, FILE *err)
{
	char            why[768], missing[1024];
	dsi_boot_counts counts;
	if (dsi_boot_reconcile(
	        s, cfg->boot, cfg->n_boot, true, dsi_server_log(s), &counts, why, sizeof(why))
	    != 0) {
		fprintf(err, "discoveryd: %s\n", why);
		return 2;
	}
	const dsi_server_options *o = &cfg->options;
	if (dsi_boot_missing(s, o->require, o->n_require, missing, sizeof(missing)) > 0) {
		fprintf(err, "discoveryd: required services are not registered: %s\n", missing);
		return 1;
	}
	return 0;
}
