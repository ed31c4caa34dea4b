/*
 * discoveryd's settings: one table gives each setting its flag, its
 * SERVICE_DISCOVERY_* variable and its YAML key, and every value remembers
 * where it came from (for --print-config).
 */
#ifndef DSI_OPTIONS_H
#define DSI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/log.h"
#include "server/netpolicy.h"
#include "server/registry.h"

#define DSI_MAX_LISTEN        16
#define DSI_MAX_REQUIRE       64
#define DSI_MAX_CHECK_HEADERS 32   /* headers health checks send, from text and from files */
#define DSI_OPTIONS_EXIT      1000 /* --help or --version was handled */
#define DSI_DRAIN_MS          5000 /* shutdown grace for in-flight requests (not a setting) */

/* The development profile's PREFIX<NAME>=URL prefix, as the table shows it. */
#define DSI_DEFAULT_ENV_PREFIX "SERVICE_"

typedef enum dsi_source {
	DSI_SRC_DEFAULT = 0,
	DSI_SRC_FILE,
	DSI_SRC_ENV,
	DSI_SRC_FLAG,
} dsi_source;

/* The settings, in table order; DSI_SET_COUNT last. */
typedef enum dsi_setting {
	DSI_SET_LISTEN,
	DSI_SET_PUBLISH,
	DSI_SET_LOG_LEVEL,
	DSI_SET_LOG_FORMAT,
	DSI_SET_DATA,
	DSI_SET_MAX_REQUEST,
	DSI_SET_MAX_INSTANCES,
	DSI_SET_MAX_PER_SERVICE,
	DSI_SET_WORKERS,
	DSI_SET_HEALTH_INTERVAL,
	DSI_SET_HEALTH_TIMEOUT,
	DSI_SET_RISE,
	DSI_SET_FALL,
	DSI_SET_MAX_CHECKS,
	DSI_SET_DEREGISTER_AFTER,
	DSI_SET_PROTECTION_THRESHOLD,
	DSI_SET_SYNC_INTERVAL,
	DSI_SET_EVENT_BUFFER,
	DSI_SET_ENV_PREFIX,
	DSI_SET_TOKEN_FILE,
	DSI_SET_TOKEN,
	DSI_SET_AUTH_READS,
	DSI_SET_TLS_CERT,
	DSI_SET_TLS_KEY,
	DSI_SET_TLS_CA,
	DSI_SET_ALLOW_ENDPOINT,
	DSI_SET_DENY_ENDPOINT,
	DSI_SET_REQUIRE,
	DSI_SET_READY_FD,
	DSI_SET_STRICT_CONFIG,
	DSI_SET_MAX_CONNECTIONS,
	DSI_SET_IDLE_TIMEOUT,
	DSI_SET_REPLY_TIMEOUT,
	DSI_SET_MAX_CONN_REQUESTS,
	DSI_SET_MAX_REQUEST_MEMORY,
	DSI_SET_MIN_REVISION_WAIT,
	DSI_SET_ADMIN,
	DSI_SET_ENDPOINT_SCHEMES,
	DSI_SET_CHECK_CA_FILE,
	DSI_SET_CHECK_CERT,
	DSI_SET_CHECK_KEY,
	DSI_SET_CHECK_HEADER,
	DSI_SET_CHECK_HEADER_FILE,
	DSI_SET_CLUSTER,
	DSI_SET_NODE_NAME,
	DSI_SET_CLUSTER_PREFIX,
	DSI_SET_CLUSTER_TIMEOUT,
	DSI_SET_CLUSTER_CA,
	DSI_SET_CLUSTER_CERT,
	DSI_SET_CLUSTER_KEY,
	DSI_SET_COUNT,
} dsi_setting;

