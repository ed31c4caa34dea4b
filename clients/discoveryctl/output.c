/*
 * discoveryctl's output: text and JSON printing of instances, lists, health,
 * events and wait results. Nothing here calls the server.
 */
#include "discoveryctl/output.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

/* Writes s with C0 controls and DEL as \xNN, so no reply can drive the terminal. */
void
ctl_put_clean(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p != 0; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\x%02x", *p);
		} else {
			fputc(*p, f);
		}
	}
}

/* Writes s, then spaces up to width columns (bytes: names and URLs are ASCII). */
static void
put_padded(FILE *f, const char *s, size_t width)
{
	ctl_put_clean(f, s);
	for (size_t n = strlen(s); n < width; n++) {
		fputc(' ', f);
	}
}

void
ctl_say(const char *fmt, ...)
{
	char    line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fputs("discoveryctl: ", stderr);
	ctl_put_clean(stderr, line);
	fputc('\n', stderr);
}

/* The length of the valid UTF-8 sequence starting at the non-ASCII byte p, or 0. */
static size_t
utf8_len(const unsigned char *p)
{
	static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t                len;
	uint32_t              cp;

	if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		cp  = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		cp  = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		cp  = p[0] & 0x07;
	} else {
		return 0;
	}
	/* A NUL is not a continuation byte, so this never reads past the end. */
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			return 0;
		}
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		return 0;
	}
	return len;
}

/*
 * s as a JSON string. Valid UTF-8 passes through; a byte that is not part of
 * any becomes U+FFFD, so jansson (which takes UTF-8 only) always has a
 * string to encode. NULL only when out of memory.
 */
json_t *
ctl_json_text(const char *s)
{
	const unsigned char *p   = (const unsigned char *) (s != NULL ? s : "");
	size_t               n   = strlen((const char *) p);
	char                *buf = malloc(n * 3 + 1); /* a byte becomes at most 3 (U+FFFD) */
	size_t               at  = 0;
	if (buf == NULL) {
		return NULL;
	}
	while (*p != 0) {
		size_t len = *p < 0x80 ? 1 : utf8_len(p);
		if (len == 0) {
			memcpy(buf + at, "\xef\xbf\xbd", 3);
			at += 3;
			p++;
			continue;
		}
		memcpy(buf + at, p, len);
		at += len;
		p += len;
	}
	json_t *j = json_stringn(buf, at);
	free(buf);
	return j;
}

/* Sets key to v in o, taking v (a NULL v, out of memory, leaves the key out). */
static void
put(json_t *o, const char *key, json_t *v)
{
	json_object_set_new(o, key, v);
}

json_t *
ctl_json_instance(const dsc_instance *x)
{
	json_t *o    = json_object();
	json_t *meta = json_object();
	for (size_t i = 0; meta != NULL && i < x->n_metadata; i++) {
		json_t *k = ctl_json_text(x->metadata[i].key);
		if (k != NULL) {
			put(meta, json_string_value(k), ctl_json_text(x->metadata[i].value));
			json_decref(k);
		}
	}
	put(o, "service", ctl_json_text(x->service));
	put(o, "endpoint", ctl_json_text(x->endpoint));
	put(o, "health", json_string(dsc_health_name(x->health)));
	put(o, "metadata", meta);
	put(o, "health_path", ctl_json_text(x->health_path));
	put(o, "ttl_ms", json_integer(x->ttl_ms));
	put(o, "weight", json_integer(x->weight));
	put(o, "registered_at_ms", json_integer(x->registered_at_ms));
	put(o, "last_check_ms", json_integer(x->last_check_ms));
	put(o, "last_error", ctl_json_text(x->last_error));
	return o;
}

void
ctl_json_print(json_t *o)
{
	if (o == NULL || json_dumpf(o, stdout, JSON_COMPACT) != 0) {
		ctl_say("cannot write the JSON answer (out of memory?)");
	} else {
		fputc('\n', stdout);
	}
	json_decref(o);
}

/* Metadata as k=v,k=v; "-" when there is none, so table columns stay put. */
static void
put_metadata(FILE *f, const dsc_instance *x)
{
	if (x->n_metadata == 0) {
		fputc('-', f);
	}
	for (size_t i = 0; i < x->n_metadata; i++) {
		fputs(i > 0 ? "," : "", f);
		ctl_put_clean(f, x->metadata[i].key);
		fputc('=', f);
		ctl_put_clean(f, x->metadata[i].value);
	}
}

