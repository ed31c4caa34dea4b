/*
 * Scenario 7: side by side with etcd (issue 12).
 *
 * One durable discoveryd (--data on a file in the output folder) and one
 * Debian etcd (single member, default settings, data directory in the
 * output folder), both running for the whole scenario, and a trivial gRPC
 * server answering etcd's KV and Lease calls at once (etcdload fake):
 *
 *   write: discoveryd Register (libdiscovery, bn_register_all) against etcd
 *          Put with a lease (clientv3, each client its own lease);
 *   read:  discoveryd Resolve of one service (the shared REQ load
 *          generator) against etcd's serializable Range of one key whose
 *          value is the bytes of discoveryd's Resolve reply.
 *
 * Each at 1, 8 and 32 clients, one connection per client on both sides, in
 * rounds whose order alternates discoveryd/etcd; each round also runs the
 * same etcd load against the trivial server, the Go client's own ceiling,
 * so that it is clear etcd is what is measured. Ratios are medians of the
 * per-round ratios. Writes $OUT/etcd-body.md, which bench/run wraps into
 * etcd.md, and rows into bench.csv like every scenario.
 *
 *   bench_etcd --etcd PATH --etcdload PATH [bn_opts...]
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "loadgen.h"
#include "populate.h"
#include "procs.h"
#include "wire.h"

#define PER_SERVICE 4
#define MAX_COUNTS  8
#define TARGET      2.0 /* discoveryd >= 2 x etcd */
#define TTL_MS      86400000u

enum { OP_WRITE, OP_READ, NOP };
enum { SRV_DD, SRV_ETCD, SRV_FAKE, NSRV };
static const char *const op_name[NOP]   = { "register/put", "resolve/range" };
static const char *const srv_name[NSRV] = { "discoveryd", "etcd", "go-client-ceiling" };

/* One measurement: a (operation, server, client count, round). */
typedef struct fig {
	double rps, cpu_us, p50_us, p99_us, errors;
} fig;

/* The scenario's state, passed everywhere (no globals). */
typedef struct scen {
	bn_opts     o;
	const char *etcd_path, *etcdload;
	bn_child    dd, fake;
	bn_etcd     etcd;
	char        value_file[600], reply_file[600], go_log[600], data_file[600];
	size_t      nsvc, reply_len; /* reply_len: the latest Resolve reply's length */
	size_t      value_len;       /* etcd's values: the first Resolve reply's bytes */
	void      **reqs;            /* packed Resolve requests, one per service */
	size_t     *req_lens;
	size_t      counts[MAX_COUNTS];
	int         ncounts;
	double      dur, warm;
	fig        *figs; /* [op][srv][count][round] */
} scen;

static fig *
at(scen *s, int op, int srv, int ci, int rep)
{
	return &s->figs[(((size_t) op * NSRV + (size_t) srv) * (size_t) s->ncounts + (size_t) ci)
	        * (size_t) s->o.reps
	    + (size_t) rep];
}

/* Registrations per write run: long enough to average over many commits. */
static size_t
write_count(const scen *s, size_t clients)
{
	if (s->o.smoke) {
		return 40 * clients;
	}
	return clients <= 1 ? 1500 : clients <= 8 ? 5000 : 10000;
}

/* Resolve's data set: service s, instance k, fixed widths (as scenario 1). */
static void
fill_resolve(void *arg, size_t i, bn_reg_item *it)
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

/* The writes: what scenario 6 registers, under a per-run service prefix (arg). */
static void
fill_write(void *arg, size_t i, bn_reg_item *it)
{
	snprintf(it->service, sizeof(it->service), "%s%03zu", (const char *) arg, i / 50);
	snprintf(it->endpoint, sizeof(it->endpoint), "http://node-%06zu.prod.internal:8080", i);
	snprintf(it->keys[0], sizeof(it->keys[0]), "zone");
	snprintf(it->vals[0], sizeof(it->vals[0]), "eu-west-1%c", (int) ('a' + i % 3));
	it->n_meta = 1;
	it->ttl_ms = TTL_MS;
}

