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

#include <discovery/export.h>  /* DSC_API */
#include <discovery/version.h> /* generated: DSC_VERSION_*, dsc_version() */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One error space for the whole library. 0 is success. Server status codes
 * map onto it one to one; transport failures have codes of their own.
 * X(name, value, message) so the enum and dsc_strerror come from one table.
 */
#define DSC_ERRORS(X)                                 \
	X(DSC_OK, 0, "success")                       \
	X(DSC_EINVAL, 1, "invalid argument")          \
	X(DSC_ENOTFOUND, 2, "not found")              \
	X(DSC_EUNAVAILABLE, 3, "unavailable")         \
	X(DSC_EPERM, 4, "permission denied")          \
	X(DSC_EAUTH, 5, "unauthenticated")            \
	X(DSC_ELIMIT, 6, "resource limit exceeded")   \
	X(DSC_ESTATE, 7, "failed precondition")       \
	X(DSC_ENOTSUP, 8, "not supported")            \
	X(DSC_EINTERNAL, 9, "internal server error")  \
	X(DSC_ETIMEDOUT, 10, "timed out")             \
	X(DSC_ECONNREFUSED, 11, "connection refused") \
	X(DSC_ENOMEM, 12, "out of memory")            \
	X(DSC_EPROTO, 13, "malformed message")        \
	X(DSC_ETRANSPORT, 14, "transport error")      \
	X(DSC_ECLOSED, 15, "closed")                  \
	X(DSC_ETLS, 16, "TLS handshake failed")

typedef enum dsc_err {
#define DSC_ERR_ENUM(name, value, msg) name = value,
	DSC_ERRORS(DSC_ERR_ENUM)
#undef DSC_ERR_ENUM
} dsc_err;

/* A static, human-readable text for any value (unknown ones included). */
DSC_API const char *dsc_strerror(int err);

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

DSC_API const char *dsc_health_name(dsc_health h); /* "unknown", "healthy", ... */

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
DSC_API void dsc_instance_free(dsc_instance *inst);

/* A list of instances, sorted by (service, endpoint). */
typedef struct dsc_instance_list {
	dsc_instance *items;
	size_t        count;
	uint64_t      revision; /* the registry revision the list reflects */
} dsc_instance_list;

DSC_API void dsc_instance_list_free(dsc_instance_list *list);

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

/*
 * TLS, for tls+tcp:// URLs; other URLs ignore it. Paths to PEM files, read
 * when a client, watch or view opens (DSC_EINVAL when one cannot be used;
 * dsc_tls_check says why).
 */
typedef struct dsc_tls_options {
	/* The CAs that sign the server's certificate. Required for tls+tcp://. */
	const char *ca_file;
	/*
	 * A client certificate and its unencrypted key, for a server that
	 * requires one (discoveryd --tls-ca). Both or neither.
	 */
	const char *cert_file;
	const char *key_file;
	/*
	 * The name the server's certificate must carry. NULL: the URL's host.
	 * Debian's nng checks DNS names only (mbedTLS 2.28 skips IP addresses in
	 * subjectAltName), so a server dialed by IP address needs this set to a
	 * DNS name in its certificate.
	 */
	const char *server_name;
} dsc_tls_options;

/*
 * Reads and checks the files of tls as dsc_client_open would: readable
 * PEM, a key that matches its certificate, a CA file present. Returns 0,
 * or DSC_EINVAL with err (when not NULL) naming the file and the problem.
 */
DSC_API int dsc_tls_check(const dsc_tls_options *tls, dsc_error *err);

typedef struct dsc_client_options {
	int32_t     timeout_ms; /* per call; <= 0 means 5000 */
	const char *auth_token; /* copied; NULL for none */
	/*
	 * When true, dsc_client_open fails unless it connects within timeout_ms:
	 * DSC_ECONNREFUSED when nothing listens, DSC_ETIMEDOUT when the server
	 * does not complete the handshake. For tools that run one call and
	 * exit. When false (the default), the client dials in the background.
	 */
	bool            require_connection;
	dsc_tls_options tls; /* zeroed by dsc_client_options_init: no TLS */
} dsc_client_options;

/* Fills opts with the defaults. */
DSC_API void dsc_client_options_init(dsc_client_options *opts);

