/* Flag parsing for discoveryd: one table, no global state, so it is testable. */
#include "options.h"

#include <discovery/discovery.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef DISCOVERY_VERSION
#define DISCOVERY_VERSION "0.0.0"
#endif

#define DEFAULT_LISTEN  "tcp://127.0.0.1:7700"
#define DEFAULT_PUBLISH "tcp://127.0.0.1:7701"

void
dsi_options_default(dsi_server_options *o)
{
	memset(o, 0, sizeof(*o));
	o->listen[0]   = DEFAULT_LISTEN;
	o->n_listen    = 1;
	o->publish     = DEFAULT_PUBLISH;
	o->log_level   = DSI_LOG_INFO;
	o->max_request = 1024 * 1024;
	o->workers     = 64;
	o->drain_ms    = 5000;
	dsi_registry_limits_default(&o->limits);
	o->health_interval_ms  = 30000; /* the original design's 30 s */
	o->health_timeout_ms   = 5000;
	o->rise                = 2;
	o->fall                = 2;
	o->max_checks          = 256;
	o->deregister_after_ms = 0;
	o->sync_interval_ms    = 5000;
	o->event_buffer        = 1024;
}

typedef int (*setter)(dsi_server_options *o, const char *v, char *why, size_t why_len);

static int
parse_uint(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char              *end = NULL;
	unsigned long long n;
	if (v[0] < '0' || v[0] > '9') {
		return DSC_EINVAL;
	}
	errno = 0;
	n     = strtoull(v, &end, 10);
	if (errno != 0 || *end != 0 || n < lo || n > hi) {
		return DSC_EINVAL;
	}
	*out = n;
	return 0;
}

#define UINT_SETTER(fn, field, type, lo, hi)                                           \
	static int fn(dsi_server_options *o, const char *v, char *why, size_t why_len) \
	{                                                                              \
		uint64_t n;                                                            \
		if (parse_uint(v, (lo), (hi), &n) != 0) {                              \
			snprintf(why, why_len,                                         \
			    "expects a whole number from %llu to %llu, not \"%s\"",    \
			    (unsigned long long) (lo), (unsigned long long) (hi), v);  \
			return DSC_EINVAL;                                             \
		}                                                                      \
		o->field = (type) n;                                                   \
		return 0;                                                              \
	}

UINT_SETTER(set_max_request, max_request, size_t, 64, 256u * 1024 * 1024)
UINT_SETTER(set_workers, workers, size_t, 1, 4096)
UINT_SETTER(set_max_instances, limits.max_instances, uint32_t, 1, 100000000)
UINT_SETTER(set_max_per_service, limits.max_instances_per_service, uint32_t, 1, 100000000)
UINT_SETTER(set_rise, rise, int, 1, 100)
UINT_SETTER(set_fall, fall, int, 1, 100)
UINT_SETTER(set_max_checks, max_checks, int, 1, 65536)
UINT_SETTER(set_event_buffer, event_buffer, int, 1, 1000000)

/* Seconds with fractions ("0.5", "30") into milliseconds, within [lo, hi] s. */
static int
parse_seconds(const char *v, double lo, double hi, int *ms)
{
	char  *end = NULL;
	double d;
	if ((v[0] < '0' || v[0] > '9') && v[0] != '.') {
		return DSC_EINVAL; /* no signs, spaces, inf or nan */
	}
	errno = 0;
	d     = strtod(v, &end);
	if (errno != 0 || *end != 0 || d < lo || d > hi) {
		return DSC_EINVAL;
	}
	*ms = (int) (d * 1000.0 + 0.5);
	if (*ms == 0 && d > 0) {
		*ms = 1;
	}
	return 0;
}

#define SECONDS_SETTER(fn, field, lo, hi)                                                   \
	static int fn(dsi_server_options *o, const char *v, char *why, size_t why_len)      \
	{                                                                                   \
		if (parse_seconds(v, (lo), (hi), &o->field) != 0) {                         \
			snprintf(why, why_len, "expects seconds from %g to %g, not \"%s\"", \
			    (double) (lo), (double) (hi), v);                               \
			return DSC_EINVAL;                                                  \
		}                                                                           \
		return 0;                                                                   \
	}

SECONDS_SETTER(set_health_interval, health_interval_ms, 0.01, 86400)
SECONDS_SETTER(set_health_timeout, health_timeout_ms, 0.01, 3600)
SECONDS_SETTER(set_deregister_after, deregister_after_ms, 0, 2000000)
SECONDS_SETTER(set_sync_interval, sync_interval_ms, 0.01, 3600)

static int
set_listen(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	static const char *const defaults[] = { DEFAULT_LISTEN };
	/* The first --listen replaces the default instead of adding to it. */
	if (o->n_listen == 1 && o->listen[0] == defaults[0]) {
		o->n_listen = 0;
	}
	if (o->n_listen == DSI_MAX_LISTEN) {
		snprintf(why, why_len, "may be given at most %d times", DSI_MAX_LISTEN);
		return DSC_EINVAL;
	}
	o->listen[o->n_listen++] = v;
	return 0;
}

