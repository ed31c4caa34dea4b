/* The admin endpoint's probes (/readyz) and its Prometheus text (/metrics). */
#include "server/admin_probes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/name.h"
#include "server/admin_reply.h"

void
dsi_admin_readyz(
    nng_aio *aio, dsi_registry *r, const char *const *require, size_t n_require, bool started)
{
	json_t  *missing = json_array();
	uint64_t rev     = dsi_registry_revision(r);

	if (!started) {
		json_array_append_new(missing, json_string("the server is still starting"));
	}
	for (size_t i = 0; i < n_require; i++) {
		bool       healthy = false;
		dsc_health state;
		char       name[DSI_NAME_MAX + 1], msg[160];
		if (dsi_name_normalize(require[i], name, msg, sizeof(msg)) != 0
		    || dsi_registry_is_healthy(r, name, NULL, &healthy, &state, NULL) != 0
		    || !healthy) {
			snprintf(msg, sizeof(msg), "required service %s has no healthy instance",
			    require[i]);
			json_array_append_new(missing, json_string(msg));
		}
	}
	bool ready = missing != NULL && json_array_size(missing) == 0;
	dsi_admin_reply_json(aio, ready ? 200 : 503,
	    json_pack("{s:b, s:I, s:o}", "ready", ready, "revision", (json_int_t) rev, "missing",
	        missing),
	    rev);
}

/* Gauges read from the registry and the writer at scrape time. */
static void
render_state(dsi_registry *r, dsi_writer *w, size_t waiting, dsi_textbuf *b)
{
	dsi_instances all = { NULL, 0 };
	uint64_t      rev = 0, by[3] = { 0, 0, 0 }, services = 0;
	if (dsi_registry_get_all(r, NULL, &all, &rev) == 0) {
		for (size_t i = 0; i < all.count; i++) {
			unsigned h = (unsigned) all.items[i]->health;
			by[h < 3 ? h : 0]++;
			services += i == 0
			    || strcmp(all.items[i]->service, all.items[i - 1]->service) != 0;
		}
		dsi_instances_free(&all);
	}
	dsi_textbuf_printf(b,
	    "# HELP discovery_instances Registered instances, by health.\n"
	    "# TYPE discovery_instances gauge\n"
	    "discovery_instances{health=\"healthy\"} %llu\n"
	    "discovery_instances{health=\"unhealthy\"} %llu\n"
	    "discovery_instances{health=\"unknown\"} %llu\n"
	    "# HELP discovery_services Services with at least one instance.\n"
	    "# TYPE discovery_services gauge\n"
	    "discovery_services %llu\n"
	    "# HELP discovery_revision The registry revision.\n"
	    "# TYPE discovery_revision gauge\n"
	    "discovery_revision %llu\n",
	    (unsigned long long) by[1], (unsigned long long) by[2], (unsigned long long) by[0],
	    (unsigned long long) services, (unsigned long long) rev);
	if (w != NULL) {
		uint64_t commits, writes;
		dsi_writer_stats(w, &commits, &writes);
		dsi_textbuf_printf(b,
		    "# HELP discovery_store_commits_total Transactions committed to the data "
		    "file.\n"
		    "# TYPE discovery_store_commits_total counter\n"
		    "discovery_store_commits_total %llu\n"
		    "# HELP discovery_store_writes_total Writes stored; per commit: their ratio.\n"
		    "# TYPE discovery_store_writes_total counter\n"
		    "discovery_store_writes_total %llu\n",
		    (unsigned long long) commits, (unsigned long long) writes);
	}
	dsi_textbuf_printf(b,
	    "# HELP discovery_admin_blocking_queries Blocking queries waiting now.\n"
	    "# TYPE discovery_admin_blocking_queries gauge\n"
	    "discovery_admin_blocking_queries %zu\n",
	    waiting);
}

void
dsi_admin_metrics(nng_aio *aio, dsi_metrics *m, dsi_registry *r, dsi_writer *w, size_t parked)
{
	dsi_textbuf b = { NULL, 0, 0, false };
	if (m != NULL) {
		dsi_metrics_render(m, &b);
	}
	render_state(r, w, parked, &b);
	dsi_metrics_render_process(&b);
	if (b.failed || b.buf == NULL) {
		free(b.buf);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	dsi_admin_reply(aio, 200, "text/plain; version=0.0.4; charset=utf-8", b.buf, true,
	    dsi_registry_revision(r));
	free(b.buf);
}
