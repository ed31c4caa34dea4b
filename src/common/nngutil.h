/*
 * nng at the library boundary, shared by the server and libdiscovery: the
 * one mapping from nng errors to dsc_err, the bound URL of a listener, and
 * a socket close with a bound for Debian 12's nng 1.5.2.
 */
#ifndef DSI_NNGUTIL_H
#define DSI_NNGUTIL_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#define DSI_CLOSE_BOUND_MS 2000

/*
 * True for the URLs discoveryd listens on: tcp://, tcp4://, tcp6:// and
 * their tls+ forms. nng 1.5.2's ipc:// listener breaks when a peer
 * disconnects during negotiation, so the server refuses anything else.
 */
bool dsi_url_is_served(const char *url);

/*
 * The one mapping from an nng error (0 included) to a dsc_err: both the
 * server and libdiscovery report nng failures through it. An nng error
 * with no closer match is DSC_ETRANSPORT.
 */
int dsi_err_from_nng(int rv);

/*
 * Writes url into out (n bytes), with a trailing ":0" replaced by the port
 * listener l really got; any other URL, or one whose address nng cannot
 * report, is copied as given (truncated to fit).
 */
void dsi_listener_url(nng_listener l, const char *url, char *out, size_t n);

/*
 * sa as text into out (n bytes): "127.0.0.1:7700", "[::1]:7700", or an IPC
 * path; "" for any other family.
 */
void dsi_sockaddr_text(const nng_sockaddr *sa, char *out, size_t n);

/*
 * Connections listener l failed to accept, from an nng_stats_get snapshot:
 * nng 1.5.2 reports no accept error to the application, but counts them in
 * the listener's statistics ("oom" for ENOMEM; "other" for the rest, which
 * is where EMFILE and ENFILE land). 0 when the snapshot does not have it.
 */
uint64_t dsi_listener_accept_failures(nng_stat *snapshot, nng_listener l);

/*
 * nng_close with a bound: nng 1.5.2 can block forever closing a socket
 * whose TCP pipe was closed mid-transfer (fixed upstream in 1.6.0, nng
 * #1636), and then every later close waits on nng's reaper too. Past
 * bound_ms this logs a warning (log may be NULL) and returns false: the
 * socket is left to the process exit, and whatever its callbacks may still
 * touch must not be freed.
 */
bool dsi_close_bounded(nng_socket sock, int bound_ms, const dsi_log *log);

/*
 * dsi_close_bounded, and when the close outlives the bound but ends later
 * after all, late(arg) runs on the closing thread once nng_close has
 * returned, when no callback of the socket can run any more: the place to
 * free what those callbacks touch. A close that never ends never calls it.
 */
bool dsi_close_bounded_then(
    nng_socket sock, int bound_ms, const dsi_log *log, void (*late)(void *), void *arg);

#endif
