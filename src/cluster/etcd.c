/*
 * The etcd client handle and its unary calls over the JSON gateway: one
 * POST per call, failing over to the next endpoint only when nothing
 * reached the current one (a request that was sent is never resent: its
 * outcome is unknown, and the caller decides whether to read back).
 */
#include "cluster/etcd_impl.h"
#include "cluster/etcd_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
dsi_etcd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t
dsi_etcd_buf_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	dsi_etcd_buf *b = userdata;
	size_t        n = size * nmemb;
	if (b->len + n > DSI_ETCD_MAX_ANSWER) {
		b->overflow = true;
		return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap > 0 ? b->cap : 4096;
		while (cap < b->len + n + 1) {
			cap *= 2;
		}
		char *d = realloc(b->data, cap);
		if (d == NULL) {
			return 0;
		}
		b->data = d;
		b->cap  = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = 0;
	return n;
}

void
dsi_etcd_buf_consume(dsi_etcd_buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = 0;
}

/*
 * libcurl reports request headers here once they are written to a socket,
 * and (OpenSSL's trace) each TLS alert as "TLSv1.3 (IN), TLS alert, NAME (N):"
 * and a certificate request as "... (IN), TLS handshake, Request CERT (13):".
 */
static int
note_sent(CURL *easy, curl_infotype type, char *data, size_t size, void *userdata)
{
	static const char alert[] = "(IN), TLS alert, ";
	dsi_etcd_buf     *b       = userdata;
	(void) easy;
	if (type == CURLINFO_HEADER_OUT || type == CURLINFO_DATA_OUT) {
		b->sent = true;
	}
	if (type == CURLINFO_HEADER_IN) {
		b->answered = true;
	}
	if (type == CURLINFO_TEXT && size < 256) {
		char line[256];
		memcpy(line, data, size);
		line[size]      = 0;
		const char *at  = strstr(line, alert);
		const char *end = at != NULL ? strstr(at, " (") : NULL;
		if (!b->have_cert && strstr(line, "(IN), TLS handshake, Request CERT") != NULL) {
			b->cert_missing = true;
		}
		if (strncmp(line, "SSL connection using ", 21) == 0) {
			b->handshake_done = true;
		}
		if (end != NULL) {
			at += sizeof(alert) - 1;
			snprintf(b->alert, sizeof(b->alert), "%.*s", (int) (end - at), at);
		}
	}
	return 0;
}

void
dsi_etcd_setup(dsi_etcd *e, CURL *easy, const char *endpoint, const char *path, const char *body,
    dsi_etcd_buf *into)
{
	char url[512];
	snprintf(url, sizeof(url), "%s%s", endpoint, path);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	/* Never from one scheme to the other: a TLS list is never spoken to in the clear. */
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, e->https ? "https" : "http");
	if (e->https) {
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
		if (e->tls.ca_file != NULL) {
			/* Only the given CAs: with the system's, any public CA could vouch. */
			curl_easy_setopt(easy, CURLOPT_CAINFO, e->tls.ca_file);
			curl_easy_setopt(easy, CURLOPT_CAPATH, NULL);
		}
		if (e->tls.cert_file != NULL) {
			curl_easy_setopt(easy, CURLOPT_SSLCERT, e->tls.cert_file);
			curl_easy_setopt(easy, CURLOPT_SSLKEY, e->tls.key_file);
		}
	}
	into->errmsg[0]      = 0;
	into->alert[0]       = 0;
	into->cert_missing   = false;
	into->handshake_done = false;
	into->answered       = false;
	into->have_cert      = e->tls.cert_file != NULL;
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, into->errmsg);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, dsi_etcd_buf_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, into);
	/* Verbose only to learn, through the debug callback, whether the request went out. */
	curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, note_sent);
	curl_easy_setopt(easy, CURLOPT_DEBUGDATA, into);
	/* Long watches and idle kept-alive connections notice a vanished peer. */
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 10L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 5L);
}

bool
dsi_etcd_unsent(const dsi_etcd_buf *b)
{
	return !b->sent;
}

