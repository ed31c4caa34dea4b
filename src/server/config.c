/*
 * Configuration sources. Precedence is flags, then environment, then the
 * YAML file, then defaults: the file is applied first and each later source
 * overwrites what it sets. Services come from the file and from
 * PREFIX<NAME>=URL variables; a service the environment names replaces the
 * file's instances of it.
 */
#include "server/config.h"

#include <discovery/discovery.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/checkhttp.h"
#include "server/cluster_node.h"
#include "server/endpoint.h"
#include "server/netpolicy.h"
#include "common/name.h"
#include "common/text.h"
#include "common/tls.h"
#include "common/tokenfile.h"

#include <discovery/version.h> /* generated from project(VERSION) */
#define DISCOVERY_VERSION DSC_VERSION_STRING

#define SETTINGS_PREFIX "SERVICE_DISCOVERY_"

static const struct {
	const char *name;
	const char *prefix;
} profiles[] = {
	{ "development", DSI_DEFAULT_ENV_PREFIX },
	{ "testing", "TEST_SERVICE_" },
	{ "production", "PROD_SERVICE_" },
};

/* ---- owned strings and warnings ---- */

static char *
own(dsi_config *c, const char *s, size_t len)
{
	if (c->n_owned == c->cap_owned) {
		size_t ncap = c->cap_owned == 0 ? 32 : c->cap_owned * 2;
		char **n    = realloc(c->owned, ncap * sizeof(*n));
		if (n == NULL) {
			return NULL;
		}
		c->owned     = n;
		c->cap_owned = ncap;
	}
	char *d = malloc(len + 1);
	if (d == NULL) {
		return NULL;
	}
	memcpy(d, s, len);
	d[len]                 = 0;
	c->owned[c->n_owned++] = d;
	return d;
}

static char *
own_str(dsi_config *c, const char *s)
{
	return own(c, s, strlen(s));
}

/* Appends one warning line, whatever the cap. */
static void
push_warning(dsi_config *c, const char *msg)
{
	char **n = realloc(c->warnings, (c->n_warnings + 1) * sizeof(*n));
	if (n != NULL) {
		c->warnings = n;
		if ((n[c->n_warnings] = strdup(msg)) != NULL) {
			c->n_warnings++;
		}
	}
}