/* One etcdload run of put or range against srv; fills *f. */
static int
go_measure(scen *s, int op, int srv, size_t clients, int rep, fig *f)
{
	const bn_child *c = srv == SRV_ETCD ? &s->etcd.child : &s->fake;
	char            ncl[16], cnt[16], keys[16], pid[16], prefix[64], dur[16], warm[16];
	bn_go_result    r;
	snprintf(ncl, sizeof(ncl), "%zu", clients);
	snprintf(cnt, sizeof(cnt), "%zu", write_count(s, clients));
	snprintf(keys, sizeof(keys), "%zu", s->nsvc);
	snprintf(pid, sizeof(pid), "%d", (int) c->pid);
	snprintf(prefix, sizeof(prefix), "/bench/r%d/c%zu/", rep + 1, clients);
	snprintf(dur, sizeof(dur), "%g", s->dur);
	snprintf(warm, sizeof(warm), "%g", s->warm);
	const char *put[] = { s->etcdload, "put", "-endpoint", c->url, "-clients", ncl, "-count",
		cnt, "-prefix", prefix, "-server-pid", pid, NULL };
	const char *get[] = { s->etcdload, "range", "-endpoint", c->url, "-clients", ncl, "-keys",
		keys, "-duration", dur, "-warmup", warm, "-server-pid", pid, NULL };
	if (bn_go_run(op == OP_WRITE ? put : get, s->go_log, &r) != 0) {
		return -1;
	}
	f->rps    = r.rps;
	f->cpu_us = r.ok > 0 ? r.server_cpu_s * 1e6 / r.ok : NAN;
	f->p50_us = r.p50_us;
	f->p99_us = r.p99_us;
	f->errors = r.errors + r.bad;
	return 0;
}

/* One discoveryd run of Register (fixed count) or Resolve (timed); fills *f. */
static int
dd_measure(scen *s, int op, size_t clients, int rep, fig *f)
{
	if (op == OP_WRITE) {
		char   prefix[32];
		size_t n = write_count(s, clients);
		double secs;
		snprintf(prefix, sizeof(prefix), "e7-r%d-c%zu-", rep + 1, clients);
		int64_t c0 = bn_proc_cpu_ns(s->dd.pid);
		if (bn_register_all(s->dd.url, n, clients, fill_write, prefix, &secs) != 0) {
			return -1;
		}
		int64_t c1 = bn_proc_cpu_ns(s->dd.pid);
		f->rps     = (double) n / secs;
		f->cpu_us  = (double) (c1 - c0) / 1e3 / (double) n;
		f->p50_us = f->p99_us = NAN; /* bn_register_all keeps no latencies */
		f->errors             = 0;   /* any failure fails the run */
		return 0;
	}
	/*
	 * The reply carries the registry's revision, whose varint grows with the
	 * write runs in between: take the expected length afresh.
	 */
	if (bn_capture_reply(
	        s->dd.url, s->reqs[0], s->req_lens[0], 11, s->reply_file, &s->reply_len)
	    != 0) {
		fprintf(stderr, "bench_etcd: a Resolve failed before the run\n");
		return -1;
	}
	bn_load_opts lo = {
		.url        = s->dd.url,
		.clients    = clients,
		.warmup_s   = s->warm,
		.duration_s = s->dur,
		.reqs       = (const void *const *) s->reqs,
		.req_lens   = s->req_lens,
		.n_reqs     = s->nsvc,
		.expect_len = s->reply_len,
		.server_pid = s->dd.pid,
	};
	bn_load_result lr;
	if (bn_load_run(&lo, &lr) != 0) {
		return -1;
	}
	f->rps    = lr.rps;
	f->cpu_us = lr.ok > 0 ? lr.server_cpu_s * 1e6 / (double) lr.ok : NAN;
	f->p50_us = lr.p50_us;
	f->p99_us = lr.p99_us;
	f->errors = (double) (lr.errors + lr.bad);
	return 0;
}

