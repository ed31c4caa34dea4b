/*
 * discoveryctl's commands: each makes one call and prints its result.
 * watch and wait are the long-running ones: watch reads the server's
 * publish socket instead of calling the server, until interrupted or
 * --count; wait runs dsc_wait_for until the services are ready or --timeout.
 */
#include "discoveryctl/commands.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/name.h"
#include "common/timeutil.h"
#include "discoveryctl/output.h"
#include "discoveryctl/snapshot.h"

#define WATCH_POLL_MS    200  /* how soon watch notices SIGINT or SIGTERM */
#define WATCH_CONNECT_MS 1000 /* how long watch stays silent about no connection */

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
	{ DSC_EAUTH, EXIT_AUTH },
	{ DSC_EPERM, EXIT_AUTH },
};

int
ctl_exit_for(int err)
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
	/* The server's text names the protobuf field; a user needs the option and variable. */
	if (rv == DSC_EAUTH) {
		ctl_say(
		    "%s: the server needs an auth token for this: give --token-file FILE or set "
		    "$" TOKEN_ENV,
		    what);
	} else if (rv == DSC_EPERM) {
		ctl_say("%s: the server did not accept the auth token from %s", what,
		    c->token != NULL ? "--token-file" : "$" TOKEN_ENV);
	} else {
		ctl_say("%s: %s", what,
		    err->code == rv && err->message[0] != 0 ? err->message : dsc_strerror(rv));
	}
	ctl_connect_hint(c, c->server, rv);
	/* UNAVAILABLE below --min-revision: no server had caught up, not "no instance". */
	if (rv == DSC_EUNAVAILABLE && c->client != NULL
	    && dsc_client_revision(c->client) < c->min_revision) {
		return EXIT_UNREACHABLE;
	}
	return ctl_exit_for(rv);
}

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
	ctl_print_instance(c, x);
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
		ctl_put_clean(stdout, x->endpoint);
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
	if (c->json) {
		ctl_json_print(json_pack("{s:I}", "removed", (json_int_t) removed));
	} else {
		printf("removed %" PRIu32 "\n", removed);
	}
	return EXIT_OK;
}

/* The service name as the server stores it, for output: normalized if valid, else as given. */
static const char *
service_name(const char *given, char buf[DSI_NAME_MAX + 1])
{
	char why[128];

	return dsi_name_normalize(given, buf, why, sizeof(why)) == 0 ? buf : given;
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
		ctl_print_service_health(c, service_name(c->args[0], name), healthy, state, list);
		dsc_instance_list_free(list);
	} else if (c->json) {
		/* The reply does not name the service; echo it as the server stored it. */
		json_t *o = json_object();
		json_object_set_new(o, "service", ctl_json_text(service_name(c->args[0], name)));
		json_object_set_new(o, "endpoint", ctl_json_text(endpoint));
		json_object_set_new(o, "healthy", json_boolean(healthy));
		json_object_set_new(o, "state", json_string(dsc_health_name(state)));
		ctl_json_print(o);
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
		ctl_print_list_json(list);
	} else {
		ctl_print_table(list);
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

static int
cmd_status(ctl *c)
{
	dsc_server_status *st  = NULL;
	dsc_error          err = { .code = 0 };
	int                rv  = dsc_status(c->client, &st, &err);

	if (rv != 0) {
		return call_failed(c, rv, &err);
	}
	ctl_print_status(c, st);
	dsc_server_status_free(st);
	return EXIT_OK;
}

/* True once SIGINT or SIGTERM, blocked by cmd_watch, is waiting to be delivered. */
static bool
stop_requested(void)
{
	sigset_t pending;

	return sigpending(&pending) == 0
	    && (sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1);
}

void
ctl_client_options(const ctl *c, dsc_client_options *opts)
{
	dsc_client_options_init(opts);
	opts->timeout_ms = c->timeout_ms;
	opts->auth_token = c->token != NULL ? c->token : getenv(TOKEN_ENV);
	opts->tls        = c->tls;
}

/*
 * Silence from a watch can mean a quiet registry or no server at all: say so
 * on stderr once no connection came within a second (and keep trying), and
 * with --timeout, give up when it passes without one. Returns an EXIT_*.
 */
static int
watch_not_connected(const ctl *c, dsc_watch *w, int64_t start, bool *said)
{
	int64_t waited = dsi_monotonic_ms() - start;

	if (dsi_watch_connects(w) > 0) {
		return EXIT_OK;
	}
	if (c->timeout_given && waited >= c->timeout_ms) {
		ctl_say(
		    "watch: no connection to %s within %g s", c->publish, c->timeout_ms / 1000.0);
		return EXIT_UNREACHABLE;
	}
	if (!*said && waited >= WATCH_CONNECT_MS) {
		ctl_say(
		    "watch: no connection to %s yet; still trying (is discoveryd running, and is "
		    "this its --publish URL?)",
		    c->publish);
		*said = true;
	}
	return EXIT_OK;
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
			ctl_say("watch %s: %s", c->args[i], why);
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
		ctl_say("watch: cannot block signals: %s", strerror(rv));
		return EXIT_LOCAL;
	}
	rv = dsc_watch_open_tls(&w, c->publish, c->nargs > 0 ? c->args : NULL, c->nargs, &c->tls);
	if (rv == DSC_EINVAL) {
		ctl_say("--publish %s: not a URL discoveryctl can dial", c->publish);
		return EXIT_USAGE;
	}
	if (rv != 0) {
		ctl_say("watch %s: %s", c->publish, dsc_strerror(rv));
		return ctl_exit_for(rv);
	}
	/* The watch dials in the background and redials: a server that is down is waited for. */
	int64_t start = dsi_monotonic_ms();
	bool    said  = false;
	while ((c->count == 0 || changes < c->count) && !stop_requested()) {
		dsc_event *ev = NULL;

		if ((rv = dsc_watch_next(w, WATCH_POLL_MS, &ev)) == DSC_ETIMEDOUT) {
			if ((status = watch_not_connected(c, w, start, &said)) != EXIT_OK) {
				break;
			}
			continue;
		}
		if (rv != 0) {
			ctl_say("watch %s: %s", c->publish, dsc_strerror(rv));
			status = ctl_exit_for(rv);
			break;
		}
		ctl_print_event(c, ev);
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
			ctl_say("wait %s: %s", c->args[i], why);
			return EXIT_REJECTED;
		}
	}
	/* The library waits for the server too: entrypoints may start before it is up. */
	ctl_client_options(c, &opts);
	rv = dsc_wait_for_opts(
	    c->server, c->publish, c->args, c->nargs, c->wait_mode, timeout_ms, &opts, st, &err);
	if (rv == 0) {
		if (c->json) {
			ctl_print_wait_json(c, true, st, c->nargs);
		} else {
			ctl_print_wait_ready(c, st, c->nargs);
		}
		return EXIT_OK;
	}
	if (rv == DSC_ETIMEDOUT && c->json) {
		ctl_print_wait_json(c, false, st, c->nargs);
	}
	ctl_say("wait: %s", err.code == rv && err.message[0] != 0 ? err.message : dsc_strerror(rv));
	if (rv == DSC_ETIMEDOUT) {
		return EXIT_NOTFOUND;
	}
	/* The names were checked above, so this is a URL that cannot be dialed. */
	return rv == DSC_EINVAL ? EXIT_USAGE : ctl_exit_for(rv);
}

