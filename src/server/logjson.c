/* Log lines as JSON objects (see logjson.h). */
#include "server/logjson.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* s[0..n) as a JSON string; bytes past ASCII become '?' when s is not UTF-8. */
static json_t *
text(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j != NULL) {
		return j;
	}
	char *copy = malloc(n + 1);
	if (copy == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) s[i];
		copy[i]         = c < 0x80 && c != 0 ? (char) c : '?';
	}
	j = json_stringn(copy, n);
	free(copy);
	return j;
}

static bool
reserved(const char *key)
{
	return strcmp(key, "time") == 0 || strcmp(key, "level") == 0 || strcmp(key, "msg") == 0;
}

/* The object with msg cut to keep bytes; NULL when out of memory. */
static json_t *
build(const char *stamp, dsi_log_level level, const char *msg, size_t keep,
    const dsi_log_field *fields, size_t n_fields)
{
	json_t *o = json_object();
	if (o == NULL || json_object_set_new(o, "time", json_string(stamp)) != 0
	    || json_object_set_new(o, "level", json_string(dsi_log_level_name(level))) != 0
	    || json_object_set_new(o, "msg", text(msg, keep)) != 0) {
		json_decref(o);
		return NULL;
	}
	for (size_t i = 0; i < n_fields; i++) {
		const dsi_log_field *f = &fields[i];
		if (f->key == NULL || reserved(f->key)) {
			continue;
		}
		json_t *v = f->str != NULL ? text(f->str, strlen(f->str)) : json_integer(f->num);
		if (json_object_set_new(o, f->key, v) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

size_t
dsi_log_format_json(char *line, size_t cap, const struct timespec *ts, dsi_log_level level,
    const char *msg, const dsi_log_field *fields, size_t n_fields)
{
	char   stamp[40];
	size_t keep = strlen(msg), n = 0;

	dsi_log_timestamp(stamp, sizeof(stamp), ts);
	for (int attempt = 0; attempt < 16; attempt++) {
		json_t *o    = build(stamp, level, msg, keep, fields, attempt < 8 ? n_fields : 0);
		size_t  need = o != NULL ? json_dumpb(o, line, cap - 1, JSON_COMPACT) : 0;
		json_decref(o);
		if (need > 0 && need <= cap - 1) {
			n = need;
			break;
		}
		/*
		 * Too long: cut the message in the ratio of what fits (escapes
		 * make its JSON longer than itself), at a UTF-8 boundary.
		 */
		size_t room = cap > 128 ? cap - 128 : cap / 2;
		size_t next
		    = need > cap - 1 ? (size_t) ((double) keep * room / (double) need) : keep / 2;
		keep = next < keep ? next : keep / 2;
		while (keep > 0 && ((unsigned char) msg[keep] & 0xC0) == 0x80) {
			keep--;
		}
	}
	if (n == 0) {
		return 0; /* out of memory: the line is lost, never written malformed */
	}
	line[n++] = '\n';
	return n;
}
