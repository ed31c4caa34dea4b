/*
 * The live member list (member.h): a range of <prefix>members/ at one
 * revision, then a watch from the next revision with progress
 * notifications. A compaction, a cancel, an error or a silence longer than
 * 3 TTLs re-reads the list (a few keys: cheap) and reopens the watch; the
 * differences are reported as JOINED and LEFT.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/etcd_json.h"
#include "cluster/member_impl.h"
#include "common/timeutil.h"

#define POLL_MS    200 /* the watcher looks at m->stop this often */
#define BACKOFF_MS 500 /* after a failed range or watch */

void
dsi_member_entries_free(dsi_member_entry *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].name);
		free(list[i].info);
	}
	free(list);
}

/* The "info" of a member key's JSON value, malloc'd, or NULL. */
static char *
value_info(const dsi_etcd_bytes *value)
{
	json_t *o = json_loadb((const char *) value->data, value->len, 0, NULL);
	json_t *i = json_object_get(o, "info");
	char   *s = json_is_string(i) ? strdup(json_string_value(i)) : NULL;
	json_decref(o);
	return s;
}

/*
 * The member name of a key under m->range, or NULL for a key that is not
 * one (empty, or deeper). Points into key.
 */
static const char *
key_name(const dsi_member *m, const dsi_etcd_bytes *key)
{
	if (key->len <= m->range_len || memcmp(key->data, m->range, m->range_len) != 0) {
		return NULL;
	}
	const char *name = (const char *) key->data + m->range_len;
	if (strlen(name) != key->len - m->range_len || strchr(name, '/') != NULL) {
		return NULL;
	}
	return name;
}

static int
entry_from_kv(const dsi_member *m, const dsi_etcd_kv *kv, dsi_member_entry *out)
{
	const char *name = key_name(m, &kv->key);
	if (name == NULL) {
		return DSC_EINVAL;
	}
	out->name            = strdup(name);
	out->info            = value_info(&kv->value);
	out->create_revision = kv->create_revision;
	out->mod_revision    = kv->mod_revision;
	return out->name != NULL ? 0 : DSC_ENOMEM;
}

