/*
 * The watch stream over the gateway: one POST to /v3/watch whose chunked
 * answer never ends by itself, one {"result":...} JSON object per line. It
 * is one-way after the create request (no cancel, no progress request), so
 * a watch is a single HTTP response, driven by a curl multi handle that the
 * caller pumps through dsi_etcd_watch_next.
 */
#include "cluster/etcd_impl.h"
#include "cluster/etcd_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dsi_etcd_watch {
	CURLM       *multi;
	CURL        *easy;
	char        *body;     /* the create request, alive as long as the transfer */
	dsi_etcd_buf in;       /* received bytes not yet returned as messages */
	bool         ended;    /* the transfer is over (or was detached by us) */
	CURLcode     end_code; /* how it ended, when ended by curl */
	char         endpoint[260];
};

/* Stops the transfer: the response is closed from our side. */
static void
detach(dsi_etcd_watch *w)
{
	if (w->easy != NULL) {
		curl_multi_remove_handle(w->multi, w->easy);
		curl_easy_cleanup(w->easy);
		w->easy = NULL;
	}
	w->ended = true;
}

void
dsi_etcd_watch_close(dsi_etcd_watch *w)
{
	if (w == NULL) {
		return;
	}
	detach(w);
	if (w->multi != NULL) {
		curl_multi_cleanup(w->multi);
	}
	free(w->body);
	free(w->in.data);
	free(w);
}

/* Runs the transfer for up to wait_ms (0: only what is ready) and notes its end. */
static void
pump(dsi_etcd_watch *w, int wait_ms)
{
	int      running = 0, queued;
	CURLMsg *msg;
	if (w->ended) {
		return;
	}
	if (wait_ms > 0) {
		curl_multi_poll(w->multi, NULL, 0, wait_ms, NULL);
	}
	curl_multi_perform(w->multi, &running);
	while ((msg = curl_multi_info_read(w->multi, &queued)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			w->ended    = true;
			w->end_code = msg->data.result;
		}
	}
}

/* The first complete line's length (newline excluded), or -1 when none is complete yet. */
static long
line_len(const dsi_etcd_watch *w)
{
	const char *nl = w->in.len > 0 ? memchr(w->in.data, '\n', w->in.len) : NULL;
	return nl != NULL ? nl - w->in.data : -1;
}

/*
 * The next message within timeout_ms: 0 with *out, DSC_ETIMEDOUT, or the
 * end of the stream. A message is only ever taken whole, up to its newline;
 * the gateway writes the newline after each message, so a final message
 * without one is also taken once the transfer is over.
 */
static int
next_message(dsi_etcd_watch *w, int timeout_ms, dsi_etcd_watch_resp *out, dsc_error *err)
{
	int64_t deadline = dsi_etcd_now_ms() + timeout_ms;
	for (;;) {
		long n = line_len(w);
		if (n < 0 && w->ended && w->in.overflow) {
			return dsi_etcd_fail(err, DSC_ELIMIT,
			    "etcd %s: a watch message over %u bytes", w->endpoint,
			    DSI_ETCD_MAX_ANSWER);
		}
		if (n < 0 && w->ended && w->in.len > 0) {
			n = (long) w->in.len;
		}
		if (n == 0 || (n > 0 && strspn(w->in.data, " \r\t") == (size_t) n)) {
			dsi_etcd_buf_consume(&w->in, (size_t) n + (w->in.len > (size_t) n));
			continue; /* blank line */
		}
		if (n > 0) {
			json_t *line = NULL;
			int     rv   = dsi_etcdj_parse(w->in.data, (size_t) n, &line, err);
			dsi_etcd_buf_consume(&w->in, (size_t) n + (w->in.len > (size_t) n));
			if (rv == 0) {
				rv = dsi_etcdj_watch_resp(line, out, err);
			}
			json_decref(line);
			if (rv != 0 || out->canceled) {
				/* etcd keeps a canceled response open: close it ourselves. */
				detach(w);
			}
			return rv;
		}
		if (w->ended) {
			if (w->easy == NULL || w->end_code == CURLE_OK) {
				return dsi_etcd_fail(err, DSC_ECLOSED,
				    "etcd %s: the watch stream ended", w->endpoint);
			}
			char reason[CURL_ERROR_SIZE + 96];
			dsi_etcd_why(&w->in, w->end_code, reason, sizeof(reason));
			return dsi_etcd_fail(err,
			    dsi_etcd_unsent(&w->in) ? DSC_ECONNREFUSED : DSC_ETRANSPORT,
			    "etcd %s: watch: %s", w->endpoint, reason);
		}
		int64_t left = deadline - dsi_etcd_now_ms();
		if (left <= 0) {
			return dsi_etcd_fail(err, DSC_ETIMEDOUT,
			    "etcd %s: no watch message within %d ms", w->endpoint, timeout_ms);
		}
		pump(w, (int) (left < 1000 ? left : 1000));
	}
}

