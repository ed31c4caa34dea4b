/* Wires registry, dispatch and transport together for one discoveryd. */
#include "server.h"

#include <stdlib.h>

#include "dispatch.h"
#include "registry.h"
#include "transport.h"

struct dsi_server {
	dsi_server_options opts;
	dsi_log            log;
	dsi_registry      *registry;
	dsi_dispatch       dispatch;
	dsi_rep_server    *rep;
};

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
	s->dispatch.registry = s->registry;
	s->dispatch.log      = &s->log;
	dsi_rep_options ro   = {
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
	int rv = dsi_rep_start(s->rep);
	for (size_t i = 0; rv == 0 && i < s->opts.n_listen; i++) {
		dsi_info(&s->log, "listening on %s", dsi_rep_bound_url(s->rep, i));
	}
	return rv;
}

void
dsi_server_stop(dsi_server *s)
{
	if (s->rep != NULL) {
		dsi_rep_stop(s->rep, s->opts.drain_ms);
	}
}

void
dsi_server_destroy(dsi_server *s)
{
	if (s == NULL) {
		return;
	}
	dsi_rep_destroy(s->rep);
	dsi_registry_destroy(s->registry);
	free(s);
}

const char *
dsi_server_url(const dsi_server *s, size_t i)
{
	return dsi_rep_bound_url(s->rep, i);
}
