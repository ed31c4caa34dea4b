/*
 * discoveryctl: a libdiscovery call or two per run, for shells and scripts.
 * Parse the command line into a ctl, open a client, run the command's row
 * of the table, and turn the outcome into output and an exit status.
 * watch and wait are the long-running commands: watch reads the server's
 * publish socket instead of calling the server, until interrupted or
 * --count; wait runs dsc_wait_for until the services are ready or --timeout.
 */
#include <discovery/discovery.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/name.h"
#include "common/tls.h"

#define DEFAULT_SERVER     "tcp://127.0.0.1:7700"
#define SERVER_ENV         "DISCOVERY_SERVER"
#define DEFAULT_PUBLISH    "tcp://127.0.0.1:7701"
#define PUBLISH_ENV        "DISCOVERY_PUBLISH"
#define TOKEN_ENV          "SERVICE_DISCOVERY_API_KEY"
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_WAIT_MS    60000 /* wait: --timeout bounds the whole wait, not one call */
#define MAX_META           64
#define MAX_ARGS           64  /* the most positional arguments any command takes (watch, wait) */
#define WATCH_POLL_MS      200 /* how soon watch notices SIGINT or SIGTERM */

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

/* What parsing the command line decided. */
enum {
	PARSE_RUN,
	PARSE_HELP,
	PARSE_VERSION,
	PARSE_ERROR,
};

typedef struct ctl ctl;

/* One row of the command table. */
typedef struct command {
	const char *name;
	size_t      min_args; /* positional arguments after the name */
	size_t      max_args;
	unsigned    opts;      /* the OPT_* it accepts */
	bool        no_client; /* true: runs without a client on --server */
	const char *usage;
	const char *summary;
	int (*run)(ctl *c); /* returns an EXIT_* */
} command;

/* One run: the parsed command line and, once opened, the client. */
struct ctl {
	const char    *server;
	const char    *publish; /* for watch and wait */
	int32_t        timeout_ms;
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

/* ---- output ---- */

/* Writes s with C0 controls and DEL as \xNN, so no reply can drive the terminal. */
static void
put_clean(FILE *f, const char *s)
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
	put_clean(f, s);
	for (size_t n = strlen(s); n < width; n++) {
		fputc(' ', f);
	}
}

/* One line on stderr: "discoveryctl: ...". Every failure says exactly one. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	char    line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fputs("discoveryctl: ", stderr);
	put_clean(stderr, line);
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
 * Writes s as a JSON string. Valid UTF-8 passes through; a byte that is not
 * part of any becomes U+FFFD, so the output always parses.
 */
static void
json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *) s;

	fputc('"', f);
	while (*p != 0) {
		size_t len = 1;
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				fprintf(f, "\\u%04x", *p);
			} else if (*p < 0x80) {
				fputc(*p, f);
			} else if ((len = utf8_len(p)) == 0) {
				fputs("\\ufffd", f);
				len = 1;
			} else {
				fwrite(p, 1, len, f);
			}
		}
		p += len;
	}
	fputc('"', f);
}

