/* Closed-loop REQ load: one thread and one REQ socket per client. */
#include "loadgen.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define REPLY_TIMEOUT_MS 10000

/* Holds the clients until every socket is up, then gives them the window. */
typedef struct gate {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	int             state; /* 0: wait, 1: run, 2: abort */
	int64_t         t_measure, t_end;
} gate;

/* One client: its socket, its latency samples (ns) and its counters. */
typedef struct client {
	const bn_load_opts *o;
	nng_socket          sock;
	size_t              idx;
	struct gate        *gate;
	uint32_t           *lat;
	size_t              n, cap;
	uint64_t            bad, errors;
	bool                oom;
} client;

static void
record(client *c, int64_t ns)
{
	if (c->n == c->cap) {
		size_t    ncap = c->cap == 0 ? 65536 : c->cap * 2;
		uint32_t *nl   = realloc(c->lat, ncap * sizeof(*nl));
		if (nl == NULL) {
			c->oom = true;
			return;
		}
		c->lat = nl;
		c->cap = ncap;
	}
	c->lat[c->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t) ns;
}

static void *
client_main(void *arg)
{
	client             *c = arg;
	const bn_load_opts *o = c->o;
	size_t              k = (c->idx * 7919) % o->n_reqs; /* clients start apart */

	pthread_mutex_lock(&c->gate->mtx);
	while (c->gate->state == 0) {
		pthread_cond_wait(&c->gate->cv, &c->gate->mtx);
	}
	int64_t t_measure = c->gate->t_measure, t_end = c->gate->t_end;
	bool    run = c->gate->state == 1;
	pthread_mutex_unlock(&c->gate->mtx);
	if (!run) {
		return NULL;
	}
	for (;;) {
		int64_t t0 = bn_now_ns();
		if (t0 >= t_end) {
			break;
		}
		nng_msg *m;
		if (nng_msg_alloc(&m, 0) != 0
		    || nng_msg_append(m, o->reqs[k], o->req_lens[k]) != 0) {
			c->errors++;
			break;
		}
		k = (k + 1) % o->n_reqs;
		if (nng_sendmsg(c->sock, m, 0) != 0) {
			nng_msg_free(m);
			c->errors++;
			continue;
		}
		if (nng_recvmsg(c->sock, &m, 0) != 0) {
			c->errors++;
			continue;
		}
		int64_t t1  = bn_now_ns();
		size_t  len = nng_msg_len(m);
		nng_msg_free(m);
		if (t0 < t_measure || t1 > t_end) {
			continue; /* warm-up, or finished after the window */
		}
		if (o->expect_len != 0 && len != o->expect_len) {
			c->bad++;
			continue;
		}
		record(c, t1 - t0);
	}
	return NULL;
}

static int
dial(nng_socket *s, const char *url)
{
	int rv;
	if ((rv = nng_req0_open(s)) != 0) {
		return rv;
	}
	/* Resend off: a slow reply must not turn into a second request. */
	if ((rv = nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0
	    || (rv = nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, REPLY_TIMEOUT_MS)) != 0
	    || (rv = nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, REPLY_TIMEOUT_MS)) != 0
	    || (rv = nng_dial(*s, url, NULL, 0)) != 0) {
		nng_close(*s);
	}
	return rv;
}

int
bn_load_run(const bn_load_opts *o, bn_load_result *r)
{
	client    *cs     = calloc(o->clients, sizeof(*cs));
	pthread_t *th     = calloc(o->clients, sizeof(*th));
	gate       g      = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };
	size_t     opened = 0, started = 0;
	int        rv = -1;

	memset(r, 0, sizeof(*r));
	if (cs == NULL || th == NULL || o->n_reqs == 0) {
		goto out;
	}
	for (; opened < o->clients; opened++) {
		int e = dial(&cs[opened].sock, o->url);
		if (e != 0) {
			fprintf(stderr, "loadgen: cannot dial %s: %s\n", o->url, nng_strerror(e));
			goto out;
		}
	}
	for (; started < o->clients; started++) {
		client *c = &cs[started];
		c->o      = o;
		c->idx    = started;
		c->gate   = &g;
		if (pthread_create(&th[started], NULL, client_main, c) != 0) {
			fprintf(stderr, "loadgen: cannot start thread %zu\n", started);
			break;
		}
	}
	pthread_mutex_lock(&g.mtx);
	g.state     = started == o->clients ? 1 : 2;
	g.t_measure = bn_now_ns() + (int64_t) (o->warmup_s * 1e9);
	g.t_end     = g.t_measure + (int64_t) (o->duration_s * 1e9);
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mtx);
	if (started == o->clients && o->server_pid > 0) {
		bn_sleep_until_ns(g.t_measure);
		int64_t c0 = bn_proc_cpu_ns(o->server_pid), s0 = bn_proc_ctxsw(o->server_pid);
		bn_sleep_until_ns(g.t_end);
		int64_t c1 = bn_proc_cpu_ns(o->server_pid), s1 = bn_proc_ctxsw(o->server_pid);
		r->server_cpu_s = c0 >= 0 && c1 >= 0 ? (double) (c1 - c0) / 1e9 : 0;
		r->server_ctxsw = s0 >= 0 && s1 >= 0 ? (double) (s1 - s0) : 0;
	}
	for (size_t i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
	}
	if (started < o->clients) {
		goto out;
	}

	size_t total = 0;
	for (size_t i = 0; i < o->clients; i++) {
		total += cs[i].n;
		r->bad += cs[i].bad;
		r->errors += cs[i].errors;
	}
	uint32_t *all = malloc((total > 0 ? total : 1) * sizeof(*all));
	if (all == NULL) {
		goto out;
	}
	for (size_t i = 0, at = 0; i < o->clients; i++) {
		memcpy(all + at, cs[i].lat, cs[i].n * sizeof(*all));
		at += cs[i].n;
	}
	bn_sort_u32(all, total);
	r->ok      = total;
	r->seconds = o->duration_s;
	r->rps     = (double) total / o->duration_s;
	r->p50_us  = bn_pct_u32(all, total, 50) / 1e3;
	r->p99_us  = bn_pct_u32(all, total, 99) / 1e3;
	r->p999_us = bn_pct_u32(all, total, 99.9) / 1e3;
	r->max_us  = total > 0 ? all[total - 1] / 1e3 : 0;
	free(all);
	rv = 0;
out:
	for (size_t i = 0; cs != NULL && i < opened; i++) {
		nng_close(cs[i].sock);
		free(cs[i].lat);
	}
	free(cs);
	free(th);
	return rv;
}
