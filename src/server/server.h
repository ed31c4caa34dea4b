/*
 * The server context: everything one discoveryd owns. No globals, so a
 * test can run several servers in one process.
 */
#ifndef DSI_SERVER_H
#define DSI_SERVER_H

#include <stdio.h>

#include "common/log.h"
#include "common/tls.h"
#include "server/checker.h"
#include "server/dispatch.h"
#include "server/options.h"
#include "server/registry.h"

typedef struct dsi_server dsi_server;

/*
 * Builds and binds everything, and restores what the data file holds; on
 * failure why says what and where. DSC_ESTATE: the data file cannot be
 * used (in use, damaged, unwritable, from a newer version); why says what
 * to do. The server logs through a copy of *log at o->log_level (log NULL:
 * not at all); a queue in it must outlive the server.
 */
int dsi_server_create(
    dsi_server **out, const dsi_server_options *o, const dsi_log *log, char *why, size_t why_len);

/* Starts serving requests. */
int dsi_server_start(dsi_server *s);

/* Answers what is in flight, then stops. Idempotent. */
void dsi_server_stop(dsi_server *s);

void dsi_server_destroy(dsi_server *s);

/*
 * The server's dispatcher and registry, for start-up work that goes through
 * them (server/boot.c). Both belong to the server.
 */
dsi_dispatch  *dsi_server_dispatch(dsi_server *s);
dsi_registry  *dsi_server_registry(dsi_server *s);
const dsi_log *dsi_server_log(dsi_server *s); /* the server's logger, at its current level */

/* The bound REQ/REP URL of listener i (with the real port for ":0"). */
const char *dsi_server_url(const dsi_server *s, size_t i);

/* The bound PUB URL (with the real port for ":0"). */
const char *dsi_server_publish_url(const dsi_server *s);

/* The bound URL of the HTTP admin endpoint, or NULL with --admin off. */
const char *dsi_server_admin_url(const dsi_server *s);

/*
 * What a reload (SIGHUP, server/reload.c) changes while the server runs;
 * any thread. Connections stay open.
 */
void dsi_server_set_log_level(dsi_server *s, dsi_log_level level);

/* token must stay valid until the server is destroyed; never NULL to not, or back. */
void dsi_server_set_token(dsi_server *s, const char *token);

void dsi_server_set_health(dsi_server *s, const dsi_checker_settings *cs);

/*
 * Reads the TLS files and gives the new configuration to every tls+ and
 * https listener, for connections accepted from now on. On failure (with
 * why) the listeners keep the old one, unless DSC_ESTATE: one refused it.
 */
int dsi_server_set_tls(dsi_server *s, const dsi_tls_files *files, char *why, size_t why_len);

#endif