/* Every measurement: rounds x client counts x operations x servers, the order alternating. */
static int
measure_all(scen *s)
{
	for (int rep = 0; rep < s->o.reps; rep++) {
		/* Even rounds: discoveryd, etcd, ceiling; odd rounds: etcd, discoveryd, ceiling. */
		int order[NSRV] = { SRV_DD, SRV_ETCD, SRV_FAKE };
		if (rep % 2 == 1) {
			order[0] = SRV_ETCD;
			order[1] = SRV_DD;
		}
		for (int ci = 0; ci < s->ncounts; ci++) {
			size_t clients = s->counts[ci];
			for (int op = 0; op < NOP; op++) {
				for (int k = 0; k < NSRV; k++) {
					int  srv = order[k];
					fig *f   = at(s, op, srv, ci, rep);
					int  rv  = srv == SRV_DD
					      ? dd_measure(s, op, clients, rep, f)
					      : go_measure(s, op, srv, clients, rep, f);
					if (rv != 0) {
						return -1;
					}
					printf(
					    "  round %d %-13s %-17s %2zu clients: %8.0f /s  server "
					    "%6.1f us CPU/op  p50 %7.1f us  p99 %7.1f us  errors "
					    "%.0f\n",
					    rep + 1, op_name[op], srv_name[srv], clients, f->rps,
					    f->cpu_us, f->p50_us, f->p99_us, f->errors);
					fflush(stdout);
					const char *sc
					    = op == OP_WRITE ? "etcd_write" : "etcd_read";
					bn_raw(&s->o, sc, srv_name[srv], (long) clients, rep + 1,
					    "ops_per_s", f->rps);
					bn_raw(&s->o, sc, srv_name[srv], (long) clients, rep + 1,
					    "server_cpu_us_per_op", f->cpu_us);
					bn_raw(&s->o, sc, srv_name[srv], (long) clients, rep + 1,
					    "p99_us", f->p99_us);
					bn_raw(&s->o, sc, srv_name[srv], (long) clients, rep + 1,
					    "errors", f->errors);
				}
			}
		}
	}
	return 0;
}

/* The median over rounds of a figure of (op, srv, ci), or of a ratio of two servers. */
static double
med(scen *s, int op, int srv, int ci, int field, int over)
{
	double v[64];
	int    n = s->o.reps < 64 ? s->o.reps : 64;
	for (int r = 0; r < n; r++) {
		const fig *f = at(s, op, srv, ci, r);
		double     x = field == 0 ? f->rps
		        : field == 1      ? f->cpu_us
		        : field == 2      ? f->p50_us
		        : field == 3      ? f->p99_us
		                          : f->errors;
		v[r]         = over >= 0 ? x / at(s, op, over, ci, r)->rps : x;
	}
	return bn_median(v, (size_t) n);
}

static bool
has_target(const scen *s, int op, size_t clients)
{
	return !s->o.smoke && (op == OP_READ || clients >= 8);
}

