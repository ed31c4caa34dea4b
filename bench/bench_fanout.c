/*
 * Scenario 4: event fan-out. One registry change (a Register that changes
 * one instance's metadata, so one UPDATED event) delivered to 100
 * subscribers, each a libdiscovery watch (dsc_watch_next) on its own
 * thread, at a steady 1,000 changes/s. Latency runs from just before the
 * driver sends the Register to the moment a subscriber has the decoded
 * event; each event carries its sequence number in its metadata, so lost
 * and duplicate deliveries are counted exactly.
 *
 * The baseline is bench_echo --publish: the same driver and subscribers,
 * a server that publishes the same Event inline from its REP callback with
 * no registry and no publisher thread: nng PUB/SUB's own fan-out.
 */
#include <discovery/discovery.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "wire.h"

#define SERVICE  "fanout"
#define ENDPOINT "http://127.0.0.1:9/fanout"

enum { SRV_ECHO, SRV_DISCOVERYD, NSRV };
static const char *const srv_name[NSRV] = { "nng-pub", "discoveryd" };

/* The run's shape. */
typedef struct shape {
	size_t subs, changes;
	double rate;
} shape;

/* What the driver and the subscribers share for one run. */
typedef struct run {
	const shape     *sh;
	_Atomic int64_t *sent_ns; /* per change: when its Register left */
	atomic_bool      stop;
	atomic_int       warm; /* subscribers that have seen a warm-up event */
} run;

/* One subscriber: its watch, thread, and what it received. */
typedef struct sub {
	run       *r;
	dsc_watch *w;
	pthread_t  th;
	uint32_t  *lat_ns; /* per change; 0 = not received */
	size_t     got, dups, others;
	bool       warmed;
} sub;

static const char *
meta(const dsc_instance *x, const char *key)
{
	for (size_t i = 0; i < x->n_metadata; i++) {
		if (strcmp(x->metadata[i].key, key) == 0) {
			return x->metadata[i].value;
		}
	}
	return NULL;
}

static void *
sub_main(void *arg)
{
	sub *s = arg;
	run *r = s->r;
	while (!atomic_load(&r->stop)) {
		dsc_event *ev;
		if (dsc_watch_next(s->w, 100, &ev) != 0) {
			continue;
		}
		int64_t     now = bn_now_ns();
		const char *seq = ev->type == DSC_EVENT_UPDATED ? meta(&ev->instance, "seq") : NULL;
		if (seq == NULL) {
			s->others++; /* SYNC, or the first registration */
		} else if (seq[0] == 'w') {
			if (!s->warmed) {
				s->warmed = true;
				atomic_fetch_add(&r->warm, 1);
			}
		} else {
			size_t k = strtoul(seq, NULL, 10);
			if (k < r->sh->changes) {
				int64_t d = now - atomic_load(&r->sent_ns[k]);
				if (s->lat_ns[k] != 0) {
					s->dups++;
				} else {
					s->lat_ns[k] = d <= 0
					    ? 1
					    : (d > UINT32_MAX ? UINT32_MAX : (uint32_t) d);
					s->got++;
				}
			}
		}
		dsc_event_free(ev);
	}
	return NULL;
}

/* Registers SERVICE/ENDPOINT with metadata seq=value: one change, one event. */
static int
change(dsc_client *c, const char *value)
{
	dsc_kv           kv  = { "seq", value };
	dsc_registration reg = {
		.service    = SERVICE,
		.endpoint   = ENDPOINT,
		.metadata   = &kv,
		.n_metadata = 1,
		.ttl_ms     = 86400000, /* not polled: the only events are ours */
	};
	dsc_error err;
	int       rv = dsc_register(c, &reg, NULL, &err);
	if (rv != 0) {
		fprintf(stderr, "fanout: register: %s: %s\n", dsc_strerror(rv), err.message);
	}
	return rv;
}

/* Figures of one run. */
typedef struct figs {
	double p50_ms, p99_ms, p999_ms, max_ms, missing, dups, achieved_rate;
	double cpu_us; /* the server's CPU time per change while changes were sent */
} figs;

