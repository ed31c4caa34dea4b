/*
 * Scenario 8: the HTTP admin endpoint. (a) GET /v1/services/{name}
 * throughput: 4 libcurl clients on keep-alive connections read one service
 * of 10 instances for the measuring time. (b) 1,000 parked blocking queries
 * (?index=N&wait=5m): the daemon's resident memory before and after they
 * park, then one Register and the time until every one of them has its
 * answer (wake-up latency: the median and the last). (c) Resolve over nng
 * on a server whose admin endpoint is scraped every 100 ms, against one with
 * --admin off, back to back: the endpoint and the metrics must not slow it.
 */
#include <curl/curl.h>
#include <discovery/discovery.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "loadgen.h"
#include "populate.h"
#include "wire.h"

#define CLIENTS 4
#define PARKED  1000

static char admin[160];

static size_t
sink(char *p, size_t size, size_t n, void *arg)
{
	(void) p;
	(void) arg;
	return size * n;
}

/* The revision header, into *(unsigned long long *) arg. */
static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	if (size * n > 21 && strncmp(p, "X-Discovery-Revision:", 21) == 0) {
		*(unsigned long long *) arg = strtoull(p + 21, NULL, 10);
	}
	return size * n;
}

/* The admin URL the child reported on --ready-fd. */
static int
learn_admin(const bn_child *c)
{
	if (c->admin_url[0] == 0) {
		fprintf(
		    stderr, "bench_admin: discoveryd reported no admin URL (%s)\n", c->log_path);
		return -1;
	}
	snprintf(admin, sizeof(admin), "%s", c->admin_url);
	return 0;
}

