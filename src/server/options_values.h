/*
 * The settings' value parsers, one per setting (options.c's table names
 * them): each checks a value, stores it in the options, or says why not.
 * Files are read and URLs resolved where they are used, not here.
 */
#ifndef DSI_OPTIONS_VALUES_H
#define DSI_OPTIONS_VALUES_H

#include <stddef.h>

#include "server/options.h"

int dsi_opt_set_admin(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_allow_endpoint(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_auth_reads(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_check_ca_file(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_check_cert(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_check_header(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_check_header_file(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_check_key(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_cluster(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_cluster_ca(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_cluster_cert(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_cluster_key(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_cluster_timeout(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_cluster_prefix(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_data(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_deny_endpoint(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_deregister_after(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_endpoint_schemes(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_env_prefix(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_event_buffer(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_fall(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_health_interval(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_health_timeout(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_idle_timeout(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_listen(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_log_format(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_log_level(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_max_checks(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_max_conn_requests(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_max_connections(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_max_instances(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_max_per_service(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_max_request(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_max_request_memory(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_min_revision_wait(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_node_name(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_protection_threshold(
    dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_publish(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_ready_fd(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_reply_timeout(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_require(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_rise(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_strict_config(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_sync_interval(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_tls_ca(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_tls_cert(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_tls_key(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_token(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_token_file(dsi_server_options *o, const char *v, char *why, size_t why_len);
int dsi_opt_set_workers(dsi_server_options *o, const char *v, char *why, size_t why_len);

#endif
