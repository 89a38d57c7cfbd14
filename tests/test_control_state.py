"""polybot/control_state.py on a real SQLite file: the stored pause, and close requests that only
one claimant can take, expire, and whose results are kept a day."""

from __future__ import annotations

from polybot import control_state as cs
from polybot import db

T = 1_800_000_000


def _conn(tmp_path):
    path = tmp_path / "p.db"
    db.initialize(path)
    return db.connect(path)


def test_pause_is_stored_updated_and_lifted(tmp_path):
    conn = _conn(tmp_path)
    try:
        assert cs.read_pause(conn) is None and cs.clear_pause(conn, now=T) is None
        assert cs.set_pause(conn, reason="news", by="@alice", now=T) is None
        cs.count_skipped(conn, 2, now=T + 1)
        before = cs.set_pause(conn, reason="still news", by="ops (terminal)", now=T + 60)
        assert before == cs.Pause("news", "@alice", T, 2)
        now = cs.read_pause(conn)
        assert now == cs.Pause("still news", "ops (terminal)", T, 2)  # the start is kept
        assert (
            cs.pause_detail(now) == "since 2027-01-15 08:00:00 UTC by ops (terminal): still news (2 skipped)"
        )
        assert cs.clear_pause(conn, now=T + 120) == now
        assert cs.read_pause(conn) is None
        cs.count_skipped(conn, 5, now=T + 121)  # not paused: nothing counted
        assert cs.set_pause(conn, reason="", by="x", now=T + 200) is None
        assert cs.read_pause(conn) == cs.Pause("", "x", T + 200, 0)
    finally:
        conn.close()


def test_close_requests_are_claimed_once_expire_and_keep_their_result(tmp_path):
    conn = _conn(tmp_path)
    try:
        a = cs.add_close_request(conn, target="all", label="all 2", by="@alice", now=T)
        b = cs.add_close_request(conn, target=["t1", "t2"], label="#1, #2", by="@alice", now=T + 1)
        assert (a, b) == (1, 2)
        reqs = cs.pending_close_requests(conn)
        assert [(r.id, r.target, r.requested_at) for r in reqs] == [(1, "all", T), (2, ["t1", "t2"], T + 1)]
        assert cs.claim_close_request(conn, a) and not cs.claim_close_request(conn, a)  # one winner
        assert cs.expire_close_request(conn, reqs[1], now=T + 300, why="after 299 s")
        assert not cs.expire_close_request(conn, reqs[1], now=T + 301, why="again")
        res = cs.read_close_result(conn, b)
        assert (
            res is not None
            and res.status == cs.EXPIRED
            and res.text.startswith("Close #2 (#1, #2) expired after 299 s")
        )
        assert cs.pending_close_requests(conn) == []
        cs.record_close_result(conn, a, cs.DONE, "sold", now=T + 300 + cs.RESULT_KEEP + 1)
        assert cs.read_close_result(conn, b) is None  # older than a day: deleted
        assert cs.read_close_result(conn, a).status == cs.DONE
        assert cs.add_close_request(conn, target="all", label="x", by="y", now=T) == 3  # ids never repeat
    finally:
        conn.close()
