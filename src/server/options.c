/*
 * The settings table: each setting's flag, variable, YAML key, default and
 * setter. Where values come from is config.c's business.
 */
#include "server/options.h"

#include <discovery/discovery.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/text.h"
#include "server/checkhttp.h"
#include "server/endpoint.h"
#include "server/options_values.h"

typedef int (*setter)(dsi_server_options *o, const char *v, char *why, size_t why_len);

#define ENV(x) "SERVICE_DISCOVERY_" x

/* The one table, in dsi_setting order. */
/*
 * Each setting's default is its info.dflt text, applied through its own
 * setter by dsi_options_default: the text --help and --print-config show
 * is the value the server runs with. "none" leaves the setting unset; a
 * text_only default describes a value kept elsewhere (the profile's
 * prefix, the policy's permanent denials), from the same constant.
 */
static const struct {
	dsi_setting_info info;
	setter           set;
	bool             text_only;
} table[DSI_SET_COUNT] = {
	[DSI_SET_LISTEN]  = { { "listen", ENV("LISTEN"), "listen", "URL", "tcp://127.0.0.1:7700",
	                          "REQ/REP address; repeatable", true, false },
	     dsi_opt_set_listen },
	[DSI_SET_PUBLISH] = { { "publish", ENV("PUBLISH"), "publish", "URL", "tcp://127.0.0.1:7701",
	                          "PUB address for events", false, false },
	    dsi_opt_set_publish },
	[DSI_SET_LOG_LEVEL] = { { "log-level", ENV("LOG_LEVEL"), "log_level", "LEVEL", "info",
	                            "error, warn, info or debug", false, false },
	    dsi_opt_set_log_level },
	[DSI_SET_LOG_FORMAT]
	= { { "log-format", ENV("LOG_FORMAT"), "log_format", "FORMAT", "text",
	        "log lines as text, or json (one object a line)", false, false },
	    dsi_opt_set_log_format },
	[DSI_SET_DATA]
	= { { "data", ENV("DATA"), "data", "PATH", "discovery.db",
	        "SQLite file for registrations; :memory: keeps nothing", false, false },
	    dsi_opt_set_data },
	[DSI_SET_MAX_REQUEST]
	= { { "max-request-size", ENV("MAX_REQUEST_SIZE"), "max_request_size", "BYTES", "1048576",
	        "largest request; larger ones drop the connection", false, false },
	    dsi_opt_set_max_request },
	[DSI_SET_MAX_INSTANCES] = { { "max-instances", ENV("MAX_INSTANCES"), "max_instances", "N",
	                                "1000000", "instances in total", false, false },
	    dsi_opt_set_max_instances },
	[DSI_SET_MAX_PER_SERVICE]
	= { { "max-instances-per-service", ENV("MAX_INSTANCES_PER_SERVICE"),
	        "max_instances_per_service", "N", "65536", "instances of one service", false,
	        false },
	    dsi_opt_set_max_per_service },
	[DSI_SET_WORKERS] = { { "workers", ENV("WORKERS"), "workers", "N", "64",
	                          "concurrent requests in the REP pool", false, false },
	    dsi_opt_set_workers },
	[DSI_SET_HEALTH_INTERVAL]
	= { { "health-interval", ENV("HEALTH_CHECK_INTERVAL"), "health_check.interval", "SECONDS",
	        "30", "between checks of one instance; fractions allowed", false, false },
	    dsi_opt_set_health_interval },
	[DSI_SET_HEALTH_TIMEOUT]
	= { { "health-timeout", ENV("HEALTH_CHECK_TIMEOUT"), "health_check.timeout", "SECONDS", "5",
	        "per check", false, false },
	    dsi_opt_set_health_timeout },
	[DSI_SET_RISE] = { { "rise", ENV("HEALTH_CHECK_RISE"), "health_check.rise", "N", "2",
	                       "passes in a row to become healthy", false, false },
	    dsi_opt_set_rise },
	[DSI_SET_FALL] = { { "fall", ENV("HEALTH_CHECK_FALL"), "health_check.fall", "N", "2",
	                       "failures in a row to become unhealthy", false, false },
	    dsi_opt_set_fall },
	[DSI_SET_MAX_CHECKS]
	= { { "max-checks", ENV("HEALTH_CHECK_MAX_CHECKS"), "health_check.max_checks", "N", "256",
	        "health checks in flight at once", false, false },
	    dsi_opt_set_max_checks },
	[DSI_SET_DEREGISTER_AFTER]
	= { { "deregister-after", ENV("DEREGISTER_AFTER"), "health_check.deregister_after",
	        "SECONDS", "0", "remove instances unhealthy this long (0: never)", false, false },
	    dsi_opt_set_deregister_after },
	[DSI_SET_PROTECTION_THRESHOLD]
	= { { "protection-threshold", ENV("PROTECTION_THRESHOLD"),
	        "health_check.protection_threshold", "SHARE", "0",
	        "below this healthy share of a service, Resolve picks among all its instances "
	        "(0: off)",
	        false, false },
	    dsi_opt_set_protection_threshold },
	[DSI_SET_SYNC_INTERVAL]
	= { { "sync-interval", ENV("SYNC_INTERVAL"), "events.sync_interval", "SECONDS", "5",
	        "between SYNC events carrying the revision", false, false },
	    dsi_opt_set_sync_interval },
	[DSI_SET_EVENT_BUFFER]
	= { { "event-buffer", ENV("EVENT_BUFFER"), "events.buffer", "N", "1024",
	        "events queued per subscriber before nng drops them", false, false },
	    dsi_opt_set_event_buffer },
	[DSI_SET_ENV_PREFIX]
	= { { "env-prefix", ENV("ENV_PREFIX"), "env_prefix", "PREFIX",
	        DSI_DEFAULT_ENV_PREFIX " (by profile)",
	        "variables PREFIX<NAME>=URL register services at start", false, false },
	    dsi_opt_set_env_prefix, true },
	[DSI_SET_TOKEN_FILE] = { { "token-file", ENV("TOKEN_FILE"), "token_file", "FILE", "none",
	                             "file holding the auth token", false, false },
	    dsi_opt_set_token_file },
	[DSI_SET_TOKEN]      = { { NULL, ENV("API_KEY"), NULL, "TOKEN", "none",
	                             "the auth token itself (environment only)", false, true },
	         dsi_opt_set_token },
	[DSI_SET_AUTH_READS]
	= { { "auth-reads", ENV("AUTH_READS"), "auth_reads", "", "false",
	        "reads need the auth token too (writes always do, once one is set)", false, false,
	        true },
	    dsi_opt_set_auth_reads },
	[DSI_SET_TLS_CERT] = { { "tls-cert", ENV("TLS_CERT"), "tls.cert", "FILE", "none",
	                           "PEM certificate for tls+tcp:// URLs", false, false },
	    dsi_opt_set_tls_cert },
	[DSI_SET_TLS_KEY]  = { { "tls-key", ENV("TLS_KEY"), "tls.key", "FILE", "none",
	                           "PEM private key of --tls-cert, unencrypted", false, false },
	     dsi_opt_set_tls_key },
	[DSI_SET_TLS_CA]
	= { { "tls-ca", ENV("TLS_CA"), "tls.ca", "FILE", "none",
	        "PEM CAs; clients must present a certificate one of them signed", false, false },
	    dsi_opt_set_tls_ca },
	[DSI_SET_ALLOW_ENDPOINT]
	= { { "allow-endpoint", ENV("ALLOW_ENDPOINT"), "allow_endpoint", "CIDR", "none",
	        "endpoints may only use addresses in these ranges; repeatable", true, false,
	        false },
	    dsi_opt_set_allow_endpoint },
	[DSI_SET_DENY_ENDPOINT]
	= { { "deny-endpoint", ENV("DENY_ENDPOINT"), "deny_endpoint", "CIDR",
	        DSI_NETPOLICY_DENY_V4 "," DSI_NETPOLICY_DENY_V6 " (always)",
	        "endpoints may not use addresses in these ranges; repeatable", true, false, false },
	    dsi_opt_set_deny_endpoint, true },
	[DSI_SET_REQUIRE]
	= { { "require", ENV("REQUIRE"), "required", "NAME,...", "none",
	        "services that must be registered once loading is done", true, false },
	    dsi_opt_set_require },
	[DSI_SET_READY_FD]
	= { { "ready-fd", ENV("READY_FD"), NULL, "FD", "none",
	        "once serving, write the bound URLs and \"ready\" to FD, then close it", false,
	        false },
	    dsi_opt_set_ready_fd },
	[DSI_SET_STRICT_CONFIG]
	= { { "strict-config", ENV("STRICT_CONFIG"), "strict_config", "", "false",
	        "unknown keys and variables and bad service values stop start-up instead of "
	        "warning",
	        false, false, true },
	    dsi_opt_set_strict_config },
	[DSI_SET_MAX_CONNECTIONS]
	= { { "max-connections", ENV("MAX_CONNECTIONS"), "max_connections", "N", "1024",
	        "connections per listening socket (REQ/REP and PUB each); more are closed", false,
	        false },
	    dsi_opt_set_max_connections },
	[DSI_SET_IDLE_TIMEOUT]
	= { { "idle-timeout", ENV("IDLE_TIMEOUT"), "idle_timeout", "SECONDS", "60",
	        "close a REQ/REP connection with no complete request for this long", false, false },
	    dsi_opt_set_idle_timeout },
	[DSI_SET_REPLY_TIMEOUT]
	= { { "reply-timeout", ENV("REPLY_TIMEOUT"), "reply_timeout", "SECONDS", "10",
	        "close a connection that does not take its reply within this", false, false },
	    dsi_opt_set_reply_timeout },
	[DSI_SET_MAX_CONN_REQUESTS]
	= { { "max-connection-requests", ENV("MAX_CONNECTION_REQUESTS"), "max_connection_requests",
	        "N", "32",
	        "requests one connection may have in the pool (at most half of --workers); "
	        "one more closes it",
	        false, false },
	    dsi_opt_set_max_conn_requests },
	[DSI_SET_MAX_REQUEST_MEMORY]
	= { { "max-request-memory", ENV("MAX_REQUEST_MEMORY"), "max_request_memory", "BYTES",
	        "1073741824",
	        "budget for partly received requests: --max-connections x --max-request-size "
	        "must fit",
	        false, false },
	    dsi_opt_set_max_request_memory },
	[DSI_SET_MIN_REVISION_WAIT]
	= { { "min-revision-wait", ENV("MIN_REVISION_WAIT"), "min_revision_wait", "SECONDS", "1",
	        "how long a request waits for the registry to reach its min_revision before "
	        "UNAVAILABLE (0: none waits; at most half of --workers wait)",
	        false, false },
	    dsi_opt_set_min_revision_wait },
	[DSI_SET_ADMIN] = { { "admin", ENV("ADMIN"), "admin", "URL", "http://127.0.0.1:7702",
	                        "HTTP admin endpoint (probes, catalog, metrics); https:// serves "
	                        "with --tls-cert and --tls-key; off",
	                        false, false },
	    dsi_opt_set_admin },
	[DSI_SET_ENDPOINT_SCHEMES]
	= { { "endpoint-schemes", ENV("ENDPOINT_SCHEMES"), "endpoint_schemes", "SCHEME,...",
	        "http,https,tcp (production: https)",
	        "schemes registered endpoints may use: http, https, tcp", true, false },
	    dsi_opt_set_endpoint_schemes, true },
	[DSI_SET_CHECK_CA_FILE]
	= { { "check-ca-file", ENV("HEALTH_CHECK_CA_FILE"), "health_check.ca_file", "FILE", "none",
	        "PEM CAs that https:// health checks trust instead of the system bundle", false,
	        false },
	    dsi_opt_set_check_ca_file },
	[DSI_SET_CHECK_CERT]
	= { { "check-cert", ENV("HEALTH_CHECK_CERT"), "health_check.cert", "FILE", "none",
	        "PEM client certificate health checks present (services with mutual TLS)", false,
	        false },
	    dsi_opt_set_check_cert },
	[DSI_SET_CHECK_KEY]
	= { { "check-key", ENV("HEALTH_CHECK_KEY"), "health_check.key", "FILE", "none",
	        "PEM private key of --check-cert, unencrypted; group and others must not read it",
	        false, false },
	    dsi_opt_set_check_key },
	[DSI_SET_CHECK_HEADER]
	= { { "check-header", ENV("HEALTH_CHECK_HEADERS"), "health_check.headers", "NAME:VALUE",
	        "none", "a header HTTP(S) health checks send (values never shown); repeatable",
	        true, true, false, true },
	    dsi_opt_set_check_header },
	[DSI_SET_CHECK_HEADER_FILE]
	= { { "check-header-file", ENV("HEALTH_CHECK_HEADER_FILES"), "health_check.header_files",
	        "NAME:FILE", "none",
	        "a header health checks send, its value the file's (group and others must not "
	        "read it); repeatable",
	        true, false, false, true },
	    dsi_opt_set_check_header_file },
	[DSI_SET_CLUSTER]
	= { { "cluster", ENV("CLUSTER"), "cluster", "URL", "off",
	        "cluster mode: the etcd members, etcd://HOST:PORT[,HOST:PORT...] (etcds:// for "
	        "TLS; docs/cluster.md)",
	        false, false },
	    dsi_opt_set_cluster },
	[DSI_SET_NODE_NAME]
	= { { "node-name", ENV("NODE_NAME"), "node_name", "NAME", "none",
	        "this node's name in the cluster, unique among its nodes (none: the host name)",
	        false, false },
	    dsi_opt_set_node_name },
	[DSI_SET_CLUSTER_PREFIX]
	= { { "cluster-prefix", ENV("CLUSTER_PREFIX"), "cluster_prefix", "PREFIX", "/discovery/v1/",
	        "the etcd key prefix of the cluster's registry", false, false },
	    dsi_opt_set_cluster_prefix },
	[DSI_SET_CLUSTER_TIMEOUT]
	= { { "cluster-timeout", ENV("CLUSTER_TIMEOUT"), "cluster_timeout", "SECONDS", "5",
	        "how long one etcd call may take before its outcome counts as unknown", false,
	        false },
	    dsi_opt_set_cluster_timeout },
	[DSI_SET_CLUSTER_CA]
	= { { "cluster-ca", ENV("CLUSTER_CA"), "cluster_ca", "FILE", "none",
	        "PEM CAs that etcds:// members' certificates must be signed by instead of the "
	        "system bundle",
	        false, false },
	    dsi_opt_set_cluster_ca },
	[DSI_SET_CLUSTER_CERT]
	= { { "cluster-cert", ENV("CLUSTER_CERT"), "cluster_cert", "FILE", "none",
	        "PEM client certificate for etcds:// members (etcd's --client-cert-auth)", false,
	        false },
	    dsi_opt_set_cluster_cert },
	[DSI_SET_CLUSTER_KEY]
	= { { "cluster-key", ENV("CLUSTER_KEY"), "cluster_key", "FILE", "none",
	        "PEM private key of --cluster-cert, unencrypted; group and others must not read it",
	        false, false },
	    dsi_opt_set_cluster_key },
};

