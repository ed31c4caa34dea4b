/*
 * The etcd backend's follower: one thread that watches the prefix and
 * applies other nodes' transactions to the registry, each exactly as its
 * writer applied it (the journal in the counter key), checking that the
 * counter moved by exactly the revisions the changes take. Anything else
 * (a compaction, a mismatch, a stream that stalls or breaks) reloads
 * everything at one revision and publishes SYNC, so views reload too.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/timeutil.h"
#include "server/etcd_backend_impl.h"

#define NEXT_MS 500 /* one wait for the stream, so that stop is seen */
/*
 * Silence (no event, no progress notification) after which the stream is
 * reopened on the next member: etcd's progress interval must be shorter
 * (--experimental-watch-progress-notify-interval, docs/cluster-operations.md).
 */
#define STALL_MS   10000
#define BACKOFF_MS 2000 /* the longest wait between attempts while etcd is away */

static bool
stopping(etcd_backend *e)
{
	pthread_mutex_lock(&e->mtx);
	bool s = e->stop;
	pthread_mutex_unlock(&e->mtx);
	return s;
}

/* Waits ms unless stopped first. */
static void
pause_ms(etcd_backend *e, int ms)
{
	struct timespec ts;
	dsi_realtime_after(&ts, ms);
	pthread_mutex_lock(&e->mtx);
	if (!e->stop) {
		pthread_cond_timedwait(&e->cv, &e->mtx, &ts);
	}
	pthread_mutex_unlock(&e->mtx);
}

static void
set_applied(etcd_backend *e, int64_t rev, bool applied_txn)
{
	pthread_mutex_lock(&e->mtx);
	if (rev > e->applied) {
		e->applied = rev;
	}
	e->n_applied += applied_txn;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mtx);
}

/* Reloads everything under gate; the etcd revision read is where the watch goes on. */
static int
resync(etcd_backend *e, const char *why_now)
{
	char    why[512];
	int64_t at = 0;

	dsi_warn(e->log, "%s: %s; reloading the registry from etcd", e->label, why_now);
	pthread_mutex_lock(&e->gate);
	e->applier.lock(e->applier.arg);
	int rv
	    = dsi_etcdb_read_all(e, e->fetcd, e->registry, NULL, NULL, true, &at, why, sizeof(why));
	if (rv == 0) {
		dsi_registry_sync(e->registry); /* views reload on it */
	}
	e->applier.unlock(e->applier.arg);
	pthread_mutex_unlock(&e->gate);
	e->applier.after(e->applier.arg);
	if (rv != 0) {
		dsi_warn(e->log, "%s: reload failed: %s", e->label, why);
		return rv;
	}
	atomic_store(&e->heard_at, dsi_monotonic_ms());
	pthread_mutex_lock(&e->mtx);
	e->n_resyncs++;
	e->applied = at; /* may go back: what memory reflects now */
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mtx);
	return 0;
}

static const dsi_etcd_event *
find_put(const dsi_etcd_event *ev, size_t n, const char *key)
{
	size_t len = strlen(key);
	for (size_t i = 0; i < n; i++) {
		if (ev[i].type == DSI_ETCD_EVENT_PUT && ev[i].kv.key.len == len
		    && memcmp(ev[i].kv.key.data, key, len) == 0) {
			return &ev[i];
		}
	}
	return NULL;
}