/*
 * Client failover. Wherever a function below takes a server URL (clients,
 * watches, views, waits), it also takes a comma-separated list of up to
 * DSC_MAX_SERVERS URLs, "tcp://127.0.0.1:7700,tcp://127.0.0.1:7710";
 * blanks around an entry are ignored, and every entry shares the TLS
 * options. A client's calls go to one server at a time, starting with the
 * first. A call moves on to the next server (in list order, wrapping
 * around, each tried at most once per call) when the current one cannot be
 * reached, does not answer within timeout_ms, or answers DSC_EUNAVAILABLE
 * (except Resolve, where that answer means no healthy instance), and the
 * client stays on the server that answered. Every call of this protocol is
 * idempotent (Register, Deregister, Heartbeat and the reads), so a call
 * that may already have run on a server that then failed is sent again to
 * the next one. timeout_ms bounds each attempt; a server with no
 * connection is skipped after a quick connect probe rather than waited on.
 * When every server fails, the error is the last one's code and its message
 * names each server tried and what went wrong there.
 */
#define DSC_MAX_SERVERS 8

/*
 * Checks a server list as the functions that take one read it: splits it
 * and asks nng whether each entry can be dialed. Returns 0 and, when count
 * is not NULL, the number of entries; or DSC_EINVAL with err naming the
 * bad entry (empty, blanks inside, no scheme://, too long, listed twice,
 * or too many entries). The opening functions only say DSC_EINVAL.
 */
DSC_API int dsc_url_list_check(const char *urls, size_t *count, dsc_error *err);

/*
 * Opens a client on url (for example "tcp://127.0.0.1:7700"). Unless
 * opts->require_connection is set, connecting happens in the background, so
 * opening succeeds while the server is down; calls then fail with
 * DSC_ECONNREFUSED (never connected) or DSC_ETIMEDOUT. A URL nng cannot
 * dial (unknown scheme, no port), or TLS options that cannot be used, are
 * DSC_EINVAL. With require_connection, a TLS handshake that fails (an
 * untrusted server, a client certificate the server refuses) is DSC_ETLS,
 * and a peer that speaks another protocol (a PUB port given as the server)
 * is DSC_EPROTO; in the background both look like a server that is down.
 * opts may be NULL.
 * On success *out owns a client that dsc_client_close releases.
 */
DSC_API int  dsc_client_open(dsc_client **out, const char *url, const dsc_client_options *opts);
DSC_API void dsc_client_close(dsc_client *c);

/*
 * The calls. Each returns 0 or a dsc_err; on failure the out-parameters are
 * untouched and, when err is not NULL, err holds the code and the server's
 * message. Out-parameters that are pointers to pointers may be NULL when the
 * caller does not want the result.
 */
DSC_API int dsc_register(
    dsc_client *c, const dsc_registration *reg, dsc_instance **out, dsc_error *err);
DSC_API int dsc_resolve(
    dsc_client *c, const char *service, bool healthy_only, dsc_instance **out, dsc_error *err);
/* endpoint NULL or "" removes every instance of the service. */
DSC_API int dsc_deregister(
    dsc_client *c, const char *service, const char *endpoint, uint32_t *removed, dsc_error *err);
/* endpoint NULL or "": healthy when at least one instance is healthy. */
DSC_API int dsc_is_healthy(dsc_client *c, const char *service, const char *endpoint, bool *healthy,
    dsc_health *state, dsc_error *err);
/* service NULL or "": every service. */
DSC_API int dsc_get_all(
    dsc_client *c, const char *service, dsc_instance_list **out, dsc_error *err);
DSC_API int dsc_heartbeat(
    dsc_client *c, const char *service, const char *endpoint, dsc_instance **out, dsc_error *err);

/*
 * A running server's state (the Status call). Allocated by the library
 * only (fields may be added at the end); strings are never NULL.
 */