/* bench.csv rows and etcd-body.md. */
static void
report(scen *s, const char *la0, const char *la1)
{
	static const char *const what[NOP]
	    = { "durable Register vs etcd Put with a lease", "Resolve vs etcd serializable Range" };
	FILE *md = bn_out_file(&s->o, "etcd-body.md", "w");
	if (md != NULL) {
		fprintf(md,
		    "Medians of %d rounds; ratios are medians of the per-round ratios. etcd %s, "
		    "single member, default settings; 1-minute load average %s at start, %s at "
		    "end (a shared 2-core machine).\n\n",
		    s->o.reps, s->etcd.version[0] ? s->etcd.version : "(version not logged)", la0,
		    la1);
		fprintf(md,
		    "| operation | clients | discoveryd /s | etcd /s | discoveryd / etcd | target "
		    "| "
		    "verdict | Go client ceiling /s | etcd / ceiling | server CPU us/op "
		    "(discoveryd, etcd) | p99 us (discoveryd, etcd) |\n");
		fprintf(md, "|---|---:|---:|---:|---:|---|---|---:|---:|---|---|\n");
	}
	for (int op = 0; op < NOP; op++) {
		for (int ci = 0; ci < s->ncounts; ci++) {
			size_t clients     = s->counts[ci];
			double dd          = med(s, op, SRV_DD, ci, 0, -1),
			       et          = med(s, op, SRV_ETCD, ci, 0, -1);
			double      fk     = med(s, op, SRV_FAKE, ci, 0, -1);
			double      ratio  = med(s, op, SRV_DD, ci, 0, SRV_ETCD);
			double      share  = med(s, op, SRV_ETCD, ci, 0, SRV_FAKE);
			double      cpu_dd = med(s, op, SRV_DD, ci, 1, -1);
			double      cpu_et = med(s, op, SRV_ETCD, ci, 1, -1);
			bool        tgt    = has_target(s, op, clients);
			const char *verdict
			    = tgt ? (ratio >= TARGET ? "met" : "missed") : "reported";
			const char *sc = op == OP_WRITE ? "etcd_write" : "etcd_read";
			bn_emit(&s->o,
			    &(bn_row) { sc,
			        op == OP_WRITE ? "durable register / etcd put+lease"
			                       : "resolve / etcd serializable range",
			        (long) clients, "req/s", dd, "etcd", et, ratio,
			        tgt ? ">= 2 x etcd" : NULL, verdict });
			bn_emit(&s->o,
			    &(bn_row) { sc, "etcd / Go client ceiling", (long) clients, "req/s", et,
			        "trivial gRPC server", fk, share, NULL, "reported" });
			bn_emit(&s->o,
			    &(bn_row) { sc, "server CPU per op", (long) clients, "us", cpu_dd,
			        "etcd", cpu_et, NAN, NULL, "reported" });
			if (md != NULL) {
				char p99[64];
				if (op == OP_WRITE) {
					snprintf(p99, sizeof(p99), "-, %.0f",
					    med(s, op, SRV_ETCD, ci, 3, -1));
				} else {
					snprintf(p99, sizeof(p99), "%.0f, %.0f",
					    med(s, op, SRV_DD, ci, 3, -1),
					    med(s, op, SRV_ETCD, ci, 3, -1));
				}
				fprintf(md,
				    "| %s | %zu | %.0f | %.0f | **%.3f** | %s | %s | %.0f | %.2f | "
				    "%.1f, %.1f | %s |\n",
				    what[op], clients, dd, et, ratio, tgt ? ">= 2" : "-",
				    strcmp(verdict, "missed") == 0 ? "**missed**" : verdict, fk,
				    share, cpu_dd, cpu_et, p99);
			}
			for (int srv = 0; srv < NSRV; srv++) {
				double e = med(s, op, srv, ci, 4, -1);
				if (e > 0) {
					bn_note(&s->o,
					    "etcd side by side: %s %s %zu clients: median %.0f "
					    "errors",
					    op_name[op], srv_name[srv], clients, e);
				}
			}
		}
	}
	if (md == NULL) {
		return;
	}
	fprintf(md, "\nEvery round (operations per second; order within a round: %s):\n\n",
	    "odd rounds discoveryd, etcd, ceiling; even rounds etcd, discoveryd, ceiling");
	fprintf(md,
	    "| round | operation | clients | discoveryd | etcd | ceiling | discoveryd / "
	    "etcd |\n|---:|---|---:|---:|---:|---:|---:|\n");
	for (int rep = 0; rep < s->o.reps; rep++) {
		for (int op = 0; op < NOP; op++) {
			for (int ci = 0; ci < s->ncounts; ci++) {
				double dd = at(s, op, SRV_DD, ci, rep)->rps;
				double et = at(s, op, SRV_ETCD, ci, rep)->rps;
				fprintf(md, "| %d | %s | %zu | %.0f | %.0f | %.0f | %.2f |\n",
				    rep + 1, op_name[op], s->counts[ci], dd, et,
				    at(s, op, SRV_FAKE, ci, rep)->rps, dd / et);
			}
		}
	}
	fclose(md);
}

