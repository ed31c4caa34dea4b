/*
 * The etcd backend's reading of everything at one etcd revision: at start
 * (load) and when the follower reloads (resync).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/text.h"
#include "common/timeutil.h"
#include "server/etcd_backend_impl.h"

/* ---- loading ---- */

/* The instances of one read, for a resync to find what etcd no longer has. */
typedef struct seen {
	char **keys; /* "service\nendpoint", sorted */
	size_t n, cap;
} seen;

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
load_kv(etcd_backend *e, dsi_registry *r, const dsi_etcd_kv *kv, dsi_backend_check_fn check,
    void *check_arg, seen *sn, char *why, size_t why_len)
{
	Discovery__V1__StoredInstance *msg;
	dsi_registration               reg;
	dsc_kv                        *meta;
	char                           msgbuf[256];
	bool                           created;
	int                            rv;

	if (dsi_etcdb_decode(kv->value.data, kv->value.len, &msg, &reg, &meta) != 0) {
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "etcd key %s does not hold a stored instance; it was changed outside "
		    "discoveryd: delete it, or use another --cluster-prefix",
		    (const char *) kv->key.data);
	}
	if (check != NULL && check(check_arg, &reg, msgbuf, sizeof(msgbuf)) != 0) {
		rv = dsi_failf(DSC_ESTATE, why, why_len,
		    "etcd holds instance %s %s that this configuration refuses: %s", reg.service,
		    reg.endpoint, msgbuf);
	} else {
		rv = dsi_registry_register(
		    r, &reg, dsi_wall_ms(), NULL, &created, NULL, msgbuf, sizeof(msgbuf));
		if (rv != 0) {
			rv = dsi_failf(DSC_ESTATE, why, why_len, "cannot load %s %s from %s: %s",
			    reg.service, reg.endpoint, e->label, msgbuf[0] != 0 ? msgbuf : "");
		}
	}
	if (rv == 0 && sn != NULL) {
		size_t len = strlen(reg.service) + strlen(reg.endpoint) + 2;
		char  *k   = malloc(len);
		char **nk  = sn->n == sn->cap ? realloc(sn->keys, (sn->cap * 2 + 16) * sizeof(*nk))
		                              : sn->keys;
		if (k == NULL || nk == NULL) {
			free(k);
			rv = dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
		} else {
			sn->cap  = nk != sn->keys ? sn->cap * 2 + 16 : sn->cap;
			sn->keys = nk;
			snprintf(k, len, "%s\n%s", reg.service, reg.endpoint);
			sn->keys[sn->n++] = k;
		}
	}
	free(meta);
	discovery__v1__stored_instance__free_unpacked(msg, NULL);
	return rv;
}

/* Removes what r holds and sn does not (a resync). */
static void
remove_unseen(dsi_registry *r, seen *sn)
{
	dsi_instances all;
	if (dsi_registry_get_all(r, NULL, &all, NULL) != 0) {
		return;
	}
	qsort(sn->keys, sn->n, sizeof(*sn->keys), cmp_str);
	for (size_t i = 0; i < all.count; i++) {
		char  key[4200];
		char *kp = key;
		snprintf(key, sizeof(key), "%s\n%s", all.items[i]->service, all.items[i]->endpoint);
		if (bsearch(&kp, sn->keys, sn->n, sizeof(*sn->keys), cmp_str) == NULL) {
			uint32_t removed;
			dsi_registry_deregister(
			    r, all.items[i]->service, all.items[i]->endpoint, &removed, NULL);
		}
	}
	dsi_instances_free(&all);
}

typedef struct load_ctx {
	etcd_backend        *e;
	dsi_registry        *r;
	dsi_backend_check_fn check;
	void                *check_arg;
	seen                *sn; /* a resync's: what etcd holds */
} load_ctx;

static int
load_one(void *arg, const dsi_etcd_kv *kv, char *why, size_t why_len)
{
	load_ctx *l = arg;
	return load_kv(l->e, l->r, kv, l->check, l->check_arg, l->sn, why, why_len);
}

/* A health key: "<prefix>health/<service>/<hex endpoint>" = "STATE\nREASON". */
static int
load_health(void *arg, const dsi_etcd_kv *kv, char *why, size_t why_len)
{
	load_ctx   *l   = arg;
	const char *key = (const char *) kv->key.data + strlen(l->e->prefix) + strlen("health/");
	const char *sl  = strrchr(key, '/');
	char       *svc = sl != NULL ? strndup(key, (size_t) (sl - key)) : NULL;
	char       *ep  = NULL;
	char        reason[96];
	dsc_health  st;
	dsi_registry_op *op;

	if (svc == NULL || dsi_etcdb_unhex(sl + 1, strlen(sl + 1), &ep) != 0
	    || dsi_etcdb_health_parse(kv->value.data, kv->value.len, &st, reason, sizeof(reason))
	        != 0) {
		free(svc);
		return dsi_failf(DSC_ESTATE, why, why_len,
		    "etcd key %s does not hold a health state; it was changed outside discoveryd",
		    (const char *) kv->key.data);
	}
	/* An instance removed in the same transaction has no health to restore. */
	if (dsi_registry_prepare_health(l->r, svc, ep, st, reason, dsi_wall_ms(), &op) == 0) {
		dsi_registry_commit(l->r, op, NULL, NULL);
	}
	free(svc);
	free(ep);
	return 0;
}