static void
json_instance(FILE *f, const dsc_instance *x)
{
	fputs("{\"service\":", f);
	json_string(f, x->service);
	fputs(",\"endpoint\":", f);
	json_string(f, x->endpoint);
	fputs(",\"health\":", f);
	json_string(f, dsc_health_name(x->health));
	fputs(",\"metadata\":{", f);
	for (size_t i = 0; i < x->n_metadata; i++) {
		fputs(i > 0 ? "," : "", f);
		json_string(f, x->metadata[i].key);
		fputc(':', f);
		json_string(f, x->metadata[i].value);
	}
	fputs("},\"health_path\":", f);
	json_string(f, x->health_path);
	fprintf(f,
	    ",\"ttl_ms\":%" PRIu32 ",\"weight\":%" PRIu32 ",\"registered_at_ms\":%" PRId64
	    ",\"last_check_ms\":%" PRId64 ",\"last_error\":",
	    x->ttl_ms, x->weight, x->registered_at_ms, x->last_check_ms);
	json_string(f, x->last_error);
	fputc('}', f);
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
		put_clean(f, x->metadata[i].key);
		fputc('=', f);
		put_clean(f, x->metadata[i].value);
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
static void
print_instance(const ctl *c, const dsc_instance *x)
{
	char when[32];

	if (c->json) {
		json_instance(stdout, x);
		fputc('\n', stdout);
		return;
	}
	printf("service:       ");
	put_clean(stdout, x->service);
	printf("\nendpoint:      ");
	put_clean(stdout, x->endpoint);
	printf("\nhealth:        %s\n", dsc_health_name(x->health));
	printf("weight:        %" PRIu32 "\n", x->weight);
	printf("ttl_ms:        %" PRIu32 "\n", x->ttl_ms);
	printf("health_path:   ");
	put_clean(stdout, x->health_path);
	printf("\nmetadata:      ");
	put_metadata(stdout, x);
	printf("\nregistered_at: %s\n", format_ms(x->registered_at_ms, when));
	printf("last_check:    %s\n", format_ms(x->last_check_ms, when));
	printf("last_error:    ");
	put_clean(stdout, x->last_error[0] != 0 ? x->last_error : "-");
	fputc('\n', stdout);
}

/* One line per instance under a header, columns sized to the widest value. */
static void
print_table(const dsc_instance_list *list)
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

/* ---- failures ---- */

/* Which exit status each library error gives; codes not listed are EXIT_REJECTED. */
static const struct {
	int err;
	int status;
} exit_map[] = {
	{ DSC_ENOTFOUND, EXIT_NOTFOUND },
	{ DSC_EUNAVAILABLE, EXIT_NOTFOUND },
	{ DSC_ETIMEDOUT, EXIT_UNREACHABLE },
	{ DSC_ECONNREFUSED, EXIT_UNREACHABLE },
	{ DSC_ETRANSPORT, EXIT_UNREACHABLE },
	{ DSC_ECLOSED, EXIT_UNREACHABLE },
	{ DSC_ETLS, EXIT_UNREACHABLE },
	{ DSC_EPROTO, EXIT_UNREACHABLE },
	{ DSC_ENOMEM, EXIT_LOCAL },
};

static int
exit_for(int err)
{
	for (size_t i = 0; i < sizeof(exit_map) / sizeof(exit_map[0]); i++) {
		if (exit_map[i].err == err) {
			return exit_map[i].status;
		}
	}
	return EXIT_REJECTED;
}

/* Reports a failed call as "<command> <args>: <why>" and returns its exit status. */
static int
call_failed(const ctl *c, int rv, const dsc_error *err)
{
	char   what[512];
	size_t n = (size_t) snprintf(what, sizeof(what), "%s", c->cmd->name);

	for (size_t i = 0; i < c->nargs && n < sizeof(what); i++) {
		n += (size_t) snprintf(what + n, sizeof(what) - n, " %s", c->args[i]);
	}
	say("%s: %s", what,
	    err->code == rv && err->message[0] != 0 ? err->message : dsc_strerror(rv));
	return exit_for(rv);
}

/* ---- commands: each makes one call and prints its result ---- */

/* An optional positional argument, NULL when absent. */
static const char *
arg_or_null(const ctl *c, size_t i)
{
	return i < c->nargs ? c->args[i] : NULL;
}

/* Prints a returned instance, frees it, and succeeds. */
static int
instance_done(const ctl *c, dsc_instance *x)
{
	print_instance(c, x);
	dsc_instance_free(x);
	return EXIT_OK;
}

static int
cmd_register(ctl *c)
{
	dsc_registration reg = {
		.service     = c->args[0],
		.endpoint    = c->args[1],
		.metadata    = c->meta,
		.n_metadata  = c->n_meta,
		.health_path = c->health_path,
		.ttl_ms      = c->ttl_ms,
		.weight      = c->weight,
	};
	dsc_instance *x   = NULL;
	dsc_error     err = { .code = 0 };
	int           rv  = dsc_register(c->client, &reg, &x, &err);

	return rv != 0 ? call_failed(c, rv, &err) : instance_done(c, x);
}

static int
cmd_resolve(ctl *c)
{
	dsc_instance *x   = NULL;
	dsc_error     err = { .code = 0 };
	int           rv  = dsc_resolve(c->client, c->args[0], c->healthy_only, &x, &err);

	if (rv != 0) {
		return call_failed(c, rv, &err);
	}
	/* Plain output is the endpoint alone, so $(discoveryctl resolve x) is a URL. */
	if (!c->json) {
		put_clean(stdout, x->endpoint);
		fputc('\n', stdout);
		dsc_instance_free(x);
		return EXIT_OK;
	}
	return instance_done(c, x);
}

static int
cmd_deregister(ctl *c)
{
	uint32_t  removed = 0;
	dsc_error err     = { .code = 0 };
	int       rv = dsc_deregister(c->client, c->args[0], arg_or_null(c, 1), &removed, &err);

	if (rv != 0) {
		return call_failed(c, rv, &err);
	}
	printf(c->json ? "{\"removed\":%" PRIu32 "}\n" : "removed %" PRIu32 "\n", removed);
	return EXIT_OK;
}

/* The service name as the server stores it, for output: normalized if valid, else as given. */
static const char *
service_name(const char *given, char buf[DSI_NAME_MAX + 1])
{
	char why[128];

	return dsi_name_normalize(given, buf, why, sizeof(why)) == 0 ? buf : given;
}

/* A service's verdict, then each instance's health, last check and last error. */
static void
print_service_health(
    const ctl *c, const char *service, bool healthy, dsc_health state, const dsc_instance_list *l)
{
	size_t we = 0;
	char   when[32];

	if (c->json) {
		fputs("{\"service\":", stdout);
		json_string(stdout, service);
		printf(",\"healthy\":%s,\"state\":\"%s\",\"instances\":[",
		    healthy ? "true" : "false", dsc_health_name(state));
		for (size_t i = 0; i < l->count; i++) {
			const dsc_instance *x = &l->items[i];
			fputs(i > 0 ? ",{\"endpoint\":" : "{\"endpoint\":", stdout);
			json_string(stdout, x->endpoint);
			printf(",\"health\":\"%s\",\"last_check_ms\":%" PRId64 ",\"last_error\":",
			    dsc_health_name(x->health), x->last_check_ms);
			json_string(stdout, x->last_error);
			fputc('}', stdout);
		}
		fputs("]}\n", stdout);
		return;
	}
	put_clean(stdout, service);
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
		put_clean(stdout, x->last_error[0] != 0 ? x->last_error : "-");
		fputc('\n', stdout);
	}
}

