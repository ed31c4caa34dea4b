/* SIGHUP: the configuration read again, checked whole, then applied to the running server. */
#include "server/reload.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/text.h"
#include "server/boot.h"
#include "server/endpoint.h"
#include "server/validate.h"

struct dsi_reload {
	dsi_server       *srv;
	dsi_log          *log; /* main's; the server keeps its own copy */
	int               argc;
	char *const      *argv;
	const dsi_config *cur;      /* in force: the first, or the last of loaded */
	dsi_config      **loaded;   /* every reload's configuration, kept until the end */
	size_t            n_loaded; /* (the dispatcher may still read an old token) */
};

/* What a reload applies; every other setting needs a restart. */
static bool
applies(dsi_setting s)
{
	switch (s) {
	case DSI_SET_LOG_LEVEL:
	case DSI_SET_HEALTH_INTERVAL:
	case DSI_SET_HEALTH_TIMEOUT:
	case DSI_SET_RISE:
	case DSI_SET_FALL:
	case DSI_SET_MAX_CHECKS:
	case DSI_SET_DEREGISTER_AFTER:
	case DSI_SET_PROTECTION_THRESHOLD:
	case DSI_SET_ENV_PREFIX: /* which services the environment names */
	case DSI_SET_TOKEN_FILE:
	case DSI_SET_TOKEN:
	case DSI_SET_TLS_CERT:
	case DSI_SET_TLS_KEY:
	case DSI_SET_TLS_CA:
	case DSI_SET_STRICT_CONFIG: /* it only ever judges a configuration */
	case DSI_SET_READY_FD:      /* used once, at start */
		return true;
	default:
		return false;
	}
}

int
dsi_reload_create(dsi_reload **out, dsi_server *s, const dsi_config *cfg, int argc,
    char *const *argv, dsi_log *log)
{
	dsi_reload *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return DSC_ENOMEM;
	}
	*r   = (dsi_reload) { .srv = s, .log = log, .argc = argc, .argv = argv, .cur = cfg };
	*out = r;
	return 0;
}

void
dsi_reload_destroy(dsi_reload *r)
{
	if (r == NULL) {
		return;
	}
	for (size_t i = 0; i < r->n_loaded; i++) {
		dsi_config_free(r->loaded[i]);
		free(r->loaded[i]);
	}
	free(r->loaded);
	free(r);
}

/* Refuses a service start-up would refuse, as the server's Register would. */
static int
check_services(dsi_reload *r, const dsi_config *next, char *why, size_t why_len)
{
	const dsi_dispatch *d = dsi_server_dispatch(r->srv);
	for (size_t i = 0; i < next->n_boot; i++) {
		const dsi_boot_instance *b = &next->boot[i];
		char                     path[DSI_HEALTH_PATH_MAX + 2], msg[400];
		dsi_validate_health_path(b->health_path, path, sizeof(path));
		dsi_registration reg = {
			.service     = b->service,
			.endpoint    = b->endpoint,
			.metadata    = b->metadata,
			.n_metadata  = b->n_metadata,
			.health_path = path,
			.ttl_ms      = b->ttl_ms,
			.weight      = b->weight,
		};
		if (dsi_endpoint_validate(b->endpoint, msg, sizeof(msg)) != 0
		    || dsi_dispatch_check_registration(d, &reg, msg, sizeof(msg)) != 0) {
			return dsi_failf(DSC_EINVAL, why, why_len, "%s: service %s: %s", b->origin,
			    b->service, msg);
		}
	}
	return 0;
}

/* Logs each setting that differs; *restart: some need a restart. */
static void
log_changes(dsi_reload *r, const dsi_config *next, size_t *changed, bool *restart)
{
	*changed = 0;
	*restart = false;
	for (int s = 0; s < DSI_SET_COUNT; s++) {
		char                    was[400], now[400];
		const dsi_setting_info *info = dsi_setting_get(s);
		const char             *name = info->flag != NULL ? info->flag : "api-key";
		dsi_config_value(r->cur, s, was, sizeof(was));
		dsi_config_value(next, s, now, sizeof(now));
		bool secret_changed = info->secret
		    && !(r->cur->options.token == NULL && next->options.token == NULL)
		    && (r->cur->options.token == NULL || next->options.token == NULL
		        || strcmp(r->cur->options.token, next->options.token) != 0);
		if (s != DSI_SET_TOKEN ? strcmp(was, now) == 0 : !secret_changed) {
			continue;
		}
		(*changed)++;
		if (!applies(s)) {
			*restart = true;
			dsi_warn(r->log, "reload: %s %s -> %s needs a restart; %s stays in force",
			    name, was, now, was);
		} else if (info->secret) {
			dsi_info(r->log, "reload: %s changed", name);
		} else {
			dsi_info(r->log, "reload: %s %s -> %s", name, was, now);
		}
	}
}

