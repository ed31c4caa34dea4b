/* Following one node of several: rings, repeats by revision, and the switch decision. */
#include "client/follow.h"

#include <stdlib.h>
#include <string.h>

/* Whether a node serves the registry whose events were delivered. */
enum {
	KIN_UNKNOWN, /* no change of it seen next to a delivered one */
	KIN_SAME,    /* it published a change identical to a delivered one */
	KIN_OTHER,   /* it published a different change at a delivered revision */
};

static dsi_follow_msg *
ring_at(dsi_follow_ring *r, size_t i)
{
	return &r->m[(r->head + i) % DSI_FOLLOW_RING];
}

/* Frees the oldest k messages of r. */
static void
ring_drop(dsi_follow *f, dsi_follow_ring *r, size_t k)
{
	for (size_t i = 0; i < k && r->n > 0; i++) {
		f->free_item(ring_at(r, 0)->item);
		r->head = (r->head + 1) % DSI_FOLLOW_RING;
		r->n--;
	}
}

/* Appends m, dropping the oldest message when r is full. */
static void
ring_push(dsi_follow *f, dsi_follow_ring *r, const dsi_follow_msg *m)
{
	if (r->n == DSI_FOLLOW_RING) {
		ring_drop(f, r, 1);
	}
	*ring_at(r, r->n) = *m;
	r->n++;
}

int
dsi_follow_init(dsi_follow *f, size_t n, void (*free_item)(void *item))
{
	memset(f, 0, sizeof(*f));
	if (n < 2 || n > DSC_MAX_SERVERS) {
		return DSC_EINVAL;
	}
	f->n         = n;
	f->current   = DSI_FOLLOW_NONE;
	f->free_item = free_item;
	if ((f->seen = calloc(DSI_FOLLOW_RING, sizeof(*f->seen))) == NULL) {
		return DSC_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		f->node[i].interval = DSI_FOLLOW_DEFAULT_INTERVAL_MS;
		if ((f->node[i].ring.m = calloc(DSI_FOLLOW_RING, sizeof(dsi_follow_msg))) == NULL) {
			dsi_follow_fini(f);
			return DSC_ENOMEM;
		}
	}
	return 0;
}

void
dsi_follow_fini(dsi_follow *f)
{
	for (size_t i = 0; i < f->n; i++) {
		if (f->node[i].ring.m != NULL) {
			ring_drop(f, &f->node[i].ring, f->node[i].ring.n);
			free(f->node[i].ring.m);
		}
	}
	free(f->seen);
	memset(f, 0, sizeof(*f));
}

/* Forgets what was delivered: whatever comes next may be another registry. */
static void
forget(dsi_follow *f)
{
	f->have_last = false;
	f->seen_n    = 0;
	for (size_t i = 0; i < f->n; i++) {
		f->node[i].kin = KIN_UNKNOWN;
	}
}

/* The digest of the delivered change at rev, if it is still remembered. */
static bool
seen_find(const dsi_follow *f, uint64_t rev, uint64_t *digest)
{
	for (size_t i = f->seen_n; i-- > 0;) {
		const dsi_follow_seen *s = &f->seen[(f->seen_head + i) % DSI_FOLLOW_RING];
		if (s->rev == rev) {
			*digest = s->digest;
			return true;
		}
		if (s->rev < rev) {
			break; /* delivered changes only go up */
		}
	}
	return false;
}

static void
seen_add(dsi_follow *f, uint64_t rev, uint64_t digest)
{
	if (f->seen_n == DSI_FOLLOW_RING) {
		f->seen_head = (f->seen_head + 1) % DSI_FOLLOW_RING;
		f->seen_n--;
	}
	f->seen[(f->seen_head + f->seen_n) % DSI_FOLLOW_RING] = (dsi_follow_seen) { rev, digest };
	f->seen_n++;
}

/* One comparison of a change on node with a delivered one at the same revision. */
static void
kin_mark(dsi_follow_node *nd, uint64_t mine, uint64_t delivered)
{
	if (mine != delivered) {
		nd->kin = KIN_OTHER; /* one difference is enough, for good */
	} else if (nd->kin == KIN_UNKNOWN) {
		nd->kin = KIN_SAME;
	}
}

/* After delivering a change: compares it with what each standby holds at its revision. */
static void
kin_check_standbys(dsi_follow *f, uint64_t rev, uint64_t digest)
{
	for (size_t j = 0; j < f->n; j++) {
		dsi_follow_ring *r = &f->node[j].ring;
		if (j == f->current) {
			continue;
		}
		for (size_t i = r->n; i-- > 0;) {
			const dsi_follow_msg *m = ring_at(r, i);
			if (m->rev < rev) {
				break;
			}
			if (!m->sync && m->rev == rev) {
				kin_mark(&f->node[j], m->digest, digest);
				break;
			}
		}
	}
}