static int
cmd_health(ctl *c)
{
	const char        *endpoint = arg_or_null(c, 1);
	bool               healthy  = false;
	dsc_health         state    = DSC_HEALTH_UNKNOWN;
	dsc_error          err      = { .code = 0 };
	dsc_instance_list *list     = NULL;
	char               name[DSI_NAME_MAX + 1];
	int rv = dsc_is_healthy(c->client, c->args[0], endpoint, &healthy, &state, &err);

	if (rv != 0) {
		return call_failed(c, rv, &err);
	}
	if (endpoint == NULL) {
		/* The verdict above, then the instances behind it: two calls, not one snapshot. */
		if ((rv = dsc_get_all(c->client, c->args[0], &list, &err)) != 0) {
			return call_failed(c, rv, &err);
		}
		print_service_health(c, service_name(c->args[0], name), healthy, state, list);
		dsc_instance_list_free(list);
	} else if (c->json) {
		/* The reply does not name the service; echo it as the server stored it. */
		fputs("{\"service\":", stdout);
		json_string(stdout, service_name(c->args[0], name));
		fputs(",\"endpoint\":", stdout);
		json_string(stdout, endpoint);
		printf(",\"healthy\":%s,\"state\":\"%s\"}\n", healthy ? "true" : "false",
		    dsc_health_name(state));
	} else {
		printf("%s\n", dsc_health_name(state));
	}
	/* The answer is on stdout; the status lets `if discoveryctl health x` work. */
	return healthy ? EXIT_OK : EXIT_NOTFOUND;
}

