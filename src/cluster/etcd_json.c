/* etcd's JSON gateway: base64, numbers, errors and request bodies, no I/O. */
#include "cluster/etcd_json.h"

#include <errno.h>
#include <inttypes.h>
#include <mbedtls/base64.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
dsi_etcd_fail(dsc_error *err, int code, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return code;
}

char *
dsi_etcdj_b64(const void *data, size_t len)
{
	size_t need = 4 * ((len + 2) / 3) + 1, olen = 0;
	char  *s = malloc(need);
	if (s == NULL) {
		return NULL;
	}
	/* mbedTLS writes the terminating NUL too; an empty input gives "". */
	if (mbedtls_base64_encode((unsigned char *) s, need, &olen, data, len) != 0) {
		free(s);
		return NULL;
	}
	s[olen] = 0;
	return s;
}

int
dsi_etcdj_unb64(const char *s, dsi_etcd_bytes *out)
{
	size_t slen = strlen(s), olen = 0;
	/*
	 * mbedTLS skips whitespace and silently drops a short last group ("YQ"
	 * decodes to nothing): only whole groups of the alphabet are taken.
	 */
	if (slen % 4 != 0
	    || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
	        != slen) {
		return DSC_EPROTO;
	}
	/* Decoding never grows: 3 bytes per 4 characters, plus our NUL. */
	uint8_t *d = malloc(slen / 4 * 3 + 1);
	if (d == NULL) {
		return DSC_ENOMEM;
	}
	if (mbedtls_base64_decode(d, slen / 4 * 3 + 1, &olen, (const unsigned char *) s, slen)
	    != 0) {
		free(d);
		return DSC_EPROTO;
	}
	d[olen]   = 0;
	out->data = d;
	out->len  = olen;
	return 0;
}

size_t
dsi_etcdj_prefix_end(const void *key, size_t key_len, uint8_t *buf)
{
	const uint8_t *k = key;
	for (size_t i = key_len; i > 0; i--) {
		if (k[i - 1] < 0xff) {
			memcpy(buf, k, i);
			buf[i - 1]++;
			return i;
		}
	}
	buf[0] = 0;
	return 1;
}

int
dsi_etcdj_int64(const json_t *obj, const char *field, int64_t *out)
{
	const json_t *v = json_object_get(obj, field);
	if (v == NULL || json_is_null(v)) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v)) {
		*out = (int64_t) json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v)) {
		return DSC_EPROTO;
	}
	const char *s = json_string_value(v);
	char       *end;
	errno       = 0;
	long long n = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != 0) {
		return DSC_EPROTO;
	}
	*out = (int64_t) n;
	return 0;
}

int
dsi_etcdj_grpc_err(int grpc_code, const char *message)
{
	const char *m = message != NULL ? message : "";
	switch (grpc_code) {
	case 0:
		return DSC_OK;
	case 1: /* CANCELLED */
		return DSC_ECLOSED;
	case 3: /* INVALID_ARGUMENT: also etcd's "request is too large" */
		return strstr(m, "too large") != NULL ? DSC_ELIMIT : DSC_EINVAL;
	case 4: /* DEADLINE_EXCEEDED */
		return DSC_ETIMEDOUT;
	case 5: /* NOT_FOUND: "requested lease not found" */
		return DSC_ENOTFOUND;
	case 7:
		return DSC_EPERM;
	case 8: /* RESOURCE_EXHAUSTED: "mvcc: database space exceeded" */
		return DSC_ELIMIT;
	case 9:  /* FAILED_PRECONDITION */
	case 11: /* OUT_OF_RANGE: "required revision has been compacted", "a future revision" */
		return DSC_ESTATE;
	case 12:
		return DSC_ENOTSUP;
	case 14: /* UNAVAILABLE: "no leader", "request timed out", "leader changed" */
		return DSC_EUNAVAILABLE;
	case 16:
		return DSC_EAUTH;
	default:
		return DSC_EINTERNAL;
	}
}

