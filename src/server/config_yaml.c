/*
 * The YAML file: a mapping of settings (dotted paths for sections, as in
 * health_check.interval) and a services: mapping of name to URL, to
 * mapping, or to a list of them. Errors name the file and the line.
 */
#include "server/config_yaml.h"

#include <discovery/discovery.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/name.h"
#include "common/parse.h"
#include "common/regfile.h"
#include "common/text.h"

/* ---- owned strings and warnings ---- */

static char *
own(dsi_yaml_file *f, const char *s, size_t len)
{
	if (f->n_owned == f->cap_owned) {
		size_t ncap = f->cap_owned == 0 ? 32 : f->cap_owned * 2;
		char **n    = realloc(f->owned, ncap * sizeof(*n));
		if (n == NULL) {
			return NULL;
		}
		f->owned     = n;
		f->cap_owned = ncap;
	}
	char *d = malloc(len + 1);
	if (d == NULL) {
		return NULL;
	}
	memcpy(d, s, len);
	d[len]                 = 0;
	f->owned[f->n_owned++] = d;
	return d;
}

static char *
own_str(dsi_yaml_file *f, const char *s)
{
	return own(f, s, strlen(s));
}

static void warn(dsi_yaml_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
warn(dsi_yaml_file *f, const char *fmt, ...)
{
	char    msg[512];
	va_list ap;
	if (f->n_warnings >= DSI_CONFIG_MAX_WARNINGS) {
		f->n_more_warnings++; /* 1.7 million unknown keys must not mean as many lines */
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char **n = realloc(f->warnings, (f->n_warnings + 1) * sizeof(*n));
	if (n != NULL) {
		f->warnings = n;
		if ((n[f->n_warnings] = strdup(msg)) != NULL) {
			f->n_warnings++;
		}
	}
}

typedef struct yaml_ctx {
	dsi_yaml_file  *f;
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

/* Records one setting's text, to be applied by config.c with the file's precedence. */
static int
add_setting(yaml_ctx *y, dsi_setting s, const char *value, const char *origin)
{
	dsi_yaml_file    *f = y->f;
	dsi_yaml_setting *n = realloc(f->settings, (f->n_settings + 1) * sizeof(*n));
	if (n == NULL) {
		return dsi_failf(DSC_EINVAL, y->why, y->why_len, "out of memory");
	}
	f->settings = n;
	n += f->n_settings;
	if ((n->value = own_str(f, value)) == NULL) {
		return dsi_failf(DSC_EINVAL, y->why, y->why_len, "out of memory");
	}
	n->setting = s;
	snprintf(n->origin, sizeof(n->origin), "%s", origin);
	f->n_settings++;
	return 0;
}

static int
setting_from_yaml(yaml_ctx *y, dsi_setting s, const char *key, const yaml_node_t *v)
{
	char origin[160];
	snprintf(origin, sizeof(origin), "file %s:%zu (%s)", y->path, line_of(v), key);
	if (v->type == YAML_SCALAR_NODE) {
		return add_setting(y, s, scalar(v), origin);
	}
	if (v->type == YAML_SEQUENCE_NODE && dsi_setting_get(s)->list) {
		for (yaml_node_item_t *i = v->data.sequence.items.start;
		     i < v->data.sequence.items.top; i++) {
			const yaml_node_t *item = node(y, *i);
			if (scalar(item) == NULL) {
				return yfail(y, item, "%s: expects a list of values", key);
			}
			int rv = add_setting(y, s, scalar(item), origin);
			if (rv != 0) {
				return rv;
			}
		}
		return 0;
	}
	if (v->type == YAML_MAPPING_NODE && dsi_setting_get(s)->map) {
		/* Name: value pairs become the "Name: value" items a flag gives. */
		for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
		     p < v->data.mapping.pairs.top; p++) {
			const yaml_node_t *pk = node(y, p->key), *pv = node(y, p->value);
			if (scalar(pk) == NULL || scalar(pv) == NULL) {
				return yfail(
				    y, pk, "%s: expects a mapping of names to values", key);
			}
			size_t len  = strlen(scalar(pk)) + strlen(scalar(pv)) + 3;
			char  *item = malloc(len);
			if (item == NULL) {
				return dsi_failf(DSC_EINVAL, y->why, y->why_len, "out of memory");
			}
			snprintf(item, len, "%s: %s", scalar(pk), scalar(pv));
			int rv = add_setting(y, s, item, origin);
			memset(item, 0, len); /* a header value may be a secret */
			free(item);
			if (rv != 0) {
				return rv;
			}
		}
		return 0;
	}
	return yfail(y, v, "%s: expects a %s", key,
	    dsi_setting_get(s)->map        ? "mapping of names to values"
	        : dsi_setting_get(s)->list ? "value or a list"
	                                   : "value");
}

/* Adds one instance of svc from a URL scalar or an {endpoint, ...} mapping. */
static int
boot_from_yaml(yaml_ctx *y, const char *svc, const yaml_node_t *n)
{
	dsi_yaml_file     *c = y->f;
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
				if (dsi_parse_u32(scalar(v), &b.ttl_ms) != 0) {
					return yfail(
					    y, v, "service %s: ttl_ms expects a whole number", svc);
				}
			} else if (strcmp(key, "weight") == 0) {
				if (dsi_parse_u32(scalar(v), &b.weight) != 0) {
					return yfail(
					    y, v, "service %s: weight expects a whole number", svc);
				}
			} else {
				char esc[96];
				warn(c, "%s:%zu: service %s: unknown key \"%s\" ignored", y->path,
				    line_of(k), svc, dsi_text_escape(key, esc, sizeof(esc)));
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
		b.metadata = calloc(cnt, sizeof(*b.metadata));
		if (b.metadata == NULL) {
			return dsi_failf(DSC_EINVAL, y->why, y->why_len, "out of memory");
		}
		for (size_t i = 0; i < cnt; i++) {
			yaml_node_pair_t  *p = &md->data.mapping.pairs.start[i];
			const yaml_node_t *k = node(y, p->key), *v = node(y, p->value);
			if (scalar(k) == NULL || scalar(v) == NULL) {
				free(b.metadata);
				return yfail(
				    y, k, "service %s: metadata entries must be plain values", svc);
			}
			b.metadata[i].key   = own_str(c, scalar(k));
			b.metadata[i].value = own_str(c, scalar(v));
		}
		b.n_metadata = cnt;
	}
	dsi_boot_instance *nb = realloc(c->boot, (c->n_boot + 1) * sizeof(*nb));
	if (nb == NULL) {
		free(b.metadata);
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
		const char *svc = own_str(y->f, name);
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
			char esc[96];
			warn(y->f, "%s:%zu: unknown key \"%s\" ignored", y->path, line_of(k),
			    dsi_text_escape(path, esc, sizeof(esc)));
		}
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

/* A libyaml parser over text; false when it cannot even be set up. */
static bool
parser_open(yaml_parser_t *p, const char *text, size_t len)
{
	if (!yaml_parser_initialize(p)) {
		return false;
	}
	yaml_parser_set_input_string(p, (const unsigned char *) text, len);
	return true;
}

static int
malformed(yaml_parser_t *p, const char *name, char *why, size_t why_len)
{
	return dsi_failf(DSC_EINVAL, why, why_len, "%s:%zu: malformed YAML: %s", name,
	    (size_t) p->problem_mark.line + 1, p->problem ? p->problem : "error");
}

/*
 * The first pass, over libyaml's events: cheap, and it stops at the first
 * thing the document loader must never see (too deep, an alias, a NUL in
 * a value), before the loader has spent anything on it.
 */
static int
check_events(const char *name, const char *text, size_t len, char *why, size_t why_len)
{
	yaml_parser_t p;
	yaml_event_t  ev;
	size_t        depth = 0;
	int           rv    = 0;

	if (!parser_open(&p, text, len)) {
		return dsi_failf(DSC_EINVAL, why, why_len, "out of memory");
	}
	for (bool done = false; !done && rv == 0;) {
		if (!yaml_parser_parse(&p, &ev)) {
			rv = malformed(&p, name, why, why_len);
			break;
		}
		size_t line = (size_t) ev.start_mark.line + 1;
		switch (ev.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > DSI_YAML_MAX_DEPTH) {
				rv = dsi_failf(DSC_EINVAL, why, why_len,
				    "%s:%zu: nested more than %d levels deep", name, line,
				    DSI_YAML_MAX_DEPTH);
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_ALIAS_EVENT:
			rv = dsi_failf(DSC_EINVAL, why, why_len,
			    "%s:%zu: aliases (*name) are not supported in the configuration", name,
			    line);
			break;
		case YAML_SCALAR_EVENT:
			if (memchr(ev.data.scalar.value, 0, ev.data.scalar.length) != NULL) {
				rv = dsi_failf(DSC_EINVAL, why, why_len,
				    "%s:%zu: a value holds a NUL byte", name, line);
			}
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rv;
}

int
dsi_yaml_parse(
    dsi_yaml_file *file, const char *name, const char *text, size_t len, char *why, size_t why_len)
{
	yaml_parser_t parser;
	yaml_ctx      y = { .f = file, .path = name, .why = why, .why_len = why_len };
	int           rv;

	memset(file, 0, sizeof(*file));
	if ((rv = check_events(name, text, len, why, why_len)) != 0) {
		return rv;
	}
	if (!parser_open(&parser, text, len)) {
		return dsi_failf(DSC_EINVAL, why, why_len, "out of memory");
	}
	if (!yaml_parser_load(&parser, &y.doc)) {
		rv = malformed(&parser, name, why, why_len);
		yaml_parser_delete(&parser);
		return rv;
	}
	yaml_parser_delete(&parser);
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

int
dsi_yaml_read(dsi_yaml_file *file, const char *path, char *why, size_t why_len)
{
	char  *text = NULL;
	size_t len  = 0;
	int    rv;

	memset(file, 0, sizeof(*file));
	if ((rv = dsi_regfile_read(
	         path, "the configuration file", DSI_YAML_MAX_BYTES, &text, &len, why, why_len))
	    != 0) {
		return DSC_EINVAL; /* out of memory included, as elsewhere here */
	}
	rv = dsi_yaml_parse(file, path, text, len, why, why_len);
	free(text);
	return rv;
}

void
dsi_yaml_file_free(dsi_yaml_file *f)
{
	for (size_t i = 0; i < f->n_boot; i++) {
		free(f->boot[i].metadata);
	}
	free(f->boot);
	free(f->settings);
	for (size_t i = 0; i < f->n_warnings; i++) {
		free(f->warnings[i]);
	}
	free(f->warnings);
	for (size_t i = 0; i < f->n_owned; i++) {
		free(f->owned[i]);
	}
	free(f->owned);
	memset(f, 0, sizeof(*f));
}
