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

typedef int (*setter)(dsi_server_options *o, const char *v, char *why, size_t why_len);

#define UINT_SETTER(fn, field, type, lo, hi)                                           \
	static int fn(dsi_server_options *o, const char *v, char *why, size_t why_len) \
	{                                                                              \
		uint64_t n;                                                            \
		if (dsi_parse_uint(v, (lo), (hi), &n) != 0) {                          \
			snprintf(why, why_len,                                         \
			    "expects a whole number from %llu to %llu, not \"%s\"",    \
			    (unsigned long long) (lo), (unsigned long long) (hi), v);  \
			return DSC_EINVAL;                                             \
		}                                                                      \
		o->field = (type) n;                                                   \
		return 0;                                                              \
	}

UINT_SETTER(set_max_request, max_request, size_t, 64, 256u * 1024 * 1024)
UINT_SETTER(set_workers, workers, size_t, 1, 4096)
UINT_SETTER(set_max_instances, limits.max_instances, uint32_t, 1, 100000000)
UINT_SETTER(set_max_per_service, limits.max_instances_per_service, uint32_t, 1, 100000000)
UINT_SETTER(set_rise, rise, int, 1, 100)
UINT_SETTER(set_fall, fall, int, 1, 100)
UINT_SETTER(set_max_checks, max_checks, int, 1, 65536)
UINT_SETTER(set_event_buffer, event_buffer, int, 1, 1000000)
UINT_SETTER(set_ready_fd, ready_fd, int, 0, 65535)
UINT_SETTER(set_max_connections, max_connections, size_t, 1, 65536)
UINT_SETTER(set_max_conn_requests, max_conn_requests, size_t, 1, 4096)
UINT_SETTER(set_max_request_memory, max_request_memory, size_t, 65536, UINT64_C(1) << 40)

#define SECONDS_SETTER(fn, field, lo, hi)                                                   \
	static int fn(dsi_server_options *o, const char *v, char *why, size_t why_len)      \
	{                                                                                   \
		if (dsi_parse_seconds(v, (lo), (hi), &o->field) != 0) {                     \
			snprintf(why, why_len, "expects seconds from %g to %g, not \"%s\"", \
			    (double) (lo), (double) (hi), v);                               \
			return DSC_EINVAL;                                                  \
		}                                                                           \
		return 0;                                                                   \
	}

SECONDS_SETTER(set_health_interval, health_interval_ms, 0.01, 86400)
SECONDS_SETTER(set_health_timeout, health_timeout_ms, 0.01, 3600)
SECONDS_SETTER(set_deregister_after, deregister_after_ms, 0, 2000000)
SECONDS_SETTER(set_sync_interval, sync_interval_ms, 0.01, 3600)
SECONDS_SETTER(set_idle_timeout, idle_timeout_ms, 0.1, 86400)
SECONDS_SETTER(set_reply_timeout, reply_timeout_ms, 0.01, 3600)
SECONDS_SETTER(set_min_revision_wait, min_revision_wait_ms, 0, 60)

/* A share from 0 to 1, written as a decimal ("0.5") or a percentage ("50%"). */
static int
set_protection_threshold(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	char  *end = NULL;
	double x;
	errno = 0;
	x     = strtod(v, &end);
	if (end != v && *end == '%' && end[1] == 0) {
		x /= 100;
		end++;
	}
	if (errno != 0 || end == v || *end != 0 || !(x >= 0 && x <= 1)) {
		snprintf(
		    why, why_len, "expects a share from 0 to 1 (or 0%% to 100%%), not \"%s\"", v);
		return DSC_EINVAL;
	}
	o->protection_threshold = x;
	return 0;
}

static int
set_listen(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (o->n_listen == DSI_MAX_LISTEN) {
		snprintf(why, why_len, "takes at most %d addresses", DSI_MAX_LISTEN);
		return DSC_EINVAL;
	}
	o->listen[o->n_listen++] = v;
	return 0;
}