void
dsi_etcd_why(const dsi_etcd_buf *b, CURLcode rc, char *out, size_t len)
{
	const char *hint = "";
	if (b->cert_missing) {
		hint = " (etcd asked for a TLS client certificate, and none is configured)";
	} else if (b->have_cert && b->handshake_done && !b->answered
	    && rc != CURLE_OPERATION_TIMEDOUT) {
		hint = " (etcd hung up after the TLS handshake: does it trust the CA that signed "
		       "this node's client certificate?)";
	}
	/* Pieces joined and cut at len (snprintf's truncation warning at -O2 otherwise). */
	const char *parts[] = { b->errmsg[0] != 0 ? b->errmsg : curl_easy_strerror(rc),
		b->alert[0] != 0 ? " (etcd sent the TLS alert \"" : "", b->alert,
		b->alert[0] != 0 ? "\")" : "", hint };
	size_t n = 0;
	if (len == 0) {
		return;
	}
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t k = strlen(parts[i]);
		k        = k < len - 1 - n ? k : len - 1 - n;
		memcpy(out + n, parts[i], k);
		n += k;
	}
	out[n] = 0;
}

static char *
dup_or_null(const char *s, bool *failed)
{
	char *d = s != NULL ? strdup(s) : NULL;
	*failed = *failed || (s != NULL && d == NULL);
	return d;
}

int
dsi_etcd_tls_copy(dsi_etcd_tls *dst, const dsi_etcd_tls *src)
{
	bool failed = false;
	memset(dst, 0, sizeof(*dst));
	if (src != NULL) {
		dst->ca_file   = dup_or_null(src->ca_file, &failed);
		dst->cert_file = dup_or_null(src->cert_file, &failed);
		dst->key_file  = dup_or_null(src->key_file, &failed);
	}
	if (failed) {
		dsi_etcd_tls_clear(dst);
		return DSC_ENOMEM;
	}
	return 0;
}

void
dsi_etcd_tls_clear(dsi_etcd_tls *t)
{
	/* The copy's strings are its own (dsi_etcd_tls_copy); const only for callers' literals. */
	free((char *) t->ca_file);
	free((char *) t->cert_file);
	free((char *) t->key_file);
	memset(t, 0, sizeof(*t));
}

/* Splits endpoints into e's list: 0, or a DSC_ code with msg set. */
static int
parse_endpoints(dsi_etcd *e, char *list, const char **msg)
{
	char *save = NULL;
	*msg       = "etcd endpoints must be 1 to 16 comma-separated http://host:port URLs";
	for (char *tok = strtok_r(list, ",", &save); tok != NULL;
	     tok       = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(tok);
		while (n > 0 && tok[n - 1] == '/') {
			tok[--n] = 0;
		}
		bool https = strncmp(tok, "https://", 8) == 0;
		if ((strncmp(tok, "http://", 7) != 0 && !https)
		    || e->n_endpoints == DSI_ETCD_MAX_ENDPOINTS || n > 256) {
			return DSC_EINVAL;
		}
		if (e->n_endpoints > 0 && https != e->https) {
			*msg = "etcd endpoints must all be http:// or all https://, not a mix";
			return DSC_EINVAL;
		}
		e->https = https;
		if ((e->endpoints[e->n_endpoints] = strdup(tok)) == NULL) {
			*msg = "out of memory";
			return DSC_ENOMEM;
		}
		e->n_endpoints++;
	}
	if (e->n_endpoints == 0) {
		return DSC_EINVAL;
	}
	if (!e->https && (e->tls.ca_file != NULL || e->tls.cert_file != NULL)) {
		*msg = "etcd TLS files are given, but the endpoints are http://, not https://";
		return DSC_EINVAL;
	}
	if ((e->tls.cert_file == NULL) != (e->tls.key_file == NULL)) {
		*msg = "an etcd client certificate needs both its certificate and its key file";
		return DSC_EINVAL;
	}
	return 0;
}

int
dsi_etcd_open(dsi_etcd **out, const char *endpoints, int timeout_ms, dsc_error *err)
{
	return dsi_etcd_open_tls(out, endpoints, timeout_ms, NULL, err);
}

