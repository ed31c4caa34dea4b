/*
 * Reaching a server: the TLS configuration for a URL, the background dial
 * of a socket, and a bounded one-off probe that says why a dial would fail.
 * Used by the REQ client (client.c) and the SUB watch (watch.c).
 */
#ifndef DSI_CLIENT_DIAL_H
#define DSI_CLIENT_DIAL_H

#include <discovery/discovery.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The TLS configuration for dialing url: *out is NULL for a URL that is not
 * tls+, else a client configuration from o (o may be NULL) that the caller
 * drops with nng_tls_config_free. Returns 0, or DSC_EINVAL / DSC_ENOMEM
 * with why (may be NULL) saying what is wrong.
 */
int dsi_client_tls(
    nng_tls_config **out, const char *url, const dsc_tls_options *o, char *why, size_t why_len);

/*
 * Dials url from sock in the background (redialing), with tls when not
 * NULL; the dialer takes its own hold on tls. Returns 0 or the nng failure
 * as a dsc_err.
 */
int dsi_dial(nng_socket sock, const char *url, nng_tls_config *tls);

/* dsi_dial that writes the dialer into *out before starting it (so before its first pipe). */
int dsi_dial_id(nng_socket sock, const char *url, nng_tls_config *tls, nng_dialer *out);

/*
 * One connection to url outside any socket, within timeout_ms, since nng
 * 1.5.2 does not say why a background dial fails. With tls it also makes
 * the TLS handshake and reads the start of the server's SP header. Returns
 * 0; DSC_ECONNREFUSED or DSC_ETIMEDOUT; DSC_ETLS when the handshake failed
 * (a certificate either side refuses, or no TLS server there); 0 as well
 * for URLs that are not byte streams (inproc://), which nng_dial judges.
 */
int dsi_probe(const char *url, nng_tls_config *tls, int32_t timeout_ms);

#endif