typedef struct dsc_server_status {
	char    *version;       /* discoveryd's */
	int64_t  started_at_ms; /* Unix ms */
	uint64_t uptime_ms;
	uint64_t revision;
	uint32_t services; /* with at least one instance */
	uint32_t instances;
	uint32_t healthy;
	uint32_t unhealthy;
	uint32_t unknown;
	char   **listeners; /* REQ/REP URLs, as bound */
	size_t   n_listeners;
	char    *publish; /* the PUB URL */
	char    *admin;   /* the admin URL; "" when off */
	char    *data;    /* the data file, or ":memory:" */
	uint64_t commits; /* transactions committed to the data file */
	uint64_t writes_stored;
} dsc_server_status;

/* On success *out owns a status that dsc_server_status_free releases. */
DSC_API int  dsc_status(dsc_client *c, dsc_server_status **out, dsc_error *err);
DSC_API void dsc_server_status_free(dsc_server_status *st); /* NULL is a no-op */

/*
 * The revision of the last Response this client received, error replies
 * included (NOT_FOUND: absent as of it); a call without a reply leaves it.
 */
DSC_API uint64_t dsc_client_revision(const dsc_client *c);

/*
 * Reading your own writes across servers (docs/protocol.md, min_revision).
 * A call carries a minimum revision: a server whose registry is behind it
 * waits briefly to catch up, then answers DSC_EUNAVAILABLE, and the call
 * moves on to the next server of the list (Resolve included). Setters,
 * not dsc_client_options fields, so that binaries built against an older
 * dsc_client_options keep working. Either may be called while other
 * threads make calls; c NULL is a no-op.
 *
 * dsc_client_set_min_revision: every later call carries at least rev
 * (0, the default: no minimum), for example a revision another client
 * wrote at.
 *
 * dsc_client_set_read_own_writes: when on, every call also carries the
 * highest revision this client has been answered by a Register,
 * Deregister or Heartbeat, so that after a failover it reads what it
 * wrote. Off by default.
 */
DSC_API void dsc_client_set_min_revision(dsc_client *c, uint64_t rev);
DSC_API void dsc_client_set_read_own_writes(dsc_client *c, bool on);

/* ---- events and views (the server's --publish socket) ---- */

typedef enum dsc_event_type {
	DSC_EVENT_UNSPECIFIED    = 0,
	DSC_EVENT_REGISTERED     = 1,
	DSC_EVENT_DEREGISTERED   = 2,
	DSC_EVENT_HEALTH_CHANGED = 3,
	DSC_EVENT_UPDATED        = 4,
	/* Periodic and at start: no service, the current revision. */
	DSC_EVENT_SYNC = 5,
} dsc_event_type;

DSC_API const char *dsc_event_type_name(dsc_event_type t); /* "registered", ... */

/* One decoded Event. For SYNC, service is "" and instance is all empty. */
typedef struct dsc_event {
	dsc_event_type type;
	char          *service;
	dsc_instance   instance; /* the instance after the change (before, for DEREGISTERED) */
	dsc_health     previous; /* HEALTH_CHANGED: the old state */
	uint64_t       revision; /* the registry revision after this change */
	int64_t        timestamp_ms;
	char          *reason; /* human-readable, e.g. "HTTP 500" */
} dsc_event;

DSC_API void dsc_event_free(dsc_event *ev);

/*
 * A watch: a SUB socket on the server's publish URL, subscribed to every
 * service (services NULL or n_services 0) or to the listed ones (names are
 * normalized; SYNC events are always received). Events are pulled with
 * dsc_watch_next; no library thread is involved. Events can be lost (nng
 * PUB drops for slow subscribers): compare revisions, or use a view.
 * The socket redials in the background after a server restart.
 */
typedef struct dsc_watch dsc_watch;

DSC_API int dsc_watch_open(
    dsc_watch **out, const char *publish_url, const char *const *services, size_t n_services);
/*
 * dsc_watch_open with TLS options (NULL: none) for a tls+tcp:// publish
 * URL. When the server is up, it makes one TLS handshake before returning
 * (bounded by 5 s), so that a certificate either side refuses fails here
 * with DSC_ETLS instead of leaving the watch redialing forever; a server
 * that is down is still waited for in the background.
 */
DSC_API int dsc_watch_open_tls(dsc_watch **out, const char *publish_url,
    const char *const *services, size_t n_services, const dsc_tls_options *tls);
