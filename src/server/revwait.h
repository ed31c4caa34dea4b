/*
 * Requests that carry a min_revision the registry has not reached yet
 * (read your own writes on another cluster node): each is parked, holding
 * no thread, until a registry change brings the revision (the registry's
 * observer calls dsi_revwait_notify) or its wait ends. A fixed number of
 * slots bounds how many REP work items may be parked at once; past that,
 * a request behind is answered at once.
 */
#ifndef DSI_REVWAIT_H
#define DSI_REVWAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/registry.h"

typedef struct dsi_revwait dsi_revwait;

/*
 * Runs once per parked request, on an nng thread with no lock of ours
 * held, with 0 when the registry got to the revision, or DSC_EUNAVAILABLE
 * with the message written when the wait ended first (or the server is
 * stopping).
 */
typedef void (*dsi_revwait_fn)(void *arg, int rv);

/*
 * A waiting room for up to max_waiters requests (at least 1), each
 * waiting up to wait_ms (0: none waits). Returns 0, or
 * DSC_ENOMEM or an nng failure as a dsc_err.
 */
int dsi_revwait_create(dsi_revwait **out, int wait_ms, size_t max_waiters);

/*
 * Whether registry r has reached revision want. False with *rv 0 when it
 * has; false with *rv DSC_EUNAVAILABLE and msg saying so when it has not
 * and the request cannot wait (w NULL, a wait of 0, every slot taken,
 * stopping); true when the request waits: fn(arg, rv) says how that ended,
 * and writes msg (which must live until then) when it is UNAVAILABLE.
 */
bool dsi_revwait_park(dsi_revwait *w, dsi_registry *r, uint64_t want, int *rv, char *msg,
    size_t msg_len, dsi_revwait_fn fn, void *arg);

/*
 * The registry is at revision now: wakes the requests waiting for it. For
 * the registry's observer (under the registry's lock): memory work only.
 * w NULL is a no-op.
 */
void dsi_revwait_notify(dsi_revwait *w, uint64_t revision);

/* Requests parked now (for tests and metrics). */
size_t dsi_revwait_count(dsi_revwait *w);

/*
 * Ends every wait (those requests are answered as behind) and refuses new
 * ones; returns once their callbacks have run. Idempotent; NULL is a no-op.
 */
void dsi_revwait_stop(dsi_revwait *w);

/* Stops if needed and frees everything. NULL is a no-op. */
void dsi_revwait_destroy(dsi_revwait *w);

#endif
