/* The settings' value parsers (options_values.h). */
#include "server/options_values.h"

#include <discovery/discovery.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/text.h"
#include "server/checkhttp.h"
#include "server/endpoint.h"

#define UINT_SETTER(fn, field, type, lo, hi)                                          \
	int fn(dsi_server_options *o, const char *v, char *why, size_t why_len)       \
	{                                                                             \
		uint64_t n;                                                           \
		if (dsi_parse_uint(v, (lo), (hi), &n) != 0) {                         \
			snprintf(why, why_len,                                        \
			    "expects a whole number from %llu to %llu, not \"%s\"",   \
			    (unsigned long long) (lo), (unsigned long long) (hi), v); \
			return DSC_EINVAL;                                            \
		}                                                                     \
		o->field = (type) n;                                                  \
		return 0;                                                             \
	}

UINT_SETTER(dsi_opt_set_max_request, max_request, size_t, 64, 256u * 1024 * 1024)
UINT_SETTER(dsi_opt_set_workers, workers, size_t, 1, 4096)
UINT_SETTER(dsi_opt_set_max_instances, limits.max_instances, uint32_t, 1, 100000000)
UINT_SETTER(dsi_opt_set_max_per_service, limits.max_instances_per_service, uint32_t, 1, 100000000)
UINT_SETTER(dsi_opt_set_rise, rise, int, 1, 100)
UINT_SETTER(dsi_opt_set_fall, fall, int, 1, 100)
UINT_SETTER(dsi_opt_set_max_checks, max_checks, int, 1, 65536)
UINT_SETTER(dsi_opt_set_event_buffer, event_buffer, int, 1, 1000000)
UINT_SETTER(dsi_opt_set_ready_fd, ready_fd, int, 0, 65535)
UINT_SETTER(dsi_opt_set_max_connections, max_connections, size_t, 1, 65536)
UINT_SETTER(dsi_opt_set_max_conn_requests, max_conn_requests, size_t, 1, 4096)
UINT_SETTER(dsi_opt_set_max_request_memory, max_request_memory, size_t, 65536, UINT64_C(1) << 40)

#define SECONDS_SETTER(fn, field, lo, hi)                                                   \
	int fn(dsi_server_options *o, const char *v, char *why, size_t why_len)             \
	{                                                                                   \
		if (dsi_parse_seconds(v, (lo), (hi), &o->field) != 0) {                     \
			snprintf(why, why_len, "expects seconds from %g to %g, not \"%s\"", \
			    (double) (lo), (double) (hi), v);                               \
			return DSC_EINVAL;                                                  \
		}                                                                           \
		return 0;                                                                   \
	}

SECONDS_SETTER(dsi_opt_set_health_interval, health_interval_ms, 0.01, 86400)
SECONDS_SETTER(dsi_opt_set_health_timeout, health_timeout_ms, 0.01, 3600)
SECONDS_SETTER(dsi_opt_set_deregister_after, deregister_after_ms, 0, 2000000)
SECONDS_SETTER(dsi_opt_set_sync_interval, sync_interval_ms, 0.01, 3600)
SECONDS_SETTER(dsi_opt_set_idle_timeout, idle_timeout_ms, 0.1, 86400)
SECONDS_SETTER(dsi_opt_set_reply_timeout, reply_timeout_ms, 0.01, 3600)
SECONDS_SETTER(dsi_opt_set_min_revision_wait, min_revision_wait_ms, 0, 60)
SECONDS_SETTER(dsi_opt_set_cluster_timeout, cluster_timeout_ms, 0.5, 60)

/* A share from 0 to 1, written as a decimal ("0.5") or a percentage ("50%"). */
int
dsi_opt_set_protection_threshold(dsi_server_options *o, const char *v, char *why, size_t why_len)
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

int
dsi_opt_set_listen(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (o->n_listen == DSI_MAX_LISTEN) {
		snprintf(why, why_len, "takes at most %d addresses", DSI_MAX_LISTEN);
		return DSC_EINVAL;
	}
	o->listen[o->n_listen++] = v;
	return 0;
}

