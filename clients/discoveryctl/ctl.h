/*
 * discoveryctl's shared vocabulary: one run's state (ctl), a row of the
 * command table, exit statuses, option bits and defaults. The modules sit
 * in one direction: main -> args -> commands -> output -> ctl.h.
 */
#ifndef DISCOVERYCTL_CTL_H
#define DISCOVERYCTL_CTL_H

#include <discovery/discovery.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEFAULT_SERVER     "tcp://127.0.0.1:7700"
#define SERVER_ENV         "DISCOVERY_SERVER"
#define DEFAULT_PUBLISH    "tcp://127.0.0.1:7701"
#define PUBLISH_ENV        "DISCOVERY_PUBLISH"
#define DEFAULT_ADMIN      "http://127.0.0.1:7702"
#define ADMIN_ENV          "SERVICE_DISCOVERY_ADMIN" /* the server's own --admin variable */
#define TOKEN_ENV          "SERVICE_DISCOVERY_API_KEY"
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_WAIT_MS    60000 /* wait: --timeout bounds the whole wait, not one call */
#define MAX_META           64
#define MAX_ARGS           64 /* the most positional arguments any command takes (watch, wait) */

/* Not the server's SERVICE_DISCOVERY_TLS_*: those name its own certificate, not ours. */
#define TLS_CA_ENV          "DISCOVERY_TLS_CA"
#define TLS_CERT_ENV        "DISCOVERY_TLS_CERT"
#define TLS_KEY_ENV         "DISCOVERY_TLS_KEY"
#define TLS_SERVER_NAME_ENV "DISCOVERY_TLS_SERVER_NAME"

/* Exit statuses: scripts branch on them, so --help documents each one. */
enum {
	EXIT_OK          = 0,
	EXIT_NOTFOUND    = 1, /* not found, not healthy, or no healthy instance */
	EXIT_USAGE       = 2, /* the command line itself is wrong */
	EXIT_UNREACHABLE = 3, /* no answer from the server */
	EXIT_REJECTED    = 4, /* the server answered with an error */
	EXIT_LOCAL       = 5, /* out of memory, or stdout cannot be written */
	EXIT_AUTH        = 6, /* the server wants an auth token, or refused the one given */
};

/* Options only some commands take; each command lists the ones it accepts. */
enum {
	OPT_META         = 1u << 0,
	OPT_HEALTH_PATH  = 1u << 1,
	OPT_TTL          = 1u << 2,
	OPT_WEIGHT       = 1u << 3,
	OPT_HEALTHY_ONLY = 1u << 4,
	OPT_COUNT        = 1u << 5,
	OPT_HEALTHY      = 1u << 6,
	OPT_REGISTERED   = 1u << 7,
};

/* Which of the server's URLs a command dials, and so which one TLS applies to. */
typedef enum ctl_dials {
	DIALS_SERVER,  /* --server: the REQ/REP calls */
	DIALS_PUBLISH, /* --publish alone: watch */
	DIALS_BOTH,    /* both: wait */
	DIALS_ADMIN,   /* --admin, over HTTP(S) with libcurl: snapshot */
} ctl_dials;

typedef struct ctl ctl;

/* One row of the command table. */
typedef struct command {
	const char *name;
	size_t      min_args; /* positional arguments after the name */
	size_t      max_args;
	unsigned    opts;      /* the OPT_* it accepts */
	bool        no_client; /* true: runs without a client on --server */
	ctl_dials   dials;
	const char *usage;
	const char *summary;
	int (*run)(ctl *c); /* returns an EXIT_* */
} command;

/* One run: the parsed command line and, once opened, the client. */
struct ctl {
	const char    *server;
	const char    *publish; /* for watch and wait */
	const char    *admin;   /* the admin endpoint's URL, for snapshot */
	int32_t        timeout_ms;
	uint64_t       min_revision;  /* --min-revision; 0: none */
	bool           timeout_given; /* wait: --timeout was given, else DEFAULT_WAIT_MS */
	bool           json;
	const command *cmd;
	const char    *args[MAX_ARGS]; /* positional arguments after the command */
	size_t         nargs;          /* counts past MAX_ARGS too, to report extras */
	dsc_kv         meta[MAX_META];
	size_t         n_meta;
	const char    *health_path;
	uint32_t       ttl_ms;
	uint32_t       weight;
	bool           healthy_only;
	uint32_t       count; /* watch: stop after this many changes; 0 = never */
	dsc_wait_mode  wait_mode;
	unsigned       seen;   /* OPT_* given, checked against cmd->opts */
	dsc_client    *client; /* NULL for commands with no_client */
	const char    *token;  /* from --token-file, else TOKEN_ENV */
	char           token_buf[4096];

	dsc_tls_options tls;       /* from --tls-*, else the TLS_*_ENV variables */
	bool            tls_flags; /* some --tls-* was given */
};

#endif
