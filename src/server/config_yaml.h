/*
 * The YAML configuration file, read into what it says: settings as text
 * with where each came from, services to register at start, and warnings.
 * Nothing is applied here; config.c applies the settings with the file's
 * precedence. The only libyaml user.
 */
#ifndef DSI_CONFIG_YAML_H
#define DSI_CONFIG_YAML_H

#include <stddef.h>
#include <stdint.h>

#include "server/options.h"

/*
 * Limits on the file, checked before libyaml builds a document: a larger
 * file, or collections nested deeper, are refused with the file and line
 * (libyaml's document loader takes minutes on 100,000 levels). Aliases
 * (*name) are refused too: each would repeat its anchor's nodes, without
 * a bound, wherever the reader walks them.
 */
#define DSI_YAML_MAX_BYTES (1024 * 1024)
#define DSI_YAML_MAX_DEPTH 32

/* Warnings a file (and the whole configuration) keeps; the rest are only counted. */
#define DSI_CONFIG_MAX_WARNINGS 20

/* One instance to register at start-up. Strings belong to whoever filled it in. */
typedef struct dsi_boot_instance {
	const char *service; /* normalized */
	const char *endpoint;
	const char *health_path; /* NULL: the default */
	uint32_t    ttl_ms;
	uint32_t    weight;
	dsc_kv     *metadata; /* malloc'd array, freed with the instance's owner */
	size_t      n_metadata;
	char        origin[160]; /* "file discovery.yaml:3", "env SERVICE_MEMORY" */
} dsi_boot_instance;

/* One setting as the file writes it: a scalar, or one item of a list. */
typedef struct dsi_yaml_setting {
	dsi_setting setting;
	const char *value;       /* owned by the dsi_yaml_file */
	char        origin[160]; /* "file x.yaml:4 (health_check.rise)" */
} dsi_yaml_setting;

/* What one file says, in file order. Every string is the file's own. */
typedef struct dsi_yaml_file {
	dsi_yaml_setting  *settings;
	size_t             n_settings;
	dsi_boot_instance *boot; /* keys/values arrays and strings: the file's */
	size_t             n_boot;
	char             **warnings;        /* unknown keys, to log once the logger exists */
	size_t             n_warnings;      /* at most DSI_CONFIG_MAX_WARNINGS */
	size_t             n_more_warnings; /* past that cap: counted, not kept */
	char             **owned;           /* every string the reader allocated */
	size_t             n_owned, cap_owned;
} dsi_yaml_file;

/*
 * Reads the file at path into f (zeroed first). The path must name a
 * regular file (a FIFO or a device is refused without blocking on it) of at
 * most DSI_YAML_MAX_BYTES. Returns 0, or DSC_EINVAL with why ("path:line:
 * ..."). dsi_yaml_file_free releases f in every case.
 */
int dsi_yaml_read(dsi_yaml_file *f, const char *path, char *why, size_t why_len);

/*
 * The same for len bytes of YAML text already in memory (the fuzzer's
 * entry point); name stands for the path in origins and messages. The
 * size limit is the caller's to check.
 */
int dsi_yaml_parse(
    dsi_yaml_file *f, const char *name, const char *text, size_t len, char *why, size_t why_len);

void dsi_yaml_file_free(dsi_yaml_file *f);

#endif
