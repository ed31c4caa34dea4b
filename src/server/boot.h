/*
 * Start-up registration: the services the configuration names (the YAML
 * file and PREFIX<NAME>=URL variables) are registered through the same
 * path as a Register request, then --require is checked. Runs once, after
 * the server is built and before it serves.
 */
#ifndef DSI_BOOT_H
#define DSI_BOOT_H

#include <stddef.h>
#include <stdio.h>

#include "server/config.h"
#include "server/server.h"

/*
 * Registers one start-up instance as a Register request would, so it meets
 * the same rules. Returns 0, or an error with the server's message in why.
 */
int dsi_boot_register(dsi_server *s, const dsi_boot_instance *b, char *why, size_t why_len);

/*
 * Writes the names among names[0..n) that have no registered instance
 * into missing (comma-separated) and returns how many there are.
 */
size_t dsi_boot_missing(
    dsi_server *s, const char *const *names, size_t n, char *missing, size_t len);

/*
 * Registers every instance of cfg and checks its --require list, writing
 * what failed to err. Returns discoveryd's exit code: 0, 2 for an
 * instance the server refuses (bad configuration), 1 for a required
 * service that is missing.
 */
int dsi_boot_run(dsi_server *s, const dsi_config *cfg, FILE *err);

#endif