/* Waits up to timeout_ms (<0: forever) for the next event: 0 and *out, or DSC_ETIMEDOUT. */
DSC_API int  dsc_watch_next(dsc_watch *w, int timeout_ms, dsc_event **out);
DSC_API void dsc_watch_close(dsc_watch *w);

/*
 * A view: a local copy of the registry (or of some services), seeded with
 * GetAll after subscribing, kept current from events on a library thread,
 * reloaded with GetAll whenever a revision gap, a SYNC mismatch or a server
 * restart shows that something was missed. Resolving from a view needs no
 * network round trip.
 */
typedef struct dsc_view dsc_view;

/* Called on the view's thread after each event is applied; must be quick. */
typedef void (*dsc_view_cb)(void *arg, const dsc_event *ev);

typedef struct dsc_view_options {
	dsc_client_options client;   /* for the GetAll calls; client.tls for the events too */
	const char *const *services; /* NULL: every service */
	size_t             n_services;
	dsc_view_cb        on_event; /* optional */
	void              *on_event_arg;
	int32_t            recv_buffer; /* SUB queue length in messages; <= 0: 1024 */
} dsc_view_options;

DSC_API void dsc_view_options_init(dsc_view_options *opts);

/*
 * Opens a view on the server's REQ/REP url and publish url and loads it.
 * Fails (with err) when the first load fails; after that, reloads retry.
 */
DSC_API int  dsc_view_open(dsc_view **out, const char *url, const char *publish_url,
     const dsc_view_options *opts, dsc_error *err);
DSC_API void dsc_view_close(dsc_view *v);

/* Like dsc_resolve, from the local copy: healthy first, else all unless healthy_only. */
DSC_API int dsc_view_resolve(
    dsc_view *v, const char *service, bool healthy_only, dsc_instance **out);
/* The same without allocating: copies the endpoint into buf (DSC_ELIMIT if it does not fit). */
DSC_API int dsc_view_resolve_endpoint(
    dsc_view *v, const char *service, bool healthy_only, char *buf, size_t len);
/* The local copy, sorted by (service, endpoint); service NULL for all. */
DSC_API int dsc_view_get_all(dsc_view *v, const char *service, dsc_instance_list **out);
/* The revision the local copy reflects, and how many full reloads it took. */
DSC_API uint64_t dsc_view_revision(dsc_view *v);
DSC_API uint64_t dsc_view_reloads(dsc_view *v);

/* ---- waiting for services (container entrypoints) ---- */

typedef enum dsc_wait_mode {
	DSC_WAIT_HEALTHY    = 0, /* at least one healthy instance */
	DSC_WAIT_REGISTERED = 1, /* at least one instance, whatever its health */
} dsc_wait_mode;

/* Where one named service stands when dsc_wait_for returns. */
typedef struct dsc_wait_status {
	char service[64]; /* normalized */
	bool registered;
	bool healthy;
} dsc_wait_status;

/*
 * Waits until every one of the n services satisfies mode, or timeout_ms
 * passes. Event-driven: it subscribes to the services' events on
 * publish_url, checks each once over url, then re-checks a service only
 * when an event (or a SYNC, for lost events) says something changed; it
 * returns within milliseconds of the change. Returns 0, DSC_ETIMEDOUT, or
 * another error (err says which). status, when not NULL, has n entries and
 * is filled in either case, so the caller can tell missing from unhealthy.
 */
DSC_API int dsc_wait_for(const char *url, const char *publish_url, const char *const *services,
    size_t n, dsc_wait_mode mode, int timeout_ms, dsc_wait_status *status, dsc_error *err);
/*
 * dsc_wait_for with client options (NULL: the defaults): auth_token for a
 * server that guards reads, tls for tls+tcp:// URLs (both sockets). Each
 * check keeps its own bound, so opts->timeout_ms and require_connection are
 * not used. A TLS handshake refused while the server is up ends the wait
 * with DSC_ETLS.
 */
DSC_API int dsc_wait_for_opts(const char *url, const char *publish_url, const char *const *services,
    size_t n, dsc_wait_mode mode, int timeout_ms, const dsc_client_options *opts,
    dsc_wait_status *status, dsc_error *err);

#ifdef __cplusplus
}
#endif

#endif /* DISCOVERY_DISCOVERY_H */
