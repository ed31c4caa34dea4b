/*
 * Node membership (member.h): open and close, the keeper thread (this
 * node's lease and key), the notifier thread (callbacks), views and fences.
 * The member list and its watch are in member_watch.c.
 */
#include "cluster/member.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/etcd_json.h"
#include "cluster/member_impl.h"
#include "common/timeutil.h"

#define DEFAULT_TTL_MS 10000
#define MIN_TTL_S      2 /* etcd's minimum: it raises anything lower */
#define MAX_NAME       128

static bool
valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MAX_NAME) {
		return false;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		        || (*p >= '0' && *p <= '9') || strchr("._:-", *p) != NULL)) {
			return false;
		}
	}
	return true;
}

void
dsi_member_note_locked(dsi_member *m, dsi_member_event ev, const char *name, int64_t crev)
{
	size_t           n    = strlen(name) + 1;
	dsi_member_note *note = malloc(sizeof(*note) + n);
	if (note == NULL) {
		dsi_error(m->log, "cluster: out of memory: a membership callback is lost");
		return;
	}
	note->event           = ev;
	note->create_revision = crev;
	memcpy(note->name, name, n);
	dsi_fifo_push(&m->notes, &note->link);
	pthread_cond_broadcast(&m->cond);
}

bool
dsi_member_nap_locked(dsi_member *m, int64_t ms)
{
	if (!m->stop && ms > 0) {
		struct timespec ts;
		dsi_realtime_after(&ts, ms);
		pthread_cond_timedwait(&m->cond, &m->lock, &ts);
	}
	return !m->stop;
}

/* Revokes a lease of ours; a lease already gone counts as revoked. */
static int
revoke(dsi_member *m, dsi_etcd *e, int64_t id)
{
	dsc_error err;
	int       rv = dsi_etcd_lease_revoke(e, id, &err);
	if (rv == DSC_ENOTFOUND) {
		return 0;
	}
	if (rv != 0) {
		dsi_warn(m->log, "cluster: revoking lease %lld of node %s: %s", (long long) id,
		    m->node, err.message);
	}
	return rv;
}

/* The refusal of a name another live node holds: what happened and the fix. */
static int
refuse(const dsi_member *m, const dsi_etcd_kv *holder, dsc_error *err)
{
	return dsi_etcd_fail(err, DSC_ESTATE,
	    "node name \"%s\" is already a live member of the cluster (%s, lease %lld, since "
	    "etcd revision %lld): another discoveryd runs with this name. Give this node "
	    "another --node-name, or wait up to %lld s for a crashed node's lease to expire",
	    m->node, m->key, (long long) (holder != NULL ? holder->lease : 0),
	    (long long) (holder != NULL ? holder->create_revision : 0), (long long) m->ttl_s);
}

/*
 * Grants a lease and creates my key on it if absent. On 0 *lease_out and
 * *crev_out are set. DSC_ESTATE when the key exists (err says who holds
 * it and what to do). A join that fails leaves no lease of ours behind (best
 * effort: one we could not revoke expires by itself).
 */
static int
join(dsi_member *m, int64_t *lease_out, int64_t *crev_out, dsc_error *err)
{
	int64_t id, ttl;
	int     rv = dsi_etcd_lease_grant(m->keeper_etcd, m->ttl_s, 0, &id, &ttl, err);
	if (rv != 0) {
		return rv;
	}
	dsi_etcd_cmp      cmp = { .target = DSI_ETCD_VERSION,
		     .result              = DSI_ETCD_EQUAL,
		     .key                 = m->key,
		     .key_len             = m->key_len,
		     .number              = 0 };
	dsi_etcd_op       put = { .type = DSI_ETCD_OP_PUT,
		      .key              = m->key,
		      .key_len          = m->key_len,
		      .value            = m->value,
		      .value_len        = strlen(m->value),
		      .lease            = id };
	dsi_etcd_op       get = { .type = DSI_ETCD_OP_RANGE, .key = m->key, .key_len = m->key_len };
	dsi_etcd_txn_req  req = { &cmp, 1, &put, 1, &get, 1 };
	dsi_etcd_txn_resp resp = { 0 };
	rv                     = dsi_etcd_txn(m->keeper_etcd, &req, &resp, err);
	if (rv == DSC_ETIMEDOUT || rv == DSC_ETRANSPORT) {
		/* Unknown outcome: the key on our new lease means it committed. */
		dsi_etcd_range_req  q = { .key = m->key, .key_len = m->key_len };
		dsi_etcd_range_resp r;
		if (dsi_etcd_range(m->keeper_etcd, &q, &r, NULL) == 0) {
			if (r.n_kvs == 1 && r.kvs[0].lease == id) {
				*lease_out = id;
				*crev_out  = r.kvs[0].create_revision;
				dsi_etcd_range_resp_free(&r);
				return 0;
			}
			dsi_etcd_range_resp_free(&r);
		}
	} else if (rv == 0 && resp.succeeded) {
		/* The txn created the key: its create revision is the txn's. */
		*lease_out = id;
		*crev_out  = resp.revision;
		dsi_etcd_txn_resp_free(&resp);
		return 0;
	} else if (rv == 0) {
		const dsi_etcd_op_result *got = resp.n_results == 1 ? &resp.results[0] : NULL;
		const dsi_etcd_kv        *kv = got != NULL && got->n_kvs == 1 ? &got->kvs[0] : NULL;
		rv                           = refuse(m, kv, err);
		dsi_etcd_txn_resp_free(&resp);
	}
	revoke(m, m->keeper_etcd, id);
	return rv;
}