static int
cmd_list(ctl *c)
{
	dsc_instance_list *list = NULL;
	dsc_error          err  = { .code = 0 };
	int                rv   = dsc_get_all(c->client, arg_or_null(c, 0), &list, &err);

	if (rv != 0) {
		return call_failed(c, rv, &err);
	}
	if (c->json) {
		printf("{\"revision\":%" PRIu64 ",\"instances\":[", list->revision);
		for (size_t i = 0; i < list->count; i++) {
			fputs(i > 0 ? "," : "", stdout);
			json_instance(stdout, &list->items[i]);
		}
		fputs("]}\n", stdout);
	} else {
		print_table(list);
	}
	dsc_instance_list_free(list);
	return EXIT_OK;
}

static int
cmd_heartbeat(ctl *c)
{
	dsc_instance *x   = NULL;
	dsc_error     err = { .code = 0 };
	int           rv  = dsc_heartbeat(c->client, c->args[0], c->args[1], &x, &err);

	return rv != 0 ? call_failed(c, rv, &err) : instance_done(c, x);
}

/*
 * One event as one line: "TIME TYPE SERVICE ENDPOINT HEALTH", with
 * "PREVIOUS -> HEALTH" for health changes and " (REASON)" when there is one;
 * or as one JSON object. Plain output skips SYNC heartbeats.
 */
static void
print_event(const ctl *c, const dsc_event *ev)
{
	const dsc_instance *x = &ev->instance;
	char                when[32];

	if (c->json) {
		printf("{\"time_ms\":%" PRId64 ",\"type\":\"%s\"", ev->timestamp_ms,
		    dsc_event_type_name(ev->type));
		if (ev->type != DSC_EVENT_SYNC) {
			fputs(",\"service\":", stdout);
			json_string(stdout, ev->service);
			fputs(",\"endpoint\":", stdout);
			json_string(stdout, x->endpoint);
			if (ev->type == DSC_EVENT_HEALTH_CHANGED) {
				printf(",\"previous\":\"%s\"", dsc_health_name(ev->previous));
			}
			printf(",\"health\":\"%s\"", dsc_health_name(x->health));
		}
		printf(",\"revision\":%" PRIu64 ",\"reason\":", ev->revision);
		json_string(stdout, ev->reason);
		if (ev->type != DSC_EVENT_SYNC) {
			fputs(",\"instance\":", stdout);
			json_instance(stdout, x);
		}
		fputs("}\n", stdout);
		return;
	}
	if (ev->type == DSC_EVENT_SYNC) {
		return;
	}
	printf("%s %s ", format_ms(ev->timestamp_ms, when), dsc_event_type_name(ev->type));
	put_clean(stdout, ev->service);
	fputc(' ', stdout);
	put_clean(stdout, x->endpoint);
	if (ev->type == DSC_EVENT_HEALTH_CHANGED) {
		printf(" %s ->", dsc_health_name(ev->previous));
	}
	printf(" %s", dsc_health_name(x->health));
	if (ev->reason[0] != 0) {
		fputs(" (", stdout);
		put_clean(stdout, ev->reason);
		fputc(')', stdout);
	}
	fputc('\n', stdout);
}

/* True once SIGINT or SIGTERM, blocked by cmd_watch, is waiting to be delivered. */
static bool
stop_requested(void)
{
	sigset_t pending;

	return sigpending(&pending) == 0
	    && (sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1);
}

