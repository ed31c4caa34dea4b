/* Closing nng sockets on Debian 12's nng 1.5.2. */
#ifndef DSI_SOCKCLOSE_H
#define DSI_SOCKCLOSE_H

#include <nng/nng.h>
#include <stdbool.h>

#include "common/log.h"

#define DSI_CLOSE_BOUND_MS 2000

/*
 * nng_close with a bound: nng 1.5.2 can block forever closing a socket
 * whose TCP pipe was closed mid-transfer (fixed upstream in 1.6.0, nng
 * #1636), and then every later close waits on nng's reaper too. Past
 * bound_ms this logs a warning (log may be NULL) and returns false: the
 * socket is left to the process exit, and whatever its callbacks may still
 * touch must not be freed.
 */
bool dsi_close_bounded(nng_socket sock, int bound_ms, const dsi_log *log);

#endif
