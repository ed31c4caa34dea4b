/*
 * Following one node of several: the decisions a watch on a list of
 * publish URLs makes (docs/clients.md#failover), kept free of sockets and
 * clocks so that they are tested alone and shared by watches and views.
 *
 * Every node's events arrive; only the followed node's are delivered. Each
 * other node (a standby) keeps a ring of its latest events, so that a switch
 * can continue where the followed node stopped. The followed node is
 * dropped when it has missed two SYNCs; the next standby, in list order,
 * that had a SYNC recently takes over:
 *
 * - cleanly when the standby is known to serve the same registry (it
 *   published a change identical to one delivered, same revision included)
 *   and its ring reaches back to the last delivered revision (holds an
 *   event at or below it, or begins with the change right after it): its
 *   events after that revision are delivered and the stream goes on;
 * - otherwise as a gap: delivery starts again at the standby's latest SYNC,
 *   flagged, whatever its revision, and the caller reloads.
 *
 * Repeats are dropped by revision: a change at or below the last delivered
 * revision, or a SYNC below it. A new connection of the followed node
 * forgets the last revision (the server may have restarted from 0).
 *
 * Not thread-safe: its one user (the watch's reader) serializes calls.
 */
#ifndef DSI_CLIENT_FOLLOW_H
#define DSI_CLIENT_FOLLOW_H

#include <discovery/discovery.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Events kept per standby. A switch is clean only if the standby's ring
 * still reaches back to where the followed node stopped, which is at most
 * two sync intervals plus the margin before the switch: 1024 covers about
 * 90 changes a second at the default 5 s interval (more with shorter
 * intervals), and matches the SUB queue and the server's --event-buffer,
 * beyond which events are lost anyway. A busier registry switches with a
 * gap, which costs one reload. About 40 bytes a slot plus the event.
 */
#define DSI_FOLLOW_RING 1024

/* The sync interval assumed until a node's first SYNC says (the server's default). */
#define DSI_FOLLOW_DEFAULT_INTERVAL_MS 5000

/*
 * Added to two sync intervals before a node counts as silent: a server
 * briefly descheduled, or a busy client, should not cause a switch.
 */
#define DSI_FOLLOW_MARGIN_MS 1000

#define DSI_FOLLOW_NONE ((size_t) -1)

/* One received event as the follower sees it; item is the caller's. */
typedef struct dsi_follow_msg {
	void    *item;        /* the decoded event; owned by the follower while held */
	uint64_t rev;         /* its revision */
	uint64_t digest;      /* a change's content (not its time); unused for SYNC */
	uint32_t interval_ms; /* SYNC: the node's sync interval; 0: not said */
	bool     sync;
} dsi_follow_msg;

/* What a tick decided. */
typedef enum dsi_follow_move {
	DSI_FOLLOW_STAY,  /* the followed node is live, or no standby is */
	DSI_FOLLOW_CLEAN, /* switched; the stream goes on with no gap */
	DSI_FOLLOW_GAP,   /* switched; the next event delivered is flagged as a gap */
} dsi_follow_move;

/* A ring of messages, oldest first. */
typedef struct dsi_follow_ring {
	dsi_follow_msg *m; /* DSI_FOLLOW_RING slots */
	size_t          head, n;
} dsi_follow_ring;

/* What is known of one node. */
typedef struct dsi_follow_node {
	dsi_follow_ring ring;     /* standby: its latest events; followed: not yet delivered */
	int64_t         sync_ms;  /* when its last SYNC came on this connection; 0: none */
	uint32_t        interval; /* ms, from its last SYNC */
	uint64_t        conn;     /* the connection the ring's events came on; 0: none yet */
	int             kin;      /* same registry as what was delivered? (follow.c's enum) */
} dsi_follow_node;

/* A delivered change: enough to recognise it on another node. */
typedef struct dsi_follow_seen {
	uint64_t rev, digest;
} dsi_follow_seen;

/* The follower: the nodes, which one is followed, and what was delivered. */
typedef struct dsi_follow {
	size_t           n;
	size_t           current; /* DSI_FOLLOW_NONE until the first event */
	dsi_follow_node  node[DSC_MAX_SERVERS];
	int64_t          chosen_ms; /* when current was chosen: its deadline before a SYNC */
	bool             have_last;
	uint64_t         last; /* the revision last delivered, when have_last */
	dsi_follow_seen *seen; /* the latest delivered changes, DSI_FOLLOW_RING slots */
	size_t           seen_head, seen_n;
	bool             gap_next; /* the next delivery starts after a gap */
	uint64_t         switches; /* clean and gap switches, and forced ones */
	uint64_t         gaps;     /* gap switches, and forced ones */
	void (*free_item)(void *item);
} dsi_follow;

/* Sets f up for n nodes (2 to DSC_MAX_SERVERS). Returns 0 or DSC_ENOMEM (f then empty). */
int dsi_follow_init(dsi_follow *f, size_t n, void (*free_item)(void *item));

/* Frees every item held and the rings; f can be inited again. */
void dsi_follow_fini(dsi_follow *f);

/*
 * Takes m, received from node on connection conn (a non-zero id that
 * changes when the node reconnects) at monotonic time now. The follower
 * owns m->item from here on, on every path.
 */
void dsi_follow_push(
    dsi_follow *f, size_t node, uint64_t conn, const dsi_follow_msg *m, int64_t now);

/*
 * The next message to deliver, in *out (the caller then owns out->item), and
 * whether it starts after a gap; false when there is none.
 */
bool dsi_follow_pop(dsi_follow *f, dsi_follow_msg *out, bool *gap);

/* Switches away from a followed node that missed two SYNCs, if a standby is live. */
dsi_follow_move dsi_follow_tick(dsi_follow *f, int64_t now);

/* The monotonic time after which dsi_follow_tick may switch; INT64_MAX: never. */
int64_t dsi_follow_deadline(const dsi_follow *f);

/*
 * Follows node from now on, forgetting its ring and the last revision (the
 * caller loads a snapshot from that node next). Counts as a gap.
 */
void dsi_follow_force(dsi_follow *f, size_t node, int64_t now);

#endif
