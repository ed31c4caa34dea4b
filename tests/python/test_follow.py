"""A Python Watch on several publish URLs follows one node (discovery_client.follow,
the rules of libdiscovery's src/client/follow.c; docs/clients.md#failover).

First the follower alone, on the cases tests/unit/follow_test.c checks in C;
then real discoveryd processes on loopback with 0.2 s SYNCs: two servers fed
the same registrations in the same order (so the same changes at the same
revisions, as the nodes of one cluster publish them) switch cleanly when the
followed one dies; two servers with different registries switch with a gap.

Run by ctest with /usr/bin/python3 and PYTHONPATH holding the client and the
generated discovery_pb2, and DISCOVERYD naming the server binary.
"""

import unittest

from discovery_client import pb
from discovery_client.follow import CLEAN, GAP, MARGIN_MS, RING, STAY, Follower, Msg
from discovery_client.watch import Watch
from support import FAST, LIVENESS, Daemon, next_event

import discovery_client as dc

AFTER = 1000 + 2 * 200 + MARGIN_MS + 1  # past two 200 ms intervals and the margin after 1000


class FollowerTest(unittest.TestCase):
    """The decisions alone: repeats, rings, deadline, clean switch or gap."""

    def setUp(self):
        self.f = Follower(3)

    def change(self, node, rev, now, digest=None, conn=1):
        self.f.push(node, conn, Msg(("c", node, rev), rev, False,
                                    rev * 7919 if digest is None else digest), now)

    def sync(self, node, rev, now, conn=1):
        self.f.push(node, conn, Msg(("s", node, rev), rev, True, None, 200), now)

    def expect(self, kind, rev, gap=False):
        got = self.f.pop()
        self.assertIsNotNone(got)
        m, g = got
        self.assertEqual((m.item[0], m.item[2], g), (kind, rev, gap))

    def expect_none(self):
        self.assertIsNone(self.f.pop())

    def lockstep(self, n, now=1000):
        for r in range(1, n + 1):
            self.change(0, r, now)
            self.change(1, r, now)
            self.expect("c", r)
            self.expect_none()
        self.sync(0, n, now)
        self.sync(1, n, now)
        self.expect("s", n)

    def test_repeats_dropped(self):
        self.lockstep(3)
        self.change(2, 2, 1000)
        self.expect_none()
        self.assertEqual(self.f.current, 0)
        self.assertEqual(self.f.tick(1100), STAY)

    def test_clean_switch_replays_ring(self):
        self.lockstep(3)
        self.change(1, 4, 1100)
        self.change(1, 5, 1200)
        self.sync(1, 5, 1300)
        self.assertEqual(self.f.tick(AFTER - 1), STAY)
        self.assertEqual(self.f.tick(AFTER), CLEAN)
        self.expect("c", 4)
        self.expect("c", 5)
        self.expect("s", 5)
        self.expect_none()

    def test_clean_switch_behind(self):
        self.lockstep(2)
        self.change(0, 3, 1000)
        self.expect("c", 3)
        self.sync(1, 2, 1300)
        self.assertEqual(self.f.tick(AFTER), CLEAN)
        self.change(1, 3, AFTER + 1)
        self.sync(1, 3, AFTER + 2)
        self.change(1, 4, AFTER + 3)
        self.expect("s", 3)
        self.expect("c", 4)
        self.expect_none()

    def test_overflowed_ring_is_a_gap(self):
        self.lockstep(2)
        for r in range(3, 3 + RING + 5):
            self.change(1, r, 1100)
        self.sync(1, 2 + RING + 5, 1200)
        self.assertEqual(self.f.tick(AFTER), GAP)
        self.expect("s", 2 + RING + 5, gap=True)
        self.assertEqual(self.f.gaps, 1)

    def test_ring_starting_at_next_is_clean(self):
        self.lockstep(2)
        for r in range(3, 2 + RING):
            self.change(1, r, 1100)
        self.sync(1, 1 + RING, 1200)
        self.assertEqual(len(self.f.nodes[1].ring), RING)
        self.assertEqual(self.f.tick(AFTER), CLEAN)
        for r in range(3, 2 + RING):
            self.expect("c", r)
        self.expect("s", 1 + RING)

    def test_other_registry_is_a_gap(self):
        self.change(0, 1, 1000)
        self.change(1, 1, 1000, digest=12345)
        self.sync(0, 1, 1000)
        self.expect("c", 1)
        self.expect("s", 1)
        self.sync(1, 1, 1300)
        self.assertEqual(self.f.tick(AFTER), GAP)
        self.expect("s", 1, gap=True)
        self.change(1, 2, AFTER + 1, digest=999)
        self.expect("c", 2)

    def test_unknown_kin_is_a_gap(self):
        self.sync(0, 7, 1000)
        self.sync(1, 7, 1000)
        self.expect("s", 7)
        self.sync(1, 7, 1300)
        self.assertEqual(self.f.tick(AFTER), GAP)
        self.expect("s", 7, gap=True)

    def test_no_live_standby_stays(self):
        self.lockstep(2)
        self.change(2, 3, 1000)
        self.assertEqual(self.f.tick(AFTER), STAY)
        self.sync(0, 2, AFTER + 5)
        self.assertEqual(self.f.tick(AFTER + 10), STAY)
        self.expect("s", 2)

    def test_reconnects(self):
        self.lockstep(3)
        self.sync(1, 3, 1300, conn=2)  # a standby's new connection empties its ring
        self.assertEqual(len(self.f.nodes[1].ring), 1)
        self.sync(0, 0, 1301, conn=9)  # the followed node restarted from 0
        self.change(0, 1, 1302, conn=9)
        self.expect("s", 0)
        self.expect("c", 1)