static int
set_publish(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	(void) why;
	(void) why_len;
	o->publish = v;
	return 0;
}

static int
set_log_level(dsi_server_options *o, const char *v, char *why, size_t why_len)
{
	if (dsi_log_level_parse(v, &o->log_level) != 0) {
		snprintf(why, why_len, "expects error, warn, info or debug, not \"%s\"", v);
		return DSC_EINVAL;
	}
	return 0;
}

static const struct flag {
	const char *name;
	const char *arg;
	setter      set;
	const char *help;
} flags[] = {
	{ "listen", "URL", set_listen, "REQ/REP address; repeatable (default " DEFAULT_LISTEN ")" },
	{ "publish", "URL", set_publish, "PUB address for events (default " DEFAULT_PUBLISH ")" },
	{ "log-level", "LEVEL", set_log_level, "error, warn, info or debug (default info)" },
	{ "max-request-size", "BYTES", set_max_request,
	    "largest request accepted; larger ones drop the connection (default 1048576)" },
	{ "max-instances", "N", set_max_instances, "instances in total (default 1000000)" },
	{ "max-instances-per-service", "N", set_max_per_service,
	    "instances of one service (default 65536)" },
	{ "workers", "N", set_workers, "concurrent requests in the REP pool (default 64)" },
	{ "health-interval", "SECONDS", set_health_interval,
	    "between checks of one instance; fractions allowed (default 30)" },
	{ "health-timeout", "SECONDS", set_health_timeout, "per check (default 5)" },
	{ "rise", "N", set_rise, "passes in a row to become healthy (default 2)" },
	{ "fall", "N", set_fall, "failures in a row to become unhealthy (default 2)" },
	{ "max-checks", "N", set_max_checks, "health checks in flight at once (default 256)" },
	{ "deregister-after", "SECONDS", set_deregister_after,
	    "remove instances unhealthy this long (default 0: never)" },
	{ "sync-interval", "SECONDS", set_sync_interval,
	    "between SYNC events carrying the revision (default 5)" },
	{ "event-buffer", "N", set_event_buffer,
	    "events queued per subscriber before nng drops them (default 1024)" },
	{ "help", NULL, NULL, "show this help and exit" },
	{ "version", NULL, NULL, "show the version and exit" },
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

static void
usage(FILE *out)
{
	fprintf(out,
	    "Usage: discoveryd [OPTION]...\n"
	    "The discovery server: a service registry over nng REQ/REP.\n\n");
	for (size_t i = 0; i < NFLAGS; i++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", flags[i].name, flags[i].arg ? " " : "",
		    flags[i].arg ? flags[i].arg : "");
		fprintf(out, "  %-34s %s\n", left, flags[i].help);
	}
	fprintf(out,
	    "\nExit status: 0 after a clean shutdown (SIGINT or SIGTERM), 1 when the\n"
	    "server cannot start, 2 for bad usage.\n");
}

int
dsi_options_parse(
    dsi_server_options *o, int argc, char *const *argv, FILE *out, char *why, size_t why_len)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char        name[64];
		const char *val = NULL;

		if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
			snprintf(why, why_len, "unexpected argument \"%s\"", a);
			return DSC_EINVAL;
		}
		const char *eq  = strchr(a, '=');
		size_t      len = eq != NULL ? (size_t) (eq - a - 2) : strlen(a + 2);
		snprintf(name, sizeof(name), "%.*s", (int) len, a + 2);
		const struct flag *f = NULL;
		for (size_t k = 0; k < NFLAGS; k++) {
			if (strcmp(flags[k].name, name) == 0) {
				f = &flags[k];
			}
		}
		if (f == NULL || len >= sizeof(name)) {
			snprintf(why, why_len, "unknown option \"--%s\"", name);
			return DSC_EINVAL;
		}
		if (f->arg == NULL) {
			if (eq != NULL) {
				snprintf(why, why_len, "--%s takes no value", name);
				return DSC_EINVAL;
			}
			if (strcmp(name, "help") == 0) {
				usage(out);
			} else {
				fprintf(out, "discoveryd %s\n", DISCOVERY_VERSION);
			}
			return DSI_OPTIONS_EXIT;
		}
		if (eq != NULL) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			snprintf(why, why_len, "--%s needs a value (%s)", name, f->arg);
			return DSC_EINVAL;
		}
		char detail[256];
		if (val[0] == 0) {
			snprintf(why, why_len, "--%s needs a non-empty value (%s)", name, f->arg);
			return DSC_EINVAL;
		}
		if (f->set(o, val, detail, sizeof(detail)) != 0) {
			snprintf(why, why_len, "--%s %s", name, detail);
			return DSC_EINVAL;
		}
	}
	return 0;
}
