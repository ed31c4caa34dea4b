/*
 * Scenarios 1 and 2.
 *
 * 1. Resolve over the network at 1, 8, 32 and 64 clients against a
 *    discoveryd holding 1,000 services x 4 instances, and the same load
 *    against bench_echo answering a reply of the same bytes. The two are
 *    run back to back for each client count, in alternating order from one
 *    repetition to the next, so drift on a shared machine hits both.
 * 2. Resolve from a local view (dsc_view_resolve_endpoint), against
 *    scenario 1's network round trip, with the bytes the server read during
 *    the loop as the proof that no request went out.
 */
#include <discovery/discovery.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "loadgen.h"
#include "populate.h"
#include "wire.h"

#define PER_SERVICE 4
#define MAX_COUNTS  16
#define TTL_MS      86400000u /* TTL instances: healthy by heartbeat, no checker traffic */
#define NFIG        6         /* figures kept per run */

/* The client counts of the issue, or those given with --clients. */
static size_t client_counts[MAX_COUNTS] = { 1, 8, 32, 64 };
static int    NCOUNTS                   = 4;

static void
parse_counts(const char *list)
{
	char *copy = strdup(list), *save = NULL;
	int   n = 0;
	for (char *t = strtok_r(copy, ",", &save); t != NULL && n < MAX_COUNTS;
	     t       = strtok_r(NULL, ",", &save)) {
		long v = atol(t);
		if (v > 0) {
			client_counts[n++] = (size_t) v;
		}
	}
	free(copy);
	if (n > 0) {
		NCOUNTS = n;
	}
}

enum { SRV_ECHO, SRV_DISCOVERYD, NSRV };
static const char *const srv_name[NSRV] = { "nng-echo", "discoveryd" };

/* Service s, instance k: fixed widths, so every Resolve reply has the same size. */
static void
fill(void *arg, size_t i, bn_reg_item *it)
{
	(void) arg;
	snprintf(it->service, sizeof(it->service), "svc-%04zu", i / PER_SERVICE);
	snprintf(it->endpoint, sizeof(it->endpoint), "http://node-%05zu.bench.internal:8080", i);
	snprintf(it->keys[0], sizeof(it->keys[0]), "zone");
	snprintf(it->vals[0], sizeof(it->vals[0]), "zone-%c", (int) ('a' + i % 3));
	snprintf(it->keys[1], sizeof(it->keys[1]), "version");
	snprintf(it->vals[1], sizeof(it->vals[1]), "1.4.2");
	it->n_meta    = 2;
	it->ttl_ms    = TTL_MS;
	it->heartbeat = true;
}

/* Figures of one run, kept per (server, client count, repetition). */
typedef struct run {
	double rps, p50, p99, cpu_us, ctxsw, errors;
} run;

static const char *
verdict(bool met)
{
	return met ? "met" : "missed";
}