/* Writes per commit over the whole run, from the line discoveryd logs when it stops. */
static double
writes_per_commit(const bn_child *d)
{
	FILE  *f = fopen(d->log_path, "r");
	char   line[512];
	double ratio = NAN;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		unsigned long long w, c;
		char              *p = strstr(line, "writes stored in");
		if (p != NULL) {
			while (p > line && p[-1] == ' ') {
				p--;
			}
			while (p > line && p[-1] >= '0' && p[-1] <= '9') {
				p--;
			}
			if (sscanf(p, "%llu writes stored in %llu", &w, &c) == 2 && c > 0) {
				ratio = (double) w / (double) c;
			}
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	return ratio;
}

static void
loadavg(char *buf, size_t n)
{
	FILE *f = fopen("/proc/loadavg", "r");
	buf[0]  = 0;
	if (f != NULL) {
		if (fgets(buf, (int) n, f) != NULL) {
			buf[strcspn(buf, " ")] = 0; /* the 1-minute figure */
		}
		fclose(f);
	}
}

/* Takes --etcd and --etcdload out of argv; the rest is bn_opts'. */
static int
own_args(scen *s, int *argc, char **argv)
{
	int w = 1;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--etcd") == 0 && i + 1 < *argc) {
			s->etcd_path = argv[++i];
		} else if (strcmp(argv[i], "--etcdload") == 0 && i + 1 < *argc) {
			s->etcdload = argv[++i];
		} else {
			argv[w++] = argv[i];
		}
	}
	*argc   = w;
	argv[w] = NULL;
	if (s->etcdload == NULL) {
		fprintf(stderr, "bench_etcd: --etcdload PATH is required (bench/run builds it)\n");
		return -1;
	}
	if (s->etcd_path == NULL) {
		s->etcd_path = "/usr/bin/etcd";
	}
	return 0;
}

static void
parse_counts(scen *s, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	int   n = 0;
	for (char *t                        = copy != NULL ? strtok_r(copy, ",", &save) : NULL;
	     t != NULL && n < MAX_COUNTS; t = strtok_r(NULL, ",", &save)) {
		long v = atol(t);
		if (v > 0) {
			s->counts[n++] = (size_t) v;
		}
	}
	free(copy);
	if (n > 0) {
		s->ncounts = n;
	}
}

/* discoveryd, etcd and the trivial server up, the Resolve data set in discoveryd and etcd. */
static int
setup(scen *s)
{
	const char *extra[] = { "--data", s->data_file, NULL };
	double      reg_s;
	if (bn_discoveryd_start(&s->dd, &s->o, extra, "etcd-discoveryd") != 0
	    || bn_etcd_start(&s->etcd, s->etcd_path, s->o.out_dir) != 0) {
		return -1;
	}
	if (bn_register_all(s->dd.url, s->nsvc * PER_SERVICE, 16, fill_resolve, NULL, &reg_s)
	    != 0) {
		return -1;
	}
	s->reqs     = calloc(s->nsvc, sizeof(*s->reqs));
	s->req_lens = calloc(s->nsvc, sizeof(*s->req_lens));
	if (s->reqs == NULL || s->req_lens == NULL) {
		return -1;
	}
	for (size_t i = 0; i < s->nsvc; i++) {
		char name[32];
		snprintf(name, sizeof(name), "svc-%04zu", i);
		if (bn_pack_resolve(name, &s->reqs[i], &s->req_lens[i]) != 0) {
			return -1;
		}
	}
	/* etcd's value for every key is the bytes of discoveryd's Resolve reply. */
	if (bn_capture_reply(
	        s->dd.url, s->reqs[0], s->req_lens[0], 11, s->value_file, &s->value_len)
	    != 0) {
		fprintf(stderr, "bench_etcd: the first Resolve failed\n");
		return -1;
	}
	char keys[16];
	snprintf(keys, sizeof(keys), "%zu", s->nsvc);
	const char *fill[] = { s->etcdload, "fill", "-endpoint", s->etcd.child.url, "-keys", keys,
		"-value-file", s->value_file, NULL };
	const char *fake[]
	    = { s->etcdload, "fake", "-listen", "127.0.0.1:0", "-value-file", s->value_file, NULL };
	if (bn_go_run(fill, s->go_log, NULL) != 0
	    || bn_child_start(&s->fake, fake, false, s->o.out_dir, "etcd-fake") != 0) {
		return -1;
	}
	printf("etcd side by side: discoveryd at %s (--data %s), etcd %s at %s, trivial gRPC "
	       "server at %s; %zu services x %d instances in %.2f s; reply/value %zu bytes\n",
	    s->dd.url, s->data_file, s->etcd.version, s->etcd.child.url, s->fake.url, s->nsvc,
	    PER_SERVICE, reg_s, s->value_len);
	return 0;
}

