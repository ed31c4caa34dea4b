/*
 * The etcd backend's TTL instances: the set of alive/ keys (from load and
 * from the follower's events) and heartbeats, which renew an alive key's
 * lease or put the key on a new one (etcd_backend.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/text.h"
#include "server/etcd_backend_impl.h"

/* One alive key, keyed by its full etcd key. */
typedef struct alive {
	dsi_hash_node link;
	int64_t       lease;
	size_t        len;
	char          key[]; /* NUL-terminated too */
} alive;

typedef struct key_ref {
	const void *data;
	size_t      len;
} key_ref;

static bool
alive_match(const dsi_hash_node *n, const void *key)
{
	const alive   *a = DSI_CONTAINER_OF(n, alive, link);
	const key_ref *k = key;
	return a->len == k->len && memcmp(a->key, k->data, k->len) == 0;
}

int
dsi_etcdb_alive_init(etcd_backend *e)
{
	pthread_mutex_init(&e->alive_mtx, NULL);
	return dsi_hash_init(&e->alive, 64, alive_match);
}

void
dsi_etcdb_alive_clear(etcd_backend *e)
{
	dsi_hash_iter  it;
	dsi_hash_node *n;
	pthread_mutex_lock(&e->alive_mtx);
	dsi_hash_iter_init(&it, &e->alive);
	while ((n = dsi_hash_iter_next(&it)) != NULL) {
		dsi_hash_remove(&e->alive, n);
		free(DSI_CONTAINER_OF(n, alive, link));
	}
	pthread_mutex_unlock(&e->alive_mtx);
}

void
dsi_etcdb_alive_fini(etcd_backend *e)
{
	if (e->alive.buckets != NULL) {
		dsi_etcdb_alive_clear(e);
		dsi_hash_fini(&e->alive);
	}
	pthread_mutex_destroy(&e->alive_mtx);
}

/* Sets (lease > 0) or removes (lease 0) the entry of key. */
static void
alive_set(etcd_backend *e, const void *key, size_t len, int64_t lease)
{
	key_ref  k = { key, len };
	uint64_t h = dsi_hash_mix(DSI_HASH_SEED, key, len);
	pthread_mutex_lock(&e->alive_mtx);
	dsi_hash_node *n = dsi_hash_find(&e->alive, h, &k);
	if (n != NULL && lease > 0) {
		DSI_CONTAINER_OF(n, alive, link)->lease = lease;
	} else if (n != NULL) {
		dsi_hash_remove(&e->alive, n);
		free(DSI_CONTAINER_OF(n, alive, link));
	} else if (lease > 0) {
		alive *a = malloc(sizeof(*a) + len + 1);
		if (a != NULL) { /* out of memory: seen as not alive, the next heartbeat puts it */
			a->lease = lease;
			a->len   = len;
			memcpy(a->key, key, len);
			a->key[len] = 0;
			dsi_hash_insert(&e->alive, &a->link, h);
		}
	}
	pthread_mutex_unlock(&e->alive_mtx);
}

static int64_t
alive_lease(etcd_backend *e, const char *key)
{
	key_ref k     = { key, strlen(key) };
	int64_t lease = 0;
	pthread_mutex_lock(&e->alive_mtx);
	dsi_hash_node *n = dsi_hash_find(&e->alive, dsi_hash_mix(DSI_HASH_SEED, key, k.len), &k);
	if (n != NULL) {
		lease = DSI_CONTAINER_OF(n, alive, link)->lease;
	}
	pthread_mutex_unlock(&e->alive_mtx);
	return lease;
}

void
dsi_etcdb_alive_event(etcd_backend *e, const dsi_etcd_kv *kv, bool deleted)
{
	size_t pl = strlen(e->prefix);
	if (kv->key.len > pl + 6 && memcmp(kv->key.data, e->prefix, pl) == 0
	    && memcmp(kv->key.data + pl, "alive/", 6) == 0) {
		alive_set(
		    e, kv->key.data, kv->key.len, deleted ? 0 : (kv->lease > 0 ? kv->lease : 1));
	}
}

