/*
 * The etcd client behind cluster mode: the four things discoveryd needs from
 * etcd (range, txn, leases, watch) as a small interface, so that the
 * transport underneath (today etcd's JSON gateway, /v3/... over libcurl, later
 * perhaps native gRPC) can change without touching its callers.
 *
 * Errors are dsc_err codes with a message in a dsc_error:
 *   DSC_ECONNREFUSED  no endpoint accepted a connection (each was tried once)
 *   DSC_ETIMEDOUT     no answer within the handle's timeout; for a txn the
 *                     outcome is UNKNOWN (it may have committed): read back
 *   DSC_ETRANSPORT    the connection broke after the request was sent (unknown too)
 *   DSC_EUNAVAILABLE  etcd answered "no leader", "request timed out" and the like
 *   DSC_ESTATE        the revision asked for is compacted (range, watch)
 *   DSC_ENOTFOUND     the lease does not exist (any more)
 *   DSC_EINVAL, DSC_ELIMIT (request too large, space quota), DSC_EPROTO (an
 *   answer we cannot read), DSC_EAUTH, DSC_EPERM, DSC_EINTERNAL.
 * Numbers are int64_t; keys and values are bytes (any content, NUL included).
 */
#ifndef DSI_CLUSTER_ETCD_H
#define DSI_CLUSTER_ETCD_H

#include <discovery/discovery.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A client: an endpoint list and a timeout. Calls on one handle are serialized. */
typedef struct dsi_etcd dsi_etcd;

/* Owned bytes in a response, NUL-terminated for convenience (len excludes it). */
typedef struct dsi_etcd_bytes {
	uint8_t *data; /* never NULL in a parsed response: "" when empty */
	size_t   len;
} dsi_etcd_bytes;

/* One key-value as etcd stores it. */
typedef struct dsi_etcd_kv {
	dsi_etcd_bytes key;
	dsi_etcd_bytes value;
	int64_t        create_revision;
	int64_t        mod_revision;
	int64_t        version; /* 0 in a DELETE event's kv */
	int64_t        lease;   /* 0: none */
} dsi_etcd_kv;

/*
 * Creates a client for endpoints, a comma-separated list of
 * "http://host:port" (at most 16; "https://host:port" with dsi_etcd_open_tls). A call goes to the
 * current endpoint and moves to the next one when nothing of the request was sent (no connection)
 * or the member refused it with "no leader" (refused before handling, so safe to repeat); each
 * endpoint is tried once per call, and one that worked stays current. A request that was sent is
 * never resent, but after one whose outcome is unknown (a timeout, a broken connection) the next
 * call starts at the next endpoint. timeout_ms (<= 0: 5 s) bounds each whole call, all endpoints
 * included, and the opening of a watch. Nothing is sent yet. On 0 *out is the caller's
 * (dsi_etcd_close). The program calls curl_global_init before any thread uses this (discoveryd's
 * main does).
 */
int  dsi_etcd_open(dsi_etcd **out, const char *endpoints, int timeout_ms, dsc_error *err);
void dsi_etcd_close(dsi_etcd *e);

/*
 * TLS to etcd: what every handle of one node shares, passed once to the
 * handles it opens (the server's cluster backend and membership). File
 * paths; NULL is the default. Peer and host verification are always on:
 * there is no way to turn them off.
 */
typedef struct dsi_etcd_tls {
	const char *ca_file;   /* PEM CAs that sign etcd's certificate; NULL: the system's */
	const char *cert_file; /* PEM client certificate (etcd's --client-cert-auth); NULL: none */
	const char *key_file;  /* its unencrypted PEM key: set exactly when cert_file is */
} dsi_etcd_tls;

/*
 * dsi_etcd_open with TLS settings (tls NULL or all NULL: none). Every
 * endpoint must then have one scheme: https:// when tls sets any file
 * (DSC_EINVAL otherwise, as for a list mixing http:// and https://, or a
 * certificate without its key). The files are read by libcurl on each
 * connection, so a file that cannot be used is an error of the first call.
 * The strings are copied.
 */
int dsi_etcd_open_tls(
    dsi_etcd **out, const char *endpoints, int timeout_ms, const dsi_etcd_tls *tls, dsc_error *err);

/*
 * A deep copy of src (NULL: all NULL) into *dst, for a holder that opens
 * handles later: 0, or DSC_ENOMEM with nothing left allocated. The copy's
 * strings are the holder's, freed by dsi_etcd_tls_clear.
 */
int  dsi_etcd_tls_copy(dsi_etcd_tls *dst, const dsi_etcd_tls *src);
void dsi_etcd_tls_clear(dsi_etcd_tls *t);

/*
 * Moves the next call (or watch) to the next endpoint: for a caller that
 * found the current one silent (a watch with no progress notification).
 */
void dsi_etcd_next_endpoint(dsi_etcd *e);

/* The endpoint calls currently go to (owned by e, valid until the next call). */
const char *dsi_etcd_endpoint(const dsi_etcd *e);

