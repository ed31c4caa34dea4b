/*
 * Scenario 5: memory. A fresh discoveryd, then 100,000 instances with two
 * metadata entries each (1,000 services x 100), registered by 16 parallel
 * clients; its resident set (VmRSS) once the events have drained, and what
 * that makes per instance over the idle server's RSS. Instances carry a TTL
 * (no heartbeats follow), so the checker tracks each one but sends no
 * traffic: the figure is the registry, the checker's bookkeeping and the
 * allocator, not 100,000 concurrent HTTP checks.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "populate.h"

#define PER_SERVICE 100
#define TARGET_MIB  64.0

static void
fill(void *arg, size_t i, bn_reg_item *it)
{
	(void) arg;
	snprintf(it->service, sizeof(it->service), "mem-%04zu", i / PER_SERVICE);
	snprintf(it->endpoint, sizeof(it->endpoint), "http://node-%06zu.prod.internal:8080", i);
	snprintf(it->keys[0], sizeof(it->keys[0]), "zone");
	snprintf(it->vals[0], sizeof(it->vals[0]), "eu-west-1%c", (int) ('a' + i % 3));
	snprintf(it->keys[1], sizeof(it->keys[1]), "version");
	snprintf(it->vals[1], sizeof(it->vals[1]), "2.%zu.%zu", i % 7, i % 11);
	it->n_meta = 2;
	it->ttl_ms = 86400000;
}

int
main(int argc, char **argv)
{
	bn_opts o;
	if (bn_opts_parse(&o, argc, argv, "bench_memory") != 0) {
		return 2;
	}
	size_t  n      = o.smoke ? 2000 : 100000;
	double *rss    = calloc((size_t) o.reps, sizeof(*rss));
	double *per    = calloc((size_t) o.reps, sizeof(*per));
	double *rate   = calloc((size_t) o.reps, sizeof(*rate));
	double *base   = calloc((size_t) o.reps, sizeof(*base));
	int     status = 1;
	if (rss == NULL || per == NULL || rate == NULL || base == NULL) {
		goto out;
	}
	for (int rep = 0; rep < o.reps; rep++) {
		bn_child d;
		char     tag[64];
		double   secs;
		snprintf(tag, sizeof(tag), "memory-discoveryd-%d", rep + 1);
		const char *extra[] = { "--max-instances", "2000000", NULL };
		if (bn_discoveryd_start(&d, &o, extra, tag) != 0) {
			goto out;
		}
		bn_sleep_ms(200);
		long r0 = bn_proc_rss_kib(d.pid, "VmRSS:");
		if (bn_register_all(d.url, n, 16, fill, NULL, &secs) != 0) {
			bn_child_stop(&d);
			goto out;
		}
		bn_sleep_ms(
		    o.smoke ? 200 : 1500); /* the publisher and checker drain their queues */
		long r1 = bn_proc_rss_kib(d.pid, "VmRSS:"), hwm = bn_proc_rss_kib(d.pid, "VmHWM:");
		bn_child_stop(&d);
		base[rep] = r0 / 1024.0;
		rss[rep]  = r1 / 1024.0;
		per[rep]  = (double) (r1 - r0) * 1024.0 / (double) n;
		rate[rep] = (double) n / secs;
		printf("  rep %d: idle %.1f MiB, with %zu instances %.1f MiB (peak %.1f MiB): %.0f "
		       "bytes/instance; registered at %.0f/s\n",
		    rep + 1, base[rep], n, rss[rep], hwm / 1024.0, per[rep], rate[rep]);
		bn_raw(&o, "memory", "discoveryd", (long) n, rep + 1, "rss_mib", rss[rep]);
		bn_raw(&o, "memory", "discoveryd", (long) n, rep + 1, "idle_rss_mib", base[rep]);
		bn_raw(&o, "memory", "discoveryd", (long) n, rep + 1, "peak_rss_mib", hwm / 1024.0);
		bn_raw(
		    &o, "memory", "discoveryd", (long) n, rep + 1, "bytes_per_instance", per[rep]);
		bn_raw(&o, "memory", "discoveryd", (long) n, rep + 1, "registers_per_s", rate[rep]);
	}
	double m_rss = bn_median(rss, (size_t) o.reps), m_per = bn_median(per, (size_t) o.reps);
	/* The target is for 100,000 instances; a smoke run only reports. */
	bool full = n == 100000;
	bn_emit(&o,
	    &(bn_row) { "memory", "RSS", (long) n, "MiB", m_rss, "target", TARGET_MIB, NAN,
	        "<= 64 MiB",
	        !full                     ? "reported"
	            : m_rss <= TARGET_MIB ? "met"
	                                  : "missed" });
	bn_emit(&o,
	    &(bn_row) { "memory", "RSS growth per instance", (long) n, "bytes", m_per, "target",
	        TARGET_MIB * 1048576.0 / 100000.0, NAN, NULL, "reported" });
	bn_emit(&o,
	    &(bn_row) { "memory", "idle RSS", 0, "MiB", bn_median(base, (size_t) o.reps), NULL, 0,
	        NAN, NULL, "reported" });
	bn_emit(&o,
	    &(bn_row) { "memory", "register throughput (16 clients)", 16, "req/s",
	        bn_median(rate, (size_t) o.reps), NULL, 0, NAN, NULL, "reported" });
	bn_note(&o,
	    "memory: %zu instances (%d per service), 2 metadata entries each, TTL instances "
	    "(tracked by the checker, not polled); RSS is VmRSS of a fresh discoveryd, %d "
	    "repetitions",
	    n, PER_SERVICE, o.reps);
	status = 0;
out:
	free(rss);
	free(per);
	free(rate);
	free(base);
	return status;
}