static void warn(dsi_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keeps the first DSI_CONFIG_MAX_WARNINGS; the rest are only counted. */
static void
warn(dsi_config *c, const char *fmt, ...)
{
	char    msg[512];
	va_list ap;
	if (c->n_warnings >= DSI_CONFIG_MAX_WARNINGS) {
		c->n_more_warnings++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	push_warning(c, msg);
}

/* Sets a setting, splitting comma lists; origin names the source. */
static int
apply(dsi_config *c, dsi_setting s, const char *value, dsi_source src, const char *origin,
    char *why, size_t why_len)
{
	const dsi_setting_info *info = dsi_setting_get(s);
	char                    detail[256];
	const char             *p   = value;
	const char             *sep = info->map ? "\n" : ","; /* header values hold commas */

	do {
		size_t len = info->list ? strcspn(p, sep) : strlen(p);
		char  *v   = own(c, p, len);
		if (v == NULL) {
			return dsi_failf(DSC_EINVAL, why, why_len, "out of memory");
		}
		if (dsi_options_set(&c->options, s, v, src, origin, detail, sizeof(detail)) != 0) {
			return dsi_failf(DSC_EINVAL, why, why_len, "%s: %s", origin, detail);
		}
		p += len;
	} while (info->list && *p++ == sep[0]);
	return 0;
}

/* ---- the YAML file ---- */

/* Applies what the file says; the environment and the flags come later and win. */
static int
load_file(dsi_config *c, const char *path, char *why, size_t why_len)
{
	dsi_yaml_file f;
	int           rv = dsi_yaml_read(&f, path, why, why_len);

	for (size_t i = 0; rv == 0 && i < f.n_warnings; i++) {
		warn(c, "%s", f.warnings[i]);
	}
	c->n_more_warnings += f.n_more_warnings;
	for (size_t i = 0; rv == 0 && i < f.n_settings; i++) {
		const dsi_yaml_setting *s = &f.settings[i];
		rv = apply(c, s->setting, s->value, DSI_SRC_FILE, s->origin, why, why_len);
	}
	if (rv == 0 && f.n_boot > 0) {
		/* The instances point into the file's strings: the config takes both. */
		dsi_boot_instance *nb = realloc(c->boot, (c->n_boot + f.n_boot) * sizeof(*nb));
		char **no = realloc(c->owned, (c->n_owned + f.n_owned + 1) * sizeof(*no));
		if (nb != NULL) {
			c->boot = nb;
		}
		if (no != NULL) {
			c->owned     = no;
			c->cap_owned = c->n_owned + f.n_owned + 1;
		}
		if (nb == NULL || no == NULL) {
			rv = dsi_failf(DSC_EINVAL, why, why_len, "out of memory");
		} else {
			memcpy(c->boot + c->n_boot, f.boot, f.n_boot * sizeof(*nb));
			c->n_boot += f.n_boot;
			f.n_boot = 0;
			memcpy(c->owned + c->n_owned, f.owned, f.n_owned * sizeof(*no));
			c->n_owned += f.n_owned;
			f.n_owned = 0;
		}
	}
	dsi_yaml_file_free(&f);
	return rv;
}

/* ---- the environment ---- */

static const char *
env_get(char *const *envp, const char *name)
{
	size_t len = strlen(name);
	for (char *const *e = envp; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
			return *e + len + 1;
		}
	}
	return NULL;
}

static int
settings_from_env(dsi_config *c, char *const *envp, char *why, size_t why_len)
{
	for (char *const *e = envp; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, SETTINGS_PREFIX, strlen(SETTINGS_PREFIX)) != 0) {
			continue;
		}
		const char *eq = strchr(*e, '=');
		if (eq == NULL) {
			continue; /* not NAME=value: no variable at all */
		}
		size_t len = (size_t) (eq - *e);
		int    s;
		for (s = 0; s < DSI_SET_COUNT; s++) {
			const char *env = dsi_setting_get(s)->env;
			if (env != NULL && strlen(env) == len && strncmp(env, *e, len) == 0) {
				break;
			}
		}
		if (s < DSI_SET_COUNT) {
			char origin[160];
			snprintf(origin, sizeof(origin), "env %.*s", (int) len, *e);
			int rv
			    = apply(c, (dsi_setting) s, eq + 1, DSI_SRC_ENV, origin, why, why_len);
			if (rv != 0) {
				return rv;
			}
		} else if (strncmp(*e, "SERVICE_DISCOVERY_CONFIG=", 25) != 0) {
			warn(c, "unknown setting variable %.*s ignored", (int) len, *e);
		}
	}
	return 0;
}

/* The endpoint policy the server will run with, to judge PREFIX<NAME>=URL hosts now. */
static void
policy_of(const dsi_server_options *o, dsi_netpolicy *p)
{
	char why[256];
	dsi_netpolicy_init(p);
	for (size_t i = 0; i < o->n_allow_endpoint; i++) {
		dsi_netpolicy_add(p, true, o->allow_endpoint[i], why, sizeof(why));
	}
	for (size_t i = 0; i < o->n_deny_endpoint; i++) {
		dsi_netpolicy_add(p, false, o->deny_endpoint[i], why, sizeof(why));
	}
}

/*
 * PREFIX<NAME>=URL variables. SERVICE_DISCOVERY_* are settings, never
 * services, whatever the prefix: the original design registered
 * SERVICE_DISCOVERY_HEALTH_CHECK_INTERVAL as a service, which is a bug.
 * A bad name, URL or address is one rule: skipped with a warning.
 */
