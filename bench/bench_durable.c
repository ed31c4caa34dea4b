/*
 * Scenario 6: durable register. Register throughput with --data on a file
 * (every acknowledged write committed with synchronous=FULL, concurrent
 * ones sharing a commit) against the same server with --data :memory:,
 * at 1, 16 and 64 clients, in back-to-back pairs. The ratio is what durability
 * costs; the writes per commit, from the server's own count, show the
 * group commit at work.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "populate.h"

/* Durable against :memory: (issue 12); 1 client is bounded by one fsync per request. */
#define TARGET_RATIO_16 0.7
#define TARGET_RATIO_64 0.8

static void
fill(void *arg, size_t i, bn_reg_item *it)
{
	(void) arg;
	snprintf(it->service, sizeof(it->service), "dur-%03zu", i / 50);
	snprintf(it->endpoint, sizeof(it->endpoint), "http://node-%06zu.prod.internal:8080", i);
	snprintf(it->keys[0], sizeof(it->keys[0]), "zone");
	snprintf(it->vals[0], sizeof(it->vals[0]), "eu-west-1%c", (int) ('a' + i % 3));
	it->n_meta = 1;
	it->ttl_ms = 86400000; /* tracked, never polled: the figure is the write path */
}

/* Writes per commit, from the line discoveryd logs when it stops. */
static double
writes_per_commit(const bn_child *d)
{
	FILE  *f = fopen(d->log_path, "r");
	char   line[512];
	double ratio = NAN;
	if (f == NULL) {
		return NAN;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long w, c;
		if (strstr(line, "writes stored in") != NULL
		    && sscanf(strrchr(line, ':') + 1, " %llu writes stored in %llu", &w, &c) == 2
		    && c > 0) {
			ratio = (double) w / (double) c;
		}
	}
	fclose(f);
	return ratio;
}

/* One run: a fresh server on data, n registrations by clients; registers/s. */
static int
run(const bn_opts *o, const char *data, size_t n, size_t clients, int rep, double *rate,
    double *per_commit)
{
	bn_child d;
	char     tag[64];
	double   secs;
	snprintf(tag, sizeof(tag), "durable-%s-%zu-%d",
	    strcmp(data, ":memory:") == 0 ? "memory" : "file", clients, rep + 1);
	unlink(data);
	const char *extra[] = { "--data", data, NULL };
	if (bn_discoveryd_start(&d, o, extra, tag) != 0) {
		return -1;
	}
	int rv = bn_register_all(d.url, n, clients, fill, NULL, &secs);
	bn_child_stop(&d);
	if (rv != 0) {
		return -1;
	}
	*rate       = (double) n / secs;
	*per_commit = writes_per_commit(&d);
	return 0;
}

int
main(int argc, char **argv)
{
	bn_opts o;
	char    file[512], wal[520];
	if (bn_opts_parse(&o, argc, argv, "bench_durable") != 0) {
		return 2;
	}
	snprintf(file, sizeof(file), "%s/durable-bench.db", o.out_dir);
	snprintf(wal, sizeof(wal), "%s-wal", file);
	const size_t counts[] = { 1, 16, 64 };
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		size_t      clients = counts[k];
		size_t      n      = o.smoke ? 50 * clients : (clients == 1 ? 1000 : 500 * clients);
		double      target = clients == 16 ? TARGET_RATIO_16 : TARGET_RATIO_64;
		const char *target_text = clients == 1
		    ? NULL
		    : (clients == 16 ? ">= 0.7 x :memory:" : ">= 0.8 x :memory:");
		double     *ratio       = calloc((size_t) o.reps, sizeof(double));
		double     *dur         = calloc((size_t) o.reps, sizeof(double));
		double     *mem         = calloc((size_t) o.reps, sizeof(double));
		double     *batch       = calloc((size_t) o.reps, sizeof(double));
		if (ratio == NULL || dur == NULL || mem == NULL || batch == NULL) {
			return 1;
		}
		for (int rep = 0; rep < o.reps; rep++) {
			double unused;
			if (run(&o, ":memory:", n, clients, rep, &mem[rep], &unused) != 0
			    || run(&o, file, n, clients, rep, &dur[rep], &batch[rep]) != 0) {
				return 1;
			}
			ratio[rep] = dur[rep] / mem[rep];
			printf(
			    "  %zu clients, rep %d: file %.0f/s (%.1f writes per commit), :memory: "
			    "%.0f/s: ratio %.3f\n",
			    clients, rep + 1, dur[rep], batch[rep], mem[rep], ratio[rep]);
			bn_raw(&o, "durable_register", "discoveryd file", (long) clients, rep + 1,
			    "registers_per_s", dur[rep]);
			bn_raw(&o, "durable_register", "discoveryd :memory:", (long) clients,
			    rep + 1, "registers_per_s", mem[rep]);
			bn_raw(&o, "durable_register", "discoveryd file", (long) clients, rep + 1,
			    "writes_per_commit", batch[rep]);
		}
		double      m_ratio = bn_median(ratio, (size_t) o.reps);
		const char *measure = "register throughput (file / :memory:)";
		const char *verdict = "reported";
		if (clients > 1 && !o.smoke) {
			verdict = m_ratio >= target ? "met" : "missed";
		}
		bn_emit(&o,
		    &(bn_row) { "durable_register", measure, (long) clients, "req/s",
		        bn_median(dur, (size_t) o.reps), ":memory:",
		        bn_median(mem, (size_t) o.reps), m_ratio, target_text, verdict });
		bn_emit(&o,
		    &(bn_row) { "durable_register", "writes per commit", (long) clients, "count",
		        bn_median(batch, (size_t) o.reps), NULL, 0, NAN, NULL, "reported" });
		free(ratio);
		free(dur);
		free(mem);
		free(batch);
	}
	unlink(file);
	unlink(wal);
	bn_note(&o,
	    "durable register: fresh servers, --data on a file in the output directory "
	    "(synchronous=FULL, WAL) against --data :memory:, back to back; 1 client: %d "
	    "registrations, 16 and 64 clients: %d and %d; %d repetitions; TTL instances, one "
	    "metadata entry",
	    o.smoke ? 50 : 1000, o.smoke ? 800 : 8000, o.smoke ? 3200 : 32000, o.reps);
	return 0;
}
