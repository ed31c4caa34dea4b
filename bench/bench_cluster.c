/*
 * Scenario 9: cluster mode (issue 16, "Benchmarks").
 *
 * Its own etcd (the test kit's te_etcd_start, data under OUT/cluster-etcd)
 * and discoveryd nodes in cluster mode on it (tc_cluster_start: each cluster
 * on a fresh prefix, every node on loopback port 0):
 *
 * resolve   one service (4 instances) resolved on a node of a 3-node cluster
 *           (not the one the data was registered through), on a single node
 *           (--data :memory:, no cluster) holding the same data, and on
 *           bench_echo answering the cluster node's reply bytes: the shared
 *           REQ load generator at 1, 8 and 32 clients, the three back to back
 *           in an order that rotates from round to round.
 * register  registrations for a fixed time at 1, 8 and 32 clients: every
 *           client on node 0 of the 3; clients spread round robin over the
 *           three nodes; and, the baseline, the same number of clients each
 *           putting one key per call into etcd through cluster mode's own
 *           gateway client (dsi_etcd_txn with one put). Every call writes a
 *           new instance (or key) under a prefix of its own measurement. The
 *           instances of these two parts have a health URL that never answers
 *           (--health-timeout 3600): no check result is written meanwhile.
 * failover and takeover, on a second 3-node cluster checking every 1 s
 *           (rise 1, fall 1): each round kills -9 node r % 3, and measures
 *           - the time until a client whose failover list starts with that
 *             node, resolving in a loop, next succeeds (on another node);
 *           - the time until a survivor publishes HEALTH_CHANGED for an
 *             instance the dead node owned (rendezvous) whose health server
 *             is stopped right after the kill;
 *           - when the survivors saw the dead node leave (their logs), and
 *             when every instance it owned had been checked again;
 *           then restarts the node on its URLs.
 * --smoke: 1 and 4 clients, 0.1 s per point, one kill (about 15 s, the
 * node lease's 10 s included).
 *
 * Writes rows into bench.csv like every scenario, and OUT/cluster-body.md,
 * which bench/run wraps into cluster.md. Benchmarks report; they never fail
 * on a missed target.
 */
#define _GNU_SOURCE /* timegm */
#include <curl/curl.h>
#include <discovery/discovery.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/internal.h" /* dsi_client_current: the server of its list a client is on */
#include "cluster/etcd.h"    /* the baseline's etcd client: the one cluster mode uses */
#include "cluster/shard.h"   /* which node checks an instance */
#include "support/cluster.h"
#include "support/etcd.h"

#include "common.h"
#include "httpd.h"
#include "loadgen.h"
#include "populate.h"
#include "wire.h"

#define NODES         3
#define PER_SERVICE   4
#define MAX_CLIENTS   32
#define NCOUNTS       3
#define MAX_REPS      16
#define N_STEADY      30    /* checked instances in the takeover cluster */
#define CHECK_S       1     /* the takeover cluster's --health-interval */
#define MEMBER_TTL_MS 10000 /* src/server/cluster_node.c's node lease, fixed today */

enum { W_ONE, W_THREE, W_ETCD, NW };
static const char *const w_name[NW] = { "one node", "three nodes", "etcd put" };
enum { R_CLUSTER, R_SINGLE, R_ECHO, NR };
static const char *const r_name[NR] = { "cluster node", "single node", "nng echo" };

/* One measurement's figures. */
typedef struct fig {
	double rps, p50, p99, cpu_us, errors;
} fig;

/* One failover-and-takeover round. */
typedef struct ftfig {
	int    killed;
	double failover_ms, failed_calls, left_ms, checked_ms, published_ms, resumed_ms;
	bool   owner_seen; /* the killed node had logged the instance's health: it owned it */
} ftfig;

/* The scenario's state, passed everywhere (no globals). */
typedef struct scen {
	bn_opts    o;
	te_etcd    etcd;
	tc_cluster cl;
	bn_child   single, echo;
	/*
	 * The registrations' health server: it reads requests and never answers,
	 * so that no check ends (--health-timeout 3600) and the register figures
	 * count registrations alone: in cluster mode a new instance's first check
	 * result is a write to etcd of its own.
	 */
	bh_server *hang;
	int        reps, rounds, ncounts;
	size_t     counts[NCOUNTS];
	size_t     nsvc;
	double     wdur, rdur, warm;
	fig        w[NW][NCOUNTS][MAX_REPS];
	fig        r[NR][NCOUNTS][MAX_REPS];
	ftfig      ft[MAX_REPS];
	char       la0[32], la1[32];
} scen;

static const char *
verdict(bool met)
{
	return met ? "met" : "missed";
}

static double
median_of(double *v, int n)
{
	return bn_median(v, (size_t) n);
}

/* ---- register throughput ---- */

/* Holds the writers until every one is connected, then gives them the window. */
typedef struct wgate {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	int             state; /* 0: wait, 1: run, 2: abort */
	int64_t         t_end;
} wgate;

/* One writer: a discoveryd client or an etcd client, its counters and latencies. */
typedef struct wclient {
	wgate      *g;
	int         mode;
	size_t      idx;
	const char *prefix;
	int         hang_port; /* the health server that never answers */
	dsc_client *c;
	dsi_etcd   *e;
	uint64_t    ok, errors;
	uint32_t   *lat_us;
	size_t      n, cap;
	char        err[256];
} wclient;

static int
register_one(wclient *w, size_t k)
{
	char      svc[96], ep[96];
	dsc_kv    meta = { "zone", "eu-west-1a" };
	dsc_error err;
	snprintf(svc, sizeof(svc), "%s-c%02zu", w->prefix, w->idx);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/i/0/c%02zu/i%07zu", w->hang_port, w->idx, k);
	dsc_registration r = { .service = svc, .endpoint = ep, .metadata = &meta, .n_metadata = 1 };
	int              rv = dsc_register(w->c, &r, NULL, &err);
	if (rv != 0 && w->err[0] == 0) {
		snprintf(w->err, sizeof(w->err), "%s: %.200s", dsc_strerror(rv), err.message);
	}
	return rv;
}

