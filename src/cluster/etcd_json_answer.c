/*
 * etcd's JSON gateway: answers read into the interface's structures (the
 * second half of etcd_json.h; requests and the shared pieces are in etcd_json.c).
 */
#include "cluster/etcd_json.h"

#include <stdlib.h>
#include <string.h>

void
dsi_etcd_kv_clear(dsi_etcd_kv *kv)
{
	free(kv->key.data);
	free(kv->value.data);
	memset(kv, 0, sizeof(*kv));
}

/* An omitted bytes field is empty: "" rather than NULL, so callers need no check. */
static int
get_bytes(const json_t *obj, const char *field, dsi_etcd_bytes *out)
{
	const json_t *v = json_object_get(obj, field);
	if (v != NULL && !json_is_string(v)) {
		return DSC_EPROTO;
	}
	return dsi_etcdj_unb64(v != NULL ? json_string_value(v) : "", out);
}

int
dsi_etcdj_kv(const json_t *obj, dsi_etcd_kv *out)
{
	dsi_etcd_kv kv = { 0 };
	int         rv = DSC_EPROTO;
	if (!json_is_object(obj)) {
		goto fail;
	}
	if ((rv = get_bytes(obj, "key", &kv.key)) != 0
	    || (rv = get_bytes(obj, "value", &kv.value)) != 0
	    || (rv = dsi_etcdj_int64(obj, "create_revision", &kv.create_revision)) != 0
	    || (rv = dsi_etcdj_int64(obj, "mod_revision", &kv.mod_revision)) != 0
	    || (rv = dsi_etcdj_int64(obj, "version", &kv.version)) != 0
	    || (rv = dsi_etcdj_int64(obj, "lease", &kv.lease)) != 0) {
		goto fail;
	}
	*out = kv;
	return 0;
fail:
	dsi_etcd_kv_clear(&kv);
	return rv;
}

static void
kvs_free(dsi_etcd_kv *kvs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dsi_etcd_kv_clear(&kvs[i]);
	}
	free(kvs);
}

/* obj[field], an array of kvs or absent (none). */
static int
get_kvs(const json_t *obj, const char *field, dsi_etcd_kv **out, size_t *n_out)
{
	const json_t *a = json_object_get(obj, field);
	size_t        n = a != NULL ? json_array_size(a) : 0;
	dsi_etcd_kv  *kvs;
	if (a != NULL && !json_is_array(a)) {
		return DSC_EPROTO;
	}
	*out   = NULL;
	*n_out = 0;
	if (n == 0) {
		return 0;
	}
	if ((kvs = calloc(n, sizeof(*kvs))) == NULL) {
		return DSC_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int rv = dsi_etcdj_kv(json_array_get(a, i), &kvs[i]);
		if (rv != 0) {
			kvs_free(kvs, i);
			return rv;
		}
	}
	*out   = kvs;
	*n_out = n;
	return 0;
}

static int
header_revision(const json_t *root, int64_t *rev)
{
	return dsi_etcdj_int64(json_object_get(root, "header"), "revision", rev);
}

void
dsi_etcd_range_resp_free(dsi_etcd_range_resp *r)
{
	kvs_free(r->kvs, r->n_kvs);
	memset(r, 0, sizeof(*r));
}

int
dsi_etcdj_range_resp(const json_t *root, dsi_etcd_range_resp *out, dsc_error *err)
{
	dsi_etcd_range_resp r = { 0 };
	int                 rv;
	if ((rv = dsi_etcdj_error(root, err)) != 0) {
		return rv;
	}
	if ((rv = header_revision(root, &r.revision)) != 0
	    || (rv = dsi_etcdj_int64(root, "count", &r.count)) != 0
	    || (rv = get_kvs(root, "kvs", &r.kvs, &r.n_kvs)) != 0) {
		return dsi_etcd_fail(err, rv, "etcd: malformed range answer");
	}
	r.more = json_is_true(json_object_get(root, "more"));
	*out   = r;
	return 0;
}

void
dsi_etcd_txn_resp_free(dsi_etcd_txn_resp *r)
{
	for (size_t i = 0; i < r->n_results; i++) {
		kvs_free(r->results[i].kvs, r->results[i].n_kvs);
	}
	free(r->results);
	memset(r, 0, sizeof(*r));
}

/* {"response_range":{...}} | {"response_put":{...}} | {"response_delete_range":{...}} */
static int
op_result(const json_t *w, dsi_etcd_op_result *out)
{
	const json_t *o;
	int           rv;
	memset(out, 0, sizeof(*out));
	if ((o = json_object_get(w, "response_range")) != NULL) {
		out->type = DSI_ETCD_OP_RANGE;
		out->more = json_is_true(json_object_get(o, "more"));
		if ((rv = dsi_etcdj_int64(o, "count", &out->count)) != 0) {
			return rv;
		}
		return get_kvs(o, "kvs", &out->kvs, &out->n_kvs);
	}
	if ((o = json_object_get(w, "response_delete_range")) != NULL) {
		out->type = DSI_ETCD_OP_DELETE;
		if ((rv = dsi_etcdj_int64(o, "deleted", &out->deleted)) != 0) {
			return rv;
		}
		return get_kvs(o, "prev_kvs", &out->kvs, &out->n_kvs);
	}
	if ((o = json_object_get(w, "response_put")) != NULL) {
		const json_t *prev = json_object_get(o, "prev_kv");
		out->type          = DSI_ETCD_OP_PUT;
		if (prev == NULL) {
			return 0;
		}
		if ((out->kvs = calloc(1, sizeof(*out->kvs))) == NULL) {
			return DSC_ENOMEM;
		}
		if ((rv = dsi_etcdj_kv(prev, out->kvs)) != 0) {
			free(out->kvs);
			out->kvs = NULL;
			return rv;
		}
		out->n_kvs = 1;
		return 0;
	}
	return DSC_EPROTO;
}

