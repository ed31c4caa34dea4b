/*
 * Scenario 3: the health sweep. 10,000 HTTP instances on loopback, all
 * served by one epoll HTTP server in this process (one path per instance),
 * checked by discoveryd every second. The server logs when each path is
 * asked for, so every check is seen where it lands:
 *
 *   sweep duration  from any moment, the time until every instance has
 *                   been checked once (the median over start points);
 *   missed          instances with a gap between two checks longer than
 *                   1.5 intervals;
 *   CPU per sweep   discoveryd's user + system time over the window (all
 *                   its threads; nothing else runs) divided by the sweeps.
 *
 * Then the same with 100 of the 10,000 paths hanging: the live instances
 * must not notice, and the sweep of every instance, hung ones included,
 * stays bounded. A hung instance is UNHEALTHY after its first timeouts, and
 * the checker backs its checks off (issue 18: interval << backoff, at most
 * DSI_SCHED_BACKOFF_MAX intervals), so its bound is that period, jittered,
 * plus the timeout.
 */
#include <discovery/discovery.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "httpd.h"
#include "populate.h"
#include "server/schedule.h"

#define MAX_HITS 256

/* The run's shape: sizes and times, full or smoke. */
typedef struct shape {
	size_t n, per_service, hung;
	double interval_s, timeout_s;
	double settle_s, window_s;
} shape;

/* Instance i lives at /i/<i> of the bench server. */
typedef struct fill_arg {
	int    port;
	size_t per_service;
} fill_arg;

static void
fill(void *arg, size_t i, bn_reg_item *it)
{
	const fill_arg *f = arg;
	snprintf(it->service, sizeof(it->service), "hc-%03zu", i / f->per_service);
	snprintf(it->endpoint, sizeof(it->endpoint), "http://127.0.0.1:%d/i/%05zu", f->port, i);
}

/* Figures of one window. */
typedef struct window {
	double checks_per_s;
	double sweep_live_s, sweep_all_s; /* medians over start points */
	double sweep_live_max_s;
	double missed_live; /* live instances with a gap over 1.5 intervals */
	double cpu_ms;      /* per sweep */
	double stale;       /* instances whose last_check_ms is too old in GetAll */
	double healthy, unhealthy;
} window;

/* The first hit at or after t (ms), or UINT32_MAX. */
static uint32_t
first_at_or_after(const uint32_t *h, size_t n, uint32_t t)
{
	for (size_t j = 0; j < n; j++) {
		if (h[j] >= t) {
			return h[j];
		}
	}
	return UINT32_MAX;
}

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return x < y ? -1 : x > y;
}

/* Analyses hits in [a, b) ms (server clock). */
static void
analyse(bh_server *hs, const shape *sh, const bool *hang, uint32_t a, uint32_t b, window *w)
{
	uint32_t iv      = (uint32_t) (sh->interval_s * 1000);
	uint32_t horizon = (uint32_t) ((sh->interval_s * 1.1 + sh->timeout_s + 0.5) * 1000);
	uint64_t hits    = 0;
	size_t   missed  = 0;
	double   live[64], all[64];
	size_t   npts = 0;

	for (size_t i = 0; i < sh->n; i++) {
		size_t          n;
		const uint32_t *h    = bh_hits(hs, i, &n);
		uint32_t        last = 0;
		bool            have = false, miss = false;
		for (size_t j = 0; j < n && h[j] < b; j++) {
			if (h[j] >= a) {
				hits++;
				/* The gap since the previous check, or since the window began. */
				miss = miss || h[j] - (have ? last : a) > iv * 3 / 2;
			}
			last = h[j];
			have = true;
		}
		miss = miss || !have || b - last > iv * 3 / 2;
		missed += miss && !hang[i];
	}
	/* Start points every 100 ms while a full horizon still fits in the window. */
	for (uint32_t s = a; s + horizon <= b && npts < 64; s += 100, npts++) {
		uint32_t worst_live = 0, worst_all = 0;
		for (size_t i = 0; i < sh->n; i++) {
			size_t          n;
			const uint32_t *h = bh_hits(hs, i, &n);
			uint32_t        f = first_at_or_after(h, n, s);
			uint32_t        d = f == UINT32_MAX ? b - s : f - s;
			worst_all         = d > worst_all ? d : worst_all;
			if (!hang[i]) {
				worst_live = d > worst_live ? d : worst_live;
			}
		}
		live[npts] = worst_live / 1e3;
		all[npts]  = worst_all / 1e3;
	}
	w->checks_per_s = (double) hits / ((b - a) / 1e3);
	w->missed_live  = (double) missed;
	w->sweep_live_s = npts > 0 ? bn_median(live, npts) : NAN;
	w->sweep_all_s  = npts > 0 ? bn_median(all, npts) : NAN;
	qsort(live, npts, sizeof(*live), cmp_dbl);
	w->sweep_live_max_s = npts > 0 ? live[npts - 1] : NAN;
}

