/* Wires registry, dispatch and transport together for one discoveryd. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>

#include "checker.h"
#include "dispatch.h"
#include "events.h"
#include "registry.h"
#include "transport.h"

struct dsi_server {
	dsi_server_options opts;
	dsi_log            log;
	dsi_registry      *registry;
	dsi_dispatch       dispatch;
	dsi_rep_server    *rep;
	dsi_events        *events;
	dsi_checker       *checker;
};

/* The registry's observer: fan each change out to the checker and the publisher. */
static void
on_change(void *arg, dsi_change *ch)
{
	dsi_server *s = arg;
	dsi_checker_notify(s->checker, ch);
	dsi_events_enqueue(s->events, ch); /* takes the instance */
}

int
dsi_server_create(
    dsi_server **out, const dsi_server_options *o, FILE *log_out, char *why, size_t why_len)
{
	dsi_server *s = calloc(1, sizeof(*s));
	int         rv;

	if (s == NULL) {
		return DSC_ENOMEM;
	}
	s->opts      = *o;
	s->log.level = o->log_level;
	s->log.out   = log_out;
	if ((rv = dsi_registry_create(&s->registry, &o->limits)) != 0) {
		goto fail;
	}
	s->dispatch.registry  = s->registry;
	s->dispatch.log       = &s->log;
	dsi_events_options eo = {
		.url              = o->publish,
		.send_buffer      = o->event_buffer,
		.sync_interval_ms = o->sync_interval_ms,
	};
	if ((rv = dsi_events_create(&s->events, &eo, s->registry, &s->log, why, why_len)) != 0) {
		goto fail;
	}
	dsi_checker_options co = {
		.interval_ms         = o->health_interval_ms,
		.timeout_ms          = o->health_timeout_ms,
		.rise                = o->rise,
		.fall                = o->fall,
		.max_inflight        = o->max_checks,
		.deregister_after_ms = o->deregister_after_ms,
	};
	if ((rv = dsi_checker_create(&s->checker, &co, s->registry, &s->log)) != 0) {
		snprintf(why, why_len, "cannot create the health checker");
		goto fail;
	}
	dsi_registry_set_observer(s->registry, on_change, s);
	dsi_rep_options ro = {
		.listen      = o->listen,
		.n_listen    = o->n_listen,
		.max_request = o->max_request,
		.workers     = o->workers,
	};
	if ((rv = dsi_rep_create(&s->rep, &ro, &s->dispatch, &s->log, why, why_len)) != 0) {
		goto fail;
	}
	*out = s;
	return 0;
fail:
	dsi_server_destroy(s);
	return rv;
}

int
dsi_server_start(dsi_server *s)
{
	int rv;
	if ((rv = dsi_events_start(s->events)) != 0 || (rv = dsi_checker_start(s->checker)) != 0
	    || (rv = dsi_rep_start(s->rep)) != 0) {
		return rv;
	}
	dsi_info(&s->log, "publishing on %s", dsi_events_url(s->events));
	for (size_t i = 0; i < s->opts.n_listen; i++) {
		dsi_info(&s->log, "listening on %s", dsi_rep_bound_url(s->rep, i));
	}
	return 0;
}

/* Requests first (answering what is in flight), then checks, then the last events. */
void
dsi_server_stop(dsi_server *s)
{
	if (s->rep != NULL) {
		dsi_rep_stop(s->rep, s->opts.drain_ms);
	}
	dsi_checker_stop(s->checker);
	dsi_events_stop(s->events);
}

void
dsi_server_destroy(dsi_server *s)
{
	if (s == NULL) {
		return;
	}
	/*
	 * The REP socket closes last: if nng 1.5.2 wedges its close (see
	 * dsi_close_bounded), nng's reaper is stuck and later closes would wait.
	 */
	if (s->registry != NULL) {
		dsi_registry_set_observer(s->registry, NULL, NULL);
	}
	dsi_checker_destroy(s->checker);
	dsi_events_destroy(s->events);
	dsi_rep_destroy(s->rep);
	dsi_registry_destroy(s->registry);
	free(s);
}

const char *
dsi_server_publish_url(const dsi_server *s)
{
	return dsi_events_url(s->events);
}

const char *
dsi_server_url(const dsi_server *s, size_t i)
{
	return dsi_rep_bound_url(s->rep, i);
}