/* The baseline: one key per call, holding what a registration names. */
static int
put_one(wclient *w, size_t k)
{
	char              key[128], val[256];
	int               kl = snprintf(key, sizeof(key), "%s/c%02zu/i%07zu", w->prefix, w->idx, k);
	int               vl = snprintf(val, sizeof(val),
	                  "{\"service\":\"%s-c%02zu\",\"endpoint\":\"http://127.0.0.1:%d/i/0/c%02zu/i%07zu\","
	                                "\"metadata\":{\"zone\":\"eu-west-1a\"}}",
	                  w->prefix, w->idx, w->hang_port, w->idx, k);
	dsi_etcd_op       op = { .type = DSI_ETCD_OP_PUT,
		      .key             = key,
		      .key_len         = (size_t) kl,
		      .value           = val,
		      .value_len       = (size_t) vl };
	dsi_etcd_txn_req  t  = { .success = &op, .n_success = 1 };
	dsi_etcd_txn_resp r;
	dsc_error         err;
	int               rv = dsi_etcd_txn(w->e, &t, &r, &err);
	if (rv == 0) {
		dsi_etcd_txn_resp_free(&r);
	} else if (w->err[0] == 0) {
		snprintf(w->err, sizeof(w->err), "%s: %.200s", dsc_strerror(rv), err.message);
	}
	return rv;
}

static void *
wclient_main(void *arg)
{
	wclient *w = arg;
	pthread_mutex_lock(&w->g->mtx);
	while (w->g->state == 0) {
		pthread_cond_wait(&w->g->cv, &w->g->mtx);
	}
	bool    run   = w->g->state == 1;
	int64_t t_end = w->g->t_end;
	pthread_mutex_unlock(&w->g->mtx);
	for (size_t k = 0; run; k++) {
		int64_t t0 = bn_now_ns();
		if (t0 >= t_end) {
			break;
		}
		int     rv = w->mode == W_ETCD ? put_one(w, k) : register_one(w, k);
		int64_t t1 = bn_now_ns();
		if (t1 > t_end) {
			break; /* finished after the window: not counted */
		}
		if (rv != 0) {
			w->errors++;
			continue;
		}
		w->ok++;
		if (w->n == w->cap) {
			size_t    ncap = w->cap == 0 ? 4096 : w->cap * 2;
			uint32_t *nl   = realloc(w->lat_us, ncap * sizeof(*nl));
			if (nl == NULL) {
				continue;
			}
			w->lat_us = nl;
			w->cap    = ncap;
		}
		w->lat_us[w->n++] = (uint32_t) ((t1 - t0) / 1000);
	}
	return NULL;
}

/* Opens writer i's connection and makes one call, so that connecting is outside the window. */
static int
wclient_open(scen *s, wclient *w, int mode, size_t i)
{
	dsc_error err;
	if (mode == W_ETCD) {
		dsi_etcd_range_req  rq = { .key = "/", .key_len = 1, .count_only = true };
		dsi_etcd_range_resp rr;
		if (dsi_etcd_open(&w->e, s->etcd.url, 5000, &err) != 0
		    || dsi_etcd_range(w->e, &rq, &rr, &err) != 0) {
			fprintf(stderr, "cluster: etcd client: %s\n", err.message);
			return -1;
		}
		dsi_etcd_range_resp_free(&rr);
		return 0;
	}
	dsc_client_options co;
	dsc_server_status *st;
	dsc_client_options_init(&co);
	co.timeout_ms   = 10000;
	const char *url = s->cl.d[mode == W_ONE ? 0 : i % NODES].url;
	if (dsc_client_open(&w->c, url, &co) != 0 || dsc_status(w->c, &st, &err) != 0) {
		fprintf(stderr, "cluster: cannot reach %s\n", url);
		return -1;
	}
	dsc_server_status_free(st);
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	return x < y ? -1 : x > y;
}

/* One timed run of `clients` writers in mode; fills *f (latencies in ms). */
static int
measure_write(scen *s, int mode, size_t clients, int rep, fig *f)
{
	wclient                  cs[MAX_CLIENTS];
	pthread_t                th[MAX_CLIENTS];
	wgate                    g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
	char                     prefix[96];
	size_t                   opened = 0, started = 0;
	int                      rv      = -1;
	static const char *const tag[NW] = { "one", "three", "etcd" };

	memset(cs, 0, sizeof(cs));
	if (mode == W_ETCD) {
		snprintf(prefix, sizeof(prefix), "/bench-cluster/put-r%d-c%zu", rep + 1, clients);
	} else {
		snprintf(prefix, sizeof(prefix), "w-r%d-%s-c%zu", rep + 1, tag[mode], clients);
	}
	for (; opened < clients; opened++) {
		cs[opened] = (wclient) { .g = &g,
			.mode               = mode,
			.idx                = opened,
			.prefix             = prefix,
			.hang_port          = bh_port(s->hang) };
		if (wclient_open(s, &cs[opened], mode, opened) != 0) {
			opened++;
			goto out;
		}
	}
	for (; started < clients; started++) {
		if (pthread_create(&th[started], NULL, wclient_main, &cs[started]) != 0) {
			break;
		}
	}
	pthread_mutex_lock(&g.mtx);
	g.state = started == clients ? 1 : 2;
	g.t_end = bn_now_ns() + (int64_t) (s->wdur * 1e9);
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mtx);
	for (size_t i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
	}
	if (started < clients) {
		goto out;
	}
	size_t   total = 0, at = 0;
	uint64_t ok = 0, errors = 0;
	for (size_t i = 0; i < clients; i++) {
		total += cs[i].n;
		ok += cs[i].ok;
		errors += cs[i].errors;
		if (cs[i].err[0] != 0) {
			bn_note(&s->o, "cluster register: %s, %zu clients, round %d: %s",
			    w_name[mode], clients, rep + 1, cs[i].err);
		}
	}
	uint32_t *all = malloc((total > 0 ? total : 1) * sizeof(*all));
	if (all == NULL) {
		goto out;
	}
	for (size_t i = 0; i < clients; i++) {
		if (cs[i].n > 0) { /* a client that made no call has no array */
			memcpy(all + at, cs[i].lat_us, cs[i].n * sizeof(*all));
		}
		at += cs[i].n;
	}
	qsort(all, total, sizeof(*all), cmp_u32);
	f->rps    = (double) ok / s->wdur;
	f->p50    = bn_pct_u32(all, total, 50) / 1e3;
	f->p99    = bn_pct_u32(all, total, 99) / 1e3;
	f->errors = (double) errors;
	free(all);
	rv = 0;