/* ---- range ---- */

typedef struct dsi_etcd_range_req {
	const void *key;
	size_t      key_len;
	const void *range_end; /* NULL: key alone (unless prefix) */
	size_t      range_end_len;
	bool        prefix;   /* every key starting with key (range_end ignored) */
	int64_t     revision; /* 0: the newest */
	int64_t     limit;    /* 0: no limit */
	bool        keys_only;
	bool        count_only;
} dsi_etcd_range_req;

typedef struct dsi_etcd_range_resp {
	int64_t      revision; /* the store's revision this answer reflects */
	dsi_etcd_kv *kvs;      /* in key order; n_kvs entries */
	size_t       n_kvs;
	bool         more;  /* limit cut the answer: page on from the last key + "\0" */
	int64_t      count; /* how many keys the range holds in all */
} dsi_etcd_range_resp;

/* On 0 *out holds the answer, freed with dsi_etcd_range_resp_free; untouched otherwise. */
int dsi_etcd_range(
    dsi_etcd *e, const dsi_etcd_range_req *req, dsi_etcd_range_resp *out, dsc_error *err);
void dsi_etcd_range_resp_free(dsi_etcd_range_resp *r);

/* ---- txn ---- */

typedef enum dsi_etcd_target {
	DSI_ETCD_VERSION,
	DSI_ETCD_CREATE, /* create_revision; 0 means "the key does not exist" */
	DSI_ETCD_MOD,    /* mod_revision */
	DSI_ETCD_VALUE,
} dsi_etcd_target;

typedef enum dsi_etcd_cmp_result {
	DSI_ETCD_EQUAL,
	DSI_ETCD_GREATER,
	DSI_ETCD_LESS,
	DSI_ETCD_NOT_EQUAL,
} dsi_etcd_cmp_result;

/* "target(key) result number|value". */
typedef struct dsi_etcd_cmp {
	dsi_etcd_target     target;
	dsi_etcd_cmp_result result;
	const void         *key;
	size_t              key_len;
	int64_t             number; /* VERSION, CREATE, MOD */
	const void         *value;  /* VALUE */
	size_t              value_len;
	/*
	 * Every key starting with key (etcd 3.3+'s Compare.range_end): all of
	 * them must hold. An empty range compares as one absent key (all zero).
	 */
	bool prefix;
} dsi_etcd_cmp;

typedef enum dsi_etcd_op_type {
	DSI_ETCD_OP_RANGE,
	DSI_ETCD_OP_PUT,
	DSI_ETCD_OP_DELETE,
} dsi_etcd_op_type;

/* One operation of a txn branch. */
typedef struct dsi_etcd_op {
	dsi_etcd_op_type type;
	const void      *key;
	size_t           key_len;
	const void      *value; /* PUT */
	size_t           value_len;
	int64_t          lease;   /* PUT: attach to this lease; 0 none */
	bool             prefix;  /* RANGE, DELETE: every key starting with key */
	bool             prev_kv; /* PUT, DELETE: return what was there */
	int64_t          limit;   /* RANGE */
} dsi_etcd_op;

typedef struct dsi_etcd_txn_req {
	const dsi_etcd_cmp *cmps; /* all must hold for success */
	size_t              n_cmps;
	const dsi_etcd_op  *success;
	size_t              n_success;
	const dsi_etcd_op  *failure;
	size_t              n_failure;
} dsi_etcd_txn_req;

/* The result of one operation, in the order of the branch that ran. */
typedef struct dsi_etcd_op_result {
	dsi_etcd_op_type type;
	dsi_etcd_kv     *kvs; /* RANGE: the keys; PUT/DELETE with prev_kv: what was there */
	size_t           n_kvs;
	bool             more;    /* RANGE */
	int64_t          count;   /* RANGE */
	int64_t          deleted; /* DELETE */
} dsi_etcd_op_result;

typedef struct dsi_etcd_txn_resp {
	bool                succeeded; /* the compares held: success ran (else failure) */
	int64_t             revision;  /* after the txn (unchanged when it wrote nothing) */
	dsi_etcd_op_result *results;
	size_t              n_results;
} dsi_etcd_txn_resp;

/*
 * A failed compare is not an error: 0 with succeeded false. On 0 *out is
 * the caller's (dsi_etcd_txn_resp_free). DSC_ETIMEDOUT/DSC_ETRANSPORT: unknown.
 */
int  dsi_etcd_txn(dsi_etcd *e, const dsi_etcd_txn_req *req, dsi_etcd_txn_resp *out, dsc_error *err);
void dsi_etcd_txn_resp_free(dsi_etcd_txn_resp *r);

/* Compacts history before revision (waits until done: physical). */
int dsi_etcd_compact(dsi_etcd *e, int64_t revision, dsc_error *err);

/* ---- maintenance ---- */