/* The token and TLS options every connection to the server takes. */
static void
client_options(const ctl *c, dsc_client_options *opts)
{
	dsc_client_options_init(opts);
	opts->timeout_ms = c->timeout_ms;
	opts->auth_token = c->token != NULL ? c->token : getenv(TOKEN_ENV);
	opts->tls        = c->tls;
}

static int
cmd_watch(ctl *c)
{
	dsc_watch *w = NULL;
	sigset_t   stop;
	uint32_t   changes = 0;
	char       name[DSI_NAME_MAX + 1], why[128];
	int        rv, status = EXIT_OK;

	for (size_t i = 0; i < c->nargs; i++) {
		if (dsi_name_normalize(c->args[i], name, why, sizeof(why)) != 0) {
			say("watch %s: %s", c->args[i], why);
			return EXIT_REJECTED;
		}
	}
	/*
	 * Block the stop signals before the library starts its threads, so all
	 * of them inherit the mask and a signal stays pending until the loop
	 * polls for it: no handler and no global flag, and the watch is closed
	 * cleanly. Pending signals die with the process at exit.
	 */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	if ((rv = pthread_sigmask(SIG_BLOCK, &stop, NULL)) != 0) {
		say("watch: cannot block signals: %s", strerror(rv));
		return EXIT_LOCAL;
	}
	rv = dsc_watch_open_tls(&w, c->publish, c->nargs > 0 ? c->args : NULL, c->nargs, &c->tls);
	if (rv == DSC_EINVAL) {
		say("--publish %s: not a URL discoveryctl can dial", c->publish);
		return EXIT_USAGE;
	}
	if (rv != 0) {
		say("watch %s: %s", c->publish, dsc_strerror(rv));
		return exit_for(rv);
	}
	/* The watch dials in the background and redials: a server that is down is waited for. */
	while ((c->count == 0 || changes < c->count) && !stop_requested()) {
		dsc_event *ev = NULL;

		if ((rv = dsc_watch_next(w, WATCH_POLL_MS, &ev)) == DSC_ETIMEDOUT) {
			continue;
		}
		if (rv != 0) {
			say("watch %s: %s", c->publish, dsc_strerror(rv));
			status = exit_for(rv);
			break;
		}
		print_event(c, ev);
		changes += ev->type != DSC_EVENT_SYNC;
		dsc_event_free(ev);
		/*
		 * Line by line, for pipes. A reader that went away ends the watch:
		 * by SIGPIPE, or by a failed flush (reported by finish) when it is ignored.
		 */
		if (fflush(stdout) != 0) {
			break;
		}
	}
	dsc_watch_close(w);
	return status;
}

/* The distinct names of status that pick() selects, as JSON strings or space-separated. */
static void
print_names(const ctl *c, const dsc_wait_status *st, size_t n,
    bool (*pick)(const ctl *, const dsc_wait_status *))
{
	const char *sep = "";

	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t k = 0; k < i && !dup; k++) {
			dup = strcmp(st[k].service, st[i].service) == 0;
		}
		if (dup || !pick(c, &st[i])) {
			continue;
		}
		fputs(sep, stdout);
		if (c->json) {
			json_string(stdout, st[i].service);
		} else {
			put_clean(stdout, st[i].service);
		}
		sep = c->json ? "," : " ";
	}
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
static void
print_wait_json(const ctl *c, bool ready, const dsc_wait_status *st, size_t n)
{
	printf("{\"ready\":%s,\"missing\":[", ready ? "true" : "false");
	print_names(c, st, n, pick_missing);
	fputs("],\"unhealthy\":[", stdout);
	print_names(c, st, n, pick_unhealthy);
	fputs("]}\n", stdout);
}