static int
services_from_env(dsi_config *c, char *const *envp, char *why, size_t why_len)
{
	size_t        plen = strlen(c->prefix);
	dsi_netpolicy policy;

	policy_of(&c->options, &policy);
	for (char *const *e = envp; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		if (eq == NULL || strncmp(*e, c->prefix, plen) != 0 || (size_t) (eq - *e) == plen
		    || strncmp(*e, SETTINGS_PREFIX, strlen(SETTINGS_PREFIX)) == 0) {
			continue;
		}
		/*
		 * Every copy is bounded: the variable's name only for messages
		 * (escaped, cut short), the service part at one byte past the
		 * longest name, so that a longer one is refused as too long.
		 */
		char   raw[160], var[150], given[DSI_NAME_MAX + 2], name[DSI_NAME_MAX + 1];
		char   reason[320], host[DSI_ENDPOINT_MAX + 1];
		size_t vlen = (size_t) (eq - *e), nlen = vlen - plen;
		snprintf(raw, sizeof(raw), "%.*s",
		    (int) (vlen < sizeof(raw) ? vlen : sizeof(raw) - 1), *e);
		dsi_text_escape(raw, var, sizeof(var));
		snprintf(given, sizeof(given), "%.*s",
		    (int) (nlen < sizeof(given) ? nlen : sizeof(given) - 1), *e + plen);
		if (dsi_name_normalize(given, name, reason, sizeof(reason)) != 0
		    || dsi_endpoint_validate(eq + 1, reason, sizeof(reason)) != 0
		    || (dsi_endpoint_host(eq + 1, host, sizeof(host)) == 0
		        && !dsi_netpolicy_permits_host(&policy, host, reason, sizeof(reason)))) {
			warn(c, "%s skipped: %s", var, reason);
			continue;
		}
		/* The environment wins over the file: drop the file's instances of it. */
		size_t k = 0;
		for (size_t i = 0; i < c->n_boot; i++) {
			if (strcmp(c->boot[i].service, name) == 0
			    && strncmp(c->boot[i].origin, "file", 4) == 0) {
				free(c->boot[i].metadata);
			} else {
				c->boot[k++] = c->boot[i];
			}
		}
		c->n_boot             = k;
		dsi_boot_instance *nb = realloc(c->boot, (c->n_boot + 1) * sizeof(*nb));
		if (nb == NULL) {
			return dsi_failf(DSC_EINVAL, why, why_len, "out of memory");
		}
		c->boot              = nb;
		dsi_boot_instance *b = &c->boot[c->n_boot++];
		memset(b, 0, sizeof(*b));
		b->service  = own_str(c, name);
		b->endpoint = own_str(c, eq + 1);
		snprintf(b->origin, sizeof(b->origin), "env %s", var);
	}
	return 0;
}

/* ---- the command line ---- */

static dsi_setting
setting_by_flag(const char *name)
{
	for (int s = 0; s < DSI_SET_COUNT; s++) {
		const char *f = dsi_setting_get(s)->flag;
		if (f != NULL && strcmp(f, name) == 0) {
			return (dsi_setting) s;
		}
	}
	return DSI_SET_COUNT;
}

/* Flags that are not settings. */
enum { F_CONFIG = DSI_SET_COUNT + 1, F_ENVIRONMENT, F_PRINT, F_HELP, F_VERSION };

typedef struct flagval {
	int         what; /* a dsi_setting or F_* */
	const char *name;
	const char *value;
} flagval;

/* First pass: check every flag, keep the values; nothing is applied yet. */
static int
scan_flags(int argc, char *const *argv, flagval *out, size_t *n, char *why, size_t why_len)
{
	*n = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char        name[64];
		if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
			return dsi_failf(DSC_EINVAL, why, why_len, "unexpected argument \"%s\"", a);
		}
		const char *eq  = strchr(a, '=');
		size_t      len = eq != NULL ? (size_t) (eq - a - 2) : strlen(a + 2);
		if (len >= sizeof(name)) {
			return dsi_failf(DSC_EINVAL, why, why_len, "unknown option \"%s\"", a);
		}
		snprintf(name, sizeof(name), "%.*s", (int) len, a + 2);
		int  what        = setting_by_flag(name);
		bool takes_value = what == DSI_SET_COUNT || !dsi_setting_get(what)->toggle;
		if (what == DSI_SET_COUNT) {
			static const struct {
				const char *name;
				int         what;
				bool        value;
			} extra[] = { { "config", F_CONFIG, true },
				{ "environment", F_ENVIRONMENT, true },
				{ "print-config", F_PRINT, false }, { "help", F_HELP, false },
				{ "version", F_VERSION, false } };
			what      = -1;
			for (size_t k = 0; k < sizeof(extra) / sizeof(extra[0]); k++) {
				if (strcmp(extra[k].name, name) == 0) {
					what        = extra[k].what;
					takes_value = extra[k].value;
				}
			}
			if (what < 0) {
				return dsi_failf(
				    DSC_EINVAL, why, why_len, "unknown option \"--%s\"", name);
			}
		}
		const char *val = NULL;
		if (!takes_value) {
			if (eq != NULL) {
				return dsi_failf(
				    DSC_EINVAL, why, why_len, "--%s takes no value", name);
			}
			val = what < DSI_SET_COUNT ? "true" : NULL; /* a toggle */
		} else if (eq != NULL) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			return dsi_failf(DSC_EINVAL, why, why_len, "--%s needs a value", name);
		}
		if (val != NULL && val[0] == 0) {
			return dsi_failf(
			    DSC_EINVAL, why, why_len, "--%s needs a non-empty value", name);
		}
		out[*n].what  = what;
		out[*n].name  = a;
		out[*n].value = val;
		(*n)++;
	}
	return 0;
}

