/*
 * Dialing for libdiscovery: TLS configurations from dsc_tls_options, the
 * background dial every socket uses, and the bounded probe that turns a
 * silent background failure into a reason (refused, timed out, TLS).
 */
#include "client/dial.h"

#include <stdio.h>

#include "client/error.h"
#include "common/nngutil.h"
#include "common/timeutil.h"
#include "common/tls.h"

int
dsi_client_tls(
    nng_tls_config **out, const char *url, const dsc_tls_options *o, char *why, size_t why_len)
{
	dsc_tls_options none = { NULL, NULL, NULL, NULL };
	nng_url        *u    = NULL;
	int             rv;

	*out = NULL;
	if (!dsi_url_is_tls(url)) {
		return 0;
	}
	if (o == NULL) {
		o = &none;
	}
	/* nng's own default is the URL's host too, but only without a config of ours. */
	if (o->server_name == NULL && (rv = nng_url_parse(&u, url)) != 0) {
		snprintf(why, why_len, "%s: %s", url, nng_strerror(rv));
		return rv == NNG_ENOMEM ? DSC_ENOMEM : DSC_EINVAL;
	}
	dsi_tls_files f = {
		.ca          = o->ca_file,
		.cert        = o->cert_file,
		.key         = o->key_file,
		.server_name = o->server_name != NULL ? o->server_name : u->u_hostname,
	};
	rv = dsi_tls_config(out, NNG_TLS_MODE_CLIENT, &f, why, why_len);
	if (u != NULL) {
		nng_url_free(u);
	}
	return rv;
}

int
dsc_tls_check(const dsc_tls_options *tls, dsc_error *err)
{
	nng_tls_config *cfg;
	char            why[512];
	int             rv;

	if (tls == NULL) {
		return dsi_fail(err, DSC_EINVAL, "no TLS options given");
	}
	/* Any name will do: names are checked in handshakes, and this makes none. */
	dsc_tls_options o = *tls;
	if (o.server_name == NULL) {
		o.server_name = "localhost";
	}
	if ((rv = dsi_client_tls(&cfg, "tls+tcp://localhost:1", &o, why, sizeof(why))) != 0) {
		return dsi_fail(err, rv, "%s", why);
	}
	nng_tls_config_free(cfg);
	return 0;
}

int
dsi_dial(nng_socket sock, const char *url, nng_tls_config *tls)
{
	return dsi_dial_id(sock, url, tls, NULL);
}

int
dsi_dial_id(nng_socket sock, const char *url, nng_tls_config *tls, nng_dialer *out)
{
	nng_dialer d;
	int        rv;

	if ((rv = nng_dialer_create(&d, sock, url)) != 0) {
		return dsi_err_from_nng(rv);
	}
	if (out != NULL) {
		*out = d; /* before any pipe of it can exist */
	}
	/* The dialer holds the configuration from here on. */
	if ((tls != NULL && (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls)) != 0)
	    || (rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
		nng_dialer_close(d);
		return dsi_err_from_nng(rv);
	}
	return 0;
}

int
dsi_probe(const char *url, nng_tls_config *tls, int32_t timeout_ms)
{
	nng_stream_dialer *sd;
	nng_stream        *s = NULL;
	nng_aio           *aio;
	char               hdr[8];
	nng_iov            iov      = { hdr, sizeof(hdr) };
	int64_t            deadline = dsi_monotonic_ms() + timeout_ms;
	int                rv;

	if (nng_stream_dialer_alloc(&sd, url) != 0) {
		return 0;
	}
	if (tls != NULL && (rv = nng_stream_dialer_set_ptr(sd, NNG_OPT_TLS_CONFIG, tls)) != 0) {
		nng_stream_dialer_free(sd);
		return dsi_err_from_nng(rv);
	}
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		nng_stream_dialer_free(sd);
		return dsi_err_from_nng(rv);
	}
	nng_aio_set_timeout(aio, timeout_ms);
	nng_stream_dialer_dial(sd, aio);
	nng_aio_wait(aio);
	rv = dsi_err_from_nng(nng_aio_result(aio));
	if (rv == 0) {
		s = nng_aio_get_output(aio, 0);
		if (tls != NULL) {
			/*
			 * The dial connected TCP only: the handshake runs on the first
			 * read, and a server that completes it sends its SP header.
			 */
			int64_t left = deadline - dsi_monotonic_ms();
			nng_aio_set_iov(aio, 1, &iov);
			nng_aio_set_timeout(aio, left > 0 ? (nng_duration) left : 1);
			nng_stream_recv(s, aio);
			nng_aio_wait(aio);
			rv = nng_aio_result(aio);
			rv = rv == 0 ? 0 : rv == NNG_ETIMEDOUT ? DSC_ETIMEDOUT : DSC_ETLS;
		}
	}
	nng_aio_free(aio);
	/*
	 * The dialer before the stream: nng 1.5.2 counts the dialer's references
	 * with atomics ThreadSanitizer cannot see, and the stream's release (on
	 * nng's reaper thread) may drop the last one. In this order our last use
	 * of the dialer precedes the hand-off to the reaper, which TSan does see.
	 */
	nng_stream_dialer_free(sd);
	if (s != NULL) {
		nng_stream_free(s);
	}
	return rv;
}
