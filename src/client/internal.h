/*
 * libdiscovery internals shared by client.c, instance.c, watch.c and view.c.
 * Nothing here is part of the public API; names use the dsi_ prefix.
 */
#ifndef DSC_CLIENT_INTERNAL_H
#define DSC_CLIENT_INTERNAL_H

#include <discovery/discovery.h>
#include <discovery/v1/discovery.pb-c.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- instances (instance.c) ---- */

/*
 * Fills dst with a deep copy of the wire instance src; src NULL gives an
 * instance whose strings are all "". Returns 0, or DSC_ENOMEM with dst
 * zeroed and nothing leaked.
 */
int dsi_inst_from_pb(dsc_instance *dst, const Discovery__V1__Instance *src);

/* Deep copy of src into dst. Returns 0, or DSC_ENOMEM with dst zeroed. */
int dsi_inst_copy(dsc_instance *dst, const dsc_instance *src);

/* Frees what x owns (not x itself) and zeroes it; a zeroed x is a no-op. */
void dsi_inst_clear(dsc_instance *x);

/* ---- client plumbing (client.c) ---- */

/* The one mapping from nng errors to dsc_err. */
int dsi_err_from_nng(int rv);

/* Records a failure in err, when the caller asked for it; returns code. */
int dsi_fail(dsc_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * The TLS configuration for dialing url: *out is NULL for a URL that is not
 * tls+, else a client configuration from o (o may be NULL) that the caller
 * drops with nng_tls_config_free. Returns 0, or DSC_EINVAL / DSC_ENOMEM
 * with why (may be NULL) saying what is wrong.
 */
int dsi_client_tls(
    nng_tls_config **out, const char *url, const dsc_tls_options *o, char *why, size_t why_len);

/* Dials url from sock in the background (redialing), with tls when not NULL. */
int dsi_dial(nng_socket sock, const char *url, nng_tls_config *tls);

/*
 * One connection to url outside any socket, within timeout_ms, since nng
 * 1.5.2 does not say why a background dial fails. With tls it also makes
 * the TLS handshake and reads the start of the server's SP header. Returns
 * 0; DSC_ECONNREFUSED or DSC_ETIMEDOUT; DSC_ETLS when the handshake failed
 * (a certificate either side refuses, or no TLS server there); 0 as well
 * for URLs that are not byte streams (inproc://), which nng_dial judges.
 */
int dsi_probe(const char *url, nng_tls_config *tls, int32_t timeout_ms);

/* The client's timeout in milliseconds, after defaults. */
int32_t dsi_client_timeout(const dsc_client *c);

/*
 * Closes the client's socket so that calls in flight on other threads end
 * at once with DSC_ECLOSED, and later calls fail the same way. The client
 * must still be released with dsc_client_close. Idempotent.
 */
void dsi_client_shutdown(dsc_client *c);

/* ---- watches (watch.c), for the view ---- */

/*
 * dsc_watch_open with a SUB receive queue of recv_buffer messages
 * (<= 0: 1024), and TLS options (may be NULL) for a tls+ URL. probe_ms > 0
 * makes one handshake first, within probe_ms, so that a refused
 * certificate fails the open with DSC_ETLS; a server that is down or slow
 * is left to the background dial.
 */
int dsi_watch_open(dsc_watch **out, const char *publish_url, const char *const *services,
    size_t n_services, int32_t recv_buffer, const dsc_tls_options *tls, int32_t probe_ms);

/*
 * How many times the watch's SUB pipe has connected. A change tells a
 * reconnect, after which events may have been lost (or the server
 * restarted). 0 until the first connection.
 */
uint64_t dsi_watch_connects(dsc_watch *w);

/* Waits up to timeout_ms for a connected pipe; true when there is one. */
bool dsi_watch_wait_connected(dsc_watch *w, int32_t timeout_ms);

/* Writes the publish URL into buf (for messages). */
const char *dsi_watch_url(const dsc_watch *w);

#endif