static int
cmd_wait(ctl *c)
{
	dsc_wait_status    st[MAX_ARGS];
	dsc_error          err = { .code = 0 };
	dsc_client_options opts;
	char               name[DSI_NAME_MAX + 1], why[128];
	int32_t            timeout_ms = c->timeout_given ? c->timeout_ms : DEFAULT_WAIT_MS;
	int                rv;

	for (size_t i = 0; i < c->nargs; i++) {
		if (dsi_name_normalize(c->args[i], name, why, sizeof(why)) != 0) {
			say("wait %s: %s", c->args[i], why);
			return EXIT_REJECTED;
		}
	}
	/* The library waits for the server too: entrypoints may start before it is up. */
	client_options(c, &opts);
	rv = dsc_wait_for_opts(
	    c->server, c->publish, c->args, c->nargs, c->wait_mode, timeout_ms, &opts, st, &err);
	if (rv == 0) {
		if (c->json) {
			print_wait_json(c, true, st, c->nargs);
		} else {
			fputs("ready: ", stdout);
			print_names(c, st, c->nargs, pick_all);
			fputc('\n', stdout);
		}
		return EXIT_OK;
	}
	if (rv == DSC_ETIMEDOUT && c->json) {
		print_wait_json(c, false, st, c->nargs);
	}
	say("wait: %s", err.code == rv && err.message[0] != 0 ? err.message : dsc_strerror(rv));
	if (rv == DSC_ETIMEDOUT) {
		return EXIT_NOTFOUND;
	}
	/* The names were checked above, so this is a URL that cannot be dialed. */
	return rv == DSC_EINVAL ? EXIT_USAGE : exit_for(rv);
}

/* The one table from command name to handler. */
static const command commands[] = {
	{ "register", 2, 2, OPT_META | OPT_HEALTH_PATH | OPT_TTL | OPT_WEIGHT, false,
	    "SERVICE ENDPOINT [--meta KEY=VALUE]... [--health-path PATH] [--ttl-ms N] [--weight N]",
	    "register an instance, or update it, and print it", cmd_register },
	{ "resolve", 1, 1, OPT_HEALTHY_ONLY, false, "SERVICE [--healthy-only]",
	    "print the endpoint of one instance, chosen by the server", cmd_resolve },
	{ "deregister", 1, 2, 0, false, "SERVICE [ENDPOINT]",
	    "remove one instance, or every instance of SERVICE; print how many", cmd_deregister },
	{ "health", 1, 2, 0, false, "SERVICE [ENDPOINT]",
	    "print the health of an instance; or whether SERVICE is healthy, then the health,\n"
	    "      last check and last error of each of its instances",
	    cmd_health },
	{ "list", 0, 1, 0, false, "[SERVICE]", "print every instance, or those of SERVICE",
	    cmd_list },
	{ "heartbeat", 2, 2, 0, false, "SERVICE ENDPOINT",
	    "mark an instance registered with --ttl-ms healthy; print it", cmd_heartbeat },
	{ "watch", 0, MAX_ARGS, OPT_COUNT, true, "[SERVICE]... [--count N]",
	    "print each change to the registry (of the SERVICEs named, else of all) as one\n"
	    "      line, from the server's --publish URL; until SIGINT or SIGTERM, or until N\n"
	    "      changes with --count (--json also prints the periodic \"sync\" events)",
	    cmd_watch },
	{ "wait", 1, MAX_ARGS, OPT_HEALTHY | OPT_REGISTERED, true,
	    "SERVICE... [--timeout SECONDS] [--healthy|--registered]",
	    "wait until every SERVICE has a healthy instance (--healthy, the default) or any\n"
	    "      instance (--registered), and the server too if it is not up yet; print\n"
	    "      \"ready: SERVICE...\". After --timeout (60 s unless given) exit 1, naming\n"
	    "      those missing and those unhealthy. For entrypoints: wait db && exec app",
	    cmd_wait },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const command *
command_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0) {
			return &commands[i];
		}
	}
	return NULL;
}

/* ---- the command line ---- */

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