const dsi_setting_info *
dsi_setting_get(dsi_setting s)
{
	return s < DSI_SET_COUNT ? &table[s].info : NULL;
}

void
dsi_options_default(dsi_server_options *o)
{
	char why[256];

	memset(o, 0, sizeof(*o));
	/* Limits that are not settings: the protocol's metadata caps. */
	dsi_registry_limits_default(&o->limits);
	o->drain_ms = DSI_DRAIN_MS;
	o->ready_fd = -1; /* "none": no report */
	for (int i = 0; i < DSI_SET_COUNT; i++) {
		const char *d = table[i].info.dflt;
		if (!table[i].text_only && strcmp(d, "none") != 0
		    && table[i].set(o, d, why, sizeof(why)) != 0) {
			abort(); /* a default its own setter refuses: options_test catches it */
		}
		snprintf(o->origin[i], sizeof(o->origin[i]), "default");
	}
}

int
dsi_options_set(dsi_server_options *o, dsi_setting s, const char *value, dsi_source src,
    const char *origin, char *why, size_t why_len)
{
	if (s >= DSI_SET_COUNT) {
		snprintf(why, why_len, "no such setting");
		return DSC_EINVAL;
	}
	if (value[0] == 0) {
		snprintf(why, why_len, "needs a non-empty value");
		return DSC_EINVAL;
	}
	if (table[s].info.list && o->source[s] != src) {
		/* A list from a higher source replaces the lower one's whole. */
		switch (s) {
		case DSI_SET_LISTEN:
			o->n_listen = 0;
			break;
		case DSI_SET_ALLOW_ENDPOINT:
			o->n_allow_endpoint = 0;
			break;
		case DSI_SET_DENY_ENDPOINT:
			o->n_deny_endpoint = 0;
			break;
		case DSI_SET_ENDPOINT_SCHEMES:
			o->endpoint_schemes = 0;
			break;
		case DSI_SET_CHECK_HEADER:
			o->n_check_header = 0;
			break;
		case DSI_SET_CHECK_HEADER_FILE:
			o->n_check_header_file = 0;
			break;
		default:
			o->n_require = 0;
			break;
		}
	}
	int rv = table[s].set(o, value, why, why_len);
	if (rv == 0) {
		o->source[s] = src;
		o->text[s]   = value;
		snprintf(o->origin[s], sizeof(o->origin[s]), "%s", origin);
	}
	return rv;
}