out:
	for (size_t i = 0; i < opened; i++) {
		dsc_client_close(cs[i].c);
		dsi_etcd_close(cs[i].e);
		free(cs[i].lat_us);
	}
	return rv;
}

static int
register_part(scen *s)
{
	for (int rep = 0; rep < s->reps; rep++) {
		for (int ci = 0; ci < s->ncounts; ci++) {
			for (int k = 0; k < NW; k++) {
				int mode
				    = (k + rep) % NW; /* the order rotates from round to round */
				fig *f = &s->w[mode][ci][rep];
				if (measure_write(s, mode, s->counts[ci], rep, f) != 0) {
					return -1;
				}
				printf("  round %d register %-11s %2zu clients: %7.0f /s  p50 "
				       "%6.2f ms  "
				       "p99 %6.2f ms  errors %.0f\n",
				    rep + 1, w_name[mode], s->counts[ci], f->rps, f->p50, f->p99,
				    f->errors);
				fflush(stdout);
				bn_raw(&s->o, "cluster_register", w_name[mode],
				    (long) s->counts[ci], rep + 1, "per_s", f->rps);
				bn_raw(&s->o, "cluster_register", w_name[mode],
				    (long) s->counts[ci], rep + 1, "p99_ms", f->p99);
			}
		}
	}
	return 0;
}

/* ---- resolve ---- */

/*
 * Service s, instance k: fixed widths. Their health server never answers
 * (--health-timeout 3600), so no check result changes a reply during the run
 * (arg: its port).
 */
static void
fill_resolve(void *arg, size_t i, bn_reg_item *it)
{
	snprintf(it->service, sizeof(it->service), "svc-%04zu", i / PER_SERVICE);
	snprintf(it->endpoint, sizeof(it->endpoint), "http://127.0.0.1:%d/i/0/node-%05zu",
	    *(const int *) arg, i);
	snprintf(it->keys[0], sizeof(it->keys[0]), "zone");
	snprintf(it->vals[0], sizeof(it->vals[0]), "zone-%c", (int) ('a' + i % 3));
	snprintf(it->keys[1], sizeof(it->keys[1]), "version");
	snprintf(it->vals[1], sizeof(it->vals[1]), "1.4.2");
	it->n_meta = 2;
}

/* The registry revision a server reports (0 when it cannot be asked). */
static uint64_t
revision_of(const char *url)
{
	dsc_client        *c;
	dsc_server_status *st;
	uint64_t           rev = 0;
	if (dsc_client_open(&c, url, NULL) != 0) {
		return 0;
	}
	if (dsc_status(c, &st, NULL) == 0) {
		rev = st->revision;
		dsc_server_status_free(st);
	}
	dsc_client_close(c);
	return rev;
}

static int
resolve_part(scen *s)
{
	static const char *const single_args[] = { "--health-interval", "3600", "--health-timeout",
		"3600", "--sync-interval", "0.2", NULL };
	int                      port          = bh_port(s->hang);
	void                   **reqs          = calloc(s->nsvc, sizeof(*reqs));
	size_t                  *req_lens      = calloc(s->nsvc, sizeof(*req_lens));
	char                     path[NR][600];
	size_t                   reply_len[NR] = { 0 };
	double                   reg_s;
	int                      rv = -1;

	if (reqs == NULL || req_lens == NULL
	    || bn_discoveryd_start(&s->single, &s->o, single_args, "cluster-single") != 0
	    || bn_register_all(
	           s->cl.d[0].url, s->nsvc * PER_SERVICE, 16, fill_resolve, &port, &reg_s)
	        != 0
	    || bn_register_all(s->single.url, s->nsvc * PER_SERVICE, 16, fill_resolve, &port, NULL)
	        != 0) {
		goto out;
	}
	/* Node 1 learned the data from etcd: wait until it has all of it. */
	uint64_t want = revision_of(s->cl.d[0].url);
	for (int i = 0; i < 1000 && revision_of(s->cl.d[1].url) < want; i++) {
		bn_sleep_ms(10);
	}
	for (size_t i = 0; i < s->nsvc; i++) {
		char name[32];
		snprintf(name, sizeof(name), "svc-%04zu", i);
		if (bn_pack_resolve(name, &reqs[i], &req_lens[i]) != 0) {
			goto out;
		}
	}
	const char *url[NR] = { s->cl.d[1].url, s->single.url, NULL };
	for (int k = 0; k < R_ECHO; k++) {
		snprintf(path[k], sizeof(path[k]), "%s/cluster-reply-%d.bin", s->o.out_dir, k);
		if (bn_capture_reply(url[k], reqs[0], req_lens[0], 11, path[k], &reply_len[k])
		    != 0) {
			fprintf(stderr, "cluster: the first Resolve on the %s failed\n", r_name[k]);
			goto out;
		}
	}
	reply_len[R_ECHO] = reply_len[R_CLUSTER];
	const char *echo_argv[]
	    = { s->o.echo, "--reply-file", path[R_CLUSTER], "--workers", "64", NULL };
	if (bn_child_start(&s->echo, echo_argv, false, s->o.out_dir, "cluster-echo") != 0) {
		goto out;
	}
	url[R_ECHO] = s->echo.url;
	printf("cluster resolve: %zu services x %d instances registered through node 0 in %.2f s; "
	       "reply %zu bytes (single node %zu)\n",
	    s->nsvc, PER_SERVICE, reg_s, reply_len[R_CLUSTER], reply_len[R_SINGLE]);
	pid_t pid[NR] = { s->cl.d[1].pid, s->single.pid, s->echo.pid };
	for (int rep = 0; rep < s->reps; rep++) {
		for (int ci = 0; ci < s->ncounts; ci++) {
			for (int k = 0; k < NR; k++) {
				int            srv = (k + rep) % NR;
				bn_load_result lr;
				bn_load_opts   lo = {
					  .url        = url[srv],
					  .clients    = s->counts[ci],
					  .warmup_s   = s->warm,
					  .duration_s = s->rdur,
					  .reqs       = (const void *const *) reqs,
					  .req_lens   = req_lens,
					  .n_reqs     = s->nsvc,
					  .expect_len = reply_len[srv],
					  .server_pid = pid[srv],
				};
				if (bn_load_run(&lo, &lr) != 0) {
					goto out;
				}
				fig *f    = &s->r[srv][ci][rep];
				f->rps    = lr.rps;
				f->p50    = lr.p50_us;
				f->p99    = lr.p99_us;
				f->errors = (double) (lr.errors + lr.bad);
				f->cpu_us
				    = lr.ok > 0 ? lr.server_cpu_s * 1e6 / (double) lr.ok : NAN;
				printf("  round %d resolve %-12s %2zu clients: %8.0f req/s  p50 "
				       "%7.1f us  "
				       "p99 %7.1f us  server %5.1f us CPU/req  errors %.0f\n",
				    rep + 1, r_name[srv], s->counts[ci], f->rps, f->p50, f->p99,
				    f->cpu_us, f->errors);
				fflush(stdout);
				bn_raw(&s->o, "cluster_resolve", r_name[srv], (long) s->counts[ci],
				    rep + 1, "req_per_s", f->rps);
			}
		}
	}
	rv = 0;
out:
	if (s->echo.pid > 0) {
		bn_child_stop(&s->echo);
	}
	if (s->single.pid > 0) {
		bn_child_stop(&s->single);
	}
	for (size_t i = 0; reqs != NULL && i < s->nsvc; i++) {
		free(reqs[i]);
	}
	free(reqs);
	free(req_lens);
	return rv;
}