static int
one_run(const bn_child *srv, const shape *sh, figs *f)
{
	run         r;
	sub        *subs    = calloc(sh->subs, sizeof(*subs));
	dsc_client *c       = NULL;
	size_t      started = 0;
	uint32_t   *all     = NULL;
	int         rv      = -1;
	char        val[32];

	memset(&r, 0, sizeof(r));
	r.sh      = sh;
	r.sent_ns = calloc(sh->changes, sizeof(*r.sent_ns));
	atomic_init(&r.stop, false);
	atomic_init(&r.warm, 0);
	dsc_client_options co;
	dsc_client_options_init(&co);
	co.timeout_ms         = 10000;
	co.require_connection = true;
	if (subs == NULL || r.sent_ns == NULL || dsc_client_open(&c, srv->url, &co) != 0) {
		goto out;
	}
	const char *names[] = { SERVICE };
	for (; started < sh->subs; started++) {
		sub *s    = &subs[started];
		s->r      = &r;
		s->lat_ns = calloc(sh->changes, sizeof(*s->lat_ns));
		if (s->lat_ns == NULL || dsc_watch_open(&s->w, srv->pub_url, names, 1) != 0) {
			free(s->lat_ns);
			break;
		}
		if (pthread_create(&s->th, NULL, sub_main, s) != 0) {
			dsc_watch_close(s->w);
			free(s->lat_ns);
			break;
		}
	}
	if (started < sh->subs) {
		goto out;
	}
	/* Warm-up: changes until every subscriber is connected and has seen one. */
	for (int k = 0; atomic_load(&r.warm) < (int) sh->subs; k++) {
		if (k == 1000) {
			fprintf(stderr, "fanout: only %d of %zu subscribers connected\n",
			    atomic_load(&r.warm), sh->subs);
			goto out;
		}
		snprintf(val, sizeof(val), "w%d", k);
		if (change(c, val) != 0) {
			goto out;
		}
		bn_sleep_ms(10);
	}
	bn_sleep_ms(200);

	int64_t period = (int64_t) (1e9 / sh->rate), t0 = bn_now_ns() + 1000000;
	int64_t cpu0 = bn_proc_cpu_ns(srv->pid);
	for (size_t k = 0; k < sh->changes; k++) {
		bn_sleep_until_ns(t0 + (int64_t) k * period);
		snprintf(val, sizeof(val), "%zu", k);
		atomic_store(&r.sent_ns[k], bn_now_ns());
		if (change(c, val) != 0) {
			goto out;
		}
	}
	int64_t t_last = bn_now_ns();
	f->cpu_us      = (double) (bn_proc_cpu_ns(srv->pid) - cpu0) / 1e3 / (double) sh->changes;
	/* Let the last deliveries land: until all are in, or 2 s. */
	for (int k = 0; k < 200; k++) {
		size_t got = 0;
		for (size_t i = 0; i < sh->subs; i++) {
			got += subs[i].got; /* a racy read: only for this wait */
		}
		if (got == sh->subs * sh->changes) {
			break;
		}
		bn_sleep_ms(10);
	}
	f->achieved_rate = (double) sh->changes / ((double) (t_last - t0) / 1e9);
	rv               = 0;
out:
	atomic_store(&r.stop, true);
	for (size_t i = 0; i < started; i++) {
		pthread_join(subs[i].th, NULL);
		dsc_watch_close(subs[i].w);
	}
	if (rv == 0) {
		size_t n = 0, total = sh->subs * sh->changes;
		all     = malloc((total > 0 ? total : 1) * sizeof(*all));
		f->dups = 0;
		for (size_t i = 0; all != NULL && i < sh->subs; i++) {
			for (size_t k = 0; k < sh->changes; k++) {
				if (subs[i].lat_ns[k] != 0) {
					all[n++] = subs[i].lat_ns[k];
				}
			}
			f->dups += (double) subs[i].dups;
		}
		bn_sort_u32(all, n);
		f->missing = (double) (total - n);
		f->p50_ms  = bn_pct_u32(all, n, 50) / 1e6;
		f->p99_ms  = bn_pct_u32(all, n, 99) / 1e6;
		f->p999_ms = bn_pct_u32(all, n, 99.9) / 1e6;
		f->max_ms  = n > 0 ? all[n - 1] / 1e6 : NAN;
		free(all);
	}
	for (size_t i = 0; i < started; i++) {
		free(subs[i].lat_ns);
	}
	free(subs);
	free(r.sent_ns);
	dsc_client_close(c);
	return rv;
}

/* A real Register reply of discoveryd's, for the echo to send back: the same bytes. */
static int
capture_register_reply(const bn_child *d, const char *path)
{
	dsc_kv           kv  = { "seq", "capture" };
	dsc_registration reg = {
		.service    = SERVICE,
		.endpoint   = ENDPOINT,
		.metadata   = &kv,
		.n_metadata = 1,
		.ttl_ms     = 86400000,
	};
	void  *req;
	size_t len, reply_len;
	if (bn_pack_register(&reg, &req, &len) != 0) {
		return -1;
	}
	int rv = bn_capture_reply(d->url, req, len, 10, path, &reply_len);
	free(req);
	return rv;
}