static int
set_require(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (o->n_require == DSI_MAX_REQUIRE) {
		snprintf(why, why_len, "takes at most %d services", DSI_MAX_REQUIRE);
		return DSC_EINVAL;
	}
	o->require[o->n_require++] = v;
	return 0;
}

/* Plain strings: checked where they are used (URLs by nng, paths by open). */
#define STRING_SETTER(fn, field)                                                       \
	static int fn(dsi_server_options *o, const char *v, char *why, size_t why_len) \
	{                                                                              \
		(void) why;                                                            \
		(void) why_len;                                                        \
		o->field = v;                                                          \
		return 0;                                                              \
	}

STRING_SETTER(set_publish, publish)
STRING_SETTER(set_data, data)
STRING_SETTER(set_env_prefix, env_prefix)
STRING_SETTER(set_token_file, token_file)
STRING_SETTER(set_token, token)
STRING_SETTER(set_tls_cert, tls_cert)
STRING_SETTER(set_tls_key, tls_key)
STRING_SETTER(set_tls_ca, tls_ca)

/* CIDR lists: checked here, so a typo stops start-up with the flag's name. */
static int
add_cidr(const char **list, size_t *n, const char *v, char *why, size_t why_len)
{
	dsi_cidr c;
	if (dsi_cidr_parse(v, &c, why, why_len) != 0) {
		return DSC_EINVAL;
	}
	if (*n == DSI_NETPOLICY_MAX) {
		snprintf(why, why_len, "takes at most %d ranges", DSI_NETPOLICY_MAX);
		return DSC_EINVAL;
	}
	list[(*n)++] = v;
	return 0;
}

static int
set_allow_endpoint(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	return add_cidr(o->allow_endpoint, &o->n_allow_endpoint, v, why, why_len);
}

static int
set_deny_endpoint(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	return add_cidr(o->deny_endpoint, &o->n_deny_endpoint, v, why, why_len);
}

static int
set_auth_reads(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0) {
		o->auth_reads = true;
	} else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0) {
		o->auth_reads = false;
	} else {
		snprintf(why, why_len, "expects true or false, not \"%s\"", v);
		return DSC_EINVAL;
	}
	return 0;
}

/* "off", or an http:// or https:// URL (nng checks the rest when it binds). */
static int
set_admin(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (strcmp(v, "off") == 0) {
		o->admin = NULL;
	} else if (strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0) {
		o->admin = v;
	} else {
		snprintf(why, why_len,
		    "expects http://HOST:PORT, https://HOST:PORT or off, not \"%s\"", v);
		return DSC_EINVAL;
	}
	return 0;
}

/*
 * etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS): the members' client
 * URLs; one scheme, written once, for them all.
 */
static int
set_cluster(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (strcmp(v, "off") == 0) {
		o->cluster = NULL;
		return 0;
	}
	size_t      skip = strncmp(v, "etcds://", 8) == 0 ? 8 : 7;
	const char *p    = v + skip;
	if ((skip == 7 && strncmp(v, "etcd://", 7) != 0) || *p == 0) {
		snprintf(why, why_len,
		    "expects etcd://HOST:PORT[,HOST:PORT...], etcds://... (TLS) or off, not \"%s\"",
		    v);
		return DSC_EINVAL;
	}
	if (strstr(p, "://") != NULL) {
		snprintf(why, why_len,
		    "takes one scheme for all members, written once (%.*sHOST:PORT,HOST:PORT): "
		    "mixing etcd:// and etcds:// is not possible, not \"%s\"",
		    (int) skip, v, v);
		return DSC_EINVAL;
	}
	for (size_t n = 0; *p != 0; n++) {
		size_t      len   = strcspn(p, ",");
		const char *colon = memchr(p, ':', len);
		if (n == 16 || len == 0 || colon == NULL || colon == p || colon + 1 == p + len
		    || strspn(colon + 1, "0123456789") != (size_t) (p + len - colon - 1)
		    || memchr(p, '/', len) != NULL) {
			snprintf(why, why_len,
			    "expects etcd://HOST:PORT[,HOST:PORT...] (at most 16 members), not "
			    "\"%s\"",
			    v);
			return DSC_EINVAL;
		}
		p += len + (p[len] == ',');
	}
	o->cluster = v;
	return 0;
}