int
main(int argc, char **argv)
{
	scen s;
	char la0[32] = "", la1[32] = "";
	int  status = 1;

	memset(&s, 0, sizeof(s));
	if (own_args(&s, &argc, argv) != 0 || bn_opts_parse(&s.o, argc, argv, "bench_etcd") != 0) {
		return 2;
	}
	bn_raise_nofile();
	s.counts[0] = 1;
	s.counts[1] = 8;
	s.counts[2] = 32;
	s.ncounts   = s.o.smoke ? 2 : 3;
	if (s.o.clients != NULL) {
		parse_counts(&s, s.o.clients);
	}
	s.nsvc = s.o.smoke ? 20 : 1000;
	s.dur  = s.o.duration_s > 0 ? s.o.duration_s : s.o.smoke ? 0.2 : 2.0;
	s.warm = s.o.smoke ? 0.05 : 0.5;
	snprintf(s.value_file, sizeof(s.value_file), "%s/etcd-value.bin", s.o.out_dir);
	snprintf(s.reply_file, sizeof(s.reply_file), "%s/etcd-reply.bin", s.o.out_dir);
	snprintf(s.go_log, sizeof(s.go_log), "%s/etcd-etcdload.log", s.o.out_dir);
	snprintf(s.data_file, sizeof(s.data_file), "%s/etcd-discoveryd.db", s.o.out_dir);
	unlink(s.go_log);
	unlink(s.data_file);
	s.figs = calloc((size_t) NOP * NSRV * (size_t) s.ncounts * (size_t) s.o.reps, sizeof(fig));
	loadavg(la0, sizeof(la0));
	if (s.figs == NULL || setup(&s) != 0 || measure_all(&s) != 0) {
		goto out;
	}
	loadavg(la1, sizeof(la1));
	report(&s, la0, la1);
	status = 0;
out:
	if (s.fake.pid > 0) {
		bn_child_stop(&s.fake);
	}
	if (s.etcd.child.pid > 0) {
		bn_child_stop(&s.etcd.child);
		if (status == 0) {
			bn_etcd_remove(&s.etcd); /* WAL segments are preallocated at 64 MiB */
		}
	}
	if (s.dd.pid > 0) {
		bn_child_stop(&s.dd);
	}
	if (status == 0) {
		bn_note(&s.o,
		    "etcd side by side: one durable discoveryd (--data file) and one etcd %s "
		    "(single member, default settings: fsync per commit) for the whole run; "
		    "register: %zu/%zu/%zu registrations at 1/8/32 clients, etcd puts carry "
		    "service, endpoint, zone and TTL under one lease per client granted before "
		    "the clock starts; discoveryd's clients connect inside its timed window, "
		    "etcd's before it; resolve: %zu services x %d instances, etcd keys hold the "
		    "%zu bytes of discoveryd's reply, %.1f s (+%.1f s warm-up) per point; one "
		    "connection per client on both sides; ceiling: the same clientv3 load "
		    "against a gRPC server returning at once; discoveryd wrote %.1f writes per "
		    "commit over the run; load average %s at start, %s at end (shared machine)",
		    s.etcd.version, write_count(&s, 1), write_count(&s, 8), write_count(&s, 32),
		    s.nsvc, PER_SERVICE, s.value_len, s.dur, s.warm, writes_per_commit(&s.dd), la0,
		    la1);
		char wal[620];
		snprintf(wal, sizeof(wal), "%s-wal", s.data_file);
		unlink(s.data_file);
		unlink(wal);
	}
	for (size_t i = 0; s.reqs != NULL && i < s.nsvc; i++) {
		free(s.reqs[i]);
	}
	free(s.reqs);
	free(s.req_lens);
	free(s.figs);
	return status;
}