/*
 * A whole decimal number in 0..UINT32_MAX. strtoul alone would skip spaces,
 * take a sign and turn "-1" into a huge value, so the first byte must be a digit.
 */
static bool
parse_u32(const char *s, uint32_t *out)
{
	char         *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9') {
		return false;
	}
	errno = 0;
	v     = strtoul(s, &end, 10);
	if (errno != 0 || *end != 0 || v > UINT32_MAX) {
		return false;
	}
	*out = (uint32_t) v;
	return true;
}

/* Seconds, fractions allowed, > 0, as whole ms rounded up so 0.0001 stays positive. */
static bool
parse_seconds(const char *s, int32_t *ms)
{
	char  *end;
	double sec, v;

	/* Digits or '.' first: no sign, no spaces, no "inf" or "nan". */
	if ((s[0] < '0' || s[0] > '9') && s[0] != '.') {
		return false;
	}
	errno = 0;
	sec   = strtod(s, &end);
	if (errno != 0 || *end != 0 || !(sec > 0) || sec > INT32_MAX / 1000.0) {
		return false;
	}
	v   = sec * 1000.0;
	*ms = (int32_t) v;
	if (*ms < v) {
		(*ms)++;
	}
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

/* Reads the auth token from a file, as discoveryd does: trailing newlines dropped. */
static int
opt_token_file(ctl *c, char *value, char *why, size_t n)
{
	FILE *f = fopen(value, "rb");
	if (f == NULL) {
		return bad_usage(why, n, "--token-file %s: %s", value, strerror(errno));
	}
	size_t len = fread(c->token_buf, 1, sizeof(c->token_buf) - 1, f);
	fclose(f);
	while (len > 0
	    && (c->token_buf[len - 1] == '\n' || c->token_buf[len - 1] == '\r'
	        || c->token_buf[len - 1] == ' ')) {
		len--;
	}
	c->token_buf[len] = 0;
	if (len == 0) {
		return bad_usage(why, n, "--token-file %s is empty", value);
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
	{ "json", false, 0, opt_json },
	{ "timeout", true, 0, opt_timeout },
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

/* Checks what only the whole line can tell: the command, its arguments, its options. */
static int
check_command(ctl *c, const char *name, char *why, size_t n)
{
	if (name == NULL) {
		return bad_usage(why, n, "no command given");
	}
	if (c->cmd == NULL) {
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
 * TLS applies to the tls+tcp:// URLs the command dials (watch: --publish;
 * wait: both; the rest: --server). --tls-* flags with none of them are a
 * mistake that would otherwise go out in plaintext; the variables are
 * ignored then, since they may be set for other runs.
 */
static int
check_tls(ctl *c, char *why, size_t n)
{
	bool        watch   = c->cmd->run == cmd_watch;
	const char *tls_url = !watch && dsi_url_is_tls(c->server) ? c->server
	    : c->cmd->no_client && dsi_url_is_tls(c->publish)     ? c->publish
	                                                          : NULL;
	dsc_error   err;

	c->tls.ca_file     = flag_or_env(c->tls.ca_file, TLS_CA_ENV);
	c->tls.cert_file   = flag_or_env(c->tls.cert_file, TLS_CERT_ENV);
	c->tls.key_file    = flag_or_env(c->tls.key_file, TLS_KEY_ENV);
	c->tls.server_name = flag_or_env(c->tls.server_name, TLS_SERVER_NAME_ENV);
	if (tls_url == NULL) {
		if (c->tls_flags) {
			return bad_usage(why, n,
			    "--tls-* options need a tls+tcp:// URL, and %s is not one",
			    watch ? c->publish : c->server);
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

/*
 * Fills c from argv. Options may come before or after the command; "--"
 * ends them. Returns a PARSE_*; for PARSE_ERROR, why says what is wrong.
 */
static int
parse(ctl *c, int argc, char **argv, char *why, size_t n)
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
			c->cmd = command_find(name);
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
	return check_tls(c, why, n);
}

static void
print_usage(FILE *f)
{
	fputs("usage: discoveryctl [--server URL] [--publish URL] [--json] [--timeout SECONDS]\n"
	      "                    COMMAND [ARGS]\n"
	      "\n"
	      "Commands:\n",
	    f);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		fprintf(f, "  %s %s\n      %s\n", commands[i].name, commands[i].usage,
		    commands[i].summary);
	}
	fputs("\n"
	      "Options may come before or after COMMAND, as --opt VALUE or --opt=VALUE:\n"
	      "  --server URL       discoveryd's URL (default: $" SERVER_ENV
	      ", else " DEFAULT_SERVER ")\n"
	      "  --publish URL      discoveryd's event URL, for watch and wait\n"
	      "                     (default: $" PUBLISH_ENV ", else " DEFAULT_PUBLISH ")\n"
	      "  --json             print one JSON object on stdout (watch: one per line)\n"
	      "  --timeout SECONDS  bound on the call; fractions allowed (default: 5). For wait,\n"
	      "                     the bound on the whole wait (default: 60)\n"
	      "  --token-file FILE  the auth token, for servers that require one\n"
	      "                     (default: $" TOKEN_ENV ")\n"
	      "  --tls-ca FILE      for tls+tcp:// URLs: the CA (PEM) that signs the server's\n"
	      "                     certificate (default: $" TLS_CA_ENV ")\n"
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
	      "  3  server unreachable or timed out, or the TLS handshake failed\n"
	      "  4  server rejected the request\n"
	      "  5  local failure (out of memory, cannot write output)\n",
	    f);
}

/* After a usage error: the command's own usage when it is known, else all of it. */
static void
print_usage_error(const ctl *c, const char *why)
{
	say("%s", why);
	if (c->cmd == NULL) {
		print_usage(stderr);
		return;
	}
	fprintf(stderr,
	    "usage: discoveryctl [--server URL] [--publish URL] [--json] [--timeout SECONDS] %s "
	    "%s\n"
	    "Try 'discoveryctl --help' for more.\n",
	    c->cmd->name, c->cmd->usage);
}

static int
open_client(ctl *c)
{
	dsc_client_options opts;
	int                rv;

	client_options(c, &opts);
	/* One call, then exit: a dead server should fail now, not after the timeout. */
	opts.require_connection = true;
	rv                      = dsc_client_open(&c->client, c->server, &opts);
	if (rv == DSC_EINVAL) {
		say("--server %s: not a URL discoveryctl can dial", c->server);
		return EXIT_USAGE;
	}
	if (rv != 0) {
		say("cannot connect to %s: %s", c->server, dsc_strerror(rv));
		return exit_for(rv);
	}
	return EXIT_OK;
}

/* Flushes stdout: output that never arrived is a failure, even after a good call. */
static int
finish(int status)
{
	int e = fflush(stdout) != 0 ? errno : 0;

	if (e != 0 || ferror(stdout)) {
		say("cannot write output: %s", e != 0 ? strerror(e) : "write error");
		return status == EXIT_OK ? EXIT_LOCAL : status;
	}
	return status;
}

int
main(int argc, char **argv)
{
	ctl  c = { .timeout_ms = DEFAULT_TIMEOUT_MS };
	char why[512];
	int  status;

	switch (parse(&c, argc, argv, why, sizeof(why))) {
	case PARSE_HELP:
		print_usage(stdout);
		return finish(EXIT_OK);
	case PARSE_VERSION:
		printf("discoveryctl %s\n", DSC_VERSION_STRING);
		return finish(EXIT_OK);
	case PARSE_ERROR:
		print_usage_error(&c, why);
		return EXIT_USAGE;
	default:
		break;
	}
	if (c.cmd->no_client || (status = open_client(&c)) == EXIT_OK) {
		status = c.cmd->run(&c);
	}
	dsc_client_close(c.client);
	return finish(status);
}
