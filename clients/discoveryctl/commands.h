/*
 * discoveryctl's commands: the one table from command name to handler,
 * each handler one libdiscovery call (or a watch or wait loop) whose
 * outcome becomes output and an EXIT_* status.
 */
#ifndef DISCOVERYCTL_COMMANDS_H
#define DISCOVERYCTL_COMMANDS_H

#include <stddef.h>

#include "discoveryctl/ctl.h"

/* The command table, in --help order: constant, shared by parsing and usage. */
extern const command ctl_commands[];
extern const size_t  ctl_ncommands;

/* The row named name, or NULL. */
const command *ctl_command_find(const char *name);

/* The exit status a library error gives; codes not mapped are EXIT_REJECTED. */
int ctl_exit_for(int err);

/* The token and TLS options every connection to the server takes. */
void ctl_client_options(const ctl *c, dsc_client_options *opts);

#endif
