/*
 * discoveryctl's command line: options, parsing, environment fallbacks, usage.
 */
#include "discoveryctl/args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "common/tokenfile.h"
#include "common/tls.h"
#include "discoveryctl/commands.h"
#include "discoveryctl/output.h"

/* Records a usage error in why and returns PARSE_ERROR. */
static int bad_usage(char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
bad_usage(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return PARSE_ERROR;
}

/* The common parsers, as discoveryd uses them. */
static bool
parse_u32(const char *s, uint32_t *out)
{
	return dsi_parse_u32(s, out) == 0;
}

/* Seconds, fractions allowed, > 0 (a positive value never becomes 0 ms). */
static bool
parse_seconds(const char *s, int32_t *ms)
{
	int v;
	if (dsi_parse_seconds(s, 0, INT32_MAX / 1000.0, &v) != 0 || v <= 0) {
		return false;
	}
	*ms = v;
	return true;
}

/* Option setters: value is NULL for options without one; return a PARSE_*. */
typedef int (*option_fn)(ctl *c, char *value, char *why, size_t n);

static int
opt_server(ctl *c, char *value, char *why, size_t n)
{
	if (value[0] == 0) {
		return bad_usage(why, n, "--server needs a URL");
	}
	c->server = value;
	return PARSE_RUN;
}

static int
opt_publish(ctl *c, char *value, char *why, size_t n)
{
	if (value[0] == 0) {
		return bad_usage(why, n, "--publish needs a URL");
	}
	c->publish = value;
	return PARSE_RUN;
}

static int
opt_admin(ctl *c, char *value, char *why, size_t n)
{
	if (value[0] == 0) {
		return bad_usage(why, n, "--admin needs a URL");
	}
	c->admin = value;
	return PARSE_RUN;
}

static int
opt_json(ctl *c, char *value, char *why, size_t n)
{
	(void) value, (void) why, (void) n;
	c->json = true;
	return PARSE_RUN;
}

static int
opt_timeout(ctl *c, char *value, char *why, size_t n)
{
	if (!parse_seconds(value, &c->timeout_ms)) {
		return bad_usage(
		    why, n, "--timeout %s: expected a number of seconds above 0", value);
	}
	c->timeout_given = true;
	return PARSE_RUN;
}

static int
opt_min_revision(ctl *c, char *value, char *why, size_t n)
{
	if (dsi_parse_uint(value, 0, UINT64_MAX, &c->min_revision) != 0) {
		return bad_usage(why, n, "--min-revision %s: expected a revision number", value);
	}
	return PARSE_RUN;
}

/* KEY=VALUE, split in place: argv is ours to write, and this saves a copy to free. */
static int
opt_meta(ctl *c, char *value, char *why, size_t n)
{
	char *eq = strchr(value, '=');

	if (eq == NULL || eq == value) {
		return bad_usage(
		    why, n, "--meta %s: expected KEY=VALUE with a non-empty KEY", value);
	}
	if (c->n_meta == MAX_META) {
		return bad_usage(why, n, "at most %d --meta options are allowed", MAX_META);
	}
	*eq                  = 0;
	c->meta[c->n_meta++] = (dsc_kv) { .key = value, .value = eq + 1 };
	return PARSE_RUN;
}

static int
opt_health_path(ctl *c, char *value, char *why, size_t n)
{
	(void) why, (void) n;
	c->health_path = value;
	return PARSE_RUN;
}

static int
opt_ttl(ctl *c, char *value, char *why, size_t n)
{
	if (!parse_u32(value, &c->ttl_ms)) {
		return bad_usage(
		    why, n, "--ttl-ms %s: expected a whole number of milliseconds", value);
	}
	return PARSE_RUN;
}

static int
opt_weight(ctl *c, char *value, char *why, size_t n)
{
	if (!parse_u32(value, &c->weight)) {
		return bad_usage(why, n, "--weight %s: expected a whole number", value);
	}
	return PARSE_RUN;
}

static int
opt_healthy_only(ctl *c, char *value, char *why, size_t n)
{
	(void) value, (void) why, (void) n;
	c->healthy_only = true;
	return PARSE_RUN;
}

static int
opt_count(ctl *c, char *value, char *why, size_t n)
{
	if (!parse_u32(value, &c->count) || c->count == 0) {
		return bad_usage(why, n, "--count %s: expected a whole number above 0", value);
	}
	return PARSE_RUN;
}

static int
opt_healthy(ctl *c, char *value, char *why, size_t n)
{
	(void) value, (void) why, (void) n;
	c->wait_mode = DSC_WAIT_HEALTHY;
	return PARSE_RUN;
}

static int
opt_registered(ctl *c, char *value, char *why, size_t n)
{
	(void) value, (void) why, (void) n;
	c->wait_mode = DSC_WAIT_REGISTERED;
	return PARSE_RUN;
}

static int
opt_help(ctl *c, char *value, char *why, size_t n)
{
	(void) c, (void) value, (void) why, (void) n;
	return PARSE_HELP;
}

static int
opt_token_file(ctl *c, char *value, char *why, size_t n)
{
	/* The server's reader: a token others can read, or a FIFO, is refused here too. */
	char msg[256];
	if (dsi_token_file_read(value, c->token_buf, sizeof(c->token_buf), msg, sizeof(msg)) != 0) {
		snprintf(why, n, "--token-file %s", msg);
		return PARSE_ERROR;
	}
	c->token = c->token_buf;
	return PARSE_RUN;
}

/* The files are checked once the URLs are known, since only tls+tcp:// ones use them. */
static int
opt_tls_ca(ctl *c, char *value, char *why, size_t n)
{
	(void) why, (void) n;
	c->tls.ca_file = value;
	c->tls_flags   = true;
	return PARSE_RUN;
}

static int
opt_tls_cert(ctl *c, char *value, char *why, size_t n)
{
	(void) why, (void) n;
	c->tls.cert_file = value;
	c->tls_flags     = true;
	return PARSE_RUN;
}

static int
opt_tls_key(ctl *c, char *value, char *why, size_t n)
{
	(void) why, (void) n;
	c->tls.key_file = value;
	c->tls_flags    = true;
	return PARSE_RUN;
}

static int
opt_tls_server_name(ctl *c, char *value, char *why, size_t n)
{
	if (value[0] == 0) {
		return bad_usage(why, n, "--tls-server-name needs a name");
	}
	c->tls.server_name = value;
	c->tls_flags       = true;
	return PARSE_RUN;
}

static int
opt_version(ctl *c, char *value, char *why, size_t n)
{
	(void) c, (void) value, (void) why, (void) n;
	return PARSE_VERSION;
}

/* Every option, global (scope 0) or command-specific (an OPT_* bit). */
static const struct option {
	const char *name; /* after "--" */
	bool        takes_value;
	unsigned    scope;
	option_fn   set;
} options[] = {
	{ "server", true, 0, opt_server },
	{ "publish", true, 0, opt_publish },
	{ "admin", true, 0, opt_admin },
	{ "json", false, 0, opt_json },
	{ "timeout", true, 0, opt_timeout },
	{ "min-revision", true, 0, opt_min_revision },
	{ "token-file", true, 0, opt_token_file },
	{ "tls-ca", true, 0, opt_tls_ca },
	{ "tls-cert", true, 0, opt_tls_cert },
	{ "tls-key", true, 0, opt_tls_key },
	{ "tls-server-name", true, 0, opt_tls_server_name },
	{ "help", false, 0, opt_help },
	{ "version", false, 0, opt_version },
	{ "meta", true, OPT_META, opt_meta },
	{ "health-path", true, OPT_HEALTH_PATH, opt_health_path },
	{ "ttl-ms", true, OPT_TTL, opt_ttl },
	{ "weight", true, OPT_WEIGHT, opt_weight },
	{ "healthy-only", false, OPT_HEALTHY_ONLY, opt_healthy_only },
	{ "count", true, OPT_COUNT, opt_count },
	{ "healthy", false, OPT_HEALTHY, opt_healthy },
	{ "registered", false, OPT_REGISTERED, opt_registered },
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const struct option *
option_find(const char *name, size_t len)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0) {
			return &options[i];
		}
	}
	return NULL;
}

