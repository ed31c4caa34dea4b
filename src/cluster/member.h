/*
 * Node membership in cluster mode: this node's key `<prefix>members/<node>`
 * under a lease of its own, kept alive from a thread of the module, and the
 * live member list, kept current from a watch. Health-check ownership is
 * computed from the list with rendezvous hashing (shard.h), and every health
 * write is fenced with the compares of dsi_member_fence (below).
 *
 * Threads: three of the module's own, each with its own dsi_etcd handle (a
 * handle serializes its calls): the keeper (lease grant, create, keepalive
 * every TTL/3, rejoin), the watcher (range members/ at one revision, then
 * watch from the next with progress notifications; re-range after a
 * compaction, a cancel, an error or a silence of 3 TTLs), and the notifier,
 * which runs the callback. Every public function may be called from any
 * thread; the callback must not call dsi_member_close.
 */
#ifndef DSI_CLUSTER_MEMBER_H
#define DSI_CLUSTER_MEMBER_H

#include <discovery/discovery.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "common/log.h"

typedef struct dsi_member dsi_member;

/* What the callback is told. */
typedef enum dsi_member_event {
	DSI_MEMBER_JOINED,   /* name's key appeared (this node's own included) */
	DSI_MEMBER_LEFT,     /* name's key is gone (revoked, expired, deleted) */
	DSI_MEMBER_ENDED,    /* this node's membership ended: stop fenced writes now */
	DSI_MEMBER_RESTORED, /* this node is a member again, under a new lease and key */
} dsi_member_event;

/*
 * Runs on the notifier thread, one call at a time, in the order the changes
 * were seen, with no lock of the module held (so it may call
 * dsi_member_view). name is this node's for ENDED and RESTORED;
 * create_revision is the key's (0 for LEFT and ENDED). name is borrowed for
 * the call. A slow callback delays later callbacks only, never keepalives.
 */
typedef void (*dsi_member_cb)(
    void *arg, dsi_member_event event, const char *name, int64_t create_revision);

/* One live member. */
typedef struct dsi_member_info {
	char   *name;            /* owned by the view */
	char   *info;            /* the caller's opaque string given at its open; NULL if none */
	int64_t create_revision; /* of its members/ key: a new value is a new membership */
} dsi_member_info;

/*
 * A consistent copy of the membership (dsi_member_view), freed with
 * dsi_member_view_free.
 */
typedef struct dsi_membership {
	char            *self;                 /* this node's name */
	int64_t          self_create_revision; /* of members/<self>; 0: not a member now */
	dsi_member_info *members;              /* sorted by name; n_members entries */
	size_t           n_members;
	/*
	 * The highest mod_revision among the listed members' keys when the
	 * list was computed: the bound of the "no join since" compare.
	 */
	int64_t members_revision;
	int64_t revision;      /* the etcd revision the list reflects */
	char   *self_key;      /* <prefix>members/<self>, for the compares */
	char   *members_range; /* <prefix>members/, for the compares */
} dsi_membership;

/*
 * Joins the cluster at endpoints (dsi_etcd_open's list; with tls, NULL for
 * none, as dsi_etcd_open_tls: every handle of the membership uses it) as node under
 * prefix (e.g. "/discovery/v1/"; keys are prefix + "members/" + node).
 * node is 1 to 128 characters of [A-Za-z0-9._:-]. info (NULL: none) is an
 * opaque string other members see in their views, e.g. this node's listen
 * URLs. ttl_ms is the lease TTL, rounded UP to whole seconds and to etcd's
 * minimum of 2 s (etcd raises anything lower to 2 s anyway); <= 0 means 10 s.
 *
 * Grants a lease of the node's own (never lease 0: etcd would make a 60 s
 * lease nobody renews, and the key would outlive a crash by a minute),
 * creates the key with a create-if-absent txn on it, reads the member list,
 * and starts the threads. When the key already exists (a live node with
 * this name, or a crashed one whose lease has not expired yet) the open
 * fails with DSC_ESTATE and a message naming the name and the fix
 * (--node-name). Other errors are dsi_etcd's. callback (may be NULL) and
 * arg are kept. On 0 *out is the caller's (dsi_member_close). The program
 * calls curl_global_init first (discoveryd's main does).
 *
 * While open: every TTL/3 a keepalive. The membership ENDS when a keepalive
 * says the lease is gone (DSC_ENOTFOUND), when the watch shows the key
 * deleted, or when no keepalive has succeeded for a whole TTL (counted from
 * the last successful one's sending, so the node gives up no later than etcd
 * can expire the lease). From that instant views say self_create_revision
 * 0; the callback hears DSI_MEMBER_ENDED as soon as the keeper sees it (at
 * most one keepalive timeout, TTL/3, later). Then the keeper revokes the old lease
 * (best effort) and rejoins with a new lease and key: a new create
 * revision, DSI_MEMBER_RESTORED.
 */