typedef struct dsi_server_options {
	const char         *listen[DSI_MAX_LISTEN];
	size_t              n_listen;
	const char         *publish;
	dsi_log_level       log_level;
	dsi_log_format      log_format;
	const char         *data;        /* the SQLite file; ":memory:" keeps nothing */
	size_t              max_request; /* bytes */
	size_t              workers;     /* REP contexts */
	int                 drain_ms;    /* shutdown grace for in-flight requests */
	dsi_registry_limits limits;
	/* health checks */
	int    health_interval_ms;
	int    health_timeout_ms;
	int    rise;
	int    fall;
	int    max_checks;           /* in flight at once */
	int    deregister_after_ms;  /* 0: never */
	double protection_threshold; /* 0 to 1; 0: off (dsi_registry_set_protection) */
	/* events */
	int sync_interval_ms;
	int event_buffer; /* per subscriber, messages */
	/* configuration */
	const char *env_prefix; /* NULL: the profile's default */
	const char *token_file;
	const char *token;      /* from the token file or SERVICE_DISCOVERY_API_KEY */
	bool        auth_reads; /* reads need the token too */
	const char *tls_cert;   /* PEM, for tls+tcp:// URLs; NULL: none */
	const char *tls_key;    /* PEM, unencrypted */
	const char *tls_ca;     /* PEM; set: clients need a certificate it signed */
	const char *allow_endpoint[DSI_NETPOLICY_MAX]; /* CIDR ranges */
	size_t      n_allow_endpoint;
	const char *deny_endpoint[DSI_NETPOLICY_MAX];
	size_t      n_deny_endpoint;
	const char *require[DSI_MAX_REQUIRE];
	size_t      n_require;
	bool        require_https; /* the production profile */
	int         ready_fd;      /* -1: none; else gets the bound URLs (docs/ready-fd.md) */
	bool        strict_config; /* configuration warnings stop start-up */
	/* connection limits (docs/limits.md) */
	size_t max_connections;    /* per listening socket */
	int    idle_timeout_ms;    /* a REP connection with no complete message this long closes */
	int    reply_timeout_ms;   /* a reply not taken this long closes its connection */
	size_t max_conn_requests;  /* requests of one connection in the pool; one more closes it */
	size_t max_request_memory; /* bytes: max_connections x max_request must fit */
	const char *admin;         /* the HTTP admin endpoint's URL; NULL: off */
	/* DSI_SCHEME_* bits (server/endpoint.h) endpoints may use; 0 until the profile decides */
	unsigned endpoint_schemes;
	/* what HTTP(S) health checks trust, present and send (server/checkhttp.h) */
	const char *check_ca_file; /* PEM CAs instead of the system bundle; NULL: system */
	const char *check_cert;    /* PEM client certificate; NULL: none */
	const char *check_key;     /* its key, a file group and others cannot read */
	const char *check_header[DSI_MAX_CHECK_HEADERS]; /* "Name: value" */
	size_t      n_check_header;
	const char *check_header_file[DSI_MAX_CHECK_HEADERS]; /* "Name: path" */
	size_t      n_check_header_file;
	/* cluster mode (docs/cluster.md) */
	const char *cluster;            /* "etcd[s]://HOST:PORT,HOST:PORT"; NULL: single node */
	const char *node_name;          /* NULL: the host name */
	const char *cluster_prefix;     /* etcd key prefix, "/.../" */
	int         cluster_timeout_ms; /* one etcd call's bound */
	/* TLS to etcd, etcds:// only (cluster_node.h checks them together) */
	const char *cluster_ca;   /* PEM CAs that sign etcd's certificate; NULL: the system's */
	const char *cluster_cert; /* PEM client certificate; NULL: none */
	const char *cluster_key;  /* its key, a file group and others cannot read */

	/* How long a request behind its min_revision waits (server/revwait.h). */
	int min_revision_wait_ms;

	/* Where each setting's value came from, and its text as given. */
	dsi_source  source[DSI_SET_COUNT];
	char        origin[DSI_SET_COUNT][160]; /* "flag --rise", "file x.yaml:4", ... */
	const char *text[DSI_SET_COUNT];        /* the value as written; NULL: the default */
} dsi_server_options;

/* The table, for the config loader and --help. */
typedef struct dsi_setting_info {
	const char *flag; /* without "--"; NULL when there is none */
	const char *env;  /* NULL when there is none */
	const char *yaml; /* dotted path; NULL when there is none */
	const char *arg;
	const char *dflt; /* the default: the value's text, "none", or a description */
	const char *help;
	bool        list;   /* repeatable; a comma list in the environment */
	bool        secret; /* shown as "(set)" */
	bool        toggle; /* a flag without a value; true/false elsewhere */
	/*
	 * A list of "NAME: VALUE" items: a mapping in YAML, one item per flag,
	 * items on separate lines in the environment (values may hold commas).
	 */
	bool map;
} dsi_setting_info;

const dsi_setting_info *dsi_setting_get(dsi_setting s);

/*
 * Every setting at its default, from the table's text (the one place
 * defaults are written); sources all DSI_SRC_DEFAULT.
 */
void dsi_options_default(dsi_server_options *o);

/*
 * Sets one setting from text (value must outlive o). For a list setting,
 * the first value from a source replaces what lower sources gave. Records
 * source and origin. Returns 0 or DSC_EINVAL with the reason in why.
 */
int dsi_options_set(dsi_server_options *o, dsi_setting s, const char *value, dsi_source src,
    const char *origin, char *why, size_t why_len);

/* Writes --help for discoveryd to out. */
void dsi_options_usage(FILE *out);

#endif
