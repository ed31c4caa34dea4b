/*
 * Scenario 1's other half: what discoveryd itself adds to a Resolve, with
 * no transport. dsi_dispatch_handle (decode, validate, registry lookup,
 * export, encode) runs in a loop in this process on a registry holding the
 * same 1,000 services x 4 instances. The difference between discoveryd's
 * and the echo's server CPU per request in scenario 1 should be about this
 * figure; the rest of a request is nng and the kernel. Small enough to run
 * under valgrind --tool=callgrind.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "server/dispatch.h"
#include "server/registry.h"
#include "wire.h"

#define PER_SERVICE 4

/* The same instances as bench_resolve registers, straight into the registry. */
static int
fill(dsi_registry *r, size_t nsvc)
{
	for (size_t i = 0; i < nsvc * PER_SERVICE; i++) {
		char   svc[32], ep[64], zone[16];
		bool   created;
		char   why[256];
		dsc_kv kv[2] = { { "zone", zone }, { "version", "1.4.2" } };
		snprintf(svc, sizeof(svc), "svc-%04zu", i / PER_SERVICE);
		snprintf(ep, sizeof(ep), "http://node-%05zu.bench.internal:8080", i);
		snprintf(zone, sizeof(zone), "zone-%c", (int) ('a' + i % 3));
		dsi_registration reg = {
			.service     = svc,
			.endpoint    = ep,
			.metadata    = kv,
			.n_metadata  = 2,
			.health_path = "/health",
			.ttl_ms      = 86400000,
		};
		if (dsi_registry_register(
		        r, &reg, 1700000000000, NULL, &created, NULL, why, sizeof(why))
		        != 0
		    || dsi_registry_heartbeat(r, svc, ep, 1700000000000, NULL, NULL) != 0) {
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	bn_opts       o;
	dsi_registry *r    = NULL;
	void        **reqs = NULL;
	size_t       *lens = NULL;
	size_t        nsvc;
	int           status = 1;

	if (bn_opts_parse(&o, argc, argv, "bench_dispatch") != 0) {
		return 2;
	}
	nsvc          = o.smoke ? 20 : 1000;
	size_t  iters = o.smoke ? 20000 : 2000000;
	dsi_log log   = { .level = DSI_LOG_WARN, .out = stderr };
	double *ns    = calloc((size_t) o.reps, sizeof(*ns));
	reqs          = calloc(nsvc, sizeof(*reqs));
	lens          = calloc(nsvc, sizeof(*lens));
	if (ns == NULL || reqs == NULL || lens == NULL || dsi_registry_create(&r, NULL) != 0
	    || fill(r, nsvc) != 0) {
		fprintf(stderr, "dispatch: setup failed\n");
		goto out;
	}
	for (size_t i = 0; i < nsvc; i++) {
		char name[32];
		snprintf(name, sizeof(name), "svc-%04zu", i);
		if (bn_pack_resolve(name, &reqs[i], &lens[i]) != 0) {
			goto out;
		}
	}
	dsi_dispatch d = { .registry = r, .log = &log };
	for (int rep = 0; rep < o.reps; rep++) {
		int64_t t0 = bn_now_ns();
		for (size_t i = 0; i < iters; i++) {
			nng_msg *reply;
			size_t   k = i % nsvc;
			if (dsi_dispatch_handle(&d, reqs[k], lens[k], &reply) != 0) {
				fprintf(stderr, "dispatch: no reply\n");
				goto out;
			}
			nng_msg_free(reply);
		}
		ns[rep] = (double) (bn_now_ns() - t0) / (double) iters;
		printf("  rep %d dispatch alone: %.0f ns per Resolve\n", rep + 1, ns[rep]);
		bn_raw(&o, "resolve", "dispatch", 1, rep + 1, "dispatch_ns_per_resolve", ns[rep]);
	}
	bn_emit(&o,
	    &(bn_row) { "resolve", "dispatch alone (no transport)", 1, "ns",
	        bn_median(ns, (size_t) o.reps), NULL, 0, NAN, NULL, "reported" });
	status = 0;
out:
	for (size_t i = 0; reqs != NULL && i < nsvc; i++) {
		free(reqs[i]);
	}
	free(reqs);
	free(lens);
	free(ns);
	dsi_registry_destroy(r);
	return status;
}