/* Prepares journal entry je from the transaction's events; 0 or an error in why. */
static int
prepare_entry(etcd_backend *e, const journal_entry *je, const dsi_etcd_event *ev, size_t n,
    uint32_t pend_svc, uint32_t pend_total, dsi_registry_op **op, char *why, size_t why_len)
{
	if (je->kind == J_SERVICE) {
		return dsi_registry_prepare_deregister(e->registry, je->service, NULL, op);
	}
	if (je->kind == J_DEREGISTER) {
		return dsi_registry_prepare_deregister(e->registry, je->service, je->endpoint, op);
	}
	if (je->kind == J_HEALTH) {
		char                 *hkey = dsi_etcdb_health_key(e, je->service, je->endpoint);
		const dsi_etcd_event *hput = hkey != NULL ? find_put(ev, n, hkey) : NULL;
		char                  reason[96];
		dsc_health            st;
		free(hkey);
		if (hput == NULL
		    || dsi_etcdb_health_parse(
		           hput->kv.value.data, hput->kv.value.len, &st, reason, sizeof(reason))
		        != 0) {
			snprintf(why, why_len,
			    "a health change of %s is missing from its transaction", je->service);
			return DSC_EPROTO;
		}
		return dsi_registry_prepare_health(
		    e->registry, je->service, je->endpoint, st, reason, dsi_wall_ms(), op);
	}
	char                 *key = dsi_etcdb_instance_key(e, je->service, je->endpoint);
	const dsi_etcd_event *put = key != NULL ? find_put(ev, n, key) : NULL;
	free(key);
	if (put == NULL) {
		snprintf(why, why_len, "a registration of %s is missing from its transaction",
		    je->service);
		return DSC_EPROTO;
	}
	Discovery__V1__StoredInstance *msg;
	dsi_registration               reg;
	dsc_kv                        *kv;
	int rv = dsi_etcdb_decode(put->kv.value.data, put->kv.value.len, &msg, &reg, &kv);
	if (rv == 0) {
		rv = dsi_registry_prepare_register(e->registry, &reg, pend_svc, pend_total,
		    dsi_wall_ms(), false, op, why, why_len);
		free(kv);
		discovery__v1__stored_instance__free_unpacked(msg, NULL);
	}
	return rv;
}

/*
 * Applies the transaction at etcd revision rev (its events ev), when it
 * changed the counter. Returns 0, or an error after which the caller
 * reloads (why says what went wrong).
 */
static int
apply_txn(
    etcd_backend *e, int64_t rev, const dsi_etcd_event *ev, size_t n, char *why, size_t why_len)
{
	char                 *revkey = dsi_etcdb_key(e, "rev");
	const dsi_etcd_event *cput   = revkey != NULL ? find_put(ev, n, revkey) : NULL;
	journal               j;
	int                   rv = 0;

	why[0] = 0;
	free(revkey);
	for (size_t i = 0; i < n; i++) {
		dsi_etcdb_alive_event(e, &ev[i].kv, ev[i].type == DSI_ETCD_EVENT_DELETE);
	}
	if (cput == NULL) {
		set_applied(e, rev, false); /* not the registry's: a member or a lease */
		return 0;
	}
	if (dsi_etcdb_journal_parse(cput->kv.value.data, cput->kv.value.len, &j) != 0) {
		snprintf(
		    why, why_len, "the counter at etcd revision %" PRId64 " cannot be read", rev);
		return DSC_EPROTO;
	}
	dsi_registry_op **ops = calloc(j.n + 1, sizeof(*ops));
	pthread_mutex_lock(&e->gate);
	uint64_t local = dsi_registry_revision(e->registry), revs = 0;
	if (ops == NULL) {
		rv = DSC_ENOMEM;
		snprintf(why, why_len, "out of memory");
	} else if (local >= j.counter) {
		/* This node's own transaction, which its writer applied already. */
		e->rev_mod = rev;
	} else {
		uint32_t total = 0;
		for (size_t i = 0; rv == 0 && i < j.n; i++) {
			uint32_t svc = 0;
			for (size_t k = 0; k < i; k++) {
				svc += ops[k] != NULL && dsi_registry_op_get(ops[k])->creates
				    && strcmp(j.e[k].service, j.e[i].service) == 0;
			}
			rv = prepare_entry(e, &j.e[i], ev, n, svc, total, &ops[i], why, why_len);
			if (rv == 0) {
				revs += dsi_registry_op_get(ops[i])->revisions;
				total += dsi_registry_op_get(ops[i])->creates;
			} else if (why[0] == 0) {
				snprintf(why, why_len, "a change of %s could not be applied (%s)",
				    j.e[i].service, dsi_strerror(rv));
			}
		}
		if (rv == 0 && local + revs != j.counter) {
			snprintf(why, why_len,
			    "the counter went from %" PRIu64 " to %" PRIu64
			    " at etcd revision %" PRId64 ", but the changes take %" PRIu64,
			    local, j.counter, rev, revs);
			rv = DSC_ESTATE;
		}
		if (rv == 0) {
			e->applier.lock(e->applier.arg);
			for (size_t i = 0; i < j.n; i++) {
				dsi_registry_commit(e->registry, ops[i], NULL, NULL);
				ops[i] = NULL;
			}
			e->applier.unlock(e->applier.arg);
			e->rev_mod = rev;
		}
	}
	pthread_mutex_unlock(&e->gate);
	for (size_t i = 0; ops != NULL && i < j.n; i++) {
		dsi_registry_op_free(ops[i]);
	}
	free(ops);
	dsi_etcdb_journal_free(&j);
	if (rv == 0) {
		e->applier.after(e->applier.arg);
		set_applied(e, rev, local < j.counter);
	}
	return rv;
}