/* Unix ms as UTC ISO 8601 into buf (of 32 bytes); "never" for 0. */
static const char *
format_ms(int64_t ms, char buf[32])
{
	time_t    t = (time_t) (ms / 1000);
	struct tm tm;
	size_t    n;

	if (ms <= 0 || gmtime_r(&t, &tm) == NULL
	    || (n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
		return ms == 0 ? "never" : "-";
	}
	snprintf(buf + n, 32 - n, ".%03dZ", (int) (ms % 1000));
	return buf;
}

/* An instance, as JSON or as "field: value" lines. */
void
ctl_print_instance(const ctl *c, const dsc_instance *x)
{
	char when[32];

	if (c->json) {
		ctl_json_print(ctl_json_instance(x));
		return;
	}
	printf("service:       ");
	ctl_put_clean(stdout, x->service);
	printf("\nendpoint:      ");
	ctl_put_clean(stdout, x->endpoint);
	printf("\nhealth:        %s\n", dsc_health_name(x->health));
	printf("weight:        %" PRIu32 "\n", x->weight);
	printf("ttl_ms:        %" PRIu32 "\n", x->ttl_ms);
	printf("health_path:   ");
	ctl_put_clean(stdout, x->health_path);
	printf("\nmetadata:      ");
	put_metadata(stdout, x);
	printf("\nregistered_at: %s\n", format_ms(x->registered_at_ms, when));
	printf("last_check:    %s\n", format_ms(x->last_check_ms, when));
	printf("last_error:    ");
	ctl_put_clean(stdout, x->last_error[0] != 0 ? x->last_error : "-");
	fputc('\n', stdout);
}

/* One line per instance under a header, columns sized to the widest value. */
void
ctl_print_table(const dsc_instance_list *list)
{
	size_t ws = strlen("SERVICE"), we = strlen("ENDPOINT");

	for (size_t i = 0; i < list->count; i++) {
		size_t s = strlen(list->items[i].service), e = strlen(list->items[i].endpoint);
		ws = s > ws ? s : ws;
		we = e > we ? e : we;
	}
	printf("%-*s  %-*s  %-9s  %6s  %8s  %s\n", (int) ws, "SERVICE", (int) we, "ENDPOINT",
	    "HEALTH", "WEIGHT", "TTL_MS", "METADATA");
	for (size_t i = 0; i < list->count; i++) {
		const dsc_instance *x = &list->items[i];
		put_padded(stdout, x->service, ws + 2);
		put_padded(stdout, x->endpoint, we + 2);
		printf("%-9s  %6" PRIu32 "  %8" PRIu32 "  ", dsc_health_name(x->health), x->weight,
		    x->ttl_ms);
		put_metadata(stdout, x);
		fputc('\n', stdout);
	}
}

/* A service's verdict, then each instance's health, last check and last error. */
void
ctl_print_service_health(
    const ctl *c, const char *service, bool healthy, dsc_health state, const dsc_instance_list *l)
{
	size_t we = 0;
	char   when[32];

	if (c->json) {
		json_t *o = json_object(), *a = json_array();
		for (size_t i = 0; a != NULL && i < l->count; i++) {
			const dsc_instance *x = &l->items[i];
			json_t             *e = json_object();
			put(e, "endpoint", ctl_json_text(x->endpoint));
			put(e, "health", json_string(dsc_health_name(x->health)));
			put(e, "last_check_ms", json_integer(x->last_check_ms));
			put(e, "last_error", ctl_json_text(x->last_error));
			json_array_append_new(a, e);
		}
		put(o, "service", ctl_json_text(service));
		put(o, "healthy", json_boolean(healthy));
		put(o, "state", json_string(dsc_health_name(state)));
		put(o, "instances", a);
		ctl_json_print(o);
		return;
	}
	ctl_put_clean(stdout, service);
	printf(": %s\n", dsc_health_name(state));
	for (size_t i = 0; i < l->count; i++) {
		size_t e = strlen(l->items[i].endpoint);
		we       = e > we ? e : we;
	}
	for (size_t i = 0; i < l->count; i++) {
		const dsc_instance *x = &l->items[i];
		fputs("  ", stdout);
		put_padded(stdout, x->endpoint, we + 2);
		/* "2006-01-02T15:04:05.000Z" is 24 columns; "never" is padded to match. */
		printf(
		    "%-9s  %-24s  ", dsc_health_name(x->health), format_ms(x->last_check_ms, when));
		ctl_put_clean(stdout, x->last_error[0] != 0 ? x->last_error : "-");
		fputc('\n', stdout);
	}
}

/*
 * One event as one line: "TIME TYPE SERVICE ENDPOINT HEALTH", with
 * "PREVIOUS -> HEALTH" for health changes and " (REASON)" when there is one;
 * or as one JSON object. Plain output skips SYNC heartbeats.
 */
void
ctl_print_event(const ctl *c, const dsc_event *ev)
{
	const dsc_instance *x = &ev->instance;
	char                when[32];

	if (c->json) {
		json_t *o = json_object();
		put(o, "time_ms", json_integer(ev->timestamp_ms));
		put(o, "type", json_string(dsc_event_type_name(ev->type)));
		if (ev->type != DSC_EVENT_SYNC) {
			put(o, "service", ctl_json_text(ev->service));
			put(o, "endpoint", ctl_json_text(x->endpoint));
			if (ev->type == DSC_EVENT_HEALTH_CHANGED) {
				put(o, "previous", json_string(dsc_health_name(ev->previous)));
			}
			put(o, "health", json_string(dsc_health_name(x->health)));
		}
		put(o, "revision", json_integer((json_int_t) ev->revision));
		put(o, "reason", ctl_json_text(ev->reason));
		if (ev->type != DSC_EVENT_SYNC) {
			put(o, "instance", ctl_json_instance(x));
		}
		ctl_json_print(o);
		return;
	}
	if (ev->type == DSC_EVENT_SYNC) {
		return;
	}
	printf("%s %s ", format_ms(ev->timestamp_ms, when), dsc_event_type_name(ev->type));
	ctl_put_clean(stdout, ev->service);
	fputc(' ', stdout);
	ctl_put_clean(stdout, x->endpoint);
	if (ev->type == DSC_EVENT_HEALTH_CHANGED) {
		printf(" %s ->", dsc_health_name(ev->previous));
	}
	printf(" %s", dsc_health_name(x->health));
	if (ev->reason[0] != 0) {
		fputs(" (", stdout);
		ctl_put_clean(stdout, ev->reason);
		fputc(')', stdout);
	}
	fputc('\n', stdout);
}

/* Whether st[i]'s service appears earlier in st: each name is printed once. */
static bool
seen_before(const dsc_wait_status *st, size_t i)
{
	for (size_t k = 0; k < i; k++) {
		if (strcmp(st[k].service, st[i].service) == 0) {
			return true;
		}
	}
	return false;
}

/* The distinct names of status that pick() selects, space-separated. */
static void
print_names(const ctl *c, const dsc_wait_status *st, size_t n,
    bool (*pick)(const ctl *, const dsc_wait_status *))
{
	const char *sep = "";
	for (size_t i = 0; i < n; i++) {
		if (!seen_before(st, i) && pick(c, &st[i])) {
			fputs(sep, stdout);
			ctl_put_clean(stdout, st[i].service);
			sep = " ";
		}
	}
}

/* The same names as a JSON array. */
static json_t *
json_names(const ctl *c, const dsc_wait_status *st, size_t n,
    bool (*pick)(const ctl *, const dsc_wait_status *))
{
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < n; i++) {
		if (!seen_before(st, i) && pick(c, &st[i])) {
			json_array_append_new(a, ctl_json_text(st[i].service));
		}
	}
	return a;
}