int
dsi_etcd_open_tls(
    dsi_etcd **out, const char *endpoints, int timeout_ms, const dsi_etcd_tls *tls, dsc_error *err)
{
	dsi_etcd   *e    = calloc(1, sizeof(*e));
	char       *list = NULL;
	const char *msg  = "out of memory";
	int         rv   = DSC_ENOMEM;
	if (e == NULL) {
		return dsi_etcd_fail(err, DSC_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&e->lock, NULL);
	e->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	if (dsi_etcd_tls_copy(&e->tls, tls) != 0) {
		goto fail;
	}
	if (endpoints == NULL || (list = strdup(endpoints)) == NULL) {
		rv  = endpoints == NULL ? DSC_EINVAL : DSC_ENOMEM;
		msg = endpoints == NULL ? "no etcd endpoints" : msg;
		goto fail;
	}
	if ((rv = parse_endpoints(e, list, &msg)) != 0) {
		goto fail;
	}
	rv                   = DSC_ENOMEM;
	msg                  = "out of memory";
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	/* Without it a member that lost quorum leaves calls and watches hanging silently. */
	struct curl_slist *h2
	    = h != NULL ? curl_slist_append(h, "Grpc-Metadata-hasleader: true") : NULL;
	if (h2 == NULL) {
		curl_slist_free_all(h);
		goto fail;
	}
	/* No "Expect: 100-continue" on large bodies: a round trip for nothing. */
	struct curl_slist *h3 = curl_slist_append(h2, "Expect:");
	if (h3 == NULL) {
		curl_slist_free_all(h2);
		goto fail;
	}
	e->headers = h3;
	if ((e->easy = curl_easy_init()) == NULL) {
		goto fail;
	}
	free(list);
	*out = e;
	return 0;
fail:
	free(list);
	dsi_etcd_close(e);
	return dsi_etcd_fail(err, rv, "%s", msg);
}

void
dsi_etcd_close(dsi_etcd *e)
{
	if (e == NULL) {
		return;
	}
	for (size_t i = 0; i < e->n_endpoints; i++) {
		free(e->endpoints[i]);
	}
	if (e->easy != NULL) {
		curl_easy_cleanup(e->easy);
	}
	curl_slist_free_all(e->headers);
	dsi_etcd_tls_clear(&e->tls);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

const char *
dsi_etcd_endpoint(const dsi_etcd *e)
{
	return e->endpoints[e->current];
}

/*
 * POSTs body (consumed) to path and parses the answer into *answer (the
 * caller's; it may be etcd's error, which the caller's parser reports).
 * The next endpoint is tried when nothing was sent, or when etcd refused
 * with "no leader" (before handling anything). The whole call, every endpoint tried included, ends
 * within the handle's timeout; each endpoint gets an equal share of what is left to connect.
 */
static int
call(dsi_etcd *e, const char *path, json_t *body, json_t **answer, dsc_error *err)
{
	char        *text     = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	dsi_etcd_buf buf      = { 0 };
	int64_t      deadline = dsi_etcd_now_ms() + e->timeout_ms;
	int          rv       = DSC_ECONNREFUSED;
	char         why[512] = "";
	json_decref(body);
	if (text == NULL) {
		return dsi_etcd_fail(err, DSC_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&e->lock);
	for (size_t tried = 0; tried < e->n_endpoints; tried++) {
		const char *ep   = e->endpoints[e->current];
		int64_t     left = deadline - dsi_etcd_now_ms();
		if (left <= 0) {
			rv = dsi_etcd_fail(err, DSC_ETIMEDOUT, "etcd: no answer within %d ms (%s)",
			    e->timeout_ms, why[0] != 0 ? why : "no endpoint tried");
			goto done;
		}
		buf.len  = 0;
		buf.sent = false;
		curl_easy_reset(e->easy);
		dsi_etcd_setup(e, e->easy, ep, path, text, &buf);
		curl_easy_setopt(e->easy, CURLOPT_TIMEOUT_MS, (long) left);
		curl_easy_setopt(
		    e->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) (left / (e->n_endpoints - tried)));
		CURLcode rc = curl_easy_perform(e->easy);
		if (rc == CURLE_OK) {
			if (buf.data == NULL) {
				rv = dsi_etcd_fail(err, DSC_EPROTO, "etcd %s: an empty answer", ep);
				goto done;
			}
			rv = dsi_etcdj_parse(buf.data, buf.len, answer, err);
			if (rv != 0 || tried + 1 == e->n_endpoints
			    || !dsi_etcdj_no_leader(*answer)) {
				goto done;
			}
			/* Refused unhandled by a member without quorum: another may have one. */
			json_decref(*answer);
			*answer = NULL;
			snprintf(why, sizeof(why), "%s: no leader", ep);
			e->current = (e->current + 1) % e->n_endpoints;
			continue;
		}
		char reason[CURL_ERROR_SIZE + 96];
		dsi_etcd_why(&buf, rc, reason, sizeof(reason));
		snprintf(why, sizeof(why), "%s: %s", ep, reason);
		if (!dsi_etcd_unsent(&buf)) {
			/* The request may have reached etcd: its outcome is unknown. */
			rv = rc == CURLE_OPERATION_TIMEDOUT ? DSC_ETIMEDOUT
			    : buf.overflow                  ? DSC_ELIMIT
			                                    : DSC_ETRANSPORT;
			rv = dsi_etcd_fail(err, rv, "etcd %s (the outcome is unknown)", why);
			/*
			 * Not resent; but the next call starts at the next member, so
			 * that a stopped or cut-off member costs one timeout, not one
			 * per call for as long as it stays silent.
			 */
			if (e->n_endpoints > 1) {
				e->current = (e->current + 1) % e->n_endpoints;
			}
			goto done;
		}
		e->current = (e->current + 1) % e->n_endpoints;
	}
	rv = dsi_etcd_fail(err, DSC_ECONNREFUSED, "etcd: no endpoint reachable (last: %s)", why);
done:
	pthread_mutex_unlock(&e->lock);
	free(buf.data);
	free(text);
	return rv;
}

void
dsi_etcd_next_endpoint(dsi_etcd *e)
{
	pthread_mutex_lock(&e->lock);
	e->current = (e->current + 1) % e->n_endpoints;
	pthread_mutex_unlock(&e->lock);
}

int
dsi_etcd_range(dsi_etcd *e, const dsi_etcd_range_req *req, dsi_etcd_range_resp *out, dsc_error *err)
{
	json_t *answer = NULL, *body = dsi_etcdj_range_req(req);
	int     rv = body != NULL ? call(e, "/v3/kv/range", body, &answer, err)
	                          : dsi_etcd_fail(err, DSC_ENOMEM, "out of memory");
	if (rv == 0) {
		rv = dsi_etcdj_range_resp(answer, out, err);
	}
	json_decref(answer);
	return rv;
}

int
dsi_etcd_txn(dsi_etcd *e, const dsi_etcd_txn_req *req, dsi_etcd_txn_resp *out, dsc_error *err)
{
	json_t *answer = NULL, *body = dsi_etcdj_txn_req(req);
	int     rv = body != NULL ? call(e, "/v3/kv/txn", body, &answer, err)
	                          : dsi_etcd_fail(err, DSC_ENOMEM, "out of memory");
	if (rv == 0) {
		rv = dsi_etcdj_txn_resp(answer, out, err);
	}
	json_decref(answer);
	return rv;
}

/* A call whose answer is a lease answer (or only a header). */
static int
lease_call(dsi_etcd *e, const char *path, json_t *body, int64_t *id, int64_t *ttl, int64_t *granted,
    dsc_error *err)
{
	json_t *answer = NULL;
	int     rv     = body != NULL ? call(e, path, body, &answer, err)
	                              : dsi_etcd_fail(err, DSC_ENOMEM, "out of memory");
	if (rv == 0) {
		rv = dsi_etcdj_lease_resp(answer, id, ttl, granted, err);
	}
	json_decref(answer);
	return rv;
}

int
dsi_etcd_compact(dsi_etcd *e, int64_t revision, dsc_error *err)
{
	json_t *body = dsi_etcdj_numbers("revision", revision, NULL, 0);
	/* physical: return only once the old revisions are really gone. */
	if (body != NULL && json_object_set_new(body, "physical", json_true()) != 0) {
		json_decref(body);
		body = NULL;
	}
	return lease_call(e, "/v3/kv/compaction", body, NULL, NULL, NULL, err);
}

int
dsi_etcd_lease_grant(
    dsi_etcd *e, int64_t ttl_s, int64_t id, int64_t *id_out, int64_t *ttl_out, dsc_error *err)
{
	int64_t got_id, got_ttl;
	int     rv = lease_call(e, "/v3/lease/grant", dsi_etcdj_numbers("TTL", ttl_s, "ID", id),
	        &got_id, &got_ttl, NULL, err);
	if (rv == 0) {
		*id_out  = got_id;
		*ttl_out = got_ttl;
	}
	return rv;
}

int
dsi_etcd_lease_keepalive(dsi_etcd *e, int64_t id, int64_t *ttl_out, dsc_error *err)
{
	json_t *answer = NULL, *result;
	int64_t ttl    = 0;
	int rv = call(e, "/v3/lease/keepalive", dsi_etcdj_numbers("ID", id, NULL, 0), &answer, err);
	if (rv != 0) {
		return rv;
	}
	/* A stream of one: {"result":{...,"TTL":"n"}}, or {"error":{...}} in the stream shape. */
	if ((rv = dsi_etcdj_error(answer, err)) == 0) {
		result = json_object_get(answer, "result");
		rv     = dsi_etcdj_lease_resp(result, NULL, &ttl, NULL, err);
	}
	json_decref(answer);
	if (rv == 0 && ttl <= 0) {
		/* etcd answers an unknown lease with TTL 0 (left out), not with an error. */
		rv = dsi_etcd_fail(
		    err, DSC_ENOTFOUND, "etcd: lease %lld not found", (long long) id);
	}
	if (rv == 0) {
		*ttl_out = ttl;
	}
	return rv;
}

int
dsi_etcd_lease_revoke(dsi_etcd *e, int64_t id, dsc_error *err)
{
	return lease_call(
	    e, "/v3/lease/revoke", dsi_etcdj_numbers("ID", id, NULL, 0), NULL, NULL, NULL, err);
}

int
dsi_etcd_lease_ttl(dsi_etcd *e, int64_t id, int64_t *ttl_out, int64_t *granted_out, dsc_error *err)
{
	int64_t ttl, granted;
	int rv = lease_call(e, "/v3/lease/timetolive", dsi_etcdj_numbers("ID", id, NULL, 0), NULL,
	    &ttl, &granted, err);
	if (rv == 0 && ttl < 0) {
		/* An expired or revoked lease: TTL -1, not an error. */
		rv = dsi_etcd_fail(
		    err, DSC_ENOTFOUND, "etcd: lease %lld not found", (long long) id);
	}
	if (rv == 0) {
		*ttl_out     = ttl;
		*granted_out = granted;
	}
	return rv;
}

/* obj[field] as uint64 (member IDs): a decimal string, absent meaning 0. */
static int
uint64_field(const json_t *obj, const char *field, uint64_t *out)
{
	const json_t *v = json_object_get(obj, field);
	const char   *s = json_string_value(v);
	char         *end;
	if (v == NULL) {
		*out = 0;
		return 0;
	}
	if (s == NULL || s[0] < '0' || s[0] > '9') {
		return DSC_EPROTO;
	}
	errno                = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno != 0 || *end != 0) {
		return DSC_EPROTO;
	}
	*out = (uint64_t) n;
	return 0;
}

int
dsi_etcd_status(dsi_etcd *e, dsi_etcd_status_resp *out, dsc_error *err)
{
	json_t              *answer = NULL, *header;
	dsi_etcd_status_resp st     = { 0 };
	int                  rv = call(e, "/v3/maintenance/status", json_object(), &answer, err);
	if (rv != 0) {
		return rv;
	}
	if ((rv = dsi_etcdj_error(answer, err)) != 0) {
		goto done;
	}
	header              = json_object_get(answer, "header");
	const char *version = json_string_value(json_object_get(answer, "version"));
	if (!json_is_object(header) || uint64_field(header, "member_id", &st.member_id) != 0
	    || dsi_etcdj_int64(header, "revision", &st.revision) != 0
	    || uint64_field(answer, "leader", &st.leader) != 0
	    || dsi_etcdj_int64(answer, "raftTerm", &st.raft_term) != 0
	    || dsi_etcdj_int64(answer, "raftIndex", &st.raft_index) != 0
	    || dsi_etcdj_int64(answer, "dbSize", &st.db_size) != 0) {
		rv = dsi_etcd_fail(err, DSC_EPROTO, "etcd: a status answer without its numbers");
		goto done;
	}
	snprintf(st.version, sizeof(st.version), "%s", version != NULL ? version : "");
	*out = st;
done:
	json_decref(answer);
	return rv;
}