/* My membership ended (lock held): views and the callback learn it now. */
static void
end_locked(dsi_member *m)
{
	m->lease       = 0;
	m->self_create = 0;
	m->lost        = false;
	if (m->announced) {
		m->announced = false;
		dsi_member_note_locked(m, DSI_MEMBER_ENDED, m->node, 0);
	}
	pthread_cond_broadcast(&m->cond);
}

/* The !want branch of the keeper: revoke what we hold. Lock held. */
static void
keeper_leave_locked(dsi_member *m)
{
	int64_t id = m->lease;
	end_locked(m);
	m->revoking = true; /* end_locked cleared the lease: leave waits on this instead */
	pthread_mutex_unlock(&m->lock);
	int rv = revoke(m, m->keeper_etcd, id);
	pthread_mutex_lock(&m->lock);
	m->revoking  = false;
	m->revoke_rv = rv;
	if (rv != 0) {
		m->stale_lease = id; /* expires by itself; revoked before the next join */
	}
	pthread_cond_broadcast(&m->cond);
}

/* The keeper's join attempt (lock held, released meanwhile). */
static void
keeper_join_locked(dsi_member *m, int64_t *next_ka, int *last_err)
{
	int64_t   stale = m->stale_lease, id = 0, crev = 0;
	dsc_error err;
	m->joining = true;
	pthread_mutex_unlock(&m->lock);
	int rvs = stale != 0 ? revoke(m, m->keeper_etcd, stale) : 0;
	/* A close waits for one revoke, not for a whole join too. */
	pthread_mutex_lock(&m->lock);
	bool stop = m->stop;
	pthread_mutex_unlock(&m->lock);
	int64_t t  = dsi_monotonic_ms(); /* before the grant: the lease lives a TTL from here */
	int     rv = stop ? dsi_etcd_fail(&err, DSC_ECLOSED, "closing") : join(m, &id, &crev, &err);
	pthread_mutex_lock(&m->lock);
	m->joining = false;
	if (stale != 0 && rvs == 0 && m->stale_lease == stale) {
		m->stale_lease = 0;
	}
	if (rv == 0) {
		m->lease       = id;
		m->alive_until = t + m->ttl_ms;
		*next_ka       = t + m->ttl_ms / 3;
		*last_err      = 0;
		if (m->want) {
			m->self_create = crev;
			m->announced   = true;
			dsi_info(m->log,
			    "cluster: node %s is a member again (%s, create revision %lld)",
			    m->node, m->key, (long long) crev);
			dsi_member_note_locked(m, DSI_MEMBER_RESTORED, m->node, crev);
		}
		pthread_cond_broadcast(&m->cond);
		return;
	}
	if (rv != *last_err) { /* one line per kind of failure, not one per try */
		dsi_warn(m->log, "cluster: node %s cannot rejoin yet: %s", m->node, err.message);
		*last_err = rv;
	}
	dsi_member_nap_locked(m, m->ttl_ms / 3);
}