/* Whether a setting is on in one configuration and off in the other: a restart's. */
static bool
switched(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL);
}

int
dsi_reload_run(dsi_reload *r, char *const *envp)
{
	dsi_config  *next = calloc(1, sizeof(*next));
	dsi_config **grown;
	char         why[768] = "";
	size_t       changed;
	bool         restart;
	int          rv;

	if (next == NULL) {
		rv = DSC_ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	rv = dsi_config_load(next, r->argc, r->argv, envp, stdout, why, sizeof(why));
	if (rv == DSI_OPTIONS_EXIT) {
		rv = DSC_EINVAL;
		snprintf(why, sizeof(why), "the command line asks for --help or --version");
	}
	if (rv != 0 || (rv = check_services(r, next, why, sizeof(why))) != 0) {
		goto fail;
	}
	if ((grown = realloc(r->loaded, (r->n_loaded + 1) * sizeof(*grown))) == NULL) {
		rv = DSC_ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	r->loaded                   = grown;
	const dsi_server_options *o = &next->options, *was = &r->cur->options;
	/* Certificates first: the one step that can still fail, before anything changes. */
	if (o->tls_cert != NULL && was->tls_cert != NULL) {
		dsi_tls_files files = { .ca = o->tls_ca, .cert = o->tls_cert, .key = o->tls_key };
		if ((rv = dsi_server_set_tls(r->srv, &files, why, sizeof(why))) != 0
		    && rv != DSC_ESTATE) {
			goto fail;
		}
		if (rv != 0) {
			dsi_error(r->log, "reload: %s", why);
		} else {
			dsi_info(r->log,
			    "reload: TLS certificates read again from %s, for new connections "
			    "(open "
			    "ones keep theirs)",
			    o->tls_cert);
		}
	}
	r->loaded[r->n_loaded++] = next;
	for (size_t i = 0; i < next->n_warnings; i++) {
		dsi_warn(r->log, "%s", next->warnings[i]);
	}
	log_changes(r, next, &changed, &restart);
	if (switched(was->tls_cert, o->tls_cert)) {
		dsi_warn(r->log, "reload: turning TLS on or off needs a restart");
	}
	r->log->level = o->log_level;
	dsi_server_set_log_level(r->srv, o->log_level);
	if (switched(was->token, o->token)) {
		dsi_warn(r->log,
		    "reload: turning authentication on or off needs a restart; the "
		    "running token setting stays");
	} else if (o->token != NULL) {
		dsi_server_set_token(r->srv, o->token); /* o lives in r->loaded until the end */
	}
	dsi_checker_settings hs = {
		.interval_ms         = o->health_interval_ms,
		.timeout_ms          = o->health_timeout_ms,
		.rise                = o->rise,
		.fall                = o->fall,
		.max_inflight        = o->max_checks,
		.deregister_after_ms = o->deregister_after_ms,
	};
	dsi_server_set_health(r->srv, &hs);
	dsi_registry_set_protection(dsi_server_registry(r->srv), o->protection_threshold);
	r->cur = next;
	dsi_boot_counts counts;
	rv = dsi_boot_reconcile(
	    r->srv, next->boot, next->n_boot, false, r->log, &counts, why, sizeof(why));
	dsi_info(r->log,
	    "reload done: %zu settings changed%s; services: %zu configured, %zu registered, %zu "
	    "deregistered, %zu failed",
	    changed, restart ? " (some need a restart)" : "", next->n_boot, counts.added,
	    counts.removed, counts.failed);
	return rv;
fail:
	dsi_error(r->log, "reload failed, the running configuration stays: %s", why);
	if (next != NULL) {
		dsi_config_free(next);
		free(next);
	}
	return rv;
}
