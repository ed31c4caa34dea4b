/*
 * Dispatch: request bytes in, response message out. Decoding, validation
 * and the table from call kind to handler live here and nowhere else.
 */
#ifndef DSI_DISPATCH_H
#define DSI_DISPATCH_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/log.h"
#include "common/tokenfile.h"
#include "server/metrics.h"
#include "server/netpolicy.h"
#include "server/registry.h"
#include "server/revwait.h"
#include "server/statusinfo.h"
#include "server/writer.h"

/* What handlers need; owned by the server, borrowed here. */
typedef struct dsi_dispatch {
	dsi_registry        *registry;
	const dsi_log       *log;
	unsigned             schemes;    /* DSI_SCHEME_* bits endpoints may use; 0: any */
	dsi_token_ref        token;      /* NULL: no authentication; a reload swaps it */
	bool                 auth_reads; /* reads need the token too */
	const dsi_netpolicy *policy;     /* addresses endpoints may use */
	dsi_writer          *writer;     /* NULL: writes are not stored */
	/* The registry's limits, checked on raw requests too; NULL: the defaults. */
	const dsi_registry_limits *limits;
	/* Called after a write applied at once (no writer), outside the registry lock. */
	void (*after_write)(void *arg);
	void        *after_write_arg;
	dsi_metrics *metrics; /* NULL: nothing counted */
	/* What the Status call reports; NULL: the registry's state alone. */
	const dsi_statusinfo *status;
	uint8_t origin; /* a dsi_origin for what Register stores: the API's, or boot's */
	/* Cluster mode: what it does not do yet (TTL instances, heartbeats) is refused. */
	bool cluster;
	/* Where calls behind their min_revision wait; NULL: they are answered at once. */
	dsi_revwait *revwait;
} dsi_dispatch;

/*
 * The rules a registration must meet beyond its service name and endpoint
 * (the endpoint policy, the production profile's https, health path, TTL,
 * metadata), for Register and for what the store loads at start-up.
 * Returns 0 or DSC_EINVAL with the reason in msg.
 */
int dsi_dispatch_check_registration(
    const dsi_dispatch *d, const dsi_registration *reg, char *msg, size_t len);

/* Receives the Response (now the callee's), or NULL when none could be built. */
typedef void (*dsi_reply_fn)(void *arg, nng_msg *reply);

/*
 * Handles one request of len bytes (copied: buf may go once this returns).
 * Before decoding, a wire scan refuses what would cost more to decode than
 * the limits allow (more metadata entries than the limit, duplicate keys
 * included, or more fields than such a request needs), and any string
 * holding a 0 byte is refused after authentication (a token holding one is
 * PERMISSION_DENIED).
 * Every input, however malformed, gets a Response through done: at once
 * for reads and rejected requests, and from the writer thread once a write
 * is committed. done never runs with a lock of ours held (debug builds
 * assert it).
 */
void dsi_dispatch_begin(
    const dsi_dispatch *d, const void *buf, size_t len, dsi_reply_fn done, void *arg);

/* dsi_dispatch_begin for a request that came through pipe: a write logs the peer's address. */
void dsi_dispatch_begin_from(const dsi_dispatch *d, const void *buf, size_t len, nng_pipe pipe,
    dsi_reply_fn done, void *arg);

/*
 * dsi_dispatch_begin, waiting for the Response (*reply, owned by the
 * caller). Returns 0, or DSC_ENOMEM when not even an error reply could be
 * allocated. Not for nng callback threads: a write waits for its commit.
 */
int dsi_dispatch_handle(const dsi_dispatch *d, const void *buf, size_t len, nng_msg **reply);

#endif