int
dsi_etcdj_txn_resp(const json_t *root, dsi_etcd_txn_resp *out, dsc_error *err)
{
	dsi_etcd_txn_resp r = { 0 };
	const json_t     *a = json_object_get(root, "responses");
	size_t            n = json_array_size(a);
	int               rv;
	if ((rv = dsi_etcdj_error(root, err)) != 0) {
		return rv;
	}
	/* A txn whose compares failed has no "succeeded" at all (false is the default). */
	r.succeeded = json_is_true(json_object_get(root, "succeeded"));
	if ((rv = header_revision(root, &r.revision)) != 0
	    || (a != NULL && !json_is_array(a) && (rv = DSC_EPROTO) != 0)) {
		goto fail;
	}
	if (n > 0 && (r.results = calloc(n, sizeof(*r.results))) == NULL) {
		rv = DSC_ENOMEM;
		goto fail;
	}
	for (; r.n_results < n; r.n_results++) {
		if ((rv = op_result(json_array_get(a, r.n_results), &r.results[r.n_results]))
		    != 0) {
			goto fail;
		}
	}
	*out = r;
	return 0;
fail:
	dsi_etcd_txn_resp_free(&r);
	return dsi_etcd_fail(err, rv, "etcd: malformed txn answer");
}

int
dsi_etcdj_lease_resp(
    const json_t *root, int64_t *id, int64_t *ttl, int64_t *granted, dsc_error *err)
{
	int64_t i, t, g;
	int     rv;
	if ((rv = dsi_etcdj_error(root, err)) != 0) {
		return rv;
	}
	if (dsi_etcdj_int64(root, "ID", &i) != 0 || dsi_etcdj_int64(root, "TTL", &t) != 0
	    || dsi_etcdj_int64(root, "grantedTTL", &g) != 0) {
		return dsi_etcd_fail(err, DSC_EPROTO, "etcd: malformed lease answer");
	}
	if (id != NULL) {
		*id = i;
	}
	if (ttl != NULL) {
		*ttl = t;
	}
	if (granted != NULL) {
		*granted = g;
	}
	return 0;
}

void
dsi_etcd_watch_resp_free(dsi_etcd_watch_resp *r)
{
	for (size_t i = 0; i < r->n_events; i++) {
		dsi_etcd_kv_clear(&r->events[i].kv);
		dsi_etcd_kv_clear(&r->events[i].prev_kv);
	}
	free(r->events);
	free(r->cancel_reason);
	memset(r, 0, sizeof(*r));
}

static int
event(const json_t *o, dsi_etcd_event *ev)
{
	const json_t *type = json_object_get(o, "type"), *prev = json_object_get(o, "prev_kv");
	int           rv;
	/* PUT is the default, so a PUT event has no "type". */
	if (type == NULL || (json_is_string(type) && strcmp(json_string_value(type), "PUT") == 0)) {
		ev->type = DSI_ETCD_EVENT_PUT;
	} else if (json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0) {
		ev->type = DSI_ETCD_EVENT_DELETE;
	} else {
		return DSC_EPROTO;
	}
	if ((rv = dsi_etcdj_kv(json_object_get(o, "kv"), &ev->kv)) != 0) {
		return rv;
	}
	if (prev != NULL) {
		if ((rv = dsi_etcdj_kv(prev, &ev->prev_kv)) != 0) {
			return rv;
		}
		ev->has_prev = true;
	}
	return 0;
}

int
dsi_etcdj_watch_resp(const json_t *line, dsi_etcd_watch_resp *out, dsc_error *err)
{
	dsi_etcd_watch_resp r   = { 0 };
	const json_t       *res = json_object_get(line, "result"), *a, *reason;
	int                 rv;
	if ((rv = dsi_etcdj_error(line, err)) != 0) {
		return rv;
	}
	if (!json_is_object(res)) {
		return dsi_etcd_fail(err, DSC_EPROTO, "etcd: a watch message without a result");
	}
	a      = json_object_get(res, "events");
	reason = json_object_get(res, "cancel_reason");
	if ((rv = header_revision(res, &r.revision)) != 0
	    || (rv = dsi_etcdj_int64(res, "compact_revision", &r.compact_revision)) != 0
	    || (a != NULL && !json_is_array(a) && (rv = DSC_EPROTO) != 0)) {
		goto fail;
	}
	r.created  = json_is_true(json_object_get(res, "created"));
	r.canceled = json_is_true(json_object_get(res, "canceled"));
	if (json_is_string(reason)
	    && (r.cancel_reason = strdup(json_string_value(reason))) == NULL) {
		rv = DSC_ENOMEM;
		goto fail;
	}
	size_t n = json_array_size(a);
	if (n > 0 && (r.events = calloc(n, sizeof(*r.events))) == NULL) {
		rv = DSC_ENOMEM;
		goto fail;
	}
	for (; r.n_events < n; r.n_events++) {
		/* Counted before parsing: a half-parsed event is freed with the rest. */
		if ((rv = event(json_array_get(a, r.n_events), &r.events[r.n_events])) != 0) {
			r.n_events++;
			goto fail;
		}
	}
	*out = r;
	return 0;
fail:
	dsi_etcd_watch_resp_free(&r);
	return dsi_etcd_fail(err, rv, "etcd: malformed watch message");
}