static void *
keeper_main(void *arg)
{
	dsi_member *m = arg;
	pthread_mutex_lock(&m->lock);
	int64_t next_ka  = m->alive_until - m->ttl_ms + m->ttl_ms / 3;
	int     last_err = 0;
	while (!m->stop) {
		if (!m->want) {
			if (m->lease != 0) {
				keeper_leave_locked(m);
			} else {
				pthread_cond_wait(&m->cond, &m->lock);
			}
			continue;
		}
		if (m->lease == 0) {
			keeper_join_locked(m, &next_ka, &last_err);
			continue;
		}
		int64_t now = dsi_monotonic_ms();
		if (m->lost || now >= m->alive_until) {
			dsi_warn(m->log, "cluster: node %s's membership ended (%s); rejoining",
			    m->node,
			    m->lost ? "its key or lease is gone"
			            : "no keepalive succeeded for a whole TTL");
			m->stale_lease = m->lease;
			end_locked(m);
			continue;
		}
		if (now >= next_ka) {
			int64_t   id = m->lease, ttl;
			dsc_error err;
			pthread_mutex_unlock(&m->lock);
			int rv = dsi_etcd_lease_keepalive(m->keepalive_etcd, id, &ttl, &err);
			pthread_mutex_lock(&m->lock);
			if (m->lease != id) {
				continue;
			}
			if (rv == 0) {
				m->alive_until = now + m->ttl_ms;
				next_ka        = now + m->ttl_ms / 3;
			} else if (rv == DSC_ENOTFOUND) {
				m->lost = true;
			} else {
				next_ka = dsi_monotonic_ms() + m->ttl_ms / 6; /* try again sooner */
				dsi_debug(m->log, "cluster: keepalive of node %s: %s", m->node,
				    err.message);
			}
			continue;
		}
		int64_t until = next_ka < m->alive_until ? next_ka : m->alive_until;
		dsi_member_nap_locked(m, until - now);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static void *
notifier_main(void *arg)
{
	dsi_member *m = arg;
	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		dsi_fifo_node *chain = dsi_fifo_take(&m->notes);
		if (chain == NULL) {
			pthread_cond_wait(&m->cond, &m->lock);
			continue;
		}
		pthread_mutex_unlock(&m->lock);
		while (chain != NULL) {
			dsi_member_note *note = DSI_CONTAINER_OF(chain, dsi_member_note, link);
			chain                 = chain->next;
			if (m->cb != NULL) {
				m->cb(m->arg, note->event, note->name, note->create_revision);
			}
			free(note);
		}
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* {"node":..,"started":..,"info":..}: what other members and operators see. */
static char *
make_value(const char *node, const char *info)
{
	struct timespec ts;
	char            started[40];
	clock_gettime(CLOCK_REALTIME, &ts);
	dsi_log_timestamp(started, sizeof(started), &ts);
	json_t *o = json_pack("{s:s,s:s}", "node", node, "started", started);
	if (o != NULL && info != NULL && json_object_set_new(o, "info", json_string(info)) != 0) {
		json_decref(o);
		return NULL;
	}
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

static char *
concat(const char *a, const char *b, const char *c)
{
	size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
	char  *s = malloc(na + nb + nc + 1);
	if (s != NULL) {
		memcpy(s, a, na);
		memcpy(s + na, b, nb);
		memcpy(s + na + nb, c, nc + 1);
	}
	return s;
}

static void
free_member(dsi_member *m)
{
	dsi_etcd_close(m->keeper_etcd);
	dsi_etcd_close(m->keepalive_etcd);
	dsi_etcd_close(m->watch_etcd);
	dsi_member_entries_free(m->list, m->n_list);
	dsi_fifo_node *n = dsi_fifo_take(&m->notes);
	while (n != NULL) {
		dsi_fifo_node *next = n->next;
		free(DSI_CONTAINER_OF(n, dsi_member_note, link));
		n = next;
	}
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m->node);
	free(m->key);
	free(m->range);
	free((void *) m->value);
	free(m);
}

/* Starts the three threads; on failure none is left running. */
static int
start_threads(dsi_member *m, dsc_error *err)
{
	if (pthread_create(&m->keeper, NULL, keeper_main, m) != 0) {
		return dsi_etcd_fail(err, DSC_ENOMEM, "cannot start the membership thread");
	}
	if (pthread_create(&m->watcher, NULL, dsi_member_watcher_main, m) != 0) {
		goto stop1;
	}
	if (pthread_create(&m->notifier, NULL, notifier_main, m) != 0) {
		goto stop2;
	}
	m->threads_running = true;
	return 0;
stop2:
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->watcher, NULL);
stop1:
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->keeper, NULL);
	return dsi_etcd_fail(err, DSC_ENOMEM, "cannot start the membership threads");
}

int
dsi_member_open(dsi_member **out, const char *endpoints, const dsi_etcd_tls *tls,
    const char *prefix, const char *node, const char *info, int ttl_ms, const dsi_log *log,
    dsi_member_cb callback, void *arg, dsc_error *err)
{
	if (!valid_name(node)) {
		return dsi_etcd_fail(err, DSC_EINVAL,
		    "node name \"%.140s\" is not 1 to %d characters of A-Z a-z 0-9 . _ : -", node,
		    MAX_NAME);
	}
	dsi_member *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		return dsi_etcd_fail(err, DSC_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	dsi_fifo_init(&m->notes);
	int64_t ttl_s = ttl_ms <= 0 ? DEFAULT_TTL_MS / 1000 : (ttl_ms + 999) / 1000;
	m->ttl_s      = ttl_s < MIN_TTL_S ? MIN_TTL_S : ttl_s;
	m->ttl_ms     = (int) m->ttl_s * 1000;
	m->call_ms    = m->ttl_ms > 5000 ? m->ttl_ms : 5000;
	m->log        = log;
	m->cb         = callback;
	m->arg        = arg;
	m->want       = true;
	m->node       = strdup(node);
	m->range      = concat(prefix, "members/", "");
	m->key        = concat(prefix, "members/", node);
	m->value      = make_value(node, info);
	int rv        = DSC_ENOMEM;
	if (m->node == NULL || m->range == NULL || m->key == NULL || m->value == NULL) {
		dsi_etcd_fail(err, rv, "out of memory");
		goto fail;
	}
	m->key_len   = strlen(m->key);
	m->range_len = strlen(m->range);
	if ((rv = dsi_etcd_open_tls(&m->keeper_etcd, endpoints, m->call_ms, tls, err)) != 0
	    || (rv = dsi_etcd_open_tls(&m->keepalive_etcd, endpoints, m->ttl_ms / 3, tls, err)) != 0
	    || (rv = dsi_etcd_open_tls(&m->watch_etcd, endpoints, m->call_ms, tls, err)) != 0) {
		goto fail;
	}
	m->alive_until = dsi_monotonic_ms() + m->ttl_ms;
	if ((rv = join(m, &m->lease, &m->self_create, err)) != 0) {
		goto fail;
	}
	m->announced = true;
	if ((rv = dsi_member_resync(m, m->watch_etcd, false, &m->list_rev, err)) != 0
	    || (rv = start_threads(m, err)) != 0) {
		revoke(m, m->keeper_etcd, m->lease);
		goto fail;
	}
	dsi_info(log, "cluster: node %s joined (%s, lease %lld of %lld s, create revision %lld)",
	    node, m->key, (long long) m->lease, (long long) m->ttl_s, (long long) m->self_create);
	*out = m;
	return 0;
fail:
	free_member(m);
	return rv;
}

/* Stops and joins the threads (idempotent). */
static void
stop_threads(dsi_member *m)
{
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->threads_running) {
		pthread_join(m->keeper, NULL);
		pthread_join(m->watcher, NULL);
		pthread_join(m->notifier, NULL);
		m->threads_running = false;
	}
}

void
dsi_member_close(dsi_member *m)
{
	if (m == NULL) {
		return;
	}
	stop_threads(m);
	/* The keeper has ended: its handle is ours now. */
	if (!m->crashed && m->lease != 0) {
		revoke(m, m->keeper_etcd, m->lease);
	}
	if (!m->crashed && m->stale_lease != 0) {
		revoke(m, m->keeper_etcd, m->stale_lease);
	}
	free_member(m);
}

void
dsi_member_crash_for_test(dsi_member *m)
{
	pthread_mutex_lock(&m->lock);
	m->crashed = true;
	pthread_mutex_unlock(&m->lock);
	stop_threads(m);
}

int
dsi_member_ttl_ms(const dsi_member *m)
{
	return m->ttl_ms;
}

int
dsi_member_leave(dsi_member *m)
{
	pthread_mutex_lock(&m->lock);
	m->want        = false;
	m->self_create = 0; /* not a member from now on, whatever the revoke says */
	m->revoke_rv   = 0;
	if (m->announced) {
		m->announced = false;
		dsi_member_note_locked(m, DSI_MEMBER_ENDED, m->node, 0);
	}
	pthread_cond_broadcast(&m->cond);
	int64_t deadline = dsi_monotonic_ms() + 2 * (int64_t) m->call_ms;
	int     rv       = 0;
	while ((m->lease != 0 || m->joining || m->revoking) && !m->stop) {
		int64_t left = deadline - dsi_monotonic_ms();
		if (left <= 0) {
			rv = DSC_ETIMEDOUT;
			break;
		}
		dsi_member_nap_locked(m, left);
	}
	if (rv == 0) {
		rv = m->revoke_rv;
	}
	pthread_mutex_unlock(&m->lock);
	return rv;
}

int
dsi_member_rejoin(dsi_member *m, int timeout_ms)
{
	pthread_mutex_lock(&m->lock);
	m->want = true;
	pthread_cond_broadcast(&m->cond);
	int64_t deadline = dsi_monotonic_ms() + timeout_ms;
	int     rv       = 0;
	while (m->self_create == 0) {
		int64_t left = deadline - dsi_monotonic_ms();
		if (left <= 0 || m->stop) {
			rv = DSC_ETIMEDOUT;
			break;
		}
		dsi_member_nap_locked(m, left);
	}
	pthread_mutex_unlock(&m->lock);
	return rv;
}
