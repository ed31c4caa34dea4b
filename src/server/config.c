/*
 * Configuration sources. Precedence is flags, then environment, then the
 * YAML file, then defaults: the file is applied first and each later source
 * overwrites what it sets. Services come from the file and from
 * PREFIX<NAME>=URL variables; a service the environment names replaces the
 * file's instances of it.
 */
#include "server/config.h"

#include <discovery/discovery.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "server/endpoint.h"
#include "common/name.h"
#include "common/text.h"
#include "common/tls.h"

#include <discovery/version.h> /* generated from project(VERSION) */
#define DISCOVERY_VERSION DSC_VERSION_STRING

#define SETTINGS_PREFIX "SERVICE_DISCOVERY_"

static const struct {
	const char *name;
	const char *prefix;
} profiles[] = {
	{ "development", "SERVICE_" },
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

static void warn(dsi_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
warn(dsi_config *c, const char *fmt, ...)
{
	char    msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char **n = realloc(c->warnings, (c->n_warnings + 1) * sizeof(*n));
	if (n != NULL) {
		c->warnings = n;
		if ((n[c->n_warnings] = strdup(msg)) != NULL) {
			c->n_warnings++;
		}
	}
}

/* Sets a setting, splitting comma lists; origin names the source. */
static int
apply(dsi_config *c, dsi_setting s, const char *value, dsi_source src, const char *origin,
    char *why, size_t why_len)
{
	const dsi_setting_info *info = dsi_setting_get(s);
	char                    detail[256];
	const char             *p = value;

	do {
		size_t len = info->list ? strcspn(p, ",") : strlen(p);
		char  *v   = own(c, p, len);
		if (v == NULL) {
			return dsi_failf(DSC_EINVAL, why, why_len, "out of memory");
		}
		if (dsi_options_set(&c->options, s, v, src, origin, detail, sizeof(detail)) != 0) {
			return dsi_failf(DSC_EINVAL, why, why_len, "%s: %s", origin, detail);
		}
		p += len;
	} while (info->list && *p++ == ',');
	return 0;
}

/* ---- the YAML file ---- */

typedef struct yaml_ctx {
	dsi_config     *c;
	yaml_document_t doc;
	const char     *path;
	char           *why;
	size_t          why_len;
} yaml_ctx;

static yaml_node_t *
node(yaml_ctx *y, int id)
{
	return yaml_document_get_node(&y->doc, id);
}

static size_t
line_of(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

static const char *
scalar(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE ? (const char *) n->data.scalar.value : NULL;
}

static int yfail(yaml_ctx *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
yfail(yaml_ctx *y, const yaml_node_t *n, const char *fmt, ...)
{
	char    msg[384];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return dsi_failf(DSC_EINVAL, y->why, y->why_len, "%s:%zu: %s", y->path, line_of(n), msg);
}

static int
setting_from_yaml(yaml_ctx *y, dsi_setting s, const char *key, const yaml_node_t *v)
{
	char origin[160];
	snprintf(origin, sizeof(origin), "file %s:%zu (%s)", y->path, line_of(v), key);
	if (v->type == YAML_SCALAR_NODE) {
		return apply(y->c, s, scalar(v), DSI_SRC_FILE, origin, y->why, y->why_len);
	}
	if (v->type == YAML_SEQUENCE_NODE && dsi_setting_get(s)->list) {
		for (yaml_node_item_t *i = v->data.sequence.items.start;
		     i < v->data.sequence.items.top; i++) {
			const yaml_node_t *item = node(y, *i);
			if (scalar(item) == NULL) {
				return yfail(y, item, "%s: expects a list of values", key);
			}
			int rv = apply(
			    y->c, s, scalar(item), DSI_SRC_FILE, origin, y->why, y->why_len);
			if (rv != 0) {
				return rv;
			}
		}
		return 0;
	}
	return yfail(
	    y, v, "%s: expects a %s", key, dsi_setting_get(s)->list ? "value or a list" : "value");
}

static int
parse_u32(const char *s, uint32_t *out)
{
	char         *end = NULL;
	unsigned long v;
	if (s == NULL || s[0] < '0' || s[0] > '9') {
		return -1;
	}
	errno = 0;
	v     = strtoul(s, &end, 10);
	if (errno != 0 || *end != 0 || v > UINT32_MAX) {
		return -1;
	}
	*out = (uint32_t) v;
	return 0;
}

/* Adds one instance of svc from a URL scalar or an {endpoint, ...} mapping. */
static int
boot_from_yaml(yaml_ctx *y, const char *svc, const yaml_node_t *n)
{
	dsi_config        *c = y->c;
	dsi_boot_instance  b;
	const yaml_node_t *md = NULL;

	memset(&b, 0, sizeof(b));
	b.service = svc;
	snprintf(b.origin, sizeof(b.origin), "file %s:%zu", y->path, line_of(n));
	if (n->type == YAML_SCALAR_NODE) {
		b.endpoint = own_str(c, scalar(n));
	} else if (n->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			const yaml_node_t *k = node(y, p->key), *v = node(y, p->value);
			const char        *key = scalar(k);
			if (key == NULL) {
				return yfail(y, k, "service %s: keys must be plain names", svc);
			}
			if (strcmp(key, "metadata") == 0) {
				if (v->type != YAML_MAPPING_NODE) {
					return yfail(
					    y, v, "service %s: metadata must be a mapping", svc);
				}
				md = v;
			} else if (scalar(v) == NULL) {
				return yfail(y, v, "service %s: %s must be a value", svc, key);
			} else if (strcmp(key, "endpoint") == 0 || strcmp(key, "url") == 0) {
				b.endpoint = own_str(c, scalar(v));
			} else if (strcmp(key, "health_path") == 0) {
				b.health_path = own_str(c, scalar(v));
			} else if (strcmp(key, "ttl_ms") == 0) {
				if (parse_u32(scalar(v), &b.ttl_ms) != 0) {
					return yfail(
					    y, v, "service %s: ttl_ms expects a whole number", svc);
				}
			} else if (strcmp(key, "weight") == 0) {
				if (parse_u32(scalar(v), &b.weight) != 0) {
					return yfail(
					    y, v, "service %s: weight expects a whole number", svc);
				}
			} else {
				warn(c, "%s:%zu: service %s: unknown key \"%s\" ignored", y->path,
				    line_of(k), svc, key);
			}
		}
	} else {
		return yfail(y, n, "service %s: expects a URL, a mapping or a list of them", svc);
	}
	if (b.endpoint == NULL) {
		return yfail(y, n, "service %s: an instance needs an endpoint", svc);
	}
	if (md != NULL) {
		size_t cnt = (size_t) (md->data.mapping.pairs.top - md->data.mapping.pairs.start);
		b.keys     = calloc(cnt, sizeof(*b.keys));
		b.values   = calloc(cnt, sizeof(*b.values));
		if (b.keys == NULL || b.values == NULL) {
			free(b.keys);
			free(b.values);
			return dsi_failf(DSC_EINVAL, y->why, y->why_len, "out of memory");
		}
		for (size_t i = 0; i < cnt; i++) {
			yaml_node_pair_t  *p = &md->data.mapping.pairs.start[i];
			const yaml_node_t *k = node(y, p->key), *v = node(y, p->value);
			if (scalar(k) == NULL || scalar(v) == NULL) {
				free(b.keys);
				free(b.values);
				return yfail(
				    y, k, "service %s: metadata entries must be plain values", svc);
			}
			b.keys[i]   = own_str(c, scalar(k));
			b.values[i] = own_str(c, scalar(v));
		}
		b.n_metadata = cnt;
	}
	dsi_boot_instance *nb = realloc(c->boot, (c->n_boot + 1) * sizeof(*nb));
	if (nb == NULL) {
		free(b.keys);
		free(b.values);
		return dsi_failf(DSC_EINVAL, y->why, y->why_len, "out of memory");
	}
	c->boot              = nb;
	c->boot[c->n_boot++] = b;
	return 0;
}

static int
services_from_yaml(yaml_ctx *y, const yaml_node_t *n)
{
	if (n->type != YAML_MAPPING_NODE) {
		return yfail(y, n, "services: expects a mapping of name to URL");
	}
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = node(y, p->key), *v = node(y, p->value);
		char               name[DSI_NAME_MAX + 1], why[256];
		if (scalar(k) == NULL
		    || dsi_name_normalize(scalar(k), name, why, sizeof(why)) != 0) {
			return yfail(
			    y, k, "services: %s", scalar(k) ? why : "names must be plain values");
		}
		const char *svc = own_str(y->c, name);
		int         rv  = 0;
		if (v->type == YAML_SEQUENCE_NODE) {
			for (yaml_node_item_t *i = v->data.sequence.items.start;
			     rv == 0 && i < v->data.sequence.items.top; i++) {
				rv = boot_from_yaml(y, svc, node(y, *i));
			}
		} else {
			rv = boot_from_yaml(y, svc, v);
		}
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

/* The setting whose YAML path is path, or DSI_SET_COUNT. */
static dsi_setting
setting_by_yaml(const char *path)
{
	for (int s = 0; s < DSI_SET_COUNT; s++) {
		const char *y = dsi_setting_get(s)->yaml;
		if (y != NULL && strcmp(y, path) == 0) {
			return (dsi_setting) s;
		}
	}
	return DSI_SET_COUNT;
}

static bool
is_section(const char *path)
{
	size_t len = strlen(path);
	for (int s = 0; s < DSI_SET_COUNT; s++) {
		const char *y = dsi_setting_get(s)->yaml;
		if (y != NULL && strncmp(y, path, len) == 0 && y[len] == '.') {
			return true;
		}
	}
	return false;
}

static int
mapping_from_yaml(yaml_ctx *y, const yaml_node_t *n, const char *prefix)
{
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *k = node(y, p->key), *v = node(y, p->value);
		char               path[128];
		int                rv = 0;
		if (scalar(k) == NULL) {
			return yfail(y, k, "keys must be plain names");
		}
		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", scalar(k));
		dsi_setting s = setting_by_yaml(path);
		if (s != DSI_SET_COUNT) {
			rv = setting_from_yaml(y, s, path, v);
		} else if (prefix[0] == 0 && strcmp(path, "services") == 0) {
			rv = services_from_yaml(y, v);
		} else if (is_section(path) && v->type == YAML_MAPPING_NODE) {
			rv = mapping_from_yaml(y, v, path);
		} else {
			warn(y->c, "%s:%zu: unknown key \"%s\" ignored", y->path, line_of(k), path);
		}
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

static int
load_file(dsi_config *c, const char *path, char *why, size_t why_len)
{
	yaml_parser_t parser;
	yaml_ctx      y = { .c = c, .path = path, .why = why, .why_len = why_len };
	FILE         *f = fopen(path, "rb");
	int           rv;

	if (f == NULL) {
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "%s: cannot read the configuration file: %s", path, strerror(errno));
	}
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		return dsi_failf(DSC_EINVAL, why, why_len, "out of memory");
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &y.doc)) {
		rv = dsi_failf(DSC_EINVAL, why, why_len, "%s:%zu: malformed YAML: %s", path,
		    (size_t) parser.problem_mark.line + 1,
		    parser.problem ? parser.problem : "error");
		yaml_parser_delete(&parser);
		fclose(f);
		return rv;
	}
	yaml_parser_delete(&parser);
	fclose(f);
	yaml_node_t *root = yaml_document_get_root_node(&y.doc);
	if (root == NULL || (root->type == YAML_SCALAR_NODE && scalar(root)[0] == 0)) {
		rv = 0; /* an empty file configures nothing */
	} else if (root->type != YAML_MAPPING_NODE) {
		rv = yfail(&y, root, "the file must be a mapping of settings");
	} else {
		rv = mapping_from_yaml(&y, root, "");
	}
	yaml_document_delete(&y.doc);
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
		const char *eq  = strchr(*e, '=');
		size_t      len = eq != NULL ? (size_t) (eq - *e) : strlen(*e);
		int         s;
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

/*
 * PREFIX<NAME>=URL variables. SERVICE_DISCOVERY_* are settings, never
 * services, whatever the prefix: the original design registered
 * SERVICE_DISCOVERY_HEALTH_CHECK_INTERVAL as a service, which is a bug.
 */
static int
services_from_env(dsi_config *c, char *const *envp, char *why, size_t why_len)
{
	size_t plen = strlen(c->prefix);
	for (char *const *e = envp; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		if (eq == NULL || strncmp(*e, c->prefix, plen) != 0 || (size_t) (eq - *e) == plen
		    || strncmp(*e, SETTINGS_PREFIX, strlen(SETTINGS_PREFIX)) == 0) {
			continue;
		}
		char   var[128], name[DSI_NAME_MAX + 1], reason[320], esc[96];
		size_t vlen = (size_t) (eq - *e);
		snprintf(var, sizeof(var), "%.*s", (int) vlen, *e);
		if (dsi_name_normalize(var + plen, name, reason, sizeof(reason)) != 0
		    || dsi_endpoint_validate(eq + 1, reason, sizeof(reason)) != 0) {
			warn(c, "%s skipped: %s", var, reason);
			continue;
		}
		/* The environment wins over the file: drop the file's instances of it. */
		size_t k = 0;
		for (size_t i = 0; i < c->n_boot; i++) {
			if (strcmp(c->boot[i].service, name) == 0
			    && strncmp(c->boot[i].origin, "file", 4) == 0) {
				free(c->boot[i].keys);
				free(c->boot[i].values);
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
		snprintf(
		    b->origin, sizeof(b->origin), "env %s", dsi_text_escape(var, esc, sizeof(esc)));
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
	char        buf[4096];
	struct stat st;
	FILE       *f = fopen(path, "rb");
	if (f == NULL) {
		return dsi_failf(DSC_EINVAL, why, why_len, "%s: cannot read the token file: %s",
		    path, strerror(errno));
	}
	/* As ssh does with private keys: a secret others can read is not a secret. */
	if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0) {
		fclose(f);
		return dsi_failf(DSC_EINVAL, why, why_len,
		    "%s: the token file is readable by group or others (mode %03o); chmod 600 it",
		    path, (unsigned) (st.st_mode & 0777));
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
		n--;
	}
	if (n == 0) {
		return dsi_failf(DSC_EINVAL, why, why_len, "%s: the token file is empty", path);
	}
	char origin[160];
	snprintf(origin, sizeof(origin), "file %s", path);
	return apply(c, DSI_SET_TOKEN, own(c, buf, n), c->options.source[DSI_SET_TOKEN_FILE],
	    origin, why, why_len);
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
	if ((rv = services_from_env(c, envp, why, why_len)) != 0) {
		goto done;
	}

	if ((rv = check_tls(c, why, why_len)) != 0) {
		goto done;
	}
	if (c->options.require_https) {
		if (c->options.token == NULL) {
			rv = dsi_failf(DSC_EINVAL, why, why_len,
			    "the production profile needs an auth token: set "
			    "SERVICE_DISCOVERY_API_KEY "
			    "or --token-file");
			goto done;
		}
		for (size_t i = 0; i < c->n_boot; i++) {
			if (strncasecmp(c->boot[i].endpoint, "https://", 8) != 0) {
				rv = dsi_failf(DSC_EINVAL, why, why_len,
				    "%s: service %s: the production profile accepts only https:// "
				    "endpoints",
				    c->boot[i].origin, c->boot[i].service);
				goto done;
			}
		}
	}
	rv = 0;
done:
	free(flags);
	return rv;
}

void
dsi_config_print(const dsi_config *c, FILE *out)
{
	const dsi_server_options *o = &c->options;

	fprintf(out, "# discoveryd %s: the effective configuration\n", DISCOVERY_VERSION);
	fprintf(out, "%-26s %-30s %s\n", "environment", c->profile, c->profile_origin);
	fprintf(out, "%-26s %-30s %s\n", "config", c->file ? c->file : "none",
	    c->file ? c->file_origin : "default");
	for (int s = 0; s < DSI_SET_COUNT; s++) {
		const dsi_setting_info *info       = dsi_setting_get(s);
		char                    value[512] = "";
		if (s == DSI_SET_LISTEN) {
			for (size_t i = 0; i < o->n_listen; i++) {
				size_t len = strlen(value);
				snprintf(value + len, sizeof(value) - len, "%s%s", i ? "," : "",
				    o->listen[i]);
			}
		} else if (s == DSI_SET_REQUIRE) {
			for (size_t i = 0; i < o->n_require; i++) {
				size_t len = strlen(value);
				snprintf(value + len, sizeof(value) - len, "%s%s", i ? "," : "",
				    o->require[i]);
			}
			if (o->n_require == 0) {
				snprintf(value, sizeof(value), "none");
			}
		} else if (s == DSI_SET_ENV_PREFIX) {
			snprintf(value, sizeof(value), "%s", c->prefix ? c->prefix : "");
		} else if (info->secret) {
			snprintf(value, sizeof(value), "%s", o->text[s] != NULL ? "(set)" : "none");
		} else {
			snprintf(value, sizeof(value), "%s",
			    o->text[s] != NULL ? o->text[s] : info->dflt);
		}
		const char *name = info->flag != NULL ? info->flag : "api-key";
		fprintf(out, "%-26s %-30s %s\n", name, value,
		    s == DSI_SET_ENV_PREFIX && o->source[s] == DSI_SRC_DEFAULT ? "profile"
		                                                               : o->origin[s]);
	}
	fprintf(out, "services:%s\n", c->n_boot == 0 ? " none" : "");
	for (size_t i = 0; i < c->n_boot; i++) {
		fprintf(out, "  %-24s %-30s %s\n", c->boot[i].service, c->boot[i].endpoint,
		    c->boot[i].origin);
	}
}

void
dsi_config_free(dsi_config *c)
{
	for (size_t i = 0; i < c->n_boot; i++) {
		free(c->boot[i].keys);
		free(c->boot[i].values);
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
