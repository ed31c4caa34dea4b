/*
 * Dispatch: request bytes in, response message out. Decoding, validation
 * and the table from call kind to handler live here and nowhere else.
 */
#ifndef DSI_DISPATCH_H
#define DSI_DISPATCH_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

#include "log.h"
#include "netpolicy.h"
#include "registry.h"

/* What handlers need; owned by the server, borrowed here. */
typedef struct dsi_dispatch {
	dsi_registry        *registry;
	const dsi_log       *log;
	bool                 require_https; /* the production profile */
	const char          *token;         /* NULL: no authentication */
	bool                 auth_reads;    /* reads need the token too */
	const dsi_netpolicy *policy;        /* addresses endpoints may use */
	/* Called after a call that may change the registry, outside its lock. */
	void (*after_write)(void *arg);
	void *after_write_arg;
} dsi_dispatch;

/*
 * Handles one request of len bytes. Every input, however malformed, gets a
 * Response in *reply (owned by the caller). Returns 0, or DSC_ENOMEM when
 * not even an error reply could be allocated.
 */
int dsi_dispatch_handle(const dsi_dispatch *d, const void *buf, size_t len, nng_msg **reply);

#endif