void
dsi_options_usage(FILE *out)
{
	fprintf(out,
	    "Usage: discoveryd [OPTION]...\n"
	    "The discovery server: a service registry over nng REQ/REP.\n\n"
	    "Every setting also comes from its variable or the YAML file; flags win over\n"
	    "the environment, which wins over the file, which wins over the defaults.\n\n");
	for (int i = 0; i < DSI_SET_COUNT; i++) {
		const dsi_setting_info *s = &table[i].info;
		char                    left[64];
		if (s->flag == NULL) {
			snprintf(left, sizeof(left), "(%s)", s->env);
		} else if (s->toggle) {
			snprintf(left, sizeof(left), "--%s", s->flag);
		} else {
			snprintf(left, sizeof(left), "--%s %s", s->flag, s->arg);
		}
		fprintf(out, "  %-34s %s (default %s)\n", left, s->help, s->dflt);
		if (s->flag != NULL) {
			fprintf(out, "  %-34s   env %s%s%s\n", "", s->env, s->yaml ? ", yaml " : "",
			    s->yaml ? s->yaml : "");
		}
	}
	fprintf(out, "  %-34s %s\n  %-34s %s\n  %-34s %s\n  %-34s %s\n  %-34s %s\n  %-34s %s\n",
	    "--config FILE", "YAML file (env SERVICE_DISCOVERY_CONFIG)", "--environment PROFILE",
	    "development, testing or production (env ENVIRONMENT)", "--print-config",
	    "show the effective configuration and where each value came from, and exit", "--help",
	    "show this help and exit", "--version", "show the version and exit", "", "");
	fprintf(out,
	    "\nServices: PREFIX<NAME>=URL in the environment (prefix SERVICE_ by default)\n"
	    "and services: in the YAML file are registered at start.\n"
	    "\nExit status: 0 after a clean shutdown (SIGINT or SIGTERM), 1 when the\n"
	    "server cannot start, 2 for bad usage or configuration.\n");
}
