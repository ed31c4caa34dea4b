/* discoveryd's settings and their command-line flags. */
#ifndef DSI_OPTIONS_H
#define DSI_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "log.h"
#include "registry.h"

#define DSI_MAX_LISTEN   16
#define DSI_OPTIONS_EXIT 1000 /* --help or --version was handled */

typedef struct dsi_server_options {
	const char         *listen[DSI_MAX_LISTEN]; /* borrowed from argv or literals */
	size_t              n_listen;
	const char         *publish;
	dsi_log_level       log_level;
	size_t              max_request; /* bytes */
	size_t              workers;     /* REP contexts */
	int                 drain_ms;    /* shutdown grace for in-flight requests */
	dsi_registry_limits limits;
	/* health checks */
	int health_interval_ms;
	int health_timeout_ms;
	int rise;
	int fall;
	int max_checks;          /* in flight at once */
	int deregister_after_ms; /* 0: never */
	/* events */
	int sync_interval_ms;
	int event_buffer; /* per subscriber, messages */
} dsi_server_options;

void dsi_options_default(dsi_server_options *o);

/*
 * Parses argv[1..argc-1] over the current values in o. Accepts "--flag
 * value" and "--flag=value". Returns 0; DSI_OPTIONS_EXIT after writing help
 * or the version to out; or DSC_EINVAL with the reason in why.
 */
int dsi_options_parse(
    dsi_server_options *o, int argc, char *const *argv, FILE *out, char *why, size_t why_len);

#endif