static int
set_node_name(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	size_t n = strlen(v);
	if (n == 0 || n > 63
	    || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
	        != n) {
		snprintf(why, why_len,
		    "expects 1 to 63 letters, digits, '.', '_' or '-', not \"%s\"", v);
		return DSC_EINVAL;
	}
	o->node_name = v;
	return 0;
}

static int
set_cluster_prefix(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	size_t n = strlen(v);
	if (n < 2 || n > 200 || v[0] != '/' || v[n - 1] != '/' || !dsi_text_is_clean(v)) {
		snprintf(why, why_len,
		    "expects a key prefix that starts and ends with '/', not \"%s\"", v);
		return DSC_EINVAL;
	}
	o->cluster_prefix = v;
	return 0;
}

/* One scheme of the list; the profile's default applies when no source gives one. */
static int
set_endpoint_schemes(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	unsigned bit = dsi_endpoint_scheme_bit(v + strspn(v, " "));
	if (bit == 0) {
		snprintf(why, why_len, "expects http, https or tcp, not \"%s\"", v);
		return DSC_EINVAL;
	}
	o->endpoint_schemes |= bit;
	return 0;
}

STRING_SETTER(set_check_ca_file, check_ca_file)
STRING_SETTER(set_check_cert, check_cert)
STRING_SETTER(set_check_key, check_key)
STRING_SETTER(set_cluster_ca, cluster_ca)
STRING_SETTER(set_cluster_cert, cluster_cert)
STRING_SETTER(set_cluster_key, cluster_key)

/* "Name: value" items; the message names the header, never its value. */
static int
add_header(const char **list, size_t *n, const char *v, char *why, size_t why_len)
{
	size_t      name_len;
	const char *value;
	if (dsi_check_header_parse(v, &name_len, &value, why, why_len) != 0) {
		return DSC_EINVAL;
	}
	if (*n == DSI_MAX_CHECK_HEADERS) {
		snprintf(why, why_len, "takes at most %d headers", DSI_MAX_CHECK_HEADERS);
		return DSC_EINVAL;
	}
	list[(*n)++] = v;
	return 0;
}

static int
set_check_header(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	return add_header(o->check_header, &o->n_check_header, v, why, why_len);
}

static int
set_check_header_file(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	return add_header(o->check_header_file, &o->n_check_header_file, v, why, why_len);
}

static int
set_strict_config(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0) {
		o->strict_config = true;
	} else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0) {
		o->strict_config = false;
	} else {
		snprintf(why, why_len, "expects true or false, not \"%s\"", v);
		return DSC_EINVAL;
	}
	return 0;
}

static int
set_log_level(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (dsi_log_level_parse(v, &o->log_level) != 0) {
		snprintf(why, why_len, "expects error, warn, info or debug, not \"%s\"", v);
		return DSC_EINVAL;
	}
	return 0;
}

