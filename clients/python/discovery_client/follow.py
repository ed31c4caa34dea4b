"""Following one node of several: what a Watch on a list of publish URLs
delivers. The rules are libdiscovery's (src/client/follow.c, described in
docs/clients.md#failover); keep the two in step.

Every node's events arrive; only the followed node's are delivered. Each
other node keeps a ring of its latest events. The followed node is dropped
when it has missed two SYNCs (two sync intervals plus a margin); the next
node in list order that had a SYNC recently takes over, cleanly when it is
known to serve the same registry (it published a change identical to one
delivered) and its ring reaches back to the last delivered revision, else
with a gap: delivery starts again at its latest SYNC, flagged. Repeats are
dropped by revision. No locking: one reader at a time.
"""

import collections

# Events kept per standby: as libdiscovery (see follow.h for why 1024).
RING = 1024
DEFAULT_INTERVAL_MS = 5000  # until a node's first SYNC says (the server's default)
MARGIN_MS = 1000  # added to two intervals before a node counts as silent

_UNKNOWN, _SAME, _OTHER = 0, 1, 2

STAY, CLEAN, GAP = "stay", "clean", "gap"


class Msg:
    """One received event as the follower sees it; item is the caller's."""

    __slots__ = ("item", "rev", "digest", "sync", "interval_ms")

    def __init__(self, item, rev, sync, digest=None, interval_ms=0):
        self.item, self.rev, self.sync = item, rev, sync
        self.digest, self.interval_ms = digest, interval_ms


class _Node:
    __slots__ = ("ring", "sync_ms", "interval", "conn", "kin")

    def __init__(self):
        self.ring = collections.deque(maxlen=RING)  # standby: latest; followed: undelivered
        self.sync_ms = None  # monotonic ms of its last SYNC on this connection
        self.interval = DEFAULT_INTERVAL_MS
        self.conn = None  # the connection the ring's events came on
        self.kin = _UNKNOWN


class Follower:
    """The state of one watch over n nodes; times are monotonic milliseconds."""

    def __init__(self, n):
        self.nodes = [_Node() for _ in range(n)]
        self.current = None  # the first node heard from, until a switch
        self.chosen_ms = 0
        self.last = None  # the revision last delivered
        self.seen = collections.deque(maxlen=RING)  # (rev, digest) of delivered changes
        self.gap_next = False
        self.switches = 0
        self.gaps = 0

    def _forget(self):
        self.last = None
        self.seen.clear()
        for nd in self.nodes:
            nd.kin = _UNKNOWN

    def _seen_digest(self, rev):
        for r, d in reversed(self.seen):
            if r == rev:
                return d
            if r < rev:
                break
        return None

    @staticmethod
    def _mark(nd, mine, delivered):
        if mine != delivered:
            nd.kin = _OTHER  # one difference is enough, for good
        elif nd.kin == _UNKNOWN:
            nd.kin = _SAME

    def push(self, node, conn, m, now):
        """Takes Msg m from node, received on connection conn, at time now."""
        nd = self.nodes[node]
        if self.current is None:
            self.current, self.chosen_ms = node, now
        if nd.conn != conn:
            # A new connection: what the old one missed is unknown.
            if nd.conn is not None and node == self.current:
                self._forget()
                self.chosen_ms = now
            elif nd.conn is not None:
                nd.ring.clear()
                nd.kin = _UNKNOWN
            nd.conn, nd.sync_ms = conn, None
        if m.sync:
            nd.sync_ms = now
            nd.interval = m.interval_ms or DEFAULT_INTERVAL_MS
        elif node != self.current:
            d = self._seen_digest(m.rev)
            if d is not None:
                self._mark(nd, m.digest, d)
        nd.ring.append(m)

    def pop(self):
        """(Msg, gap) for the next event to deliver, or None."""
        if self.current is None:
            return None
        ring = self.nodes[self.current].ring
        while ring:
            m = ring.popleft()
            if self.last is not None and (m.rev < self.last if m.sync else m.rev <= self.last):
                continue  # a repeat, or a lagging node's past
            self.last = m.rev
            if not m.sync:
                self.seen.append((m.rev, m.digest))
                self._check_standbys(m.rev, m.digest)
            gap, self.gap_next = self.gap_next, False
            return m, gap
        return None

    def _check_standbys(self, rev, digest):
        for j, nd in enumerate(self.nodes):
            if j == self.current:
                continue
            for m in reversed(nd.ring):
                if m.rev < rev:
                    break
                if not m.sync and m.rev == rev:
                    self._mark(nd, m.digest, digest)
                    break

    @staticmethod
    def _silence(nd):
        return 2 * nd.interval + MARGIN_MS

    def deadline(self):
        """The time after which tick() may switch; None: never."""
        if self.current is None:
            return None
        nd = self.nodes[self.current]
        base = max(nd.sync_ms or 0, self.chosen_ms)
        return base + self._silence(nd)

    def _anchor(self, j):
        """Where a clean switch to node j starts in its ring, or None."""
        ring = self.nodes[j].ring
        if self.last is None or self.nodes[j].kin != _SAME or not ring:
            return None
        if ring[0].rev <= self.last:
            i = 0
            while i < len(ring) and ring[i].rev <= self.last:
                i += 1
            return i
        return 0 if not ring[0].sync and ring[0].rev == self.last + 1 else None

    def _take(self, j, start, now):
        self.nodes[self.current].ring.clear()  # undelivered: the new node has them
        ring = self.nodes[j].ring
        for _ in range(start):
            ring.popleft()
        self.current, self.chosen_ms = j, now
        self.switches += 1

    def tick(self, now):
        """Switches away from a followed node that missed two SYNCs; STAY, CLEAN or GAP."""
        if self.current is None or now <= self.deadline():
            return STAY
        best, at = None, None
        n = len(self.nodes)
        for k in range(1, n):
            j = (self.current + k) % n
            nd = self.nodes[j]
            if nd.sync_ms is None or now - nd.sync_ms > self._silence(nd):
                continue  # silent too
            at = self._anchor(j)
            if at is not None or best is None:
                best = j
            if at is not None:
                break
        if best is None:
            return STAY
        if at is not None:
            was = self.current
            self._take(best, at, now)
            self.nodes[was].kin = _SAME  # it served what was delivered
            return CLEAN
        # A gap: start again at its latest SYNC, whatever its revision.
        ring = self.nodes[best].ring
        start = len(ring)
        for i in range(len(ring) - 1, -1, -1):
            if ring[i].sync:
                start = i
                break
        self._take(best, start, now)
        self._forget()
        self.gap_next = True
        self.gaps += 1
        return GAP