/* The one table from command name to handler. */
const command ctl_commands[] = {
	{ "register", 2, 2, OPT_META | OPT_HEALTH_PATH | OPT_TTL | OPT_WEIGHT, false, DIALS_SERVER,
	    "SERVICE ENDPOINT [--meta KEY=VALUE]... [--health-path PATH] [--ttl-ms N] [--weight N]",
	    "register an instance, or update it, and print it", cmd_register },
	{ "resolve", 1, 1, OPT_HEALTHY_ONLY, false, DIALS_SERVER, "SERVICE [--healthy-only]",
	    "print the endpoint of one instance, chosen by the server", cmd_resolve },
	{ "deregister", 1, 2, 0, false, DIALS_SERVER, "SERVICE [ENDPOINT]",
	    "remove one instance, or every instance of SERVICE; print how many", cmd_deregister },
	{ "health", 1, 2, 0, false, DIALS_SERVER, "SERVICE [ENDPOINT]",
	    "print the health of an instance; or whether SERVICE is healthy, then the health,\n"
	    "      last check and last error of each of its instances",
	    cmd_health },
	{ "list", 0, 1, 0, false, DIALS_SERVER, "[SERVICE]",
	    "print every instance, or those of SERVICE", cmd_list },
	{ "heartbeat", 2, 2, 0, false, DIALS_SERVER, "SERVICE ENDPOINT",
	    "mark an instance registered with --ttl-ms healthy; print it", cmd_heartbeat },
	{ "watch", 0, MAX_ARGS, OPT_COUNT, true, DIALS_PUBLISH, "[SERVICE]... [--count N]",
	    "print each change to the registry (of the SERVICEs named, else of all) as one\n"
	    "      line, from the server's --publish URL; until SIGINT or SIGTERM, or until N\n"
	    "      changes with --count (--json also prints the periodic \"sync\" events)",
	    cmd_watch },
	{ "wait", 1, MAX_ARGS, OPT_HEALTHY | OPT_REGISTERED, true, DIALS_BOTH,
	    "SERVICE... [--timeout SECONDS] [--healthy|--registered]",
	    "wait until every SERVICE has a healthy instance (--healthy, the default) or any\n"
	    "      instance (--registered), and the server too if it is not up yet; print\n"
	    "      \"ready: SERVICE...\". After --timeout (60 s unless given) exit 1, naming\n"
	    "      those missing and those unhealthy. For entrypoints: wait db && exec app",
	    cmd_wait },
	{ "status", 0, 0, 0, false, DIALS_SERVER, "",
	    "print the server's version, uptime, revision, instances by health, listeners,\n"
	    "      data file and store commits",
	    cmd_status },
	{ "snapshot", 2, 2, 0, true, DIALS_ADMIN, "save FILE",
	    "save an online copy of the server's data file to FILE (atomically, mode 0600),\n"
	    "      from its admin endpoint (--admin): a data file discoveryd can start from",
	    ctl_cmd_snapshot },
};

const size_t ctl_ncommands = sizeof(ctl_commands) / sizeof(ctl_commands[0]);

const command *
ctl_command_find(const char *name)
{
	for (size_t i = 0; i < ctl_ncommands; i++) {
		if (strcmp(ctl_commands[i].name, name) == 0) {
			return &ctl_commands[i];
		}
	}
	return NULL;
}