/* Where name is in m->list, or where it would go (*found false). Lock held. */
static size_t
find_locked(const dsi_member *m, const char *name, bool *found)
{
	size_t lo = 0, hi = m->n_list;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int    c   = strcmp(m->list[mid].name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*found = false;
	return lo;
}

static void
members_rev_locked(dsi_member *m)
{
	m->members_rev = 0;
	for (size_t i = 0; i < m->n_list; i++) {
		if (m->list[i].mod_revision > m->members_rev) {
			m->members_rev = m->list[i].mod_revision;
		}
	}
}

/* A member key is gone (lock held): mine ends the membership. */
static void
gone_locked(dsi_member *m, const dsi_member_entry *e)
{
	if (strcmp(e->name, m->node) == 0 && e->create_revision == m->self_create
	    && m->self_create != 0) {
		m->lost = true;
	}
	dsi_member_note_locked(m, DSI_MEMBER_LEFT, e->name, 0);
}

/* Reports the differences between m->list and fresh[n] (both sorted). Lock held. */
static void
diff_locked(dsi_member *m, const dsi_member_entry *fresh, size_t n)
{
	size_t i = 0, j = 0;
	while (i < m->n_list || j < n) {
		int c = i == m->n_list ? 1 : j == n ? -1 : strcmp(m->list[i].name, fresh[j].name);
		if (c == 0 && m->list[i].create_revision == fresh[j].create_revision) {
			i++, j++;
			continue;
		}
		if (c <= 0) {
			gone_locked(m, &m->list[i++]);
		}
		if (c >= 0) {
			dsi_member_note_locked(
			    m, DSI_MEMBER_JOINED, fresh[j].name, fresh[j].create_revision);
			j++;
		}
	}
}

int
dsi_member_resync(dsi_member *m, dsi_etcd *e, bool notify, int64_t *rev_out, dsc_error *err)
{
	dsi_etcd_range_req  q = { .key = m->range, .key_len = m->range_len, .prefix = true };
	dsi_etcd_range_resp r;
	int                 rv = dsi_etcd_range(e, &q, &r, err);
	if (rv != 0) {
		return rv;
	}
	dsi_member_entry *fresh = calloc(r.n_kvs > 0 ? r.n_kvs : 1, sizeof(*fresh));
	size_t            n     = 0;
	for (size_t i = 0; fresh != NULL && i < r.n_kvs; i++) {
		int erv = entry_from_kv(m, &r.kvs[i], &fresh[n]);
		if (erv == DSC_ENOMEM) {
			dsi_member_entries_free(fresh, n + 1);
			fresh = NULL;
		} else if (erv == 0) {
			n++;
		}
	}
	if (fresh == NULL) {
		dsi_etcd_range_resp_free(&r);
		return dsi_etcd_fail(err, DSC_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&m->lock);
	if (notify) {
		diff_locked(m, fresh, n);
	}
	/* Absent from a list read after my key was made: my membership is over. */
	bool found = false;
	for (size_t i = 0; i < n && !found; i++) {
		found = strcmp(fresh[i].name, m->node) == 0
		    && fresh[i].create_revision == m->self_create;
	}
	if (m->self_create != 0 && r.revision >= m->self_create && !found) {
		m->lost = true;
	}
	dsi_member_entries_free(m->list, m->n_list);
	m->list     = fresh;
	m->n_list   = n;
	m->list_rev = r.revision;
	members_rev_locked(m);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	*rev_out = r.revision;
	dsi_etcd_range_resp_free(&r);
	return 0;
}

/* Applies one watch event to m->list. Lock held. */
static void
apply_locked(dsi_member *m, const dsi_etcd_event *ev)
{
	const char *name = key_name(m, &ev->kv.key);
	if (name == NULL) {
		return;
	}
	bool   found;
	size_t at = find_locked(m, name, &found);
	if (ev->type == DSI_ETCD_EVENT_DELETE) {
		if (found) {
			dsi_member_entry gone = m->list[at];
			memmove(&m->list[at], &m->list[at + 1],
			    (m->n_list - at - 1) * sizeof(*m->list));
			m->n_list--;
			gone_locked(m, &gone);
			free(gone.name);
			free(gone.info);
		}
		return;
	}
	dsi_member_entry e;
	if (entry_from_kv(m, &ev->kv, &e) != 0) {
		dsi_error(m->log, "cluster: out of memory: the member list is incomplete");
		return;
	}
	if (found && m->list[at].create_revision == e.create_revision) {
		/* A rewrite of the same key: the same membership. */
		free(m->list[at].info);
		m->list[at].info         = e.info;
		m->list[at].mod_revision = e.mod_revision;
		free(e.name);
		return;
	}
	if (found) {
		gone_locked(m, &m->list[at]);
		free(m->list[at].name);
		free(m->list[at].info);
	} else {
		dsi_member_entry *grown = realloc(m->list, (m->n_list + 1) * sizeof(*m->list));
		if (grown == NULL) {
			dsi_error(m->log, "cluster: out of memory: the member list is incomplete");
			free(e.name);
			free(e.info);
			return;
		}
		m->list = grown;
		memmove(&m->list[at + 1], &m->list[at], (m->n_list - at) * sizeof(*m->list));
		m->n_list++;
	}
	m->list[at] = e;
	dsi_member_note_locked(m, DSI_MEMBER_JOINED, e.name, e.create_revision);
}

/* Opens the watch from rev + 1, re-reading the list first when resync. */
static dsi_etcd_watch *
reopen(dsi_member *m, bool resync, int64_t *rev, int *last_err)
{
	dsc_error       err;
	dsi_etcd_watch *w  = NULL;
	int             rv = resync ? dsi_member_resync(m, m->watch_etcd, true, rev, &err) : 0;
	if (rv == 0) {
		dsi_etcd_watch_req q = { .key = m->range,
			.key_len              = m->range_len,
			.prefix               = true,
			.start_revision       = *rev + 1,
			.progress_notify      = true };
		rv                   = dsi_etcd_watch_open(m->watch_etcd, &q, &w, &err);
	}
	if (rv != 0 && rv != *last_err) {
		dsi_warn(m->log, "cluster: node %s cannot follow the member list: %s", m->node,
		    err.message);
	}
	*last_err = rv;
	return w;
}

void *
dsi_member_watcher_main(void *arg)
{
	dsi_member     *m = arg;
	dsi_etcd_watch *w = NULL;
	int64_t         rev, last_msg = 0;
	bool            resync   = false;
	int             last_err = 0;
	pthread_mutex_lock(&m->lock);
	rev = m->list_rev;
	while (!m->stop) {
		pthread_mutex_unlock(&m->lock);
		if (w == NULL) {
			w        = reopen(m, resync, &rev, &last_err);
			resync   = w == NULL;
			last_msg = dsi_monotonic_ms();
			pthread_mutex_lock(&m->lock);
			if (w == NULL) {
				dsi_member_nap_locked(m, BACKOFF_MS);
			}
			continue;
		}
		dsi_etcd_watch_resp r;
		dsc_error           err;
		int                 rv  = dsi_etcd_watch_next(w, POLL_MS, &r, &err);
		int64_t             now = dsi_monotonic_ms();
		if (rv == DSC_ETIMEDOUT && now - last_msg < 3 * (int64_t) m->ttl_ms) {
			pthread_mutex_lock(&m->lock);
			continue;
		}
		if (rv != 0 || r.canceled) {
			/* A stall, a compaction, an error: read the list again. */
			dsi_debug(m->log, "cluster: member watch of node %s ends (%s); re-reading",
			    m->node, rv != 0 ? err.message : "canceled");
			if (rv == 0) {
				dsi_etcd_watch_resp_free(&r);
			}
			dsi_etcd_watch_close(w);
			w      = NULL;
			resync = true;
			pthread_mutex_lock(&m->lock);
			continue;
		}
		last_msg = now;
		pthread_mutex_lock(&m->lock);
		for (size_t i = 0; i < r.n_events; i++) {
			apply_locked(m, &r.events[i]);
		}
		if (r.revision > m->list_rev) {
			m->list_rev = rev = r.revision;
		}
		members_rev_locked(m);
		pthread_cond_broadcast(&m->cond);
		dsi_etcd_watch_resp_free(&r);
	}
	pthread_mutex_unlock(&m->lock);
	dsi_etcd_watch_close(w);
	return NULL;
}