static bool
pick_all(const ctl *c, const dsc_wait_status *s)
{
	(void) c, (void) s;
	return true;
}

static bool
pick_missing(const ctl *c, const dsc_wait_status *s)
{
	(void) c;
	return !s->registered;
}

/* Registered but not healthy; only a reason to wait when waiting for health. */
static bool
pick_unhealthy(const ctl *c, const dsc_wait_status *s)
{
	return c->wait_mode == DSC_WAIT_HEALTHY && s->registered && !s->healthy;
}

/* {"ready":...,"missing":[...],"unhealthy":[...]} */
void
ctl_print_wait_json(const ctl *c, bool ready, const dsc_wait_status *st, size_t n)
{
	json_t *o = json_object();
	put(o, "ready", json_boolean(ready));
	put(o, "missing", json_names(c, st, n, pick_missing));
	put(o, "unhealthy", json_names(c, st, n, pick_unhealthy));
	ctl_json_print(o);
}

void
ctl_print_wait_ready(const ctl *c, const dsc_wait_status *st, size_t n)
{
	fputs("ready: ", stdout);
	print_names(c, st, n, pick_all);
	fputc('\n', stdout);
}

void
ctl_print_list_json(const dsc_instance_list *list)
{
	json_t *o = json_object(), *a = json_array();
	for (size_t i = 0; a != NULL && i < list->count; i++) {
		json_array_append_new(a, ctl_json_instance(&list->items[i]));
	}
	put(o, "revision", json_integer((json_int_t) list->revision));
	put(o, "instances", a);
	ctl_json_print(o);
}