static int
set_log_format(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (dsi_log_format_parse(v, &o->log_format) != 0) {
		snprintf(why, why_len, "expects text or json, not \"%s\"", v);
		return DSC_EINVAL;
	}
	return 0;
}

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
	     set_listen },
	[DSI_SET_PUBLISH] = { { "publish", ENV("PUBLISH"), "publish", "URL", "tcp://127.0.0.1:7701",
	                          "PUB address for events", false, false },
	    set_publish },
	[DSI_SET_LOG_LEVEL] = { { "log-level", ENV("LOG_LEVEL"), "log_level", "LEVEL", "info",
	                            "error, warn, info or debug", false, false },
	    set_log_level },
	[DSI_SET_LOG_FORMAT]
	= { { "log-format", ENV("LOG_FORMAT"), "log_format", "FORMAT", "text",
	        "log lines as text, or json (one object a line)", false, false },
	    set_log_format },
	[DSI_SET_DATA]
	= { { "data", ENV("DATA"), "data", "PATH", "discovery.db",
	        "SQLite file for registrations; :memory: keeps nothing", false, false },
	    set_data },
	[DSI_SET_MAX_REQUEST]
	= { { "max-request-size", ENV("MAX_REQUEST_SIZE"), "max_request_size", "BYTES", "1048576",
	        "largest request; larger ones drop the connection", false, false },
	    set_max_request },
	[DSI_SET_MAX_INSTANCES] = { { "max-instances", ENV("MAX_INSTANCES"), "max_instances", "N",
	                                "1000000", "instances in total", false, false },
	    set_max_instances },
	[DSI_SET_MAX_PER_SERVICE]
	= { { "max-instances-per-service", ENV("MAX_INSTANCES_PER_SERVICE"),
	        "max_instances_per_service", "N", "65536", "instances of one service", false,
	        false },
	    set_max_per_service },
	[DSI_SET_WORKERS] = { { "workers", ENV("WORKERS"), "workers", "N", "64",
	                          "concurrent requests in the REP pool", false, false },
	    set_workers },
	[DSI_SET_HEALTH_INTERVAL]
	= { { "health-interval", ENV("HEALTH_CHECK_INTERVAL"), "health_check.interval", "SECONDS",
	        "30", "between checks of one instance; fractions allowed", false, false },
	    set_health_interval },
	[DSI_SET_HEALTH_TIMEOUT]
	= { { "health-timeout", ENV("HEALTH_CHECK_TIMEOUT"), "health_check.timeout", "SECONDS", "5",
	        "per check", false, false },
	    set_health_timeout },
	[DSI_SET_RISE] = { { "rise", ENV("HEALTH_CHECK_RISE"), "health_check.rise", "N", "2",
	                       "passes in a row to become healthy", false, false },
	    set_rise },
	[DSI_SET_FALL] = { { "fall", ENV("HEALTH_CHECK_FALL"), "health_check.fall", "N", "2",
	                       "failures in a row to become unhealthy", false, false },
	    set_fall },
	[DSI_SET_MAX_CHECKS]
	= { { "max-checks", ENV("HEALTH_CHECK_MAX_CHECKS"), "health_check.max_checks", "N", "256",
	        "health checks in flight at once", false, false },
	    set_max_checks },
	[DSI_SET_DEREGISTER_AFTER]
	= { { "deregister-after", ENV("DEREGISTER_AFTER"), "health_check.deregister_after",
	        "SECONDS", "0", "remove instances unhealthy this long (0: never)", false, false },
	    set_deregister_after },
	[DSI_SET_PROTECTION_THRESHOLD]
	= { { "protection-threshold", ENV("PROTECTION_THRESHOLD"),
	        "health_check.protection_threshold", "SHARE", "0",
	        "below this healthy share of a service, Resolve picks among all its instances "
	        "(0: off)",
	        false, false },
	    set_protection_threshold },
	[DSI_SET_SYNC_INTERVAL]
	= { { "sync-interval", ENV("SYNC_INTERVAL"), "events.sync_interval", "SECONDS", "5",
	        "between SYNC events carrying the revision", false, false },
	    set_sync_interval },
	[DSI_SET_EVENT_BUFFER]
	= { { "event-buffer", ENV("EVENT_BUFFER"), "events.buffer", "N", "1024",
	        "events queued per subscriber before nng drops them", false, false },
	    set_event_buffer },
	[DSI_SET_ENV_PREFIX]
	= { { "env-prefix", ENV("ENV_PREFIX"), "env_prefix", "PREFIX",
	        DSI_DEFAULT_ENV_PREFIX " (by profile)",
	        "variables PREFIX<NAME>=URL register services at start", false, false },
	    set_env_prefix, true },
	[DSI_SET_TOKEN_FILE] = { { "token-file", ENV("TOKEN_FILE"), "token_file", "FILE", "none",
	                             "file holding the auth token", false, false },
	    set_token_file },
	[DSI_SET_TOKEN]      = { { NULL, ENV("API_KEY"), NULL, "TOKEN", "none",
	                             "the auth token itself (environment only)", false, true },
	         set_token },
	[DSI_SET_AUTH_READS]
	= { { "auth-reads", ENV("AUTH_READS"), "auth_reads", "", "false",
	        "reads need the auth token too (writes always do, once one is set)", false, false,
	        true },
	    set_auth_reads },
	[DSI_SET_TLS_CERT] = { { "tls-cert", ENV("TLS_CERT"), "tls.cert", "FILE", "none",
	                           "PEM certificate for tls+tcp:// URLs", false, false },
	    set_tls_cert },
	[DSI_SET_TLS_KEY]  = { { "tls-key", ENV("TLS_KEY"), "tls.key", "FILE", "none",
	                           "PEM private key of --tls-cert, unencrypted", false, false },
	     set_tls_key },
	[DSI_SET_TLS_CA]
	= { { "tls-ca", ENV("TLS_CA"), "tls.ca", "FILE", "none",
	        "PEM CAs; clients must present a certificate one of them signed", false, false },
	    set_tls_ca },
	[DSI_SET_ALLOW_ENDPOINT]
	= { { "allow-endpoint", ENV("ALLOW_ENDPOINT"), "allow_endpoint", "CIDR", "none",
	        "endpoints may only use addresses in these ranges; repeatable", true, false,
	        false },
	    set_allow_endpoint },
	[DSI_SET_DENY_ENDPOINT]
	= { { "deny-endpoint", ENV("DENY_ENDPOINT"), "deny_endpoint", "CIDR",
	        DSI_NETPOLICY_DENY_V4 "," DSI_NETPOLICY_DENY_V6 " (always)",
	        "endpoints may not use addresses in these ranges; repeatable", true, false, false },
	    set_deny_endpoint, true },
	[DSI_SET_REQUIRE]
	= { { "require", ENV("REQUIRE"), "required", "NAME,...", "none",
	        "services that must be registered once loading is done", true, false },
	    set_require },
	[DSI_SET_READY_FD]
	= { { "ready-fd", ENV("READY_FD"), NULL, "FD", "none",
	        "once serving, write the bound URLs and \"ready\" to FD, then close it", false,
	        false },
	    set_ready_fd },
	[DSI_SET_STRICT_CONFIG]
	= { { "strict-config", ENV("STRICT_CONFIG"), "strict_config", "", "false",
	        "unknown keys and variables and bad service values stop start-up instead of "
	        "warning",
	        false, false, true },
	    set_strict_config },
	[DSI_SET_MAX_CONNECTIONS]
	= { { "max-connections", ENV("MAX_CONNECTIONS"), "max_connections", "N", "1024",
	        "connections per listening socket (REQ/REP and PUB each); more are closed", false,
	        false },
	    set_max_connections },
	[DSI_SET_IDLE_TIMEOUT]
	= { { "idle-timeout", ENV("IDLE_TIMEOUT"), "idle_timeout", "SECONDS", "60",
	        "close a REQ/REP connection with no complete request for this long", false, false },
	    set_idle_timeout },
	[DSI_SET_REPLY_TIMEOUT]
	= { { "reply-timeout", ENV("REPLY_TIMEOUT"), "reply_timeout", "SECONDS", "10",
	        "close a connection that does not take its reply within this", false, false },
	    set_reply_timeout },
	[DSI_SET_MAX_CONN_REQUESTS]
	= { { "max-connection-requests", ENV("MAX_CONNECTION_REQUESTS"), "max_connection_requests",
	        "N", "32",
	        "requests one connection may have in the pool (at most half of --workers); "
	        "one more closes it",
	        false, false },
	    set_max_conn_requests },
	[DSI_SET_MAX_REQUEST_MEMORY]
	= { { "max-request-memory", ENV("MAX_REQUEST_MEMORY"), "max_request_memory", "BYTES",
	        "1073741824",
	        "budget for partly received requests: --max-connections x --max-request-size "
	        "must fit",
	        false, false },
	    set_max_request_memory },
	[DSI_SET_MIN_REVISION_WAIT]
	= { { "min-revision-wait", ENV("MIN_REVISION_WAIT"), "min_revision_wait", "SECONDS", "1",
	        "how long a request waits for the registry to reach its min_revision before "
	        "UNAVAILABLE (0: none waits; at most half of --workers wait)",
	        false, false },
	    set_min_revision_wait },
	[DSI_SET_ADMIN] = { { "admin", ENV("ADMIN"), "admin", "URL", "http://127.0.0.1:7702",
	                        "HTTP admin endpoint (probes, catalog, metrics); https:// serves "
	                        "with --tls-cert and --tls-key; off",
	                        false, false },
	    set_admin },
	[DSI_SET_ENDPOINT_SCHEMES]
	= { { "endpoint-schemes", ENV("ENDPOINT_SCHEMES"), "endpoint_schemes", "SCHEME,...",
	        "http,https,tcp (production: https)",
	        "schemes registered endpoints may use: http, https, tcp", true, false },
	    set_endpoint_schemes, true },
	[DSI_SET_CHECK_CA_FILE]
	= { { "check-ca-file", ENV("HEALTH_CHECK_CA_FILE"), "health_check.ca_file", "FILE", "none",
	        "PEM CAs that https:// health checks trust instead of the system bundle", false,
	        false },
	    set_check_ca_file },
	[DSI_SET_CHECK_CERT]
	= { { "check-cert", ENV("HEALTH_CHECK_CERT"), "health_check.cert", "FILE", "none",
	        "PEM client certificate health checks present (services with mutual TLS)", false,
	        false },
	    set_check_cert },
	[DSI_SET_CHECK_KEY]
	= { { "check-key", ENV("HEALTH_CHECK_KEY"), "health_check.key", "FILE", "none",
	        "PEM private key of --check-cert, unencrypted; group and others must not read it",
	        false, false },
	    set_check_key },
	[DSI_SET_CHECK_HEADER]
	= { { "check-header", ENV("HEALTH_CHECK_HEADERS"), "health_check.headers", "NAME:VALUE",
	        "none", "a header HTTP(S) health checks send (values never shown); repeatable",
	        true, true, false, true },
	    set_check_header },
	[DSI_SET_CHECK_HEADER_FILE]
	= { { "check-header-file", ENV("HEALTH_CHECK_HEADER_FILES"), "health_check.header_files",
	        "NAME:FILE", "none",
	        "a header health checks send, its value the file's (group and others must not "
	        "read it); repeatable",
	        true, false, false, true },
	    set_check_header_file },
	[DSI_SET_CLUSTER]
	= { { "cluster", ENV("CLUSTER"), "cluster", "URL", "off",
	        "cluster mode: the etcd members, etcd://HOST:PORT[,HOST:PORT...] (etcds:// for "
	        "TLS; docs/cluster.md)",
	        false, false },
	    set_cluster },
	[DSI_SET_NODE_NAME]
	= { { "node-name", ENV("NODE_NAME"), "node_name", "NAME", "none",
	        "this node's name in the cluster, unique among its nodes (none: the host name)",
	        false, false },
	    set_node_name },
	[DSI_SET_CLUSTER_PREFIX]
	= { { "cluster-prefix", ENV("CLUSTER_PREFIX"), "cluster_prefix", "PREFIX", "/discovery/v1/",
	        "the etcd key prefix of the cluster's registry", false, false },
	    set_cluster_prefix },
	[DSI_SET_CLUSTER_CA]
	= { { "cluster-ca", ENV("CLUSTER_CA"), "cluster_ca", "FILE", "none",
	        "PEM CAs that etcds:// members' certificates must be signed by instead of the "
	        "system bundle",
	        false, false },
	    set_cluster_ca },
	[DSI_SET_CLUSTER_CERT]
	= { { "cluster-cert", ENV("CLUSTER_CERT"), "cluster_cert", "FILE", "none",
	        "PEM client certificate for etcds:// members (etcd's --client-cert-auth)", false,
	        false },
	    set_cluster_cert },
	[DSI_SET_CLUSTER_KEY]
	= { { "cluster-key", ENV("CLUSTER_KEY"), "cluster_key", "FILE", "none",
	        "PEM private key of --cluster-cert, unencrypted; group and others must not read it",
	        false, false },
	    set_cluster_key },
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