int
dsi_etcdb_alive_load(void *arg, const dsi_etcd_kv *kv, char *why, size_t why_len)
{
	(void) why;
	(void) why_len;
	dsi_etcdb_alive_event(*(etcd_backend **) arg, kv, false);
	return 0;
}

bool
dsi_etcd_backend_alive(dsi_backend *b, const char *service, const char *endpoint)
{
	etcd_backend *e   = DSI_CONTAINER_OF(b, etcd_backend, base);
	char         *key = dsi_etcdb_alive_key(e, service, endpoint);
	bool          on  = key != NULL && alive_lease(e, key) != 0;
	free(key);
	return on;
}

/* Puts key on a new lease of ttl_ms, if the instance is still in etcd. */
static int
put_on_new_lease(
    etcd_backend *e, const char *key, const char *inst, uint32_t ttl_ms, char *why, size_t why_len)
{
	dsc_error err;
	int64_t   id, granted;
	int64_t   ttl_s = ((int64_t) ttl_ms + 999) / 1000;
	int rv = dsi_etcd_lease_grant(e->hb_etcd, ttl_s < 2 ? 2 : ttl_s, 0, &id, &granted, &err);
	if (rv != 0) {
		return dsi_failf(rv, why, why_len, "etcd: %s", err.message);
	}
	dsi_etcd_cmp      cmp = { .target = DSI_ETCD_VERSION,
		     .result              = DSI_ETCD_GREATER,
		     .key                 = inst,
		     .key_len             = strlen(inst),
		     .number              = 0 };
	dsi_etcd_op       put = { .type = DSI_ETCD_OP_PUT,
		      .key              = key,
		      .key_len          = strlen(key),
		      .value            = "1",
		      .value_len        = 1,
		      .lease            = id };
	dsi_etcd_txn_req  tq  = { .cmps = &cmp, .n_cmps = 1, .success = &put, .n_success = 1 };
	dsi_etcd_txn_resp tr  = { 0 };
	if ((rv = dsi_etcd_txn(e->hb_etcd, &tq, &tr, &err)) != 0) {
		dsi_etcd_lease_revoke(e->hb_etcd, id, &err);
		return dsi_failf(rv, why, why_len, "etcd: %s", err.message);
	}
	bool ok = tr.succeeded;
	dsi_etcd_txn_resp_free(&tr);
	if (!ok) {
		dsi_etcd_lease_revoke(e->hb_etcd, id, &err);
		return dsi_failf(DSC_ENOTFOUND, why, why_len, "not registered");
	}
	/* Seen at once, before the follower's event: the next heartbeat only renews. */
	alive_set(e, key, strlen(key), id);
	return 0;
}

int
dsi_etcd_backend_heartbeat(dsi_backend *b, const char *service, const char *endpoint,
    uint32_t ttl_ms, char *why, size_t why_len)
{
	etcd_backend *e    = DSI_CONTAINER_OF(b, etcd_backend, base);
	char         *key  = dsi_etcdb_alive_key(e, service, endpoint);
	char         *inst = dsi_etcdb_instance_key(e, service, endpoint);
	dsc_error     err;
	int           rv;

	if (key == NULL || inst == NULL || e->hb_etcd == NULL) {
		rv = dsi_failf(DSC_ENOMEM, why, why_len, "out of memory");
		goto done;
	}
	int64_t lease = alive_lease(e, key);
	if (lease != 0) {
		int64_t left;
		rv = dsi_etcd_lease_keepalive(e->hb_etcd, lease, &left, &err);
		if (rv != DSC_ENOTFOUND) {
			if (rv != 0) {
				dsi_failf(rv, why, why_len, "etcd: %s", err.message);
			}
			goto done; /* renewed, or etcd cannot say */
		}
	}
	rv = put_on_new_lease(e, key, inst, ttl_ms, why, why_len);
done:
	free(key);
	free(inst);
	return rv;
}