/* Calls fn on every key of "<prefix><family>/" at etcd revision at, in pages. */
static int
page(etcd_backend *e, dsi_etcd *h, const char *family, int64_t at,
    int (*fn)(void *arg, const dsi_etcd_kv *kv, char *why, size_t why_len), void *arg, char *why,
    size_t why_len)
{
	char                fam[32];
	dsi_etcd_range_resp rr;
	dsc_error           err;
	size_t              klen;
	int                 rv = 0;

	snprintf(fam, sizeof(fam), "%s/", family);
	char *from = dsi_etcdb_key(e, fam), *end = NULL, *key = NULL;
	if (from == NULL || (end = strdup(from)) == NULL || (key = strdup(from)) == NULL) {
		rv = dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
		goto done;
	}
	end[strlen(end) - 1]++; /* "<family>/" ends before "<family>0" */
	klen = strlen(key);
	for (bool more = true; more;) {
		dsi_etcd_range_req pq = { .key = key,
			.key_len               = klen,
			.range_end             = end,
			.range_end_len         = strlen(end),
			.revision              = at,
			.limit                 = 500 };
		memset(&rr, 0, sizeof(rr));
		if ((rv = dsi_etcd_range(h, &pq, &rr, &err)) != 0) {
			rv = dsi_failf(
			    rv, why, why_len, "cannot read %s: %s", e->label, err.message);
			break;
		}
		for (size_t i = 0; rv == 0 && i < rr.n_kvs; i++) {
			rv = fn(arg, &rr.kvs[i], why, why_len);
		}
		more = rv == 0 && rr.more && rr.n_kvs > 0;
		if (more) {
			/* On from the last key + "\0". */
			const dsi_etcd_bytes *last = &rr.kvs[rr.n_kvs - 1].key;
			char                 *nk   = malloc(last->len + 1);
			if (nk == NULL) {
				rv   = dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
				more = false;
			} else {
				memcpy(nk, last->data, last->len);
				nk[last->len] = 0;
				free(key);
				key  = nk;
				klen = last->len + 1;
			}
		}
		dsi_etcd_range_resp_free(&rr);
	}
done:
	free(from);
	free(end);
	free(key);
	return rv;
}

int
dsi_etcdb_read_all(etcd_backend *e, dsi_etcd *h, dsi_registry *r, dsi_backend_check_fn check,
    void *check_arg, bool sync, int64_t *etcd_rev, char *why, size_t why_len)
{
	char               *revkey = dsi_etcdb_key(e, "rev");
	dsi_etcd_range_resp rr     = { 0 };
	dsc_error           err;
	uint64_t            counter = 0;
	seen                sn      = { 0 };
	int                 rv;

	if (revkey == NULL) {
		rv = dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
		goto done;
	}
	dsi_etcd_range_req rq = { .key = revkey, .key_len = strlen(revkey) };
	if ((rv = dsi_etcd_range(h, &rq, &rr, &err)) != 0) {
		rv = dsi_failf(rv, why, why_len, "cannot read %s: %s", e->label, err.message);
		goto done;
	}
	int64_t at = rr.revision;
	e->rev_mod = 0;
	if (rr.n_kvs == 1) {
		journal j;
		if (dsi_etcdb_journal_parse(rr.kvs[0].value.data, rr.kvs[0].value.len, &j) != 0) {
			rv = dsi_failf(DSC_ESTATE, why, why_len,
			    "etcd key %s does not hold discoveryd's counter; use another "
			    "--cluster-prefix",
			    revkey);
			dsi_etcd_range_resp_free(&rr);
			goto done;
		}
		counter    = j.counter;
		e->rev_mod = rr.kvs[0].mod_revision;
		dsi_etcdb_journal_free(&j);
	}
	dsi_etcd_range_resp_free(&rr);
	/* Instances, then health, at the counter's revision: one consistent picture. */
	load_ctx lc = { e, r, check, check_arg, sync ? &sn : NULL };
	rv          = page(e, h, "instances", at, load_one, &lc, why, why_len);
	if (rv == 0) {
		rv = page(e, h, "health", at, load_health, &lc, why, why_len);
	}
	if (rv == 0 && sync) {
		remove_unseen(r, &sn);
	}
	if (rv == 0) {
		if (sync && dsi_registry_revision(r) > counter) {
			dsi_error(e->log,
			    "%s: this node's revision %" PRIu64
			    " is ahead of the cluster's %" PRIu64
			    "; its events will not match the other nodes' until it restarts",
			    e->label, dsi_registry_revision(r), counter);
		}
		dsi_registry_set_revision(r, counter);
		*etcd_rev = at;
	}
done:
	for (size_t i = 0; i < sn.n; i++) {
		free(sn.keys[i]);
	}
	free(sn.keys);
	free(revkey);
	return rv;
}