/* Parses argv[*i] (which starts with '-'), taking its value from argv[*i + 1] if needed. */
static int
parse_option(ctl *c, int argc, char **argv, int *i, char *why, size_t n)
{
	char                *arg  = argv[*i];
	const char          *name = strcmp(arg, "-h") == 0 ? "help" : arg + 2;
	char                *value;
	const struct option *o;

	if (strcmp(arg, "-h") != 0 && arg[1] != '-') {
		return bad_usage(why, n, "unknown option %s", arg);
	}
	value = strchr(name, '=');
	o     = option_find(name, value != NULL ? (size_t) (value - name) : strlen(name));
	if (o == NULL) {
		return bad_usage(why, n, "unknown option %s", arg);
	}
	if (value != NULL && !o->takes_value) {
		return bad_usage(why, n, "option --%s takes no value", o->name);
	}
	if (value != NULL) {
		value++;
	} else if (o->takes_value) {
		if (*i + 1 >= argc) {
			return bad_usage(why, n, "option --%s needs a value", o->name);
		}
		value = argv[++*i];
	}
	c->seen |= o->scope;
	return o->set(c, value, why, n);
}

/* Levenshtein distance between a and b, counting no further than 3. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[32];

	if (la >= 32 || lb >= 32) {
		return 3;
	}
	for (size_t j = 0; j <= lb; j++) {
		row[j] = j;
	}
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0]      = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t v  = diag + (a[i - 1] != b[j - 1]);
			v         = v < up + 1 ? v : up + 1;
			v         = v < row[j - 1] + 1 ? v : row[j - 1] + 1;
			row[j]    = v;
			diag      = up;
		}
	}
	return row[lb] < 3 ? row[lb] : 3;
}

/* The command a typo most likely meant (at most two edits away), or NULL. */
static const char *
closest_command(const char *name)
{
	const char *best = NULL;
	size_t      d    = 3;

	for (size_t i = 0; i < ctl_ncommands; i++) {
		size_t e = edit_distance(name, ctl_commands[i].name);
		if (e < d) {
			d    = e;
			best = ctl_commands[i].name;
		}
	}
	return best;
}