class WatchFollowTest(unittest.TestCase):
    """Real servers; the watch's SYNCs are read with include_sync."""

    def setUp(self):
        self.daemons = [Daemon(FAST), Daemon(FAST)]
        self.clients = [dc.Client(d.url, timeout=LIVENESS) for d in self.daemons]
        self.addCleanup(self.cleanup)

    def cleanup(self):
        for d in self.daemons:
            d.stop()
            d.remove_log()
        for c in self.clients:
            c.close()

    def watch(self):
        w = Watch([d.pub_url for d in self.daemons], include_sync=True)
        self.addCleanup(w.close)
        next_event(w, lambda e: True, "a first event")
        self.assertIn(w.node, (0, 1))
        return w

    def test_same_changes_switch_cleanly(self):
        # The same registrations in the same order: the same changes at the
        # same revisions, as two nodes of one cluster publish them.
        for k in range(3):
            for c in self.clients:
                c.register("same", "http://127.0.0.1:%d" % (9100 + k), ttl_ms=600000)
        w = self.watch()
        for c in self.clients:
            c.register("same", "http://127.0.0.1:9103", ttl_ms=600000)
        ev = next_event(w, lambda e: e.type != pb.EVENT_SYNC, "the fourth registration")
        self.assertEqual(ev.revision, 4)
        followed = w.node
        self.daemons[followed].proc.kill()
        other = self.clients[1 - followed]
        other.register("same", "http://127.0.0.1:9104", ttl_ms=600000)
        ev = next_event(w, lambda e: e.type != pb.EVENT_SYNC, "the fifth, from the other")
        self.assertEqual((ev.revision, ev.instance.endpoint), (5, "http://127.0.0.1:9104"))
        self.assertEqual(w.node, 1 - followed)
        self.assertEqual(w.gaps, 0)

    def test_each_change_once(self):
        for k in range(3):
            for c in self.clients:
                c.register("once", "http://127.0.0.1:%d" % (9200 + k), ttl_ms=600000)
        w = self.watch()
        for k in range(3, 8):
            for c in self.clients:
                c.register("once", "http://127.0.0.1:%d" % (9200 + k), ttl_ms=600000)
        revs = []
        while not revs or revs[-1] < 8:
            ev = next_event(w, lambda e: e.type != pb.EVENT_SYNC, "revision 8")
            revs.append(ev.revision)
        self.assertEqual(revs, list(range(4, 9)))

    def test_other_registry_is_a_flagged_gap(self):
        self.clients[0].register("a-only", "http://127.0.0.1:9300", ttl_ms=600000)
        for k in range(4):
            self.clients[1].register("b-only", "http://127.0.0.1:%d" % (9301 + k), ttl_ms=600000)
        w = self.watch()
        followed = w.node
        self.daemons[followed].proc.kill()
        ev = next_event(w, lambda e: e.type == pb.EVENT_SYNC and e.reason != "",
                        "the flagged SYNC of the other server")
        self.assertIn("events may have been missed", ev.reason)
        self.assertEqual(ev.revision, 4 if followed == 0 else 1)
        self.assertEqual(w.node, 1 - followed)
        self.assertEqual(w.gaps, 1)


if __name__ == "__main__":
    unittest.main()
