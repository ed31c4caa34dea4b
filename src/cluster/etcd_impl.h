/*
 * What etcd.c (the handle and unary calls) and etcd_watch.c (the stream)
 * share: the handle's body, the response buffer and libcurl's set-up.
 */
#ifndef DSI_CLUSTER_ETCD_IMPL_H
#define DSI_CLUSTER_ETCD_IMPL_H

#include <curl/curl.h>
#include <pthread.h>

#include "cluster/etcd.h"

#define DSI_ETCD_MAX_ENDPOINTS 16
/* An answer or one watch message larger than this is refused (etcd's own limit is 1.5 MiB). */
#define DSI_ETCD_MAX_ANSWER (64u << 20)

struct dsi_etcd {
	pthread_mutex_t lock; /* serializes calls; protects current and easy */
	char           *endpoints[DSI_ETCD_MAX_ENDPOINTS]; /* owned, "http://h:p" without a '/' */
	size_t          n_endpoints;
	size_t          current; /* where calls go first; moves on a connection failure */
	int             timeout_ms;
	dsi_etcd_tls    tls;   /* owned copies (dsi_etcd_tls_copy); applied by dsi_etcd_setup */
	bool            https; /* every endpoint is https:// (one scheme for all) */
	CURL           *easy;  /* reused by unary calls, keeping the connection open */
	struct curl_slist *headers; /* owned; Content-Type, hasleader, no Expect */
};

/* A growing byte buffer; data is NUL-terminated when non-NULL. */
typedef struct dsi_etcd_buf {
	char  *data;
	size_t len, cap;
	bool   overflow; /* more than DSI_ETCD_MAX_ANSWER was offered */
	bool   sent;     /* some of the request went out on a connection, this transfer */
	/* libcurl's detailed reason for a failure (a TLS one names the certificate problem). */
	char errmsg[CURL_ERROR_SIZE];
	/*
	 * The last TLS alert etcd sent, e.g. "certificate required": after a
	 * handshake that seemed fine, often all that says why etcd hung up.
	 */
	char alert[64];
	/*
	 * etcd asked for a client certificate and the handle has none: etcd
	 * (--client-cert-auth) then drops the connection, sometimes before
	 * its alert can be read, so this is the reliable clue.
	 */
	bool cert_missing;
	bool have_cert; /* the handle presents a client certificate */
	/*
	 * A new TLS connection was made and nothing came back on it: etcd
	 * hanging up then, to a node with a certificate, is mostly etcd
	 * refusing that certificate (its alert may be lost the same way).
	 */
	bool handshake_done;
	bool answered;
} dsi_etcd_buf;

/* CURLOPT_WRITEFUNCTION appending to the dsi_etcd_buf in userdata. */
size_t dsi_etcd_buf_write(char *ptr, size_t size, size_t nmemb, void *userdata);

/* Drops the first n bytes. */
void dsi_etcd_buf_consume(dsi_etcd_buf *b, size_t n);

/*
 * The options every request shares: URL base + path, body, headers, no
 * signals, TLS (the one place it is applied: unary calls and watches alike);
 * into->sent, into->errmsg and into->alert.
 */
void dsi_etcd_setup(dsi_etcd *e, CURL *easy, const char *endpoint, const char *path,
    const char *body, dsi_etcd_buf *into);

/*
 * Whether a failed transfer into b sent nothing, so another endpoint may be
 * tried. Not "could not connect": libcurl silently retries a request on a
 * fresh connection when a reused one dies before answering, and that retry
 * may be refused although the first attempt reached etcd.
 */
bool dsi_etcd_unsent(const dsi_etcd_buf *b);

/*
 * Why a transfer into b failed with rc, into out: libcurl's detailed
 * message when it gave one, and the TLS alert etcd sent, if any.
 */
void dsi_etcd_why(const dsi_etcd_buf *b, CURLcode rc, char *out, size_t len);

/* Milliseconds on the monotonic clock. */
int64_t dsi_etcd_now_ms(void);

#endif
