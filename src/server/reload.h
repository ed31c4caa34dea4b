/*
 * Reload (SIGHUP): reads the configuration again, from the same command
 * line, environment and YAML file, and applies what a running server can
 * change without dropping a connection: the log level, the token, the TLS
 * certificates (for new connections), the health-check settings and the
 * configuration's services. A configuration that start-up would refuse
 * is refused whole, and the running one stays. docs/operations.md, "Reload".
 */
#ifndef DSI_RELOAD_H
#define DSI_RELOAD_H

#include "common/log.h"
#include "server/config.h"
#include "server/server.h"

typedef struct dsi_reload dsi_reload;

/*
 * Starts keeping track of s's configuration: cfg (the one s was built
 * from; borrowed, it must outlive the dsi_reload), argc/argv (borrowed, as
 * given to main) and log (main's logger, borrowed: a reload sets its level
 * too). Returns 0 or DSC_ENOMEM.
 */
int dsi_reload_create(dsi_reload **out, dsi_server *s, const dsi_config *cfg, int argc,
    char *const *argv, dsi_log *log);

/*
 * Loads the configuration again with envp (NULL-terminated) and applies
 * it, logging every change, and what needs a restart, through log. Returns
 * 0, or an error after logging why the running configuration stays.
 */
int dsi_reload_run(dsi_reload *r, char *const *envp);

/* Frees every configuration a reload loaded (strings the server may still use: call last). */
void dsi_reload_destroy(dsi_reload *r);

#endif