static int
read_token_file(dsi_config *c, char *why, size_t why_len)
{
	const char *path = c->options.token_file;
	char        token[DSI_TOKEN_MAX + 1];
	char        origin[160];
	int         rv;

	if ((rv = dsi_token_file_read(path, token, sizeof(token), why, why_len)) != 0) {
		return rv;
	}
	snprintf(origin, sizeof(origin), "file %s", path);
	return apply(
	    c, DSI_SET_TOKEN, token, c->options.source[DSI_SET_TOKEN_FILE], origin, why, why_len);
}

/*
 * TLS settings that do not fit together stop start-up here; the files
 * themselves are read when the server builds its TLS configuration.
 */
static int
check_tls(const dsi_config *c, char *why, size_t why_len)
{
	const dsi_server_options *o       = &c->options;
	const char               *tls_url = dsi_url_is_tls(o->publish) ? o->publish : NULL;
	dsi_setting               url_set = DSI_SET_PUBLISH;

	for (size_t i = 0; i < o->n_listen && tls_url == NULL; i++) {
		if (dsi_url_is_tls(o->listen[i])) {
			tls_url = o->listen[i];
			url_set = DSI_SET_LISTEN;
		}
	}
	if (tls_url == NULL && o->admin != NULL && strncmp(o->admin, "https://", 8) == 0) {
		tls_url = o->admin; /* the admin endpoint serves TLS with the same files */
		url_set = DSI_SET_ADMIN;
	}
	if (tls_url != NULL && (o->tls_cert == NULL || o->tls_key == NULL)) {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "%s: %s is a TLS URL, which needs a certificate and its key: set --tls-cert "
		    "and --tls-key",
		    o->origin[url_set], tls_url);
	}
	if (tls_url == NULL) {
		static const dsi_setting files[]
		    = { DSI_SET_TLS_CERT, DSI_SET_TLS_KEY, DSI_SET_TLS_CA };
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			if (o->source[files[i]] != DSI_SRC_DEFAULT) {
				return dsi_failf(DSC_EINVAL, why, why_len,
				    "%s: TLS is configured, but no --listen or --publish URL is "
				    "tls+tcp://",
				    o->origin[files[i]]);
			}
		}
	}
	return 0;
}

/* The health checks' files and headers, built once here so that a mistake stops start-up. */
static int
check_health_http(const dsi_config *c, char *why, size_t why_len)
{
	dsi_check_http_options ho = dsi_check_http_options_from(&c->options);
	dsi_check_http         h;
	int                    rv = dsi_check_http_build(&h, &ho, why, why_len);
	dsi_check_http_free(&h);
	return rv;
}