void
dsi_follow_push(dsi_follow *f, size_t node, uint64_t conn, const dsi_follow_msg *m, int64_t now)
{
	dsi_follow_node *nd = &f->node[node];
	uint64_t         delivered;

	if (f->current == DSI_FOLLOW_NONE) {
		f->current   = node; /* the first node heard from */
		f->chosen_ms = now;
	}
	if (nd->conn != conn) {
		/* A new connection: what the old one missed is unknown. */
		if (nd->conn != 0 && node == f->current) {
			forget(f);
			f->chosen_ms = now; /* a fresh start: give it its two intervals */
		} else if (nd->conn != 0) {
			ring_drop(f, &nd->ring, nd->ring.n);
			nd->kin = KIN_UNKNOWN;
		}
		nd->conn    = conn;
		nd->sync_ms = 0;
	}
	if (m->sync) {
		nd->sync_ms  = now;
		nd->interval = m->interval_ms > 0 ? m->interval_ms : DSI_FOLLOW_DEFAULT_INTERVAL_MS;
	} else if (node != f->current && seen_find(f, m->rev, &delivered)) {
		kin_mark(nd, m->digest, delivered);
	}
	ring_push(f, &nd->ring, m);
}

bool
dsi_follow_pop(dsi_follow *f, dsi_follow_msg *out, bool *gap)
{
	if (f->current == DSI_FOLLOW_NONE) {
		return false;
	}
	dsi_follow_ring *r = &f->node[f->current].ring;
	while (r->n > 0) {
		dsi_follow_msg m = *ring_at(r, 0);
		r->head          = (r->head + 1) % DSI_FOLLOW_RING;
		r->n--;
		if (f->have_last && (m.sync ? m.rev < f->last : m.rev <= f->last)) {
			f->free_item(m.item); /* a repeat, or a lagging node's past */
			continue;
		}
		f->have_last = true;
		f->last      = m.rev;
		if (!m.sync) {
			seen_add(f, m.rev, m.digest);
			kin_check_standbys(f, m.rev, m.digest);
		}
		*out        = m;
		*gap        = f->gap_next;
		f->gap_next = false;
		return true;
	}
	return false;
}

static int64_t
silence_ms(const dsi_follow_node *nd)
{
	return 2 * (int64_t) nd->interval + DSI_FOLLOW_MARGIN_MS;
}

int64_t
dsi_follow_deadline(const dsi_follow *f)
{
	if (f->current == DSI_FOLLOW_NONE) {
		return INT64_MAX;
	}
	const dsi_follow_node *nd   = &f->node[f->current];
	int64_t                base = nd->sync_ms > f->chosen_ms ? nd->sync_ms : f->chosen_ms;
	return base + silence_ms(nd);
}

/*
 * Where a clean switch to node j would start replaying in its ring, or -1
 * when it cannot be clean: j must be known to serve the same registry, and
 * its ring must reach back to the last delivered revision.
 */
static long
anchor(dsi_follow *f, size_t j)
{
	dsi_follow_ring *r = &f->node[j].ring;
	if (!f->have_last || f->node[j].kin != KIN_SAME || r->n == 0) {
		return -1;
	}
	if (ring_at(r, 0)->rev <= f->last) {
		/* Everything it published after that is here: start after the last <= last. */
		size_t i = 0;
		while (i < r->n && ring_at(r, i)->rev <= f->last) {
			i++;
		}
		return (long) i;
	}
	const dsi_follow_msg *first = ring_at(r, 0);
	return !first->sync && first->rev == f->last + 1 ? 0 : -1;
}

/* Makes j the followed node; its ring from index from on is what comes next. */
static void
take(dsi_follow *f, size_t j, size_t from, int64_t now)
{
	dsi_follow_node *old = &f->node[f->current];
	ring_drop(f, &old->ring, old->ring.n); /* undelivered: the new node has them */
	ring_drop(f, &f->node[j].ring, from);
	f->current   = j;
	f->chosen_ms = now;
	f->switches++;
}

dsi_follow_move
dsi_follow_tick(dsi_follow *f, int64_t now)
{
	size_t best = DSI_FOLLOW_NONE;
	long   at   = -1;

	if (f->current == DSI_FOLLOW_NONE || now <= dsi_follow_deadline(f)) {
		return DSI_FOLLOW_STAY;
	}
	for (size_t k = 1; k < f->n && at < 0; k++) {
		size_t           j  = (f->current + k) % f->n;
		dsi_follow_node *nd = &f->node[j];
		if (nd->sync_ms == 0 || now - nd->sync_ms > silence_ms(nd)) {
			continue; /* silent too */
		}
		if ((at = anchor(f, j)) >= 0 || best == DSI_FOLLOW_NONE) {
			best = j;
		}
	}
	if (best == DSI_FOLLOW_NONE) {
		return DSI_FOLLOW_STAY;
	}
	if (at >= 0) {
		size_t was = f->current;
		take(f, best, (size_t) at, now);
		f->node[was].kin = KIN_SAME; /* it served what was delivered */
		return DSI_FOLLOW_CLEAN;
	}
	/* A gap: start again at its latest SYNC, whatever its revision. */
	dsi_follow_ring *r    = &f->node[best].ring;
	size_t           from = r->n;
	for (size_t i = r->n; i-- > 0;) {
		if (ring_at(r, i)->sync) {
			from = i;
			break;
		}
	}
	take(f, best, from, now);
	forget(f);
	f->gap_next = true;
	f->gaps++;
	return DSI_FOLLOW_GAP;
}

void
dsi_follow_force(dsi_follow *f, size_t node, int64_t now)
{
	if (f->current != DSI_FOLLOW_NONE && f->current != node) {
		dsi_follow_node *old = &f->node[f->current];
		ring_drop(f, &old->ring, old->ring.n);
	}
	ring_drop(f, &f->node[node].ring, f->node[node].ring.n);
	f->current   = node;
	f->chosen_ms = now;
	forget(f);
	f->switches++;
	f->gaps++;
}