/* GetAll: instances whose last check is older than the horizon, and the states. */
static int
cross_check(const char *url, const shape *sh, window *w)
{
	dsc_client        *c;
	dsc_client_options co;
	dsc_instance_list *l;
	dsc_error          err;
	struct timespec    now;

	dsc_client_options_init(&co);
	co.timeout_ms = 20000;
	if (dsc_client_open(&c, url, &co) != 0) {
		return -1;
	}
	int rv = dsc_get_all(c, NULL, &l, &err);
	dsc_client_close(c);
	if (rv != 0) {
		fprintf(stderr, "health: GetAll: %s: %s\n", dsc_strerror(rv), err.message);
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t ms      = (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
	int64_t horizon = (int64_t) ((sh->interval_s * 1.1 + sh->timeout_s + 0.5) * 1000);
	w->stale = w->healthy = w->unhealthy = 0;
	for (size_t i = 0; i < l->count; i++) {
		w->stale += ms - l->items[i].last_check_ms > horizon;
		w->healthy += l->items[i].health == DSC_HEALTH_HEALTHY;
		w->unhealthy += l->items[i].health == DSC_HEALTH_UNHEALTHY;
	}
	w->stale += (double) (sh->n - (l->count < sh->n ? l->count : sh->n));
	dsc_instance_list_free(l);
	return 0;
}

/* One variant: a fresh HTTP server and discoveryd, registration, then the windows. */
static int
variant(const bn_opts *o, const shape *sh, const char *name, window *ws)
{
	bool      *hang = calloc(sh->n, sizeof(*hang));
	bh_server *hs   = NULL;
	bn_child   d;
	char       iv[32], to[32], tag[64];
	int        rv = -1;

	d.pid = 0;
	if (hang == NULL) {
		return -1;
	}
	for (size_t k = 0; k < sh->hung; k++) {
		hang[k * (sh->n / sh->hung)] = true; /* spread over the services */
	}
	if (bh_start(&hs, sh->n, MAX_HITS, hang) != 0) {
		fprintf(stderr, "health: cannot start the HTTP server\n");
		goto out;
	}
	snprintf(iv, sizeof(iv), "%g", sh->interval_s);
	snprintf(to, sizeof(to), "%g", sh->timeout_s);
	snprintf(tag, sizeof(tag), "health-%s-discoveryd", name);
	const char *extra[] = { "--health-interval", iv, "--health-timeout", to, NULL };
	if (bn_discoveryd_start(&d, o, extra, tag) != 0) {
		goto out;
	}
	fill_arg fa = { bh_port(hs), sh->per_service };
	double   reg_s;
	uint32_t t_reg = bh_now_ms(hs);
	if (bn_register_all(d.url, sh->n, 16, fill, &fa, &reg_s) != 0) {
		goto out;
	}
	/* The first check of each happens at registration: wait for all of them. */
	uint32_t last_first = 0;
	for (int k = 0; k < 200; k++) {
		size_t unchecked = 0;
		last_first       = 0;
		for (size_t i = 0; i < sh->n; i++) {
			size_t          n;
			const uint32_t *h = bh_hits(hs, i, &n);
			unchecked += n == 0;
			last_first = n > 0 && h[0] > last_first ? h[0] : last_first;
		}
		if (unchecked == 0) {
			break;
		}
		bn_sleep_ms(50);
	}
	printf("health %s: %zu instances (%zu hung) registered in %.2f s with 16 clients; every "
	       "instance first checked %.2f s after registration began\n",
	    name, sh->n, sh->hung, reg_s, (last_first - t_reg) / 1e3);
	bn_sleep_ms((long) (sh->settle_s * 1000));

	for (int r = 0; r < o->reps; r++) {
		uint32_t a  = bh_now_ms(hs);
		int64_t  c0 = bn_proc_cpu_ns(d.pid);
		bn_sleep_ms((long) (sh->window_s * 1000));
		int64_t  c1 = bn_proc_cpu_ns(d.pid);
		uint32_t b  = bh_now_ms(hs);
		window  *w  = &ws[r];
		analyse(hs, sh, hang, a, b, w);
		w->cpu_ms = (double) (c1 - c0) / 1e6 / ((b - a) / 1e3 / sh->interval_s);
		if (cross_check(d.url, sh, w) != 0) {
			goto out;
		}
		printf("  rep %d %s: %.0f checks/s; sweep live %.3f s (max %.3f), all %.3f s; "
		       "missed %.0f; CPU %.1f ms/sweep; GetAll: %.0f stale, %.0f healthy, %.0f "
		       "unhealthy\n",
		    r + 1, name, w->checks_per_s, w->sweep_live_s, w->sweep_live_max_s,
		    w->sweep_all_s, w->missed_live, w->cpu_ms, w->stale, w->healthy, w->unhealthy);
		bn_raw(o, "health", name, (long) sh->n, r + 1, "checks_per_s", w->checks_per_s);
		bn_raw(o, "health", name, (long) sh->n, r + 1, "sweep_live_s", w->sweep_live_s);
		bn_raw(o, "health", name, (long) sh->n, r + 1, "sweep_all_s", w->sweep_all_s);
		bn_raw(o, "health", name, (long) sh->n, r + 1, "missed_live", w->missed_live);
		bn_raw(o, "health", name, (long) sh->n, r + 1, "cpu_ms_per_sweep", w->cpu_ms);
		bn_raw(o, "health", name, (long) sh->n, r + 1, "stale_in_getall", w->stale);
		/* Let the GetAll's cost fall outside the next window. */
		bn_sleep_ms(200);
	}
	printf("  %s: HTTP server saw %llu requests (%llu for unknown paths), at most %zu "
	       "connections at once; discoveryd RSS %ld KiB\n",
	    name, (unsigned long long) bh_total(hs), (unsigned long long) bh_unknown(hs),
	    bh_max_conns(hs), bn_proc_rss_kib(d.pid, "VmRSS:"));
	rv = 0;
out:
	if (d.pid > 0) {
		bn_child_stop(&d);
	}
	bh_stop(hs);
	free(hang);
	return rv;
}

/* The median of one field over the repetitions. */
static double
med(const window *ws, int reps, size_t off)
{
	double v[64];
	int    n = reps < 64 ? reps : 64;
	for (int r = 0; r < n; r++) {
		v[r] = *(const double *) ((const char *) &ws[r] + off);
	}
	return bn_median(v, (size_t) n);
}

#define MED(ws, field) med((ws), o.reps, offsetof(window, field))

int
main(int argc, char **argv)
{
	bn_opts o;
	shape   sh;

	if (bn_opts_parse(&o, argc, argv, "bench_health") != 0) {
		return 2;
	}
	long nofile = bn_raise_nofile();
	if (o.smoke) {
		sh = (shape) { 200, 20, 4, 0.3, 0.3, 0.7, 1.5 };
	} else {
		sh = (shape) { 10000, 100, 100, 1.0, 1.0, 4.0, 6.0 };
	}
	if (o.duration_s > 0) {
		sh.window_s = o.duration_s;
	}
	window *plain = calloc((size_t) o.reps, sizeof(*plain));
	window *hung  = calloc((size_t) o.reps, sizeof(*hung));
	shape   sh0   = sh;
	sh0.hung      = 0;
	if (plain == NULL || hung == NULL || variant(&o, &sh0, "plain", plain) != 0
	    || variant(&o, &sh, "hung", hung) != 0) {
		free(plain);
		free(hung);
		return 1;
	}
	long   n           = (long) sh.n;
	double iv          = sh.interval_s;
	double live_max    = iv * 1.1 + 0.15;
	double hung_period = iv * DSI_SCHED_BACKOFF_MAX;
	double hung_max    = hung_period * 1.1 + sh.timeout_s + 0.25;
	double sweep       = MED(plain, sweep_live_s);
	double missed      = MED(plain, missed_live);
	double stale       = MED(plain, stale);
	char   t_live[64], t_hung[64];
	snprintf(t_live, sizeof(t_live), "<= %.2f s (interval x 1.1 jitter + 0.15 s)", live_max);
	snprintf(t_hung, sizeof(t_hung), "<= %.2f s (backed-off period x 1.1 + timeout + 0.25 s)",
	    hung_max);

	bn_emit(&o,
	    &(bn_row) { "health", "checks per second", n, "checks/s", MED(plain, checks_per_s),
	        "instances / interval", (double) n / iv, NAN, NULL, "reported" });
	bn_emit(&o,
	    &(bn_row) { "health", "sweep duration", n, "s", sweep, "interval", iv, NAN, t_live,
	        sweep <= live_max && missed == 0 ? "met" : "missed" });
	bn_emit(&o,
	    &(bn_row) { "health", "instances missing an interval", n, "count", missed, NULL, 0, NAN,
	        "0", missed == 0 ? "met" : "missed" });
	bn_emit(&o,
	    &(bn_row) { "health", "stale last_check_ms in GetAll", n, "count", stale, NULL, 0, NAN,
	        "0", stale == 0 ? "met" : "missed" });
	bn_emit(&o,
	    &(bn_row) { "health", "server CPU per sweep", n, "ms", MED(plain, cpu_ms), "interval",
	        iv * 1000, NAN, NULL, "reported" });

	double h_all = MED(hung, sweep_all_s), h_live = MED(hung, sweep_live_s);
	double h_missed = MED(hung, missed_live);
	long   nh       = (long) sh.hung;
	char   m_all[64], m_live[64];
	snprintf(m_all, sizeof(m_all), "sweep with %ld hung (all)", nh);
	snprintf(m_live, sizeof(m_live), "sweep with %ld hung (live only)", nh);
	bn_emit(&o,
	    &(bn_row) { "health", m_all, n, "s", h_all, "backed-off period x 1.1 + timeout",
	        hung_period * 1.1 + sh.timeout_s, NAN, t_hung,
	        h_all <= hung_max ? "met" : "missed" });
	bn_emit(&o,
	    &(bn_row) { "health", m_live, n, "s", h_live, "sweep without hung", sweep, NAN, t_live,
	        h_live <= live_max && h_missed == 0 ? "met" : "missed" });
	bn_emit(&o,
	    &(bn_row) { "health", "live instances missing an interval (hung run)", n, "count",
	        h_missed, NULL, 0, NAN, "0", h_missed == 0 ? "met" : "missed" });
	bn_emit(&o,
	    &(bn_row) { "health", "server CPU per sweep (hung run)", n, "ms", MED(hung, cpu_ms),
	        "without hung", MED(plain, cpu_ms), NAN, NULL, "reported" });
	bn_note(&o,
	    "health: %zu HTTP instances (%zu services), interval %g s, timeout %g s, "
	    "--max-checks 256 (default); windows of %g s after %g s of settling; %d "
	    "repetitions; hung paths are read and never answered; serialized, %zu hung checks "
	    "would take %g s; open-file limit %ld",
	    sh.n, sh.n / sh.per_service, sh.interval_s, sh.timeout_s, sh.window_s, sh.settle_s,
	    o.reps, sh.hung, (double) sh.hung * sh.timeout_s, nofile);
	free(plain);
	free(hung);
	return 0;
}
