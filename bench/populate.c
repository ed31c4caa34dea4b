/* Parallel registration through libdiscovery, one client per thread. */
#include "populate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* What every registering thread shares. */
typedef struct job {
	const char *url;
	size_t      n, threads;
	bn_reg_fill fill;
	void       *arg;
	atomic_int  failed;
} job;

/* One thread: its slice of the instances (i = t, t + threads, ...). */
typedef struct worker {
	job      *j;
	size_t    t;
	pthread_t th;
} worker;

static void *
worker_main(void *arg)
{
	worker            *w = arg;
	job               *j = w->j;
	dsc_client        *c;
	dsc_client_options co;
	dsc_error          err;

	dsc_client_options_init(&co);
	co.timeout_ms = 20000;
	if (dsc_client_open(&c, j->url, &co) != 0) {
		atomic_store(&j->failed, 1);
		return NULL;
	}
	for (size_t i = w->t; i < j->n && atomic_load(&j->failed) == 0; i += j->threads) {
		bn_reg_item it;
		dsc_kv      kv[2];
		memset(&it, 0, sizeof(it));
		j->fill(j->arg, i, &it);
		for (size_t k = 0; k < it.n_meta && k < 2; k++) {
			kv[k].key   = it.keys[k];
			kv[k].value = it.vals[k];
		}
		dsc_registration r = {
			.service     = it.service,
			.endpoint    = it.endpoint,
			.metadata    = it.n_meta > 0 ? kv : NULL,
			.n_metadata  = it.n_meta > 2 ? 2 : it.n_meta,
			.health_path = it.health_path[0] ? it.health_path : NULL,
			.ttl_ms      = it.ttl_ms,
		};
		int rv = dsc_register(c, &r, NULL, &err);
		if (rv == 0 && it.heartbeat) {
			rv = dsc_heartbeat(c, it.service, it.endpoint, NULL, &err);
		}
		if (rv != 0) {
			if (atomic_exchange(&j->failed, 1) == 0) {
				fprintf(stderr, "register %s %s: %s: %s\n", it.service, it.endpoint,
				    dsc_strerror(rv), err.message);
			}
		}
	}
	dsc_client_close(c);
	return NULL;
}

int
bn_register_all(
    const char *url, size_t n, size_t threads, bn_reg_fill fill, void *arg, double *elapsed_s)
{
	job     j       = { .url = url, .n = n, .threads = threads, .fill = fill, .arg = arg };
	worker *ws      = calloc(threads, sizeof(*ws));
	size_t  started = 0;
	int64_t t0      = bn_now_ns();

	atomic_init(&j.failed, 0);
	if (ws == NULL) {
		return -1;
	}
	for (; started < threads; started++) {
		ws[started].j = &j;
		ws[started].t = started;
		if (pthread_create(&ws[started].th, NULL, worker_main, &ws[started]) != 0) {
			atomic_store(&j.failed, 1);
			break;
		}
	}
	for (size_t i = 0; i < started; i++) {
		pthread_join(ws[i].th, NULL);
	}
	free(ws);
	if (elapsed_s != NULL) {
		*elapsed_s = (double) (bn_now_ns() - t0) / 1e9;
	}
	return atomic_load(&j.failed) ? -1 : 0;
}