int
main(int argc, char **argv)
{
	bn_opts  o;
	bn_child d, e;
	size_t   nsvc;
	void   **reqs     = NULL;
	size_t  *req_lens = NULL;
	char   **names    = NULL;
	char     reply_path[600], reply_size[32];
	size_t   reply_len = 0;
	int      status    = 1;

	if (bn_opts_parse(&o, argc, argv, "bench_resolve") != 0) {
		return 2;
	}
	bn_raise_nofile();
	if (o.clients != NULL) {
		parse_counts(o.clients);
	}
	nsvc = o.smoke ? 20 : 1000;
	memset(&e, 0, sizeof(e));
	if (bn_discoveryd_start(&d, &o, NULL, "resolve-discoveryd") != 0) {
		return 1;
	}
	double reg_s;
	if (bn_register_all(d.url, nsvc * PER_SERVICE, 16, fill, NULL, &reg_s) != 0) {
		goto out;
	}
	printf("resolve: %zu services x %d instances registered in %.2f s\n", nsvc, PER_SERVICE,
	    reg_s);

	reqs     = calloc(nsvc, sizeof(*reqs));
	req_lens = calloc(nsvc, sizeof(*req_lens));
	names    = calloc(nsvc, sizeof(*names));
	if (reqs == NULL || req_lens == NULL || names == NULL) {
		goto out;
	}
	for (size_t i = 0; i < nsvc; i++) {
		char name[32];
		snprintf(name, sizeof(name), "svc-%04zu", i);
		if ((names[i] = strdup(name)) == NULL
		    || bn_pack_resolve(name, &reqs[i], &req_lens[i]) != 0) {
			goto out;
		}
	}
	snprintf(reply_path, sizeof(reply_path), "%s/resolve-reply.bin", o.out_dir);
	if (bn_capture_reply(d.url, reqs[0], req_lens[0], 11, reply_path, &reply_len) != 0) {
		fprintf(stderr, "resolve: the first Resolve failed\n");
		goto out;
	}
	snprintf(reply_size, sizeof(reply_size), "%zu", reply_len);
	const char *echo_argv[] = { o.echo, "--reply-file", reply_path, "--workers", "64", NULL };
	if (bn_child_start(&e, echo_argv, false, o.out_dir, "resolve-echo") != 0) {
		goto out;
	}
	printf("resolve: request %zu bytes, reply %zu bytes; discoveryd at %s, echo at %s\n",
	    req_lens[0], reply_len, d.url, e.url);

	/* ---- scenario 1 ---- */
	run   *runs = calloc((size_t) NSRV * NCOUNTS * (size_t) o.reps, sizeof(*runs));
	double dur  = o.duration_s > 0 ? o.duration_s : o.smoke ? 0.2 : 3.0;
	double warm = o.smoke ? 0.05 : 0.5;
	if (runs == NULL) {
		goto out;
	}
#define RUN(s, c, r) runs[((size_t) (s) *NCOUNTS + (c)) * (size_t) o.reps + (size_t) (r)]
	for (int rep = 0; rep < o.reps; rep++) {
		for (int ci = 0; ci < NCOUNTS; ci++) {
			for (int k = 0; k < NSRV; k++) {
				int             srv = (rep % 2 == 0) ? k : NSRV - 1 - k;
				const bn_child *c   = srv == SRV_ECHO ? &e : &d;
				bn_load_opts    lo  = {
					    .url        = c->url,
					    .clients    = client_counts[ci],
					    .warmup_s   = warm,
					    .duration_s = dur,
					    .reqs       = (const void *const *) reqs,
					    .req_lens   = req_lens,
					    .n_reqs     = nsvc,
					    .expect_len = reply_len,
					    .server_pid = c->pid,
				};
				bn_load_result lr;
				if (bn_load_run(&lo, &lr) != 0) {
					free(runs);
					goto out;
				}
				run *x    = &RUN(srv, ci, rep);
				x->rps    = lr.rps;
				x->p50    = lr.p50_us;
				x->p99    = lr.p99_us;
				x->errors = (double) (lr.errors + lr.bad);
				x->cpu_us
				    = lr.ok > 0 ? lr.server_cpu_s * 1e6 / (double) lr.ok : NAN;
				x->ctxsw = lr.ok > 0 ? lr.server_ctxsw / (double) lr.ok : NAN;
				printf(
				    "  rep %d %-10s %2zu clients: %8.0f req/s  p50 %7.1f us  p99 "
				    "%7.1f us  p99.9 %7.1f us  server %5.1f us CPU/req %4.2f "
				    "cs/req  errors %llu bad %llu\n",
				    rep + 1, srv_name[srv], client_counts[ci], lr.rps, lr.p50_us,
				    lr.p99_us, lr.p999_us, x->cpu_us, x->ctxsw,
				    (unsigned long long) lr.errors, (unsigned long long) lr.bad);
				const char *sn = srv_name[srv];
				long        n  = (long) client_counts[ci];
				bn_raw(&o, "resolve", sn, n, rep + 1, "req_per_s", lr.rps);
				bn_raw(&o, "resolve", sn, n, rep + 1, "p50_us", lr.p50_us);
				bn_raw(&o, "resolve", sn, n, rep + 1, "p99_us", lr.p99_us);
				bn_raw(&o, "resolve", sn, n, rep + 1, "server_cpu_us_per_req",
				    x->cpu_us);
				bn_raw(&o, "resolve", sn, n, rep + 1, "server_ctxsw_per_req",
				    x->ctxsw);
				bn_raw(&o, "resolve", sn, n, rep + 1, "errors", x->errors);
			}
		}
	}

	FILE  *dat     = bn_out_file(&o, "throughput.dat", "w");
	double net_p50 = NAN;
	if (dat != NULL) {
		fprintf(
		    dat, "# clients discoveryd_rps echo_rps ratio discoveryd_p99_us echo_p99_us\n");
	}
	for (int ci = 0; ci < NCOUNTS; ci++) {
		double m[NSRV][NFIG], ratios[64];
		double v[64];
		int    R = o.reps < 64 ? o.reps : 64;
		for (int s = 0; s < NSRV; s++) {
			for (int f = 0; f < NFIG; f++) {
				for (int r = 0; r < R; r++) {
					const run *x = &RUN(s, ci, r);
					v[r]         = f == 0 ? x->rps
					            : f == 1  ? x->p50
					            : f == 2  ? x->p99
					            : f == 3  ? x->cpu_us
					            : f == 4  ? x->ctxsw
					                      : x->errors;
				}
				m[s][f] = bn_median(v, (size_t) R);
			}
		}
		/* The ratio of each back-to-back pair, then the median: drift cancels. */
		for (int r = 0; r < R; r++) {
			ratios[r] = RUN(SRV_DISCOVERYD, ci, r).rps / RUN(SRV_ECHO, ci, r).rps;
		}
		double ratio = bn_median(ratios, (size_t) R);
		long   n     = (long) client_counts[ci];
		bool   met   = ratio >= 0.9;
		if (ci == 0) {
			net_p50 = m[SRV_DISCOVERYD][1];
		}
		bn_emit(&o,
		    &(bn_row) { "resolve", "throughput", n, "req/s", m[SRV_DISCOVERYD][0],
		        "nng echo", m[SRV_ECHO][0], ratio, ">= 0.9 x echo", verdict(met) });
		bn_emit(&o,
		    &(bn_row) { "resolve", "latency p50", n, "us", m[SRV_DISCOVERYD][1], "nng echo",
		        m[SRV_ECHO][1], NAN, NULL, "reported" });
		bn_emit(&o,
		    &(bn_row) { "resolve", "latency p99", n, "us", m[SRV_DISCOVERYD][2], "nng echo",
		        m[SRV_ECHO][2], NAN, NULL, "reported" });
		bn_emit(&o,
		    &(bn_row) { "resolve", "server CPU per request", n, "us", m[SRV_DISCOVERYD][3],
		        "nng echo", m[SRV_ECHO][3], NAN, NULL, "reported" });
		bn_emit(&o,
		    &(bn_row) { "resolve", "server context switches per request", n, "count",
		        m[SRV_DISCOVERYD][4], "nng echo", m[SRV_ECHO][4], NAN, NULL, "reported" });
		if (m[SRV_DISCOVERYD][5] > 0 || m[SRV_ECHO][5] > 0) {
			bn_note(&o,
			    "resolve: %ld clients: median errors discoveryd %.0f, echo %.0f", n,
			    m[SRV_DISCOVERYD][5], m[SRV_ECHO][5]);
		}
		if (dat != NULL) {
			fprintf(dat, "%ld %.0f %.0f %.4f %.1f %.1f\n", n, m[SRV_DISCOVERYD][0],
			    m[SRV_ECHO][0], ratio, m[SRV_DISCOVERYD][2], m[SRV_ECHO][2]);
		}
	}
	if (dat != NULL) {
		fclose(dat);
	}
	free(runs);

	/* ---- scenario 2 ---- */
	dsc_view        *v;
	dsc_view_options vo;
	dsc_error        err;
	char             buf[256];
	dsc_view_options_init(&vo);
	vo.client.timeout_ms = 20000;
	if (dsc_view_open(&v, d.url, d.pub_url, &vo, &err) != 0) {
		fprintf(stderr, "resolve: view: %s: %s\n", dsc_strerror(err.code), err.message);
		goto out;
	}
	size_t  iters = o.smoke ? 20000 : 5000000;
	double *ns    = calloc((size_t) o.reps, sizeof(*ns));
	double *rd    = calloc((size_t) o.reps, sizeof(*rd));
	size_t  fails = 0;
	for (int rep = 0; ns != NULL && rd != NULL && rep < o.reps; rep++) {
		int64_t r0 = bn_proc_rchar(d.pid), self0 = bn_proc_rchar(getpid());
		int64_t t0 = bn_now_ns();
		for (size_t i = 0; i < iters; i++) {
			if (dsc_view_resolve_endpoint(v, names[i % nsvc], false, buf, sizeof(buf))
			    != 0) {
				fails++;
			}
		}
		int64_t t1 = bn_now_ns();
		int64_t r1 = bn_proc_rchar(d.pid), self1 = bn_proc_rchar(getpid());
		ns[rep] = (double) (t1 - t0) / (double) iters;
		rd[rep] = (double) (r1 - r0);
		printf("  rep %d local view: %.1f ns/resolve over %zu resolves; server read %lld "
		       "bytes, this process %lld bytes meanwhile\n",
		    rep + 1, ns[rep], iters, (long long) (r1 - r0), (long long) (self1 - self0));
		bn_raw(&o, "local_resolve", "view", 1, rep + 1, "ns_per_resolve", ns[rep]);
		bn_raw(&o, "local_resolve", "view", 1, rep + 1, "server_bytes_read", rd[rep]);
	}
	dsc_view_close(v);
	if (ns == NULL || rd == NULL || fails > 0) {
		fprintf(stderr, "resolve: %zu local resolves failed\n", fails);
		free(ns);
		free(rd);
		goto out;
	}
	double lns = bn_median(ns, (size_t) o.reps), lrd = bn_median(rd, (size_t) o.reps);
	free(ns);
	free(rd);
	bn_emit(&o,
	    &(bn_row) { "local_resolve", "view resolve", 1, "ns", lns,
	        "network resolve p50 (1 client)", net_p50 * 1e3, NAN, "<= 200 ns",
	        verdict(lns <= 200) });
	bn_emit(&o,
	    &(bn_row) { "local_resolve", "server bytes read in loop", 1, "bytes", lrd,
	        "bytes per network resolve", (double) (req_lens[0] + reply_len), NAN, "0",
	        verdict(lrd == 0) });
	bn_note(&o,
	    "resolve: %zu services x %d instances (2 metadata entries each); request %zu bytes, "
	    "reply %zu bytes; %d repetitions of %.1f s (+%.1f s warm-up) per point",
	    nsvc, PER_SERVICE, req_lens[0], reply_len, o.reps, dur, warm);
	status = 0;
out:
	if (e.pid > 0) {
		bn_child_stop(&e);
	}
	bn_child_stop(&d);
	for (size_t i = 0; i < nsvc; i++) {
		if (reqs != NULL) {
			free(reqs[i]);
		}
		if (names != NULL) {
			free(names[i]);
		}
	}
	free(reqs);
	free(req_lens);
	free(names);
	return status;
}