/* Checks what only the whole line can tell: the command, its arguments, its options. */
static int
check_command(ctl *c, const char *name, char *why, size_t n)
{
	if (name == NULL) {
		return bad_usage(why, n, "no command given");
	}
	if (c->cmd == NULL) {
		const char *near = closest_command(name);
		if (near != NULL) {
			return bad_usage(
			    why, n, "unknown command '%s'; did you mean '%s'?", name, near);
		}
		return bad_usage(why, n, "unknown command '%s'", name);
	}
	if (c->nargs < c->cmd->min_args) {
		return bad_usage(why, n, "%s: missing arguments", name);
	}
	if (c->nargs > c->cmd->max_args) {
		return bad_usage(why, n, "%s: too many arguments", name);
	}
	for (size_t i = 0; i < NOPTIONS; i++) {
		if ((c->seen & options[i].scope & ~c->cmd->opts) != 0) {
			return bad_usage(why, n, "%s does not take --%s", name, options[i].name);
		}
	}
	if ((c->seen & (OPT_HEALTHY | OPT_REGISTERED)) == (OPT_HEALTHY | OPT_REGISTERED)) {
		return bad_usage(why, n, "%s: --healthy and --registered exclude each other", name);
	}
	/*
	 * An empty ENDPOINT would mean "every instance" to deregister, so an
	 * unset shell variable must not get that far.
	 */
	for (size_t i = 0; i < c->nargs; i++) {
		if (c->args[i][0] == 0) {
			return bad_usage(why, n, "%s: argument %zu is empty", name, i + 1);
		}
	}
	return PARSE_RUN;
}

/* A flag's value, else the variable's when it is set and not empty. */
static const char *
flag_or_env(const char *flag, const char *env)
{
	const char *v = getenv(env);
	return flag != NULL ? flag : v != NULL && v[0] != 0 ? v : NULL;
}