/* One member's view of the cluster (maintenance status), as etcd reports it. */
typedef struct dsi_etcd_status_resp {
	uint64_t member_id;  /* the member that answered (etcd's member IDs are unsigned) */
	uint64_t leader;     /* the member ID it follows; 0: it knows no leader */
	int64_t  raft_term;  /* its current term */
	int64_t  raft_index; /* its last Raft log index */
	int64_t  revision;   /* its store revision */
	int64_t  db_size;    /* bytes of its backend file */
	char     version[32];
} dsi_etcd_status_resp;

/*
 * Asks the current endpoint (failing over as other calls do) for its
 * status: the test kit finds the leader with it. A member without a leader
 * refuses ("no leader", as for every call: DSC_EUNAVAILABLE when it is the
 * only endpoint).
 */
int dsi_etcd_status(dsi_etcd *e, dsi_etcd_status_resp *out, dsc_error *err);

/* ---- leases ---- */

/*
 * Grants a lease of ttl_s seconds (etcd raises anything under 2 s to 2 s);
 * id 0 lets etcd choose. On 0 *id_out and *ttl_out (the TTL granted) are set.
 */
int dsi_etcd_lease_grant(
    dsi_etcd *e, int64_t ttl_s, int64_t id, int64_t *id_out, int64_t *ttl_out, dsc_error *err);

/* Renews once (one POST, one answer). DSC_ENOTFOUND when the lease is gone. */
int dsi_etcd_lease_keepalive(dsi_etcd *e, int64_t id, int64_t *ttl_out, dsc_error *err);

/* DSC_ENOTFOUND when the lease is gone. */
int dsi_etcd_lease_revoke(dsi_etcd *e, int64_t id, dsc_error *err);

/* Seconds left and granted; DSC_ENOTFOUND when the lease is gone (expired or revoked). */
int dsi_etcd_lease_ttl(
    dsi_etcd *e, int64_t id, int64_t *ttl_out, int64_t *granted_out, dsc_error *err);

/* ---- watch (etcd_watch.c) ---- */

/* A watch stream: one per HTTP response. Its own connection, apart from e's calls. */
typedef struct dsi_etcd_watch dsi_etcd_watch;

typedef struct dsi_etcd_watch_req {
	const void *key;
	size_t      key_len;
	bool        prefix;
	int64_t     start_revision;  /* 0: from now on */
	bool        prev_kv;         /* events carry the previous value */
	bool        progress_notify; /* empty answers now and then carry the revision */
} dsi_etcd_watch_req;

typedef enum dsi_etcd_event_type {
	DSI_ETCD_EVENT_PUT,
	DSI_ETCD_EVENT_DELETE,
} dsi_etcd_event_type;

typedef struct dsi_etcd_event {
	dsi_etcd_event_type type;
	dsi_etcd_kv         kv; /* DELETE: key and mod_revision only */
	bool                has_prev;
	dsi_etcd_kv         prev_kv; /* when has_prev */
} dsi_etcd_event;

/*
 * One message of the stream. Events of one etcd revision (one txn) always
 * arrive in one message, in operation order; a message may hold several
 * revisions. No events and neither created nor canceled: a progress
 * notification (every change up to revision has been sent).
 */
typedef struct dsi_etcd_watch_resp {
	int64_t         revision;
	bool            created;
	bool            canceled;         /* the stream is over (the handle closed it) */
	int64_t         compact_revision; /* canceled because start_revision < this */
	char           *cancel_reason;    /* malloc'd or NULL */
	dsi_etcd_event *events;
	size_t          n_events;
} dsi_etcd_watch_resp;

/*
 * Opens a watch (with Grpc-Metadata-hasleader, so a member without quorum
 * ends the stream instead of going silent) and waits for etcd's "created"
 * answer, failing over like other calls. A start_revision that is already
 * compacted is not an error here: the next message says canceled with
 * compact_revision. On 0 *out is the caller's (dsi_etcd_watch_close).
 */
int dsi_etcd_watch_open(
    dsi_etcd *e, const dsi_etcd_watch_req *req, dsi_etcd_watch **out, dsc_error *err);

/*
 * Waits up to timeout_ms for the next message. 0: *out filled (free it with
 * dsi_etcd_watch_resp_free). DSC_ETIMEDOUT: nothing arrived (the stream goes
 * on; a caller that expects progress notifications treats a long silence as
 * a stall). DSC_ECLOSED: the stream ended (after a cancel, or etcd closed
 * it). An error message inside the stream gives its own code, e.g.
 * DSC_EUNAVAILABLE for "etcdserver: no leader". DSC_ETRANSPORT: the
 * connection broke. After any error but DSC_ETIMEDOUT, close the watch.
 */
int dsi_etcd_watch_next(
    dsi_etcd_watch *w, int timeout_ms, dsi_etcd_watch_resp *out, dsc_error *err);
void dsi_etcd_watch_resp_free(dsi_etcd_watch_resp *r);
void dsi_etcd_watch_close(dsi_etcd_watch *w);

/* Frees what a kv owns (not the kv itself). */
void dsi_etcd_kv_clear(dsi_etcd_kv *kv);

#endif