/* One attempt on endpoint ep; *retry set when another endpoint may be tried. */
static int
open_on(dsi_etcd *e, const char *ep, const char *body, int connect_ms, int timeout_ms,
    dsi_etcd_watch **out, bool *retry, dsc_error *err)
{
	dsi_etcd_watch     *w = calloc(1, sizeof(*w));
	dsi_etcd_watch_resp created;
	int                 rv;
	*retry = false;
	if (w == NULL || (w->body = strdup(body)) == NULL || (w->multi = curl_multi_init()) == NULL
	    || (w->easy = curl_easy_init()) == NULL) {
		rv = dsi_etcd_fail(err, DSC_ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(w->endpoint, sizeof(w->endpoint), "%s", ep);
	dsi_etcd_setup(e, w->easy, ep, "/v3/watch", w->body, &w->in);
	/* No overall timeout: the stream is meant to last. Connecting is bounded. */
	curl_easy_setopt(w->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) connect_ms);
	if (curl_multi_add_handle(w->multi, w->easy) != CURLM_OK) {
		rv = dsi_etcd_fail(err, DSC_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rv = next_message(w, timeout_ms, &created, err)) != 0) {
		/* Nothing sent, or refused by a member without quorum: both safe to retry. */
		*retry = (w->ended && w->easy != NULL && dsi_etcd_unsent(&w->in))
		    || (rv == DSC_EUNAVAILABLE
		        && strstr(err->message, "etcdserver: no leader") != NULL);
		goto fail;
	}
	bool ok = created.created;
	dsi_etcd_watch_resp_free(&created);
	if (!ok) {
		rv = dsi_etcd_fail(
		    err, DSC_EPROTO, "etcd %s: the watch began without \"created\"", ep);
		goto fail;
	}
	*out = w;
	return 0;
fail:
	dsi_etcd_watch_close(w);
	return rv;
}

int
dsi_etcd_watch_open(
    dsi_etcd *e, const dsi_etcd_watch_req *req, dsi_etcd_watch **out, dsc_error *err)
{
	dsc_error local    = { 0 };
	json_t   *j        = dsi_etcdj_watch_req(req);
	char     *body     = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	int       rv       = DSC_ECONNREFUSED;
	int64_t   deadline = dsi_etcd_now_ms() + e->timeout_ms;
	json_decref(j);
	if (body == NULL) {
		return dsi_etcd_fail(err, DSC_ENOMEM, "out of memory");
	}
	if (err == NULL) {
		err = &local; /* open_on reads each attempt's message */
	}
	/* The handle's lock only guards the endpoint choice; the stream is the watch's own. */
	pthread_mutex_lock(&e->lock);
	size_t first = e->current, n = e->n_endpoints;
	pthread_mutex_unlock(&e->lock);
	for (size_t i = 0; i < n; i++) {
		size_t  at   = (first + i) % n;
		int64_t left = deadline - dsi_etcd_now_ms();
		bool    retry;
		if (left <= 0) {
			rv = dsi_etcd_fail(err, DSC_ETIMEDOUT,
			    "etcd: no watch created within %d ms", e->timeout_ms);
			break;
		}
		/* Each endpoint left gets an equal share of the time left to connect. */
		rv = open_on(e, e->endpoints[at], body, (int) (left / (int64_t) (n - i)),
		    (int) left, out, &retry, err);
		if (rv == 0 || !retry) {
			if (rv == 0) {
				pthread_mutex_lock(&e->lock);
				e->current = at;
				pthread_mutex_unlock(&e->lock);
			}
			break;
		}
	}
	if (rv != 0) {
		dsi_etcd_next_endpoint(e); /* the next try starts elsewhere */
	}
	free(body);
	return rv;
}

int
dsi_etcd_watch_next(dsi_etcd_watch *w, int timeout_ms, dsi_etcd_watch_resp *out, dsc_error *err)
{
	return next_message(w, timeout_ms, out, err);
}
