/*
 * etcd's JSON gateway dialect: requests built and answers read, with no I/O,
 * so every quirk is unit-tested on recorded answers (tests/unit/etcd_json_test.c).
 * The quirks: 64-bit numbers travel as strings; keys and values as base64;
 * fields at their default value are left out (a failed txn has no
 * "succeeded", a PUT event no "type", an empty range no "kvs"); errors come as
 * {"error":"text","code":N} from unary calls and {"error":{"grpc_code":N,
 * "message":...}} inside a stream.
 */
#ifndef DSI_CLUSTER_ETCD_JSON_H
#define DSI_CLUSTER_ETCD_JSON_H

#include <jansson.h>

#include "cluster/etcd.h"

/* base64 (RFC 4648, padded) of len bytes: malloc'd, NUL-terminated; NULL when out of memory. */
char *dsi_etcdj_b64(const void *data, size_t len);

/* Decodes s into out->data (malloc'd, NUL-terminated). DSC_EPROTO if s is not base64. */
int dsi_etcdj_unb64(const char *s, dsi_etcd_bytes *out);

/*
 * The end of the range "every key starting with key": key with its last byte
 * below 0xff raised by one (bytes after it dropped); "\0" (all keys) when
 * there is none. Writes into buf (at least key_len bytes, or 1), returns its length.
 */
size_t dsi_etcdj_prefix_end(const void *key, size_t key_len, uint8_t *buf);

/*
 * obj[field] as int64: absent or null means 0 (the gateway omits defaults);
 * a decimal string or a JSON integer. DSC_EPROTO for anything else.
 */
int dsi_etcdj_int64(const json_t *obj, const char *field, int64_t *out);

/* The gRPC status code of an answer into a dsc_err (message refines a few). */
int dsi_etcdj_grpc_err(int grpc_code, const char *message);

/*
 * 0 if root is not an error; otherwise the dsc_err for either error shape,
 * with err filled ("etcd: " and etcd's text).
 */
int dsi_etcdj_error(const json_t *root, dsc_error *err);

/*
 * Whether root is etcd's "no leader" refusal: the member lost quorum and,
 * asked with Grpc-Metadata-hasleader, refused the request before handling
 * it, so another member may safely be asked the same.
 */
bool dsi_etcdj_no_leader(const json_t *root);

/* Parses text into *out (the caller's, json_decref). DSC_EPROTO with err when not JSON. */
int dsi_etcdj_parse(const char *text, size_t len, json_t **out, dsc_error *err);

/* Request bodies: new references, NULL when out of memory. */
json_t *dsi_etcdj_range_req(const dsi_etcd_range_req *req);
json_t *dsi_etcdj_txn_req(const dsi_etcd_txn_req *req);
json_t *dsi_etcdj_watch_req(const dsi_etcd_watch_req *req);
/* {"f1":"n1"} or {"f1":"n1","f2":"n2"} (f2 NULL: one field): lease and compaction bodies. */
json_t *dsi_etcdj_numbers(const char *f1, int64_t n1, const char *f2, int64_t n2);

/*
 * Answers. Each first checks for an error (dsi_etcdj_error). On 0 *out is
 * filled and the caller's; on failure nothing is left allocated.
 */
int dsi_etcdj_kv(const json_t *obj, dsi_etcd_kv *out);
int dsi_etcdj_range_resp(const json_t *root, dsi_etcd_range_resp *out, dsc_error *err);
int dsi_etcdj_txn_resp(const json_t *root, dsi_etcd_txn_resp *out, dsc_error *err);

/* A lease answer: "ID", "TTL" and "grantedTTL", any of the pointers NULL. */
int dsi_etcdj_lease_resp(
    const json_t *root, int64_t *id, int64_t *ttl, int64_t *granted, dsc_error *err);

/* One line of /v3/watch: {"result":{...}} or {"error":{...}}. */
int dsi_etcdj_watch_resp(const json_t *line, dsi_etcd_watch_resp *out, dsc_error *err);

/* Sets err (when non-NULL) to code and a printf message; returns code. */
int dsi_etcd_fail(dsc_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