int
dsi_etcdj_error(const json_t *root, dsc_error *err)
{
	const json_t *e = json_object_get(root, "error");
	if (e == NULL) {
		return 0;
	}
	int64_t     code = 2; /* UNKNOWN, when etcd gives none */
	const char *msg  = NULL;
	if (json_is_string(e)) { /* unary: {"error":"text","message":"text","code":N} */
		msg = json_string_value(e);
		if (dsi_etcdj_int64(root, "code", &code) != 0) {
			code = 2;
		}
	} else if (json_is_object(e)) { /* stream: {"error":{"grpc_code":N,"message":...}} */
		msg = json_string_value(json_object_get(e, "message"));
		if (dsi_etcdj_int64(e, "grpc_code", &code) != 0) {
			code = 2;
		}
	}
	if (msg == NULL) {
		msg = "(no message)";
	}
	int rv = dsi_etcdj_grpc_err((int) code, msg);
	if (rv == 0) {
		rv = DSC_EINTERNAL; /* an error field with code 0 is still an error */
	}
	return dsi_etcd_fail(err, rv, "etcd: %s", msg);
}

bool
dsi_etcdj_no_leader(const json_t *root)
{
	const json_t *e   = json_object_get(root, "error");
	const char   *msg = json_is_object(e) ? json_string_value(json_object_get(e, "message"))
	                                      : json_string_value(e);
	return msg != NULL && strcmp(msg, "etcdserver: no leader") == 0;
}

int
dsi_etcdj_parse(const char *text, size_t len, json_t **out, dsc_error *err)
{
	json_error_t je;
	json_t      *root = json_loadb(text, len, 0, &je);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return dsi_etcd_fail(err, DSC_EPROTO, "etcd: unreadable answer: %s",
		    root == NULL ? je.text : "not a JSON object");
	}
	*out = root;
	return 0;
}

/* ---- requests ---- */

/* obj[field] = base64(data); 0 or -1. */
static int
set_b64(json_t *obj, const char *field, const void *data, size_t len)
{
	char *s  = dsi_etcdj_b64(data, len);
	int   rv = s != NULL ? json_object_set_new(obj, field, json_string(s)) : -1;
	free(s);
	return rv;
}

/* obj[field] = "n" (the gateway's int64 spelling); 0 or -1. */
static int
set_i64(json_t *obj, const char *field, int64_t n)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRId64, n);
	return json_object_set_new(obj, field, json_string(buf));
}