/* Applies one message's transactions, one etcd revision at a time. */
static int
apply_message(etcd_backend *e, const dsi_etcd_watch_resp *m, char *why, size_t why_len)
{
	size_t i = 0;
	while (i < m->n_events) {
		int64_t rev = m->events[i].kv.mod_revision;
		size_t  k   = i;
		while (k < m->n_events && m->events[k].kv.mod_revision == rev) {
			k++;
		}
		int rv = apply_txn(e, rev, &m->events[i], k - i, why, why_len);
		if (rv != 0) {
			return rv;
		}
		i = k;
	}
	if (m->n_events == 0) {
		set_applied(e, m->revision, false); /* a progress notification */
	}
	return 0;
}

/* Follows one watch stream until it ends; returns why it ended (0: stop). */
static int
follow_stream(etcd_backend *e, dsi_etcd_watch *w, char *why, size_t why_len)
{
	int64_t last = dsi_monotonic_ms();
	while (!stopping(e)) {
		dsi_etcd_watch_resp m;
		dsc_error           err;
		int                 rv = dsi_etcd_watch_next(w, NEXT_MS, &m, &err);
		if (rv == DSC_ETIMEDOUT) {
			if (dsi_monotonic_ms() - last > STALL_MS) {
				snprintf(why, why_len, "the watch was silent for %d ms", STALL_MS);
				return DSC_ETIMEDOUT;
			}
			continue;
		}
		if (rv != 0) {
			snprintf(why, why_len, "the watch ended (%.300s)", err.message);
			return rv;
		}
		last = dsi_monotonic_ms();
		atomic_store(&e->heard_at, last);
		if (m.canceled) {
			snprintf(why, why_len, "the watch was canceled (%s)",
			    m.compact_revision > 0 ? "history compacted" : "by etcd");
			rv = m.compact_revision > 0 ? DSC_ESTATE : DSC_ECLOSED;
		} else {
			rv = apply_message(e, &m, why, why_len);
		}
		dsi_etcd_watch_resp_free(&m);
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

void *
dsi_etcdb_follow_main(void *arg)
{
	etcd_backend *e       = arg;
	int           backoff = 50;
	bool          reload  = false;
	char          why[512];

	while (!stopping(e)) {
		if (reload) {
			if (resync(e, why) != 0) {
				pause_ms(e, backoff);
				backoff = backoff * 2 < BACKOFF_MS ? backoff * 2 : BACKOFF_MS;
				continue;
			}
			reload = false;
		}
		pthread_mutex_lock(&e->mtx);
		int64_t from = e->applied + 1;
		pthread_mutex_unlock(&e->mtx);
		dsi_etcd_watch_req rq = { .key = e->prefix,
			.key_len               = strlen(e->prefix),
			.prefix                = true,
			.start_revision        = from,
			.progress_notify       = true };
		dsi_etcd_watch    *w;
		dsc_error          err;
		if (dsi_etcd_watch_open(e->fetcd, &rq, &w, &err) != 0) {
			dsi_warn(e->log, "%s: cannot watch: %s", e->label, err.message);
			pause_ms(e, backoff);
			backoff = backoff * 2 < BACKOFF_MS ? backoff * 2 : BACKOFF_MS;
			continue;
		}
		backoff = 50;
		why[0]  = 0;
		int rv  = follow_stream(e, w, why, sizeof(why));
		dsi_etcd_watch_close(w);
		if (rv == DSC_ETIMEDOUT || rv == DSC_ETRANSPORT || rv == DSC_EUNAVAILABLE) {
			dsi_etcd_next_endpoint(e->fetcd); /* a silent or cut-off member: another */
		}
		if (rv != 0) {
			/* A broken or silent stream resumes where it was; anything else reloads. */
			reload = rv != DSC_ETIMEDOUT && rv != DSC_ETRANSPORT && rv != DSC_ECLOSED
			    && rv != DSC_EUNAVAILABLE && rv != DSC_ECONNREFUSED;
			if (!reload) {
				dsi_info(e->log,
				    "%s: %s; watching again from etcd revision %" PRId64, e->label,
				    why, from);
			}
		}
	}
	return NULL;
}