int dsi_member_open(dsi_member **out, const char *endpoints, const dsi_etcd_tls *tls,
    const char *prefix, const char *node, const char *info, int ttl_ms, const dsi_log *log,
    dsi_member_cb callback, void *arg, dsc_error *err);

/*
 * Revokes the lease (other members see the departure at once, not after a
 * TTL) and stops the threads, each bounded by the etcd timeout. NULL is a
 * no-op.
 */
void dsi_member_close(dsi_member *m);

/* The lease TTL in milliseconds, as granted (whole seconds, at least 2 s). */
int dsi_member_ttl_ms(const dsi_member *m);

/*
 * Gives up membership now (self-preservation: another node takes the shard):
 * revokes the lease and stays out until dsi_member_rejoin. Views say not a
 * member at once; DSI_MEMBER_ENDED follows. Waits for the revoke (bounded):
 * 0, or the revoke's error (the key then expires with the lease, since no
 * keepalive is sent any more).
 */
int dsi_member_leave(dsi_member *m);

/*
 * Joins again after dsi_member_leave: waits up to timeout_ms for the new
 * key (0), else DSC_ETIMEDOUT while the keeper goes on trying.
 */
int dsi_member_rejoin(dsi_member *m, int timeout_ms);

/*
 * A consistent copy of the membership into *out (the caller's:
 * dsi_member_view_free). 0 or DSC_ENOMEM (nothing written).
 */
int  dsi_member_view(dsi_member *m, dsi_membership *out);
void dsi_member_view_free(dsi_membership *v);

/*
 * The owner of instance (service, endpoint) among v's members (rendezvous
 * hashing, shard.h): its name (borrowed from v), or NULL when v is empty.
 */
const char *dsi_member_owner(const dsi_membership *v, const char *service, const char *endpoint);

/*
 * Fencing a health write. A node writes a health transition for an
 * instance only when the owner in its view is itself, and the write's txn
 * carries these compares (plus the backend's `mod_revision(rev) == R`):
 *
 *   1. create_revision(<prefix>members/<me>) == v->self_create_revision
 *      Fails when my membership ended (the lease expired or was revoked:
 *      the key is gone) or was renewed (a rejoin makes a new key).
 *   2. mod_revision(every key under <prefix>members/) < v->members_revision + 1
 *      (one compare over the prefix: etcd 3.3+'s Compare.range_end) Fails
 *      when any member joined, rejoined or rewrote its key since the view.
 *
 * A departure alone does not fail the compares, on purpose: with
 * rendezvous hashing a departure moves only the departed member's instances,
 * so an instance that a survivor owned in the old view it still owns in the
 * new one; the departed member itself is fenced by compare 1. A join moves
 * instances from survivors to the newcomer, and compare 2 catches every join
 * (its key's mod_revision is above anything in the view). So no
 * `members-epoch` key is needed, and none could follow an expiry, which etcd
 * performs without a txn of ours.
 *
 * Writes the two compares into cmps (pointing into v: keep v alive while the
 * txn is built and sent) and returns 2; returns 0 when v says this node is
 * not a member (write nothing then).
 */
size_t dsi_member_fence(const dsi_membership *v, dsi_etcd_cmp cmps[2]);

/*
 * For tests: behaves like a crash of the node. The threads stop at once
 * without revoking; the lease expires by itself a TTL later. Only
 * dsi_member_close may follow (and it frees without revoking).
 */
void dsi_member_crash_for_test(dsi_member *m);

#endif
