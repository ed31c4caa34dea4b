/*
 * libdiscovery: the C client for discoveryd.
 *
 * Every call is synchronous, bounded by the client's timeout, and safe to
 * make from several threads on one client (each call uses its own nng REQ
 * context). Results are deep copies owned by the caller and released with
 * the matching *_free function.
 */
#ifndef DISCOVERY_DISCOVERY_H
#define DISCOVERY_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One error space for the whole library. 0 is success. Server status codes
 * map onto it one to one; transport failures have codes of their own.
 * X(name, value, message) so the enum and dsc_strerror come from one table.
 */
#define DSC_ERRORS(X)                                           \
	X(DSC_OK, 0, "success")                                 \
	X(DSC_EINVAL, 1, "invalid argument")                    \
	X(DSC_ENOTFOUND, 2, "not found")                        \
	X(DSC_EUNAVAILABLE, 3, "no healthy instance available") \
	X(DSC_EPERM, 4, "permission denied")                    \
	X(DSC_EAUTH, 5, "unauthenticated")                      \
	X(DSC_ELIMIT, 6, "resource limit exceeded")             \
	X(DSC_ESTATE, 7, "failed precondition")                 \
	X(DSC_ENOTSUP, 8, "not supported")                      \
	X(DSC_EINTERNAL, 9, "internal server error")            \
	X(DSC_ETIMEDOUT, 10, "timed out")                       \
	X(DSC_ECONNREFUSED, 11, "connection refused")           \
	X(DSC_ENOMEM, 12, "out of memory")                      \
	X(DSC_EPROTO, 13, "malformed message")                  \
	X(DSC_ETRANSPORT, 14, "transport error")                \
	X(DSC_ECLOSED, 15, "closed")

typedef enum dsc_err {
#define DSC_ERR_ENUM(name, value, msg) name = value,
	DSC_ERRORS(DSC_ERR_ENUM)
#undef DSC_ERR_ENUM
} dsc_err;

/* A static, human-readable text for any value (unknown ones included). */
const char *dsc_strerror(int err);

/* The detail of a failed call: its code and the server's message, if any. */
typedef struct dsc_error {
	int  code;
	char message[512];
} dsc_error;

typedef enum dsc_health {
	DSC_HEALTH_UNKNOWN   = 0,
	DSC_HEALTH_HEALTHY   = 1,
	DSC_HEALTH_UNHEALTHY = 2,
} dsc_health;

const char *dsc_health_name(dsc_health h); /* "unknown", "healthy", ... */

typedef struct dsc_kv {
	const char *key;
	const char *value;
} dsc_kv;

/* A copy of one registered instance. Strings are never NULL. */
typedef struct dsc_instance {
	char      *service;
	char      *endpoint;
	dsc_health health;
	dsc_kv    *metadata; /* sorted by key */
	size_t     n_metadata;
	char      *health_path;
	uint32_t   ttl_ms;
	uint32_t   weight;
	int64_t    registered_at_ms; /* Unix ms */
	int64_t    last_check_ms;    /* Unix ms, 0 = never */
	char      *last_error;
} dsc_instance;

/* Frees an instance returned by this library; NULL is a no-op. */
void dsc_instance_free(dsc_instance *inst);

/* A list of instances, sorted by (service, endpoint). */
typedef struct dsc_instance_list {
	dsc_instance *items;
	size_t        count;
	uint64_t      revision; /* the registry revision the list reflects */
} dsc_instance_list;

void dsc_instance_list_free(dsc_instance_list *list);

/* What to register. Only service and endpoint are required. */
typedef struct dsc_registration {
	const char   *service;
	const char   *endpoint;
	const dsc_kv *metadata;
	size_t        n_metadata;
	const char   *health_path; /* NULL or "": server default "/health" */
	uint32_t      ttl_ms;      /* 0: polled by the server's checker */
	uint32_t      weight;      /* stored as given; resolve counts 0 as 1 */
} dsc_registration;

typedef struct dsc_client dsc_client;

typedef struct dsc_client_options {
	int32_t     timeout_ms; /* per call; <= 0 means 5000 */
	const char *auth_token; /* copied; NULL for none */
	/*
	 * When true, dsc_client_open fails unless it connects within timeout_ms:
	 * DSC_ECONNREFUSED when nothing listens, DSC_ETIMEDOUT when the server
	 * does not complete the handshake. For tools that run one call and
	 * exit. When false (the default), the client dials in the background.
	 */
	bool require_connection;
} dsc_client_options;

/* Fills opts with the defaults. */
void dsc_client_options_init(dsc_client_options *opts);

/*
 * Opens a client on url (for example "tcp://127.0.0.1:7700"). Unless
 * opts->require_connection is set, connecting happens in the background, so
 * opening succeeds while the server is down; calls then fail with
 * DSC_ECONNREFUSED (never connected) or DSC_ETIMEDOUT. A URL nng cannot
 * dial (unknown scheme, no port) is DSC_EINVAL. opts may be NULL.
 * On success *out owns a client that dsc_client_close releases.
 */
int  dsc_client_open(dsc_client **out, const char *url, const dsc_client_options *opts);
void dsc_client_close(dsc_client *c);

/*
 * The calls. Each returns 0 or a dsc_err; on failure the out-parameters are
 * untouched and, when err is not NULL, err holds the code and the server's
 * message. Out-parameters that are pointers to pointers may be NULL when the
 * caller does not want the result.
 */
int dsc_register(dsc_client *c, const dsc_registration *reg, dsc_instance **out, dsc_error *err);
int dsc_resolve(
    dsc_client *c, const char *service, bool healthy_only, dsc_instance **out, dsc_error *err);
/* endpoint NULL or "" removes every instance of the service. */
int dsc_deregister(
    dsc_client *c, const char *service, const char *endpoint, uint32_t *removed, dsc_error *err);
/* endpoint NULL or "": healthy when at least one instance is healthy. */
int dsc_is_healthy(dsc_client *c, const char *service, const char *endpoint, bool *healthy,
    dsc_health *state, dsc_error *err);
/* service NULL or "": every service. */
int dsc_get_all(dsc_client *c, const char *service, dsc_instance_list **out, dsc_error *err);
int dsc_heartbeat(
    dsc_client *c, const char *service, const char *endpoint, dsc_instance **out, dsc_error *err);

/* The revision carried by the last successful reply on this client. */
uint64_t dsc_client_revision(const dsc_client *c);

#ifdef __cplusplus
}
#endif

#endif /* DISCOVERY_DISCOVERY_H */
