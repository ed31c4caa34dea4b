/*
 * Inside the etcd backend: what etcd_backend.c (the writer's transactions,
 * load) and etcd_follow.c (the follower thread) share.
 *
 * Lock order: gate, then the writer's apply mutex (through the applier),
 * then mtx. The writer holds gate across a batch (hold/unhold), the
 * follower across each apply, so neither changes the registry under the
 * other's prepared changes.
 */
#ifndef DSI_ETCD_BACKEND_IMPL_H
#define DSI_ETCD_BACKEND_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "common/hash.h"
#include "server/etcd_backend.h"
#include "server/registry.h"

/* One change of a journal: what the writer applied, in its order. */
typedef enum journal_kind {
	J_REGISTER   = 'R', /* the instance's key holds the registration */
	J_DEREGISTER = 'D', /* one instance */
	J_SERVICE    = 'S', /* every instance of the service */
	J_HEALTH     = 'H', /* the instance's health key holds its new state */
} journal_kind;

typedef struct journal_entry {
	journal_kind kind;
	char        *service;
	char        *endpoint; /* NULL for J_SERVICE */
} journal_entry;

typedef struct journal {
	uint64_t       counter; /* the counter after the transaction */
	journal_entry *e;
	size_t         n;
} journal;

typedef struct etcd_backend {
	dsi_backend    base; /* first: what callers hold */
	dsi_etcd      *etcd; /* load's and the writer's calls */
	char          *endpoints;
	dsi_etcd_tls   tls; /* owned copy: every handle below is opened with it */
	char          *prefix;
	char          *node;
	char          *label;
	int            timeout_ms;
	const dsi_log *log;
	dsi_registry  *registry; /* from load on */

	pthread_mutex_t gate;
	int64_t         rev_mod; /* under gate: the counter key's mod_revision memory reflects */

	pthread_mutex_t mtx; /* guards what follows, to stop */
	pthread_cond_t  cv;
	int64_t         applied;  /* the etcd revision memory reflects */
	int64_t         catch_up; /* unhold waits until applied reaches it (a lost race) */
	uint64_t        n_applied, n_resyncs, n_races;
	bool            stop;

	/*
	 * TTL instances alive now: their alive/ keys, with the lease each is
	 * on (etcd_alive.c). Kept from load and from the follower's events.
	 */
	pthread_mutex_t alive_mtx;
	dsi_hash        alive;
	dsi_etcd       *hb_etcd; /* heartbeats' calls: their own handle */

	/* The follower. */
	dsi_etcd_applier applier;
	dsi_etcd        *fetcd; /* its own handle: calls on one handle are serialized */
	pthread_t        thread;
	bool             following;

	/* The transaction being built: the writer thread's alone. */
	dsi_etcd_op *ops;
	size_t       n_ops, cap_ops;
	void       **owned; /* buffers the ops point into */
	size_t       n_owned, cap_owned;
	char        *jtext; /* the journal's change lines */
	size_t       jlen, jcap;
	uint64_t     n_revs;
	uint64_t     seq;
	uint64_t     reserved; /* set_revision's */
	bool         failed;
	bool         has_health; /* the batch writes health: fenced by membership */
	char         err[512];
	/*
	 * The writer thread's: since when etcd has not answered a commit, nor
	 * the read-back after it (0: it answers), and when that last attempt
	 * ended. While etcd stays silent, batches are refused unsent, so a
	 * cut-off node answers its clients at once (they fail over) instead of
	 * after two etcd timeouts each; the next batch goes out once the
	 * follower has heard from etcd since (heard_at), or DOWN_RETRY_MS on.
	 */
	int64_t         down_since, last_try;
	_Atomic int64_t heard_at; /* monotonic ms: the follower's last message or reload */
	/* Fences health writes (set_fence); NULL: none. */
	int (*fence_view)(void *arg, struct dsi_membership *out);
	void *fence_arg;
} etcd_backend;

/* "<prefix><family>/<service>/<hex endpoint>" (endpoint NULL: the service's prefix); malloc'd. */
char *dsi_etcdb_family_key(
    const etcd_backend *e, const char *family, const char *service, const char *endpoint);
#define dsi_etcdb_instance_key(e, s, ep) dsi_etcdb_family_key((e), "instances", (s), (ep))
#define dsi_etcdb_health_key(e, s, ep)   dsi_etcdb_family_key((e), "health", (s), (ep))
#define dsi_etcdb_alive_key(e, s, ep)    dsi_etcdb_family_key((e), "alive", (s), (ep))

/* A health key's value "STATE\nREASON": 0, or DSC_EPROTO. *reason points into data. */
int dsi_etcdb_health_parse(
    const uint8_t *data, size_t len, dsc_health *state, char *reason, size_t reason_len);
/* "<prefix><name>"; malloc'd. */
char *dsi_etcdb_key(const etcd_backend *e, const char *name);

/* Writes s as lowercase hex (2 bytes each, no NUL); returns the length. */
size_t dsi_etcdb_hex(char *out, const char *s);
/* n hex digits as a malloc'd string: 0, DSC_EPROTO or DSC_ENOMEM. */
int dsi_etcdb_unhex(const char *s, size_t n, char **out);
/* A prepared register as its key's value (a StoredInstance), malloc'd into *out. */
int dsi_etcdb_encode(const dsi_registry_op_info *op, uint8_t **out, size_t *len);

/* Parses the counter key's value; 0 or DSC_EPROTO. Free with journal_free. */
int  dsi_etcdb_journal_parse(const uint8_t *data, size_t len, journal *out);
void dsi_etcdb_journal_free(journal *j);

/*
 * A stored instance as a registration: *reg points into *msg, which the
 * caller frees with protobuf_c_message_free_unpacked and *kv with free.
 */
int dsi_etcdb_decode(const uint8_t *data, size_t len, Discovery__V1__StoredInstance **msg,
    dsi_registration *reg, dsc_kv **kv);

/*
 * Reads everything under the prefix at one etcd revision into r (each
 * instance through check when not NULL, registered or updated; with sync,
 * instances etcd no longer has are removed) and sets the revision from the
 * counter. Sets *etcd_rev and e->rev_mod. Under gate (or before sharing).
 */
int dsi_etcdb_read_all(etcd_backend *e, dsi_etcd *h, dsi_registry *r, dsi_backend_check_fn check,
    void *check_arg, bool sync, int64_t *etcd_rev, char *why, size_t why_len);

/* The alive set (etcd_alive.c): 0 or DSC_ENOMEM; fini frees every entry. */
int  dsi_etcdb_alive_init(etcd_backend *e);
void dsi_etcdb_alive_fini(etcd_backend *e);
void dsi_etcdb_alive_clear(etcd_backend *e);
/* An etcd event or a loaded kv: updates the set when its key is an alive/ key. */
void dsi_etcdb_alive_event(etcd_backend *e, const dsi_etcd_kv *kv, bool deleted);
int  dsi_etcdb_alive_load(void *arg, const dsi_etcd_kv *kv, char *why, size_t why_len);

/* The follower thread (etcd_follow.c). */
void *dsi_etcdb_follow_main(void *arg);

#endif
