/*
 * The body of a view, shared by view.c (the thread that keeps it current,
 * loading, failover) and viewread.c (the lookups callers make), as nng's
 * sockimpl.h lets socket.c be split without changing the API.
 */
#ifndef DSI_CLIENT_VIEWIMPL_H
#define DSI_CLIENT_VIEWIMPL_H

#include <discovery/discovery.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/urllist.h"
#include "client/viewdata.h"
#include "common/name.h"

/* A service a per-service view watches, and the revision of its last GetAll. */
typedef struct vwatched {
	char     name[DSI_NAME_MAX + 1];
	uint64_t loaded;
} vwatched;

/* A view: the copy behind its lock, the sockets, and the thread's bookkeeping. */
struct dsc_view {
	dsc_client     *client;
	dsc_watch      *watch;      /* on every publish URL, following one */
	dsi_url_list    pubs;       /* the publish URLs, one per server (or one for all) */
	size_t          watch_node; /* the server whose events watch delivers */
	int32_t         recv_buffer;
	dsc_tls_options tls;      /* copies of the caller's paths, for moving the watch */
	char           *tls_s[4]; /* what tls's fields point to */
	vwatched       *watched;  /* sorted by name; NULL for an all-services view */
	size_t          n_watched;
	dsc_view_cb     cb;
	void           *cb_arg;

	pthread_rwlock_t lock; /* the view lock: guards data; see docs/design.md */
	dsi_vdata       *data;
	_Atomic uint64_t revision; /* what dsc_view_revision reports; written under lock */
	_Atomic uint64_t reloads;

	/* Only the view thread (or open, before it starts) touches these. */
	uint64_t applied;        /* all services: the revision of the last change taken */
	uint64_t checked;        /* per service: the last reload's or SYNC check's revision */
	uint64_t connects;       /* the followed pipe's connect count at the last good load */
	uint64_t connects_tried; /* ... and at the last reload attempt */
	uint64_t gaps;           /* the watch's gap count last seen */
	bool     stale;          /* a reload is due */

	pthread_t    thread;
	bool         started;
	_Atomic bool stop;
};

#endif