/*
 * --server and --publish may be lists (failover): a bad entry of a list is
 * a usage error that names it, checked only for the URLs the command
 * dials. A single URL keeps the messages it always had, from the open.
 */
static int
check_urls(const ctl *c, char *why, size_t n)
{
	ctl_dials dials = c->cmd->dials;
	dsc_error err;

	if ((dials == DIALS_SERVER || dials == DIALS_BOTH) && strchr(c->server, ',') != NULL
	    && dsc_url_list_check(c->server, NULL, &err) != 0) {
		return bad_usage(why, n, "--server: %s", err.message);
	}
	if ((dials == DIALS_PUBLISH || dials == DIALS_BOTH) && strchr(c->publish, ',') != NULL
	    && dsc_url_list_check(c->publish, NULL, &err) != 0) {
		return bad_usage(why, n, "--publish: %s", err.message);
	}
	return PARSE_RUN;
}

/*
 * TLS applies to the tls+tcp:// URLs the command dials (watch: --publish;
 * wait: both; the rest: --server). --tls-* flags with none of them are a
 * mistake that would otherwise go out in plaintext; the variables are
 * ignored then, since they may be set for other runs.
 */
static int
check_tls(ctl *c, char *why, size_t n)
{
	ctl_dials   dials   = c->cmd->dials;
	const char *tls_url = dials == DIALS_ADMIN
	    ? (strncmp(c->admin, "https://", 8) == 0 ? c->admin : NULL)
	    : dials != DIALS_PUBLISH && dsi_url_is_tls(c->server) ? c->server
	    : dials != DIALS_SERVER && dsi_url_is_tls(c->publish) ? c->publish
	                                                          : NULL;
	dsc_error   err;

	c->tls.ca_file     = flag_or_env(c->tls.ca_file, TLS_CA_ENV);
	c->tls.cert_file   = flag_or_env(c->tls.cert_file, TLS_CERT_ENV);
	c->tls.key_file    = flag_or_env(c->tls.key_file, TLS_KEY_ENV);
	c->tls.server_name = flag_or_env(c->tls.server_name, TLS_SERVER_NAME_ENV);
	if (tls_url == NULL) {
		if (c->tls_flags) {
			return bad_usage(why, n, "--tls-* options need a %s URL, and %s is not one",
			    dials == DIALS_ADMIN ? "https://" : "tls+tcp://",
			    dials == DIALS_ADMIN         ? c->admin
			        : dials == DIALS_PUBLISH ? c->publish
			                                 : c->server);
		}
		return PARSE_RUN;
	}
	if (c->tls.ca_file == NULL) {
		return bad_usage(why, n,
		    "%s is a TLS URL: --tls-ca FILE (or $" TLS_CA_ENV
		    ") must name the CA that signs the server's certificate",
		    tls_url);
	}
	if (dsc_tls_check(&c->tls, &err) != 0) {
		return bad_usage(why, n, "%s", err.message);
	}
	return PARSE_RUN;
}

int
ctl_parse(ctl *c, int argc, char **argv, char *why, size_t n)
{
	const char *name          = NULL;
	bool        options_ended = false;
	int         rv;

	for (int i = 1; i < argc; i++) {
		char *arg = argv[i];
		if (!options_ended && strcmp(arg, "--") == 0) {
			options_ended = true;
		} else if (!options_ended && arg[0] == '-' && arg[1] != 0) {
			if ((rv = parse_option(c, argc, argv, &i, why, n)) != PARSE_RUN) {
				return rv;
			}
		} else if (name == NULL) {
			/* Known early, so a bad option after it gets the command's own usage. */
			name   = arg;
			c->cmd = ctl_command_find(name);
		} else if (c->nargs++ < MAX_ARGS) {
			c->args[c->nargs - 1] = arg;
		}
	}
	if ((rv = check_command(c, name, why, n)) != PARSE_RUN) {
		return rv;
	}
	if (c->server == NULL) {
		const char *env = getenv(SERVER_ENV);
		c->server       = env != NULL && env[0] != 0 ? env : DEFAULT_SERVER;
	}
	if (c->publish == NULL) {
		const char *env = getenv(PUBLISH_ENV);
		c->publish      = env != NULL && env[0] != 0 ? env : DEFAULT_PUBLISH;
	}
	if (c->admin == NULL) {
		const char *env = getenv(ADMIN_ENV);
		c->admin        = env != NULL && env[0] != 0 ? env : DEFAULT_ADMIN;
	}
	if ((rv = check_urls(c, why, n)) != PARSE_RUN) {
		return rv;
	}
	return check_tls(c, why, n);
}