/*
 * Marks every descriptor of this process close-on-exec before a node starts:
 * the test kit's fork and exec would hand it our sockets otherwise, and a
 * restarted node that inherited a health server's listening socket keeps its
 * port accepting after bh_stop (checks then time out instead of being
 * refused). bench/httpd.c's sockets are not CLOEXEC.
 */
static void
cloexec_all(void)
{
	DIR           *d = opendir("/proc/self/fd");
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		int fd = atoi(de->d_name);
		if (fd > 2 && fd != dirfd(d)) {
			int fl = fcntl(fd, F_GETFD);
			if (fl >= 0) {
				fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
			}
		}
	}
	if (d != NULL) {
		closedir(d);
	}
}

/*
 * Stops every node of the cluster, all at once (each takes a while to leave
 * etcd), keeping their logs in the output folder as OUT/cluster-TAG-nodeN.log.
 */
static void
cluster_stop(tc_cluster *c, const char *out_dir, const char *tag)
{
	for (int i = 0; i < c->n; i++) {
		char kept[700];
		snprintf(kept, sizeof(kept), "%s/cluster-%s-node%d.log", out_dir, tag, i);
		rename(
		    c->d[i].log_path, kept); /* the node writes on; the kit's unlink then misses */
		if (c->d[i].pid > 0) {
			kill(c->d[i].pid, SIGTERM);
		}
	}
	tc_cluster_stop(c);
}

/* ---- failover and takeover ---- */

/* A client resolving in a loop until its first success on another server after the kill. */
typedef struct fo_loop {
	dsc_client     *c;
	const char     *service;
	_Atomic int64_t t_kill; /* 0 until the kill */
	_Atomic bool    done;
	int64_t         t_ok; /* 0: none within 30 s of the kill */
	uint64_t        fails_after;
	char            err[256];
} fo_loop;

static void *
fo_main(void *arg)
{
	fo_loop *l = arg;
	for (;;) {
		dsc_error     err;
		dsc_instance *inst = NULL;
		int           rv   = dsc_resolve(l->c, l->service, false, &inst, &err);
		int64_t       t1   = bn_now_ns();
		int64_t       tk   = atomic_load(&l->t_kill);
		dsc_instance_free(inst);
		if (tk == 0 || t1 <= tk) {
			continue;
		}
		if (rv == 0 && dsi_client_current(l->c) != 0) {
			l->t_ok = t1;
			break;
		}
		if (rv != 0) {
			l->fails_after++;
			snprintf(
			    l->err, sizeof(l->err), "%s: %.200s", dsc_strerror(rv), err.message);
		}
		if (t1 - tk > 30 * (int64_t) 1000000000) {
			break;
		}
	}
	atomic_store(&l->done, true);
	return NULL;
}

/* Unix ms of a log line's "2026-12-01T15:04:05.123Z" stamp, or -1. */
static int64_t
stamp_ms(const char *line)
{
	struct tm tm;
	int       ms = 0;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	        &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms)
	    != 7) {
		return -1;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t) timegm(&tm) * 1000 + ms;
}