int
dsi_opt_set_require(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (o->n_require == DSI_MAX_REQUIRE) {
		snprintf(why, why_len, "takes at most %d services", DSI_MAX_REQUIRE);
		return DSC_EINVAL;
	}
	o->require[o->n_require++] = v;
	return 0;
}

/* Plain strings: checked where they are used (URLs by nng, paths by open). */
#define STRING_SETTER(fn, field)                                                \
	int fn(dsi_server_options *o, const char *v, char *why, size_t why_len) \
	{                                                                       \
		(void) why;                                                     \
		(void) why_len;                                                 \
		o->field = v;                                                   \
		return 0;                                                       \
	}

STRING_SETTER(dsi_opt_set_publish, publish)
STRING_SETTER(dsi_opt_set_data, data)
STRING_SETTER(dsi_opt_set_env_prefix, env_prefix)
STRING_SETTER(dsi_opt_set_token_file, token_file)
STRING_SETTER(dsi_opt_set_token, token)
STRING_SETTER(dsi_opt_set_tls_cert, tls_cert)
STRING_SETTER(dsi_opt_set_tls_key, tls_key)
STRING_SETTER(dsi_opt_set_tls_ca, tls_ca)

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

int
dsi_opt_set_allow_endpoint(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	return add_cidr(o->allow_endpoint, &o->n_allow_endpoint, v, why, why_len);
}

int
dsi_opt_set_deny_endpoint(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	return add_cidr(o->deny_endpoint, &o->n_deny_endpoint, v, why, why_len);
}

int
dsi_opt_set_auth_reads(dsi_server_options *o, const char *v, char *why, size_t why_len)
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
int
dsi_opt_set_admin(dsi_server_options *o, const char *v, char *why, size_t why_len)
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
int
dsi_opt_set_cluster(dsi_server_options *o, const char *v, char *why, size_t why_len)
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

int
dsi_opt_set_node_name(dsi_server_options *o, const char *v, char *why, size_t why_len)
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

int
dsi_opt_set_cluster_prefix(dsi_server_options *o, const char *v, char *why, size_t why_len)
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
int
dsi_opt_set_endpoint_schemes(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	unsigned bit = dsi_endpoint_scheme_bit(v + strspn(v, " "));
	if (bit == 0) {
		snprintf(why, why_len, "expects http, https or tcp, not \"%s\"", v);
		return DSC_EINVAL;
	}
	o->endpoint_schemes |= bit;
	return 0;
}

STRING_SETTER(dsi_opt_set_check_ca_file, check_ca_file)
STRING_SETTER(dsi_opt_set_check_cert, check_cert)
STRING_SETTER(dsi_opt_set_check_key, check_key)
STRING_SETTER(dsi_opt_set_cluster_ca, cluster_ca)
STRING_SETTER(dsi_opt_set_cluster_cert, cluster_cert)
STRING_SETTER(dsi_opt_set_cluster_key, cluster_key)

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

int
dsi_opt_set_check_header(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	return add_header(o->check_header, &o->n_check_header, v, why, why_len);
}

int
dsi_opt_set_check_header_file(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	return add_header(o->check_header_file, &o->n_check_header_file, v, why, why_len);
}

int
dsi_opt_set_strict_config(dsi_server_options *o, const char *v, char *why, size_t why_len)
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

int
dsi_opt_set_log_level(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (dsi_log_level_parse(v, &o->log_level) != 0) {
		snprintf(why, why_len, "expects error, warn, info or debug, not \"%s\"", v);
		return DSC_EINVAL;
	}
	return 0;
}

int
dsi_opt_set_log_format(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (dsi_log_format_parse(v, &o->log_format) != 0) {
		snprintf(why, why_len, "expects text or json, not \"%s\"", v);
		return DSC_EINVAL;
	}
	return 0;
}
