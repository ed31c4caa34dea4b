/*
 * The integration tests' common fixture: one discoveryd (td_daemon_start)
 * and one libdiscovery client on it. No cmocka here: calls return codes, so
 * group set-ups and benchmarks can use them alike.
 */
#ifndef TEST_FIXTURE_H
#define TEST_FIXTURE_H

#include <discovery/discovery.h>
#include <stdbool.h>

#include "support/daemon.h"

/* A TTL long enough that no test outlives it: the server never polls TTL instances. */
#define TF_TTL_MS 600000

typedef struct tf_fixture {
	td_daemon   d;
	dsc_client *c; /* on d.url; tf_stop closes it */
} tf_fixture;

/*
 * Starts the daemon with extra_args (td_daemon_start_sync's fast SYNC period
 * when sync) and opens f->c on it with tf_client_open. Returns 0, or -1 with
 * nothing left running.
 */
int tf_start(tf_fixture *f, bool sync, const char *const *extra_args);

/* Closes f->c and stops the daemon: 0 when it shut down cleanly (exit status 0). */
int tf_stop(tf_fixture *f);

/*
 * Opens *out on url with a TU_LIVENESS_MS request timeout (a liveness
 * bound, not a speed claim). Returns 0 or the library's error.
 */
int tf_client_open(dsc_client **out, const char *url);

#endif