int
dsi_config_load(dsi_config *c, int argc, char *const *argv, char *const *envp, FILE *out, char *why,
    size_t why_len)
{
	flagval *flags = calloc((size_t) argc + 1, sizeof(*flags));
	size_t   nflags;
	int      rv;

	memset(c, 0, sizeof(*c));
	dsi_options_default(&c->options);
	if (flags == NULL) {
		return dsi_failf(DSC_EINVAL, why, why_len, "out of memory");
	}
	if ((rv = scan_flags(argc, argv, flags, &nflags, why, why_len)) != 0) {
		goto done;
	}
	for (size_t i = 0; i < nflags; i++) {
		if (flags[i].what == F_HELP) {
			dsi_options_usage(out);
			rv = DSI_OPTIONS_EXIT;
			goto done;
		}
		if (flags[i].what == F_VERSION) {
			fprintf(out, "discoveryd %s\n", DISCOVERY_VERSION);
			rv = DSI_OPTIONS_EXIT;
			goto done;
		}
	}

	/* The profile and the file come first: they decide what else applies. */
	const char *profile = env_get(envp, "ENVIRONMENT");
	snprintf(c->profile_origin, sizeof(c->profile_origin), "%s",
	    profile != NULL ? "env ENVIRONMENT" : "default");
	c->file = env_get(envp, "SERVICE_DISCOVERY_CONFIG");
	snprintf(c->file_origin, sizeof(c->file_origin), "env SERVICE_DISCOVERY_CONFIG");
	for (size_t i = 0; i < nflags; i++) {
		if (flags[i].what == F_ENVIRONMENT) {
			profile = flags[i].value;
			snprintf(
			    c->profile_origin, sizeof(c->profile_origin), "flag --environment");
		} else if (flags[i].what == F_CONFIG) {
			c->file = flags[i].value;
			snprintf(c->file_origin, sizeof(c->file_origin), "flag --config");
		} else if (flags[i].what == F_PRINT) {
			c->print_config = true;
		}
	}
	size_t pi;
	for (pi = 0; pi < sizeof(profiles) / sizeof(profiles[0]); pi++) {
		if (strcasecmp(profile != NULL ? profile : "development", profiles[pi].name) == 0) {
			break;
		}
	}
	if (pi == sizeof(profiles) / sizeof(profiles[0])) {
		rv = dsi_failf(DSC_EINVAL, why, why_len,
		    "ENVIRONMENT must be development, testing or production, not \"%s\"", profile);
		goto done;
	}
	snprintf(c->profile, sizeof(c->profile), "%s", profiles[pi].name);
	c->options.require_https = strcmp(c->profile, "production") == 0;

	if (c->file != NULL && (rv = load_file(c, c->file, why, why_len)) != 0) {
		goto done;
	}
	if ((rv = settings_from_env(c, envp, why, why_len)) != 0) {
		goto done;
	}
	for (size_t i = 0; i < nflags; i++) {
		if (flags[i].what < DSI_SET_COUNT) {
			char origin[96];
			snprintf(origin, sizeof(origin), "flag --%s",
			    dsi_setting_get(flags[i].what)->flag);
			rv = apply(c, (dsi_setting) flags[i].what, flags[i].value, DSI_SRC_FLAG,
			    origin, why, why_len);
			if (rv != 0) {
				goto done;
			}
		}
	}
	if (c->options.token_file != NULL && (rv = read_token_file(c, why, why_len)) != 0) {
		goto done;
	}
	c->prefix = c->options.env_prefix != NULL ? c->options.env_prefix : profiles[pi].prefix;
	if (strlen(c->prefix) > DSI_CONFIG_PREFIX_MAX) {
		rv = dsi_failf(DSC_EINVAL, why, why_len,
		    "%s: the service prefix is %zu bytes, more than the %d allowed",
		    c->options.origin[DSI_SET_ENV_PREFIX], strlen(c->prefix),
		    DSI_CONFIG_PREFIX_MAX);
		goto done;
	}
	if ((rv = services_from_env(c, envp, why, why_len)) != 0) {
		goto done;
	}
	if (c->options.strict_config && c->n_warnings > 0) {
		rv = dsi_failf(DSC_EINVAL, why, why_len,
		    "%s: strict_config refuses what would be a warning: %s%s",
		    c->options.origin[DSI_SET_STRICT_CONFIG], c->warnings[0],
		    c->n_warnings + c->n_more_warnings > 1 ? " (and more)" : "");
		goto done;
	}

	if ((rv = check_tls(c, why, why_len)) != 0 || (rv = check_health_http(c, why, why_len)) != 0
	    || (rv = dsi_cluster_tls_check(&c->options, why, why_len)) != 0) {
		goto done;
	}
	if (c->options.require_https && c->options.token == NULL) {
		rv = dsi_failf(DSC_EINVAL, why, why_len,
		    "the production profile needs an auth token: set SERVICE_DISCOVERY_API_KEY "
		    "or --token-file");
		goto done;
	}
	/* endpoint_schemes: unless a source set it, the profile decides (production: https). */
	if (c->options.endpoint_schemes == 0) {
		c->options.endpoint_schemes = c->options.require_https
		    ? DSI_SCHEME_HTTPS | DSI_SCHEMES_PRODUCTION
		    : DSI_SCHEMES_ANY;
	}
	for (size_t i = 0; i < c->n_boot; i++) {
		char reason[320];
		if (dsi_endpoint_scheme_check(
		        c->options.endpoint_schemes, c->boot[i].endpoint, reason, sizeof(reason))
		    != 0) {
			rv = dsi_failf(DSC_EINVAL, why, why_len, "%s: service %s: %s",
			    c->boot[i].origin, c->boot[i].service, reason);
			goto done;
		}
	}
	rv = 0;
done:
	if (c->n_more_warnings > 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "... and %zu more configuration warnings not shown",
		    c->n_more_warnings);
		push_warning(c, msg);
	}
	free(flags);
	return rv;
}

void
dsi_config_free(dsi_config *c)
{
	for (size_t i = 0; i < c->n_boot; i++) {
		free(c->boot[i].metadata);
	}
	free(c->boot);
	for (size_t i = 0; i < c->n_warnings; i++) {
		free(c->warnings[i]);
	}
	free(c->warnings);
	for (size_t i = 0; i < c->n_owned; i++) {
		free(c->owned[i]);
	}
	free(c->owned);
	memset(c, 0, sizeof(*c));
}