static CURL *
easy(const char *path)
{
	char  url[512];
	CURL *e = curl_easy_init();
	snprintf(url, sizeof(url), "%s%s", admin, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
	return e;
}

typedef struct reader {
	pthread_t t;
	int64_t   until_ns;
	long      done;
} reader;

static void *
reader_main(void *arg)
{
	reader *r = arg;
	CURL   *e = easy("/v1/services/bench-web");
	while (bn_now_ns() < r->until_ns && curl_easy_perform(e) == CURLE_OK) {
		r->done++;
	}
	curl_easy_cleanup(e);
	return NULL;
}

static int
register_one(dsc_client *c, const char *service, int i)
{
	char             ep[64];
	dsc_kv           meta[] = { { "zone", "a" }, { "version", "1.0" } };
	dsc_registration r      = { .service = service,
		     .endpoint               = ep,
		     .metadata               = meta,
		     .n_metadata             = 2,
		     .ttl_ms                 = 86400000 };
	snprintf(ep, sizeof(ep), "http://10.0.0.%d:8080", i + 1);
	return dsc_register(c, &r, NULL, NULL);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return x < y ? -1 : x > y;
}

/* ---- 8c: what the admin endpoint, scraped, costs Resolve over nng ---- */

#define COST_SERVICES 200
#define COST_CLIENTS  8

static void
cost_fill(void *arg, size_t i, bn_reg_item *it)
{
	(void) arg;
	snprintf(it->service, sizeof(it->service), "svc-%04zu", i / 4);
	snprintf(it->endpoint, sizeof(it->endpoint), "http://node-%05zu.bench.internal:8080", i);
	snprintf(it->keys[0], sizeof(it->keys[0]), "zone");
	snprintf(it->vals[0], sizeof(it->vals[0]), "zone-%c", (int) ('a' + i % 3));
	it->n_meta    = 1;
	it->ttl_ms    = 86400000u;
	it->heartbeat = true;
}

/* Scrapes /metrics and reads the catalog every 100 ms until stop: a busy Prometheus. */
typedef struct scraper {
	pthread_t   t;
	char        base[160];
	atomic_bool stop;
	long        n;
} scraper;

static void *
scraper_main(void *arg)
{
	scraper *sc = arg;
	CURL    *e  = curl_easy_init();
	char     url[256];
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
	while (!atomic_load(&sc->stop)) {
		snprintf(url, sizeof(url), "%s%s", sc->base,
		    sc->n % 2 == 0 ? "/metrics" : "/v1/services/svc-0001");
		curl_easy_setopt(e, CURLOPT_URL, url);
		if (curl_easy_perform(e) == CURLE_OK) {
			sc->n++;
		}
		bn_sleep_ms(100);
	}
	curl_easy_cleanup(e);
	return NULL;
}

static double median(double *v, int n);

/*
 * Two fresh servers with the same 800 instances, one serving the admin
 * endpoint (scraped meanwhile) and one with --admin off, loaded back to back
 * with the same Resolve stream; the ratio of each pair, then the median.
 */
static int
resolve_cost(bn_opts *o)
{
	const char *off[] = { "--admin", "off", NULL };
	bn_child    on_d, off_d;
	void       *reqs[COST_SERVICES] = { 0 };
	size_t      lens[COST_SERVICES], reply_len = 0;
	double      ratio[64], on_rps[64], off_rps[64];
	int         rv = -1, reps = o->reps < 64 ? o->reps : 64;
	char        reply_path[600];

	if (bn_discoveryd_start(&on_d, o, NULL, "admin-cost-on") != 0) {
		return -1;
	}
	if (bn_discoveryd_start(&off_d, o, off, "admin-cost-off") != 0) {
		bn_child_stop(&on_d);
		return -1;
	}
	if (on_d.admin_url[0] == 0 || off_d.admin_url[0] != 0
	    || bn_register_all(on_d.url, COST_SERVICES * 4, 8, cost_fill, NULL, NULL) != 0
	    || bn_register_all(off_d.url, COST_SERVICES * 4, 8, cost_fill, NULL, NULL) != 0) {
		fprintf(stderr, "bench_admin: 8c: the servers did not start as asked\n");
		goto out;
	}
	for (size_t i = 0; i < COST_SERVICES; i++) {
		char name[32];
		snprintf(name, sizeof(name), "svc-%04zu", i);
		if (bn_pack_resolve(name, &reqs[i], &lens[i]) != 0) {
			goto out;
		}
	}
	snprintf(reply_path, sizeof(reply_path), "%s/admin-cost-reply.bin", o->out_dir);
	if (bn_capture_reply(on_d.url, reqs[0], lens[0], 11, reply_path, &reply_len) != 0) {
		goto out;
	}
	scraper sc = { .n = 0 };
	snprintf(sc.base, sizeof(sc.base), "%s", on_d.admin_url);
	atomic_init(&sc.stop, false);
	pthread_create(&sc.t, NULL, scraper_main, &sc);
	double dur = o->duration_s > 0 ? o->duration_s : (o->smoke ? 0.2 : 2.0);
	for (int r = 0; r < reps; r++) {
		double rps[2];
		for (int k = 0; k < 2; k++) {
			int          which = r % 2 == 0 ? k : 1 - k; /* alternate who goes first */
			bn_load_opts lo    = {
				   .url        = which == 0 ? on_d.url : off_d.url,
				   .clients    = COST_CLIENTS,
				   .warmup_s   = o->smoke ? 0.05 : 0.5,
				   .duration_s = dur,
				   .reqs       = (const void *const *) reqs,
				   .req_lens   = lens,
				   .n_reqs     = COST_SERVICES,
				   .expect_len = 0,
			};
			bn_load_result lr;
			if (bn_load_run(&lo, &lr) != 0) {
				atomic_store(&sc.stop, true);
				pthread_join(sc.t, NULL);
				goto out;
			}
			rps[which] = lr.rps;
		}
		on_rps[r]  = rps[0];
		off_rps[r] = rps[1];
		ratio[r]   = rps[1] > 0 ? rps[0] / rps[1] : NAN;
		printf(
		    "  rep %d resolve, %d clients: admin on (scraped) %.0f req/s, admin off %.0f "
		    "req/s: ratio %.3f\n",
		    r + 1, COST_CLIENTS, rps[0], rps[1], ratio[r]);
		bn_raw(o, "admin-resolve", "admin-on", COST_CLIENTS, r + 1, "req_per_s", rps[0]);
		bn_raw(o, "admin-resolve", "admin-off", COST_CLIENTS, r + 1, "req_per_s", rps[1]);
	}
	atomic_store(&sc.stop, true);
	pthread_join(sc.t, NULL);
	double q = median(ratio, reps);
	bn_emit(o,
	    &(bn_row) { "admin", "Resolve throughput with admin on and scraped", COST_CLIENTS,
	        "req/s", median(on_rps, reps), "admin off", median(off_rps, reps), q,
	        ">= 0.95 x admin off", q >= 0.95 ? "met" : "missed" });
	bn_note(o,
	    "admin 8c: Resolve over nng with %d clients on two fresh servers holding the same %d "
	    "instances, one with the admin endpoint (GET /metrics and a catalog read every 100 ms "
	    "meanwhile, %ld answered) and one with --admin off, back to back, %d repetitions; the "
	    "ratio is the median of the pairs' ratios",
	    COST_CLIENTS, COST_SERVICES * 4, sc.n, reps);
	rv = 0;
out:
	for (size_t i = 0; i < COST_SERVICES; i++) {
		free(reqs[i]);
	}
	bn_child_stop(&off_d);
	bn_child_stop(&on_d);
	return rv;
}

/* The median of v[0..n) (sorts v). */
static double
median(double *v, int n)
{
	if (n <= 0) {
		return NAN;
	}
	qsort(v, (size_t) n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
	bn_opts o;
	if (bn_opts_parse(&o, argc, argv, "bench_admin") != 0) {
		return 2;
	}
	bn_raise_nofile();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	double secs   = o.duration_s > 0 ? o.duration_s : (o.smoke ? 0.5 : 5);
	int    parked = o.smoke ? 50 : PARKED;
	int    status = 1;
	double v_rate[64], v_mem[64], v_p50[64], v_last[64];
	if (o.reps > 64) {
		o.reps = 64;
	}

	for (int rep = 0; rep < o.reps; rep++) {
		bn_child    d;
		dsc_client *c = NULL;
		char        tag[64];
		snprintf(tag, sizeof(tag), "admin-discoveryd-%d", rep + 1);
		if (bn_discoveryd_start(&d, &o, NULL, tag) != 0 || learn_admin(&d) != 0) {
			goto out;
		}
		if (dsc_client_open(&c, d.url, NULL) != 0) {
			bn_child_stop(&d);
			goto out;
		}
		for (int i = 0; i < 10; i++) {
			register_one(c, "bench-web", i);
		}

		/* (a) catalog reads */
		reader  r[CLIENTS];
		int64_t t0 = bn_now_ns();
		for (int i = 0; i < CLIENTS; i++) {
			r[i] = (reader) { .until_ns = t0 + (int64_t) (secs * 1e9), .done = 0 };
			pthread_create(&r[i].t, NULL, reader_main, &r[i]);
		}
		long total = 0;
		for (int i = 0; i < CLIENTS; i++) {
			pthread_join(r[i].t, NULL);
			total += r[i].done;
		}
		double rate = (double) total / ((double) (bn_now_ns() - t0) / 1e9);
		bn_raw(&o, "admin-catalog", "discoveryd", CLIENTS, rep + 1, "requests_per_s", rate);
		v_rate[rep] = rate;

		/* (b) parked blocking queries */
		long               rss0 = bn_proc_rss_kib(d.pid, "VmRSS:");
		CURLM             *m    = curl_multi_init();
		CURL             **es   = calloc((size_t) parked, sizeof(*es));
		double            *at   = calloc((size_t) parked, sizeof(*at));
		char               path[128];
		unsigned long long rev = 0;
		{
			CURL *e = easy("/v1/services/bench-web");
			curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
			curl_easy_setopt(e, CURLOPT_HEADERDATA, &rev);
			curl_easy_perform(e);
			curl_easy_cleanup(e);
		}
		snprintf(path, sizeof(path), "/v1/services/bench-web?index=%llu&wait=5m", rev);
		for (int i = 0; i < parked; i++) {
			es[i] = easy(path);
			curl_easy_setopt(es[i], CURLOPT_PRIVATE, (char *) (intptr_t) i);
			curl_multi_add_handle(m, es[i]);
		}
		int running = parked;
		/* Let them all connect and park (the metric would tell; a settle time is enough
		 * here). */
		for (int64_t end = bn_now_ns() + 3000000000LL; bn_now_ns() < end;) {
			curl_multi_perform(m, &running);
			curl_multi_poll(m, NULL, 0, 10, NULL);
		}
		long rss1 = bn_proc_rss_kib(d.pid, "VmRSS:");
		bn_raw(&o, "admin-parked", "discoveryd", parked, rep + 1, "rss_delta_kib",
		    (double) (rss1 - rss0));
		v_mem[rep]   = (double) (rss1 - rss0) / parked;
		int64_t wake = bn_now_ns();
		register_one(c, "bench-web", 100);
		int      got = 0;
		CURLMsg *msg;
		int      left;
		while (running > 0 && bn_now_ns() - wake < 60000000000LL) {
			curl_multi_perform(m, &running);
			while ((msg = curl_multi_info_read(m, &left)) != NULL) {
				if (msg->msg == CURLMSG_DONE && got < parked) {
					at[got++] = (double) (bn_now_ns() - wake) / 1e6;
				}
			}
			curl_multi_poll(m, NULL, 0, 1, NULL);
		}
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg == CURLMSG_DONE && got < parked) {
				at[got++] = (double) (bn_now_ns() - wake) / 1e6;
			}
		}
		qsort(at, (size_t) got, sizeof(*at), cmp_double);
		double p50 = got > 0 ? at[got / 2] : NAN, last = got > 0 ? at[got - 1] : NAN;
		bn_raw(&o, "admin-parked", "discoveryd", parked, rep + 1, "wake_p50_ms", p50);
		bn_raw(&o, "admin-parked", "discoveryd", parked, rep + 1, "wake_last_ms", last);
		v_p50[rep]  = p50;
		v_last[rep] = last;
		if (got < parked) {
			bn_note(&o, "bench_admin: only %d of %d parked queries were answered", got,
			    parked);
		}
		for (int i = 0; i < parked; i++) {
			curl_multi_remove_handle(m, es[i]);
			curl_easy_cleanup(es[i]);
		}
		curl_multi_cleanup(m);
		free(es);
		free(at);
		dsc_client_close(c);
		bn_child_stop(&d);
	}
	if (resolve_cost(&o) != 0) {
		goto out;
	}
	/* One row per measure, the median of the repetitions, as the other scenarios do. */
	bn_emit(&o,
	    &(bn_row) { "admin", "GET /v1/services/{name} throughput (10 instances)", CLIENTS,
	        "req/s", median(v_rate, o.reps), NULL, NAN, NAN, NULL, "reported" });
	bn_emit(&o,
	    &(bn_row) { "admin", "parked blocking query memory (each)", parked, "KiB",
	        median(v_mem, o.reps), NULL, NAN, NAN, NULL, "reported" });
	bn_emit(&o,
	    &(bn_row) { "admin", "parked blocking queries wake-up p50", parked, "ms",
	        median(v_p50, o.reps), NULL, NAN, NAN, NULL, "reported" });
	bn_emit(&o,
	    &(bn_row) { "admin", "parked blocking queries wake-up last", parked, "ms",
	        median(v_last, o.reps), NULL, NAN, NAN, NULL, "reported" });
	bn_note(&o,
	    "admin endpoint: %d libcurl clients on keep-alive connections read one service of 10 "
	    "instances for %.1f s; then %d blocking queries (?index=current&wait=5m) park, the "
	    "daemon's VmRSS is read before and after, and one Register wakes them all (wake-up: "
	    "from sending the Register to each answer's arrival); %d repetitions",
	    CLIENTS, secs, parked, o.reps);
	status = 0;
out:
	curl_global_cleanup();
	return status;
}