json_t *
dsi_etcdj_numbers(const char *f1, int64_t n1, const char *f2, int64_t n2)
{
	json_t *o = json_object();
	if (o == NULL || set_i64(o, f1, n1) != 0 || (f2 != NULL && set_i64(o, f2, n2) != 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* key and range_end for "key", "key.." (range_end) or "every key starting with key". */
static int
set_range(
    json_t *obj, const void *key, size_t key_len, const void *end, size_t end_len, bool prefix)
{
	if (set_b64(obj, "key", key, key_len) != 0) {
		return -1;
	}
	if (prefix) {
		uint8_t *buf = malloc(key_len > 0 ? key_len : 1);
		int      rv  = -1;
		if (buf != NULL) {
			size_t n = dsi_etcdj_prefix_end(key, key_len, buf);
			rv       = set_b64(obj, "range_end", buf, n);
		}
		free(buf);
		return rv;
	}
	return end != NULL ? set_b64(obj, "range_end", end, end_len) : 0;
}

json_t *
dsi_etcdj_range_req(const dsi_etcd_range_req *req)
{
	json_t *o = json_object();
	if (o == NULL
	    || set_range(o, req->key, req->key_len, req->range_end, req->range_end_len, req->prefix)
	        != 0
	    || (req->revision > 0 && set_i64(o, "revision", req->revision) != 0)
	    || (req->limit > 0 && set_i64(o, "limit", req->limit) != 0)
	    || (req->keys_only && json_object_set_new(o, "keys_only", json_true()) != 0)
	    || (req->count_only && json_object_set_new(o, "count_only", json_true()) != 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static const char *const target_names[]  = { "VERSION", "CREATE", "MOD", "VALUE" };
static const char *const result_names[]  = { "EQUAL", "GREATER", "LESS", "NOT_EQUAL" };
static const char *const number_fields[] = { "version", "create_revision", "mod_revision" };

static json_t *
cmp_json(const void *item)
{
	const dsi_etcd_cmp *c = item;
	json_t             *o = json_object();
	int                 rv;
	if (o == NULL) {
		return NULL;
	}
	rv = json_object_set_new(o, "target", json_string(target_names[c->target]));
	rv |= json_object_set_new(o, "result", json_string(result_names[c->result]));
	rv |= set_range(o, c->key, c->key_len, NULL, 0, c->prefix);
	if (c->target == DSI_ETCD_VALUE) {
		rv |= set_b64(o, "value", c->value, c->value_len);
	} else {
		/* Written even when 0: create_revision == 0 is "the key does not exist". */
		rv |= set_i64(o, number_fields[c->target], c->number);
	}
	if (rv != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
op_json(const void *item)
{
	const dsi_etcd_op *op = item;
	json_t            *o = json_object(), *w = NULL;
	const char        *name;
	int                rv = 0;
	if (o == NULL) {
		return NULL;
	}
	switch (op->type) {
	case DSI_ETCD_OP_PUT:
		name = "request_put";
		rv |= set_b64(o, "key", op->key, op->key_len);
		rv |= set_b64(o, "value", op->value, op->value_len);
		if (op->lease != 0) {
			rv |= set_i64(o, "lease", op->lease);
		}
		break;
	case DSI_ETCD_OP_DELETE:
		name = "request_delete_range";
		rv |= set_range(o, op->key, op->key_len, NULL, 0, op->prefix);
		break;
	case DSI_ETCD_OP_RANGE:
	default:
		name = "request_range";
		rv |= set_range(o, op->key, op->key_len, NULL, 0, op->prefix);
		if (op->limit > 0) {
			rv |= set_i64(o, "limit", op->limit);
		}
		break;
	}
	if (op->prev_kv && op->type != DSI_ETCD_OP_RANGE) {
		rv |= json_object_set_new(o, "prev_kv", json_true());
	}
	if (rv != 0 || (w = json_object()) == NULL || json_object_set_new(w, name, o) != 0) {
		json_decref(w);
		json_decref(o);
		return NULL;
	}
	return w;
}

/* obj[field] = [make(item 0), make(item 1), ...], left out when n is 0; 0 or -1. */
static int
set_array(json_t *obj, const char *field, const void *items, size_t n, size_t size,
    json_t *(*make)(const void *) )
{
	json_t *a;
	if (n == 0) {
		return 0;
	}
	if ((a = json_array()) == NULL || json_object_set_new(obj, field, a) != 0) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (json_array_append_new(a, make((const char *) items + i * size)) != 0) {
			return -1;
		}
	}
	return 0;
}

json_t *
dsi_etcdj_txn_req(const dsi_etcd_txn_req *req)
{
	json_t *o = json_object();
	if (o == NULL
	    || set_array(o, "compare", req->cmps, req->n_cmps, sizeof(*req->cmps), cmp_json) != 0
	    || set_array(o, "success", req->success, req->n_success, sizeof(*req->success), op_json)
	        != 0
	    || set_array(o, "failure", req->failure, req->n_failure, sizeof(*req->failure), op_json)
	        != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
dsi_etcdj_watch_req(const dsi_etcd_watch_req *req)
{
	json_t *c = json_object(), *o = NULL;
	if (c == NULL || set_range(c, req->key, req->key_len, NULL, 0, req->prefix) != 0
	    || (req->start_revision > 0 && set_i64(c, "start_revision", req->start_revision) != 0)
	    || (req->prev_kv && json_object_set_new(c, "prev_kv", json_true()) != 0)
	    || (req->progress_notify && json_object_set_new(c, "progress_notify", json_true()) != 0)
	    || (o = json_object()) == NULL || json_object_set_new(o, "create_request", c) != 0) {
		json_decref(o);
		json_decref(c);
		return NULL;
	}
	return o;
}