/* The stamp of the first line at or after since_ms holding text in the log, or -1. */
static int64_t
log_line_ms(const char *log_path, const char *text, int64_t since_ms)
{
	FILE   *f = fopen(log_path, "r");
	char    line[1024];
	int64_t at = -1;
	while (f != NULL && at < 0 && fgets(line, sizeof(line), f) != NULL) {
		int64_t t = strstr(line, text) != NULL ? stamp_ms(line) : -1;
		if (t >= since_ms) {
			at = t;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	return at;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (up to 5 s) for a SYNC on w: then it is subscribed. */
static bool
watch_ready(dsc_watch *w)
{
	for (int64_t end = bn_now_ns() + 5000000000; bn_now_ns() < end;) {
		dsc_event *ev;
		if (dsc_watch_next(w, 100, &ev) == 0) {
			bool sync = ev->type == DSC_EVENT_SYNC;
			dsc_event_free(ev);
			if (sync) {
				return true;
			}
		}
	}
	return false;
}

/* The takeover cluster's instances and their health servers. */
typedef struct hc {
	bh_server *steady;
	bh_server *flip[MAX_REPS];
	char       flip_svc[MAX_REPS][32];
	char       flip_ep[MAX_REPS][64];
	int        steady_owner[N_STEADY];
} hc;

static const char *const node_names[NODES] = { "node0", "node1", "node2" };

static int
hc_register(scen *s, hc *h)
{
	dsc_client *c;
	dsc_error   err;
	int         rv = -1;
	if (bh_start(&h->steady, N_STEADY, 512, NULL) != 0
	    || dsc_client_open(&c, s->cl.urls, NULL) != 0) {
		return -1;
	}
	for (int k = 0; k < N_STEADY; k++) {
		char svc[32], ep[64];
		snprintf(svc, sizeof(svc), "hc-%02d", k);
		snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/i/%d", bh_port(h->steady), k);
		h->steady_owner[k] = (int) dsi_shard_owner(node_names, NODES, svc, ep);
		dsc_registration r = { .service = svc, .endpoint = ep, .health_path = "/health" };
		if (dsc_register(c, &r, NULL, &err) != 0) {
			fprintf(stderr, "cluster: register %s: %s\n", svc, err.message);
			goto out;
		}
	}
	for (int r = 0; r < s->rounds; r++) {
		if (bh_start(&h->flip[r], 1, 64, NULL) != 0) {
			goto out;
		}
		snprintf(h->flip_ep[r], sizeof(h->flip_ep[r]), "http://127.0.0.1:%d/i/0",
		    bh_port(h->flip[r]));
		/* A name whose owner among the three is the node this round kills. */
		for (int j = 0;; j++) {
			snprintf(h->flip_svc[r], sizeof(h->flip_svc[r]), "flip-%d-%d", r, j);
			if ((int) dsi_shard_owner(node_names, NODES, h->flip_svc[r], h->flip_ep[r])
			    == r % NODES) {
				break;
			}
		}
		dsc_registration reg
		    = { .service = h->flip_svc[r], .endpoint = h->flip_ep[r], .health_path = "/h" };
		if (dsc_register(c, &reg, NULL, &err) != 0) {
			fprintf(stderr, "cluster: register %s: %s\n", h->flip_svc[r], err.message);
			goto out;
		}
	}
	/* Every instance healthy (rise 1) before the first kill. */
	uint32_t want = (uint32_t) (N_STEADY + s->rounds);
	for (int i = 0; i < 300; i++) {
		dsc_server_status *st;
		bool               all = false;
		if (dsc_status(c, &st, &err) == 0) {
			all = st->healthy == want;
			dsc_server_status_free(st);
		}
		if (all) {
			rv = 0;
			break;
		}
		bn_sleep_ms(50);
	}
	if (rv != 0) {
		fprintf(stderr, "cluster: the takeover instances did not all become healthy\n");
	}
out:
	dsc_client_close(c);
	return rv;
}

/* Waits for a HEALTH_CHANGED of service on either watch; its arrival (monotonic ns) or 0. */
static int64_t
wait_health_event(dsc_watch *const *w, const char *service, int64_t deadline)
{
	while (bn_now_ns() < deadline) {
		for (int i = 0; i < 2; i++) {
			dsc_event *ev;
			if (dsc_watch_next(w[i], 5, &ev) != 0) {
				continue;
			}
			bool hit = ev->type == DSC_EVENT_HEALTH_CHANGED
			    && strcmp(ev->service, service) == 0
			    && ev->instance.health == DSC_HEALTH_UNHEALTHY;
			dsc_event_free(ev);
			if (hit) {
				return bn_now_ns();
			}
		}
	}
	return 0;
}

/* The latest first check after kill_ms of the instances node v owned: ms after the kill, or NAN. */
static double
checks_resumed(hc *h, int v, uint32_t kill_ms, int64_t deadline)
{
	for (;;) {
		double worst = 0;
		bool   all   = true;
		for (int k = 0; k < N_STEADY; k++) {
			size_t          n;
			const uint32_t *t     = bh_hits(h->steady, k, &n);
			bool            found = false;
			for (size_t i = 0; h->steady_owner[k] == v && !found && i < n; i++) {
				if (t[i] > kill_ms) {
					found = true;
					worst = fmax(worst, (double) (t[i] - kill_ms));
				}
			}
			all = all && (h->steady_owner[k] != v || found);
		}
		if (all) {
			return worst;
		}
		if (bn_now_ns() >= deadline) {
			return NAN;
		}
		bn_sleep_ms(20);
	}
}

static int
ft_round(scen *s, hc *h, int r)
{
	int         v = r % NODES, a = (v + 1) % NODES, b = (v + 2) % NODES;
	char        list[512];
	ftfig      *x       = &s->ft[r];
	dsc_watch  *w[2]    = { NULL, NULL };
	const char *svcs[1] = { h->flip_svc[r] };
	fo_loop     l;
	pthread_t   th;
	int         rv = -1;

	memset(&l, 0, sizeof(l));
	x->killed = v;
	snprintf(list, sizeof(list), "%s,%s,%s", s->cl.d[v].url, s->cl.d[a].url, s->cl.d[b].url);
	dsc_client_options co;
	dsc_client_options_init(&co); /* the default timeout */
	co.require_connection = true; /* so that the first call goes to the node to be killed */
	if (dsc_client_open(&l.c, list, &co) != 0) {
		return -1;
	}
	l.service = "hc-00";
	if (dsc_resolve(l.c, l.service, false, NULL, NULL) != 0 || dsi_client_current(l.c) != 0) {
		fprintf(stderr, "cluster: the failover client does not start on node%d\n", v);
		goto out;
	}
	if (dsc_watch_open(&w[0], s->cl.d[a].pub_url, svcs, 1) != 0
	    || dsc_watch_open(&w[1], s->cl.d[b].pub_url, svcs, 1) != 0 || !watch_ready(w[0])
	    || !watch_ready(w[1])) {
		fprintf(stderr, "cluster: cannot watch the survivors\n");
		goto out;
	}
	char owned[96];
	snprintf(owned, sizeof(owned), "health %s ", h->flip_svc[r]);
	x->owner_seen = td_daemon_log_contains(&s->cl.d[v], owned);
	if (pthread_create(&th, NULL, fo_main, &l) != 0) {
		goto out;
	}
	bn_sleep_ms(200);

	int64_t  t_kill  = bn_now_ns();
	int64_t  wall    = wall_ms();
	uint32_t kill_ms = bh_now_ms(h->steady);
	atomic_store(&l.t_kill, t_kill);
	td_daemon_kill(&s->cl.d[v]);
	bh_stop(h->flip[r]); /* its health flips: connections are refused from now on */
	h->flip[r] = NULL;

	int64_t t_pub = wait_health_event(w, h->flip_svc[r], t_kill + 30 * (int64_t) 1000000000);
	for (int i = 0; i < 3000 && !atomic_load(&l.done); i++) {
		bn_sleep_ms(10);
	}
	atomic_store(&l.t_kill, t_kill); /* (already set) the loop ends within 30 s of the kill */
	pthread_join(th, NULL);
	x->failover_ms  = l.t_ok > 0 ? (double) (l.t_ok - t_kill) / 1e6 : NAN;
	x->failed_calls = (double) l.fails_after;
	if (l.fails_after > 0) {
		bn_note(&s->o,
		    "cluster failover: round %d: %llu failed calls after the kill, last: %s", r + 1,
		    (unsigned long long) l.fails_after, l.err);
	}
	x->published_ms = t_pub > 0 ? (double) (t_pub - t_kill) / 1e6 : NAN;
	x->resumed_ms   = checks_resumed(h, v, kill_ms, bn_now_ns() + 3 * CHECK_S * 1000000000LL);
	char left[64];
	snprintf(left, sizeof(left), "cluster: node %s left", node_names[v]);
	int64_t la = log_line_ms(s->cl.d[a].log_path, left, wall - 1000);
	int64_t lb = log_line_ms(s->cl.d[b].log_path, left, wall - 1000);
	int64_t lm = la < 0 ? lb : lb < 0 ? la : (la < lb ? la : lb);
	x->left_ms = lm >= 0 ? (double) (lm - wall) : NAN;
	/* The survivor that took the instance over logs its verdict before it writes it. */
	char verdict_line[160];
	snprintf(verdict_line, sizeof(verdict_line), "health %s %s: healthy -> unhealthy",
	    h->flip_svc[r], h->flip_ep[r]);
	la            = log_line_ms(s->cl.d[a].log_path, verdict_line, wall - 1000);
	lb            = log_line_ms(s->cl.d[b].log_path, verdict_line, wall - 1000);
	lm            = la < 0 ? lb : lb < 0 ? la : (la < lb ? la : lb);
	x->checked_ms = lm >= 0 ? (double) (lm - wall) : NAN;
	printf("  round %d: kill -9 node%d: next successful call %.0f ms (%.0f failed calls); "
	       "node left (survivors' logs) %.0f ms; failing check logged %.0f ms; HEALTH_CHANGED "
	       "%.0f ms; every instance it owned checked again %.0f ms%s\n",
	    r + 1, v, x->failover_ms, x->failed_calls, x->left_ms, x->checked_ms, x->published_ms,
	    x->resumed_ms,
	    x->owner_seen ? "" : " (its log never named the instance: ownership not confirmed)");
	fflush(stdout);
	/* Back on its URLs for the next round; its lease has expired, so it joins at once. */
	cloexec_all();
	if (r + 1 < s->rounds && tc_node_start(&s->cl, v) != 0) {
		goto out;
	}
	for (int i = 0; i < 1500 && td_daemon_log_contains(&s->cl.d[v], "serving meanwhile")
	     && !td_daemon_log_contains(&s->cl.d[v], "joined as");
	     i++) {
		bn_sleep_ms(10);
	}
	rv = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (w[i] != NULL) {
			dsc_watch_close(w[i]);
		}
	}
	dsc_client_close(l.c);
	return rv;
}

static int
takeover_part(scen *s)
{
	static const char *const args[] = { "--health-interval", "1", "--health-timeout", "1",
		"--rise", "1", "--fall", "1", "--log-level", "info", NULL };
	hc                       h;
	int                      rv = -1;
	memset(&h, 0, sizeof(h));
	cloexec_all();
	if (tc_cluster_start(&s->cl, NODES, s->etcd.url, args) != 0) {
		return -1;
	}
	printf("cluster: takeover cluster up\n");
	fflush(stdout);
	if (hc_register(s, &h) == 0) {
		printf("cluster: %d instances healthy\n", N_STEADY + s->rounds);
		fflush(stdout);
		rv = 0;
		for (int r = 0; r < s->rounds && rv == 0; r++) {
			rv = ft_round(s, &h, r);
		}
	}
	cluster_stop(&s->cl, s->o.out_dir, "takeover");
	bh_stop(h.steady);
	for (int r = 0; r < s->rounds; r++) {
		bh_stop(h.flip[r]);
	}
	return rv;
}

/* ---- the report ---- */

static double
wmed(scen *s, int mode, int ci, int field, int over)
{
	double v[MAX_REPS];
	for (int r = 0; r < s->reps; r++) {
		const fig *f = &s->w[mode][ci][r];
		double     x = field == 0 ? f->rps : field == 1 ? f->p50 : f->p99;
		v[r]         = over >= 0 ? x / s->w[over][ci][r].rps : x;
	}
	return median_of(v, s->reps);
}

static double
rmed(scen *s, int srv, int ci, int field, int over)
{
	double v[MAX_REPS];
	for (int r = 0; r < s->reps; r++) {
		const fig *f = &s->r[srv][ci][r];
		double     x = field == 0 ? f->rps
		        : field == 1      ? f->p50
		        : field == 2      ? f->p99
		                          : f->cpu_us;
		v[r]         = over >= 0 ? x / s->r[over][ci][r].rps : x;
	}
	return median_of(v, s->reps);
}

static double
ftmed(scen *s, size_t off)
{
	double v[MAX_REPS];
	int    n = 0;
	for (int r = 0; r < s->rounds; r++) {
		double x = *(const double *) ((const char *) &s->ft[r] + off);
		if (!isnan(x)) {
			v[n++] = x;
		}
	}
	return n > 0 ? median_of(v, n) : NAN;
}

static void
report(scen *s)
{
	FILE *md = bn_out_file(&s->o, "cluster-body.md", "w");
	if (md == NULL) {
		return;
	}
	fprintf(md,
	    "Medians of %d rounds (ratios: medians of the per-round ratios); 1-minute load "
	    "average %s at start, %s at end.\n\n",
	    s->reps, s->la0, s->la1);
	fprintf(md, "### Register throughput (registrations/s; etcd: puts/s)\n\n");
	fprintf(md,
	    "| clients | one node | three nodes | etcd put | one node / etcd | three nodes / "
	    "etcd | p50 ms (one, three, etcd) | p99 ms (one, three, etcd) |\n");
	fprintf(md, "|---:|---:|---:|---:|---:|---:|---|---|\n");
	for (int ci = 0; ci < s->ncounts; ci++) {
		long   n   = (long) s->counts[ci];
		double one = wmed(s, W_ONE, ci, 0, -1), three = wmed(s, W_THREE, ci, 0, -1);
		double etcd = wmed(s, W_ETCD, ci, 0, -1);
		double q1 = wmed(s, W_ONE, ci, 0, W_ETCD), q3 = wmed(s, W_THREE, ci, 0, W_ETCD);
		bn_emit(&s->o,
		    &(bn_row) { "cluster_register", "one node of 3 / etcd put", n, "reg/s", one,
		        "etcd put (gateway client)", etcd, q1, NULL, "reported" });
		bn_emit(&s->o,
		    &(bn_row) { "cluster_register", "three nodes / etcd put", n, "reg/s", three,
		        "etcd put (gateway client)", etcd, q3, NULL, "reported" });
		fprintf(md,
		    "| %ld | %.0f | %.0f | %.0f | %.2f | %.2f | %.1f, %.1f, %.1f | %.1f, %.1f, "
		    "%.1f |\n",
		    n, one, three, etcd, q1, q3, wmed(s, W_ONE, ci, 1, -1),
		    wmed(s, W_THREE, ci, 1, -1), wmed(s, W_ETCD, ci, 1, -1),
		    wmed(s, W_ONE, ci, 2, -1), wmed(s, W_THREE, ci, 2, -1),
		    wmed(s, W_ETCD, ci, 2, -1));
	}
	fprintf(md, "\n### Resolve (requests/s)\n\n");
	fprintf(md,
	    "| clients | cluster node | single node | nng echo | cluster / echo (target >= 0.9) "
	    "| cluster / single (target >= 0.95) | p99 us (cluster, single, echo) | server CPU "
	    "us/req (cluster, single) |\n");
	fprintf(md, "|---:|---:|---:|---:|---|---|---|---|\n");
	for (int ci = 0; ci < s->ncounts; ci++) {
		long   n  = (long) s->counts[ci];
		double cn = rmed(s, R_CLUSTER, ci, 0, -1), sn = rmed(s, R_SINGLE, ci, 0, -1);
		double ec = rmed(s, R_ECHO, ci, 0, -1);
		double qe = rmed(s, R_CLUSTER, ci, 0, R_ECHO),
		       qs = rmed(s, R_CLUSTER, ci, 0, R_SINGLE);
		bool me = qe >= 0.9, ms = qs >= 0.95, tgt = !s->o.smoke;
		bn_emit(&s->o,
		    &(bn_row) { "cluster_resolve", "cluster node / echo", n, "req/s", cn,
		        "nng echo", ec, qe, ">= 0.9 x echo", tgt ? verdict(me) : "reported" });
		bn_emit(&s->o,
		    &(bn_row) { "cluster_resolve", "cluster node / single node", n, "req/s", cn,
		        "single node", sn, qs, ">= 0.95 x single",
		        tgt ? verdict(ms) : "reported" });
		fprintf(md,
		    "| %ld | %.0f | %.0f | %.0f | **%.3f** %s | **%.3f** %s | %.0f, %.0f, %.0f | "
		    "%.1f, %.1f |\n",
		    n, cn, sn, ec, qe, me ? "met" : "**missed**", qs, ms ? "met" : "**missed**",
		    rmed(s, R_CLUSTER, ci, 2, -1), rmed(s, R_SINGLE, ci, 2, -1),
		    rmed(s, R_ECHO, ci, 2, -1), rmed(s, R_CLUSTER, ci, 3, -1),
		    rmed(s, R_SINGLE, ci, 3, -1));
	}
	double fo          = ftmed(s, offsetof(ftfig, failover_ms)),
	       pub         = ftmed(s, offsetof(ftfig, published_ms));
	double left        = ftmed(s, offsetof(ftfig, left_ms)),
	       res         = ftmed(s, offsetof(ftfig, resumed_ms));
	double chk         = ftmed(s, offsetof(ftfig, checked_ms));
	double take_target = MEMBER_TTL_MS + CHECK_S * 1000.0;
	bool   tgt         = !s->o.smoke;
	bn_emit(&s->o,
	    &(bn_row) { "cluster_failover", "kill -9 to next successful call", s->rounds, "ms", fo,
	        NULL, NAN, NAN, "<= 2000 ms", tgt ? verdict(fo <= 2000) : "reported" });
	bn_emit(&s->o,
	    &(bn_row) { "cluster_takeover", "kill -9 to HEALTH_CHANGED published", s->rounds, "ms",
	        pub, NULL, NAN, NAN, "<= 11000 ms (TTL 10 s + 1 s)",
	        tgt ? verdict(pub <= take_target) : "reported" });
	bn_emit(&s->o,
	    &(bn_row) { "cluster_takeover", "kill -9 to node left (survivors)", s->rounds, "ms",
	        left, NULL, NAN, NAN, NULL, "reported" });
	bn_emit(&s->o,
	    &(bn_row) { "cluster_takeover", "kill -9 to failing check logged", s->rounds, "ms", chk,
	        NULL, NAN, NAN, NULL, "reported" });
	bn_emit(&s->o,
	    &(bn_row) { "cluster_takeover", "kill -9 to all its instances rechecked", s->rounds,
	        "ms", res, NULL, NAN, NAN, NULL, "reported" });
	fprintf(md, "\n### Failover and health takeover (ms after kill -9)\n\n");
	fprintf(md,
	    "| round | node killed | next successful call (target <= 2000) | failed calls "
	    "| node left (survivors' logs) | failing check logged (its new owner) | HEALTH_CHANGED "
	    "published (target <= %.0f) | "
	    "every instance it owned checked again |\n",
	    take_target);
	fprintf(md, "|---:|---|---:|---:|---:|---:|---:|---:|\n");
	for (int r = 0; r < s->rounds; r++) {
		const ftfig *x = &s->ft[r];
		fprintf(md, "| %d | node%d | %.0f | %.0f | %.0f | %.0f | %.0f%s | %.0f |\n", r + 1,
		    x->killed, x->failover_ms, x->failed_calls, x->left_ms, x->checked_ms,
		    x->published_ms, x->owner_seen ? "" : " (owner not confirmed)", x->resumed_ms);
	}
	fprintf(md, "| median | | **%.0f** %s | | %.0f | %.0f | **%.0f** %s | %.0f |\n", fo,
	    fo <= 2000 ? "met" : "**missed**", left, chk, pub,
	    pub <= take_target ? "met" : "**missed**", res);
	fclose(md);
}

static void
loadavg(char *buf, size_t n)
{
	FILE *f = fopen("/proc/loadavg", "r");
	buf[0]  = 0;
	if (f != NULL) {
		if (fgets(buf, (int) n, f) != NULL) {
			buf[strcspn(buf, " ")] = 0;
		}
		fclose(f);
	}
}

int
main(int argc, char **argv)
{
	static const char *const quiet_args[] = { "--health-interval", "3600", "--health-timeout",
		"3600", "--log-level", "info", NULL };
	scen                    *s            = calloc(1, sizeof(*s));
	char                     dir[600];
	int                      status = 1;
	const char              *etcd_path;

	if (s == NULL || bn_opts_parse(&s->o, argc, argv, "bench_cluster") != 0) {
		return 2;
	}
	if ((etcd_path = te_etcd_path()) == NULL) {
		printf(
		    "cluster: skipped: no etcd (/usr/bin/etcd or $DISCOVERY_ETCD; scripts/deps.sh "
		    "bench installs etcd-server)\n");
		free(s);
		return 0;
	}
	bn_raise_nofile();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* The nodes' logs (the test kit writes them under $TMPDIR) go with the results. */
	setenv("TMPDIR", s->o.out_dir, 1);
	s->reps      = s->o.reps < MAX_REPS ? s->o.reps : MAX_REPS;
	s->rounds    = s->o.smoke ? 1 : s->reps;
	s->counts[0] = 1;
	s->counts[1] = s->o.smoke ? 4 : 8;
	s->counts[2] = 32;
	s->ncounts   = s->o.smoke ? 2 : NCOUNTS;
	s->nsvc      = s->o.smoke ? 10 : 250;
	s->wdur      = s->o.duration_s > 0 ? s->o.duration_s : s->o.smoke ? 0.1 : 1.0;
	s->rdur      = s->o.duration_s > 0 ? s->o.duration_s : s->o.smoke ? 0.1 : 1.5;
	s->warm      = s->o.smoke ? 0.05 : 0.2;
	snprintf(dir, sizeof(dir), "%s/cluster-etcd", s->o.out_dir);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "cannot create %s: %s\n", dir, strerror(errno));
		goto out;
	}
	loadavg(s->la0, sizeof(s->la0));
	int64_t t0 = bn_now_ns();
	if (te_etcd_start(&s->etcd, etcd_path, dir, NULL, 30000) != 0) {
		goto out;
	}
	printf("cluster: etcd %s at %s\n", s->etcd.version, s->etcd.url);
	/* Reads and writes: a cluster that checks nothing during the run (first checks fail, fall
	 * 2). */
	bool hang[1] = { true };
	if (bh_start(&s->hang, 1, 16, hang) != 0) {
		goto out;
	}
	cloexec_all();
	if (tc_cluster_start(&s->cl, NODES, s->etcd.url, quiet_args) != 0) {
		goto out;
	}
	printf("cluster: etcd and 3 nodes up after %.1f s\n", (double) (bn_now_ns() - t0) / 1e9);
	int rv = resolve_part(s);
	printf("cluster: resolve done after %.1f s\n", (double) (bn_now_ns() - t0) / 1e9);
	if (rv == 0) {
		rv = register_part(s);
	}
	printf("cluster: register done after %.1f s\n", (double) (bn_now_ns() - t0) / 1e9);
	fflush(stdout);
	cluster_stop(&s->cl, s->o.out_dir, "quiet");
	if (rv != 0 || takeover_part(s) != 0) {
		goto out;
	}
	printf("cluster: takeover done after %.1f s\n", (double) (bn_now_ns() - t0) / 1e9);
	loadavg(s->la1, sizeof(s->la1));
	report(s);
	bn_note(&s->o,
	    "cluster: etcd %s, single member, default settings, data in the output folder; 3 "
	    "nodes per cluster (--data :memory:, --sync-interval 0.2); resolve: %zu services x %d "
	    "instances registered through node 0, measured on node 1, %.1f s (+%.1f s warm-up) "
	    "per point; register: %.1f s per point, each call a new instance (one metadata entry, "
	    "its health URL on a loopback server that never answers, --health-timeout 3600: no "
	    "check result is written during the run), etcd baseline one put per call through "
	    "dsi_etcd_txn; takeover: "
	    "--health-interval 1 --rise 1 --fall 1, node lease TTL %d s; whole scenario %.0f s; "
	    "load average %s at start, %s at end (a shared machine: indicative figures)",
	    s->etcd.version, s->nsvc, PER_SERVICE, s->rdur, s->warm, s->wdur, MEMBER_TTL_MS / 1000,
	    (double) (bn_now_ns() - t0) / 1e9, s->la0, s->la1);
	status = 0;
out:
	if (s->etcd.pid > 0) {
		te_etcd_stop(&s->etcd);
		te_etcd_remove(&s->etcd); /* WAL segments are preallocated at 64 MiB */
	}
	bh_stop(s->hang);
	curl_global_cleanup();
	free(s);
	return status;
}
