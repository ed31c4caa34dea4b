/*
 * Configuration loading: defaults, the YAML file, the environment and the
 * command line, in rising precedence; ENVIRONMENT profiles; the services
 * that SERVICE_<NAME>=URL variables and the file register at start.
 */
#ifndef DSI_CONFIG_H
#define DSI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "server/config_yaml.h"
#include "server/options.h"

/* The longest SERVICE_ prefix (env_prefix) accepted, in bytes. */
#define DSI_CONFIG_PREFIX_MAX 64

typedef struct dsi_config {
	dsi_server_options options;
	char               profile[16]; /* development, testing or production */
	char               profile_origin[64];
	const char        *file; /* the YAML file, or NULL */
	char               file_origin[64];
	const char        *prefix; /* the effective SERVICE_ prefix */
	dsi_boot_instance *boot;
	size_t             n_boot;
	/*
	 * To log once the logger exists: at most DSI_CONFIG_MAX_WARNINGS,
	 * then one line that says how many more there were.
	 */
	char **warnings;
	size_t n_warnings;
	size_t n_more_warnings; /* counted past the cap, not kept */
	bool   print_config;

	char **owned; /* every string the config allocated */
	size_t n_owned, cap_owned;
} dsi_config;

/*
 * Loads the configuration from argv, envp (NULL-terminated "NAME=value"
 * strings) and the YAML file they name. Returns 0; DSI_OPTIONS_EXIT after
 * writing --help or --version to out; or DSC_EINVAL with why ("file:line:
 * ..." for the file). dsi_config_free releases c in every case.
 *
 * What is wrong but can be left out (an unknown key or SERVICE_DISCOVERY_*
 * variable, a PREFIX<NAME>=URL variable whose name, URL or address is
 * refused) is a warning, and is skipped; with strict_config set, the first
 * of them is the error instead. The services of the file are never skipped:
 * the server refuses them at start.
 */
int dsi_config_load(dsi_config *c, int argc, char *const *argv, char *const *envp, FILE *out,
    char *why, size_t why_len);

/* The effective configuration and where each value came from. */
void dsi_config_print(const dsi_config *c, FILE *out);

/* One setting's effective value as --print-config shows it (a secret as "(set)"). */
void dsi_config_value(const dsi_config *c, dsi_setting s, char *value, size_t len);

void dsi_config_free(dsi_config *c);

#endif