/* True when url's host is an IPv4 or IPv6 address rather than a name. */
static bool
host_is_ip(const char *url)
{
	const char   *h = strstr(url, "://");
	char          host[64];
	size_t        n;
	unsigned char addr[16];

	if (h == NULL) {
		return false;
	}
	h += 3;
	if (*h == '[') {
		return true;
	}
	n = strcspn(h, ":/");
	if (n == 0 || n >= sizeof(host)) {
		return false;
	}
	memcpy(host, h, n);
	host[n] = 0;
	return inet_pton(AF_INET, host, addr) == 1;
}

void
ctl_connect_hint(const ctl *c, const char *url, int rv)
{
	/* mbedTLS matches the server name against DNS names only, never IP addresses. */
	if (rv == DSC_ETLS && c->tls.server_name == NULL && host_is_ip(url)) {
		ctl_say(
		    "hint: %s names the server by IP address, which TLS cannot check against its "
		    "certificate here; use --tls-server-name NAME with a DNS name the certificate "
		    "carries",
		    url);
	}
}

void
ctl_print_status(const ctl *c, const dsc_server_status *st)
{
	if (c->json) {
		json_t *o = json_object(), *l = json_array();
		for (size_t i = 0; l != NULL && i < st->n_listeners; i++) {
			json_array_append_new(l, ctl_json_text(st->listeners[i]));
		}
		put(o, "version", ctl_json_text(st->version));
		put(o, "started_at_ms", json_integer(st->started_at_ms));
		put(o, "uptime_ms", json_integer((json_int_t) st->uptime_ms));
		put(o, "revision", json_integer((json_int_t) st->revision));
		put(o, "services", json_integer(st->services));
		put(o, "instances", json_integer(st->instances));
		put(o, "healthy", json_integer(st->healthy));
		put(o, "unhealthy", json_integer(st->unhealthy));
		put(o, "unknown", json_integer(st->unknown));
		put(o, "listeners", l);
		put(o, "publish", ctl_json_text(st->publish));
		put(o, "admin", ctl_json_text(st->admin));
		put(o, "data", ctl_json_text(st->data));
		put(o, "commits", json_integer((json_int_t) st->commits));
		put(o, "writes_stored", json_integer((json_int_t) st->writes_stored));
		ctl_json_print(o);
		return;
	}
	char     when[32];
	uint64_t s = st->uptime_ms / 1000;
	fputs("version:       ", stdout);
	ctl_put_clean(stdout, st->version);
	printf("\nstarted:       %s\n", format_ms(st->started_at_ms, when));
	printf("uptime:        %" PRIu64 "d %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 "\n", s / 86400,
	    s / 3600 % 24, s / 60 % 60, s % 60);
	printf("revision:      %" PRIu64 "\n", st->revision);
	printf("services:      %" PRIu32 "\n", st->services);
	printf("instances:     %" PRIu32 " (healthy %" PRIu32 ", unhealthy %" PRIu32
	       ", unknown %" PRIu32 ")\n",
	    st->instances, st->healthy, st->unhealthy, st->unknown);
	for (size_t i = 0; i < st->n_listeners; i++) {
		fputs("listening on:  ", stdout);
		ctl_put_clean(stdout, st->listeners[i]);
		fputc('\n', stdout);
	}
	fputs("publishing on: ", stdout);
	ctl_put_clean(stdout, st->publish);
	fputs("\nadmin:         ", stdout);
	ctl_put_clean(stdout, st->admin[0] != 0 ? st->admin : "off");
	fputs("\ndata file:     ", stdout);
	ctl_put_clean(stdout, st->data);
	printf("\ncommits:       %" PRIu64 " (%" PRIu64 " writes stored)\n", st->commits,
	    st->writes_stored);
}
