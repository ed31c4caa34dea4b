/*
 * The inside of a dsi_member, shared by member.c (open, close, the keeper
 * and the notifier) and member_watch.c (the member list and its watch).
 */
#ifndef DSI_CLUSTER_MEMBER_IMPL_H
#define DSI_CLUSTER_MEMBER_IMPL_H

#include <pthread.h>

#include "cluster/member.h"
#include "common/fifo.h"

/* One member as the list keeps it. */
typedef struct dsi_member_entry {
	char   *name; /* owned */
	char   *info; /* owned; NULL if none */
	int64_t create_revision;
	int64_t mod_revision;
} dsi_member_entry;

/* A callback waiting for the notifier. */
typedef struct dsi_member_note {
	dsi_fifo_node    link;
	dsi_member_event event;
	int64_t          create_revision;
	char             name[]; /* NUL-terminated */
} dsi_member_note;

struct dsi_member {
	/* Set by dsi_member_open, read-only afterwards. */
	char          *node;
	char          *key;   /* <prefix>members/<node> */
	char          *range; /* <prefix>members/ */
	size_t         key_len;
	size_t         range_len;
	char          *value; /* the key's value: {"node","started","info"} as JSON */
	int64_t        ttl_s;
	int            ttl_ms;
	int            call_ms; /* the timeout of joins, revokes, ranges, watch opens */
	const dsi_log *log;
	dsi_member_cb  cb;
	void          *arg;
	/* One handle per thread (a handle serializes its calls); used by that thread only. */
	dsi_etcd *keeper_etcd;    /* the keeper's joins and revokes; close's after the join */
	dsi_etcd *keepalive_etcd; /* the keeper's keepalives, with a timeout of TTL/3 */
	dsi_etcd *watch_etcd;     /* the watcher's */
	pthread_t keeper;
	pthread_t watcher;
	pthread_t notifier;
	bool      threads_running; /* the three threads exist and have not been joined */

	pthread_mutex_t lock;    /* guards everything below; never held during a call or callback */
	pthread_cond_t  cond;    /* broadcast on every change below */
	bool            stop;    /* the threads end */
	bool            crashed; /* dsi_member_crash_for_test: close must not revoke */
	bool            want;    /* be a member (false after dsi_member_leave) */
	bool            lost; /* the watcher saw my key deleted: the keeper ends the membership */
	bool            joining;   /* the keeper is in a join, unlocked */
	bool            revoking;  /* the keeper is in a leave's revoke, unlocked */
	bool            announced; /* the callback was last told "member" (open counts) */
	int64_t         lease;     /* my lease, 0: none */
	/*
	 * Monotonic ms: the last successful keepalive's (or the grant's) sending
	 * + TTL. etcd cannot expire the lease before; past it, views say "not a
	 * member" even before the keeper has noticed.
	 */
	int64_t           alive_until;
	int64_t           self_create; /* my key's create_revision; 0: not a member now */
	int64_t           stale_lease; /* an old lease of mine that may still hold the key */
	int               revoke_rv;   /* the last leave's revoke */
	dsi_member_entry *list;        /* sorted by name */
	size_t            n_list;
	int64_t           members_rev; /* highest mod_revision in list */
	int64_t           list_rev;    /* the etcd revision list reflects */
	dsi_fifo          notes;       /* dsi_member_note, for the notifier */
};

/* Queues a callback (dropped with a log line when out of memory). Lock held. */
void dsi_member_note_locked(dsi_member *m, dsi_member_event ev, const char *name, int64_t crev);

/*
 * Waits on m->cond up to ms (lock held); false once the threads must stop.
 * Wakes early on any broadcast.
 */
bool dsi_member_nap_locked(dsi_member *m, int64_t ms);

/*
 * Reads the whole member list at one revision through e and replaces
 * m->list, queueing JOINED/LEFT for the differences when notify. *rev_out
 * is the range's revision. Lock not held.
 */
int dsi_member_resync(dsi_member *m, dsi_etcd *e, bool notify, int64_t *rev_out, dsc_error *err);

/* The watcher thread (member_watch.c): starts watching from m->list_rev + 1. */
void *dsi_member_watcher_main(void *arg);

void dsi_member_entries_free(dsi_member_entry *list, size_t n);

#endif
