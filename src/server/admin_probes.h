/*
 * The admin endpoint's readiness probe and Prometheus text, from what they
 * are given: they know nothing of the admin server that routes to them.
 */
#ifndef DSI_ADMIN_PROBES_H
#define DSI_ADMIN_PROBES_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/metrics.h"
#include "server/registry.h"
#include "server/writer.h"

/*
 * GET /readyz: 200 when started and every service in require (n_require
 * names, borrowed) has a healthy instance; otherwise 503 saying what is
 * missing. Access is the caller's to check.
 */
void dsi_admin_readyz(
    nng_aio *aio, dsi_registry *r, const char *const *require, size_t n_require, bool started);

/*
 * GET /metrics: m's counters (NULL: none), the registry's and the writer's
 * gauges (w NULL: no store), parked blocking queries, process metrics.
 */
void dsi_admin_metrics(nng_aio *aio, dsi_metrics *m, dsi_registry *r, dsi_writer *w, size_t parked);

#endif