int
main(int argc, char **argv)
{
	bn_opts  o;
	bn_child srv[NSRV];
	shape    sh;
	char     reply_path[600];
	int      status = 1;

	if (bn_opts_parse(&o, argc, argv, "bench_fanout") != 0) {
		return 2;
	}
	bn_raise_nofile();
	sh = o.smoke ? (shape) { 5, 50, 500 } : (shape) { 100, 3000, 1000 };
	if (o.duration_s > 0) {
		sh.changes = (size_t) (o.duration_s * sh.rate);
	}
	memset(srv, 0, sizeof(srv));
	if (bn_discoveryd_start(&srv[SRV_DISCOVERYD], &o, NULL, "fanout-discoveryd") != 0) {
		return 1;
	}
	snprintf(reply_path, sizeof(reply_path), "%s/fanout-reply.bin", o.out_dir);
	if (capture_register_reply(&srv[SRV_DISCOVERYD], reply_path) != 0) {
		goto out;
	}
	const char *echo_argv[] = { o.echo, "--reply-file", reply_path, "--workers", "64",
		"--publish", "tcp://127.0.0.1:0", NULL };
	if (bn_child_start(&srv[SRV_ECHO], echo_argv, true, o.out_dir, "fanout-echo") != 0) {
		goto out;
	}

	figs *fs = calloc((size_t) NSRV * (size_t) o.reps, sizeof(*fs));
	if (fs == NULL) {
		goto out;
	}
	for (int rep = 0; rep < o.reps; rep++) {
		for (int k = 0; k < NSRV; k++) {
			int   s = rep % 2 == 0 ? k : NSRV - 1 - k;
			figs *f = &fs[s * o.reps + rep];
			if (one_run(&srv[s], &sh, f) != 0) {
				free(fs);
				goto out;
			}
			printf(
			    "  rep %d %-10s %zu subscribers, %zu changes at %.0f/s: p50 %.3f ms  "
			    "p99 %.3f ms  p99.9 %.3f ms  max %.3f ms  missing %.0f  dups %.0f  "
			    "server "
			    "%.0f us CPU/change\n",
			    rep + 1, srv_name[s], sh.subs, sh.changes, f->achieved_rate, f->p50_ms,
			    f->p99_ms, f->p999_ms, f->max_ms, f->missing, f->dups, f->cpu_us);
			long n = (long) sh.subs;
			bn_raw(&o, "fanout", srv_name[s], n, rep + 1, "p50_ms", f->p50_ms);
			bn_raw(&o, "fanout", srv_name[s], n, rep + 1, "p99_ms", f->p99_ms);
			bn_raw(&o, "fanout", srv_name[s], n, rep + 1, "p999_ms", f->p999_ms);
			bn_raw(&o, "fanout", srv_name[s], n, rep + 1, "missing", f->missing);
			bn_raw(&o, "fanout", srv_name[s], n, rep + 1, "rate", f->achieved_rate);
			bn_raw(&o, "fanout", srv_name[s], n, rep + 1, "server_cpu_us_per_change",
			    f->cpu_us);
		}
	}
	double m[NSRV][5];
	for (int s = 0; s < NSRV; s++) {
		for (int q = 0; q < 5; q++) {
			double v[64];
			int    R = o.reps < 64 ? o.reps : 64;
			for (int rep = 0; rep < R; rep++) {
				const figs *f      = &fs[s * o.reps + rep];
				double      fig[5] = { f->p50_ms, f->p99_ms, f->missing, f->p999_ms,
					     f->achieved_rate };
				v[rep]             = fig[q];
			}
			m[s][q] = bn_median(v, (size_t) R);
		}
	}
	/* Missing is judged on the worst repetition, not the median. */
	double worst_missing = 0;
	for (int rep = 0; rep < o.reps; rep++) {
		double x      = fs[SRV_DISCOVERYD * o.reps + rep].missing;
		worst_missing = x > worst_missing ? x : worst_missing;
	}
	free(fs);
	long n = (long) sh.subs;
	bn_emit(&o,
	    &(bn_row) { "fanout", "delivery latency p50", n, "ms", m[SRV_DISCOVERYD][0],
	        "nng PUB echo", m[SRV_ECHO][0], NAN, NULL, "reported" });
	bn_emit(&o,
	    &(bn_row) { "fanout", "delivery latency p99", n, "ms", m[SRV_DISCOVERYD][1],
	        "nng PUB echo", m[SRV_ECHO][1], NAN, "<= 5 ms",
	        m[SRV_DISCOVERYD][1] <= 5 ? "met" : "missed" });
	bn_emit(&o,
	    &(bn_row) { "fanout", "delivery latency p99.9", n, "ms", m[SRV_DISCOVERYD][3],
	        "nng PUB echo", m[SRV_ECHO][3], NAN, NULL, "reported" });
	bn_emit(&o,
	    &(bn_row) { "fanout", "missed deliveries (worst rep)", n, "count", worst_missing,
	        "nng PUB echo (median)", m[SRV_ECHO][2], NAN, "0",
	        worst_missing == 0 ? "met" : "missed" });
	bn_emit(&o,
	    &(bn_row) { "fanout", "changes per second achieved", n, "changes/s",
	        m[SRV_DISCOVERYD][4], "nng PUB echo", m[SRV_ECHO][4], NAN, "1000 asked",
	        "reported" });
	bn_note(&o,
	    "fanout: %zu subscribers (dsc_watch, one thread each), %zu changes at %.0f/s per "
	    "repetition, %d repetitions; latency from before the Register is sent to the "
	    "decoded event in the subscriber",
	    sh.subs, sh.changes, sh.rate, o.reps);
	status = 0;
out:
	for (int s = 0; s < NSRV; s++) {
		if (srv[s].pid > 0) {
			bn_child_stop(&srv[s]);
		}
	}
	return status;
}