void
ctl_print_usage(FILE *f)
{
	fputs("usage: discoveryctl [--server URL] [--publish URL] [--json] [--timeout SECONDS]\n"
	      "                    COMMAND [ARGS]\n"
	      "\n"
	      "Commands:\n",
	    f);
	for (size_t i = 0; i < ctl_ncommands; i++) {
		fprintf(f, "  %s %s\n      %s\n", ctl_commands[i].name, ctl_commands[i].usage,
		    ctl_commands[i].summary);
	}
	fputs("\n"
	      "Options may come before or after COMMAND, as --opt VALUE or --opt=VALUE:\n"
	      "  --server URL       discoveryd's URL, or a comma-separated list of servers\n"
	      "                     tried in order (default: $" SERVER_ENV ", else " DEFAULT_SERVER
	      ")\n"
	      "  --publish URL      discoveryd's event URL (or a list), for watch and wait\n"
	      "                     (default: $" PUBLISH_ENV ", else " DEFAULT_PUBLISH ")\n"
	      "  --admin URL        discoveryd's admin endpoint, for snapshot\n"
	      "                     (default: $" ADMIN_ENV ", else " DEFAULT_ADMIN ")\n"
	      "  --json             print one JSON object on stdout (watch: one per line)\n"
	      "  --timeout SECONDS  bound on the call; fractions allowed (default: 5). For wait,\n"
	      "                     the bound on the whole wait (default: 60)\n"
	      "  --min-revision N   a server whose registry is behind revision N waits briefly,\n"
	      "                     then the call moves on to the next server (read your\n"
	      "                     own writes: N from status on the server written to)\n"
	      "  --token-file FILE  the auth token, for servers that require one\n"
	      "                     (default: $" TOKEN_ENV ")\n"
	      "  --tls-ca FILE      for tls+tcp:// URLs (and an https:// --admin): the CA (PEM)\n"
	      "                     that signs the server's certificate (default: $" TLS_CA_ENV
	      ")\n"
	      "  --tls-cert FILE    a client certificate (PEM), for servers that require one\n"
	      "                     (default: $" TLS_CERT_ENV ")\n"
	      "  --tls-key FILE     its unencrypted private key (default: $" TLS_KEY_ENV ")\n"
	      "  --tls-server-name NAME\n"
	      "                     the DNS name in the server's certificate (default: the\n"
	      "                     URL's host; $" TLS_SERVER_NAME_ENV ")\n"
	      "  -h, --help         print this help\n"
	      "  --version          print the version\n"
	      "\n"
	      "Exit status:\n"
	      "  0  success\n"
	      "  1  not found, not healthy, or no healthy instance; wait: timed out\n"
	      "  2  usage error (unknown command or option, wrong arguments, bad number)\n"
	      "  3  server unreachable or timed out, behind --min-revision, the TLS handshake\n"
	      "     failed, or the peer speaks another protocol; watch: no connection within\n"
	      "     --timeout\n"
	      "  4  server rejected the request\n"
	      "  5  local failure (out of memory, cannot write output)\n"
	      "  6  authentication: the server needs an auth token, or refused the one given\n",
	    f);
}

void
ctl_print_usage_error(const ctl *c, const char *why)
{
	ctl_say("%s", why);
	if (c->cmd == NULL) {
		/* The whole usage would bury the one line that matters. */
		fputs("Try 'discoveryctl --help' for the commands and options.\n", stderr);
		return;
	}
	fprintf(stderr,
	    "usage: discoveryctl [--server URL] [--publish URL] [--json] [--timeout SECONDS] %s "
	    "%s\n"
	    "Try 'discoveryctl --help' for more.\n",
	    c->cmd->name, c->cmd->usage);
}
