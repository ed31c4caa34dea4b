/*
 * The server context: everything one discoveryd owns. No globals, so a
 * test can run several servers in one process.
 */
#ifndef DSI_SERVER_H
#define DSI_SERVER_H

#include <stdio.h>

#include "server/config.h"
#include "server/options.h"

typedef struct dsi_server dsi_server;

/*
 * Builds and binds everything, and restores what the data file holds; on
 * failure why says what and where. DSC_ESTATE: the data file cannot be
 * used (in use, damaged, unwritable, from a newer version); why says what
 * to do.
 */
int dsi_server_create(
    dsi_server **out, const dsi_server_options *o, FILE *log_out, char *why, size_t why_len);

/* Starts serving requests. */
int dsi_server_start(dsi_server *s);

/* Answers what is in flight, then stops. Idempotent. */
void dsi_server_stop(dsi_server *s);

void dsi_server_destroy(dsi_server *s);

/*
 * Registers one start-up instance through the same path as a Register
 * request, so it meets the same rules. Returns 0, or an error with the
 * server's message in why.
 */
int dsi_server_register(dsi_server *s, const dsi_boot_instance *b, char *why, size_t why_len);

/*
 * Writes the names among names[0..n) that have no registered instance
 * into missing (comma-separated) and returns how many there are.
 */
size_t dsi_server_missing(
    dsi_server *s, const char *const *names, size_t n, char *missing, size_t len);

/* The bound REQ/REP URL of listener i (with the real port for ":0"). */
const char *dsi_server_url(const dsi_server *s, size_t i);

/* The bound PUB URL (with the real port for ":0"). */
const char *dsi_server_publish_url(const dsi_server *s);

#endif
