/*
 * The configuration's instances (the YAML file's services and
 * PREFIX<NAME>=URL variables): registered through the same path as a
 * Register request, stored as the configuration's (DSI_ORIGIN_CONFIG), and
 * reconciled at start and on every reload: what the configuration
 * registered and no longer names is deregistered; what the API registered
 * is never touched. Then, at start, --require is checked.
 */
#ifndef DSI_BOOT_H
#define DSI_BOOT_H

#include <stdbool.h>
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

/* What a reconciliation did. */
typedef struct dsi_boot_counts {
	size_t added;   /* registered, and not the configuration's before */
	size_t removed; /* the configuration's, no longer named, deregistered */
	size_t failed;  /* refused or not deregistered (logged) */
} dsi_boot_counts;

/*
 * Registers each of boot[0..n) as the configuration's, then deregisters
 * every other instance of configuration origin, logging each addition and
 * removal to log. With stop, the first refused registration stops it:
 * returns that error with why ("origin: service NAME: reason"); without,
 * refusals are logged and counted and it returns 0 (or DSC_ENOMEM).
 */
int dsi_boot_reconcile(dsi_server *s, const dsi_boot_instance *boot, size_t n, bool stop,
    const dsi_log *log, dsi_boot_counts *counts, char *why, size_t why_len);

/*
 * Reconciles the instances of cfg and checks its --require list, writing
 * what failed to err. Returns discoveryd's exit code: 0, 2 for an
 * instance the server refuses (bad configuration), 1 for a required
 * service that is missing.
 */
int dsi_boot_run(dsi_server *s, const dsi_config *cfg, FILE *err);

#endif
