"""Retention tiers (polybot/ops/retention.py) on a real database: full depth, then top of book,
then hourly bars, then deleted; bars computed by hand; re-running changes nothing; a crash
between batches loses nothing; the view and the quality check still work on thinned rows."""

from __future__ import annotations

import sqlite3

import pytest

from polybot import db
from polybot.collect.quality import THINNED_BEFORE_KEY, check_nulls, depth_required_since
from polybot.config import load_config
from polybot.errors import ConfigError
from polybot.ops import retention
from polybot.ops.retention import Tiers, apply_retention, read_bars
from polybot.snapshots.store import insert_rows
from tests.conftest import write_config
from tests.ops.helpers import connect, init_workspace

NOW = 1_800_000_000 - 1_800_000_000 % 3600 + 1800  # half past an hour, UTC
DAY = 86_400
TIERS = {"full_depth_days": 30, "top_of_book_days": 365, "hourly_bar_days": 0}


def _row(ts, token, bid, ask, last=None, *, vol=1000.0, liq=500.0, source="collected", levels=True):
    mid = (bid + ask) / 2 if bid is not None and ask is not None else None
    spread = ask - bid if bid is not None and ask is not None else None
    bids = f"{bid}:100,{round(bid - 0.01, 2)}:250.5,{round(bid - 0.02, 2)}:80" if levels and bid else None
    asks = f"{ask}:120,{round(ask + 0.01, 2)}:60,{round(ask + 0.02, 2)}:33.25" if levels and ask else None
    depth = (430.5 if bids else None), (213.25 if asks else None)
    return (ts, token, "m1", bid, ask, mid, spread, last, *depth, bids, asks, vol, liq, source)


def _insert(conn, rows) -> None:
    with db.atomic(conn):
        insert_rows(conn, rows)


def _state(conn) -> tuple[list, list]:
    rows = conn.execute("SELECT * FROM market_snapshots ORDER BY timestamp, token_key").fetchall()
    bars = conn.execute("SELECT * FROM snapshot_bars ORDER BY hour, token_key").fetchall()
    return [tuple(r) for r in rows], [tuple(r) for r in bars]


@pytest.fixture
def workspace(tmp_path):
    cfg = init_workspace(tmp_path, {"maintenance": TIERS})
    conn = connect(cfg)
    yield cfg, conn
    conn.close()


def _aged(age_days: float, minute: int = 0) -> int:
    ts = int(NOW - age_days * DAY)
    return ts - ts % 300 + minute * 60


def test_rows_land_in_the_tier_their_age_says(workspace):
    cfg, conn = workspace
    young, month, year = _aged(1), _aged(40), _aged(400)
    rows = []
    for ts in (young, month, year):
        rows += [_row(ts, "tokA", 0.52, 0.54, 0.53), _row(ts, "tokB", 0.46, 0.48, 0.47)]
    _insert(conn, rows)
    tiers = Tiers.from_config(cfg.maintenance)
    assert [tiers.tier_of(t, NOW) for t in (young, month, year)] == ["full", "top_of_book", "bars"]

    res = apply_retention(conn, tiers, now=NOW, emit=lambda _: None)

    assert (res.thinned_rows, res.barred_rows, res.bars_written, res.deleted_rows) == (2, 2, 2, 0)
    assert res.thinned_bytes > 0
    view = {
        (r["timestamp"], r["token_id"]): r
        for r in conn.execute("SELECT * FROM snapshot_values ORDER BY timestamp, token_id")
    }
    assert conn.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0] == 4
    full = view[(young, "tokA")]
    assert full["bids"] is not None and full["bid_depth"] == 430.5
    thin = view[(month, "tokA")]
    assert (
        thin["bids"] is None
        and thin["asks"] is None
        and thin["bid_depth"] is None
        and thin["ask_depth"] is None
    )
    # top of book stays, and so do the values derived from it
    assert (thin["best_bid"], thin["best_ask"], thin["last_trade_price"]) == (0.52, 0.54, 0.53)
    assert thin["mid"] == (0.52 + 0.54) / 2 and thin["spread"] == 0.54 - 0.52
    # half past the hour: volume and liquidity go too (kept once an hour, see the next test)
    assert (thin["volume_24h"], thin["liquidity"], thin["source"]) == (None, None, "collected")
    assert not [k for k in view if k[0] == year]
    bars = read_bars(conn)
    assert [(b["hour"], b["token_id"], b["samples"]) for b in bars] == [
        (year - year % 3600, "tokA", 1),
        (year - year % 3600, "tokB", 1),
    ]


def test_top_of_book_keeps_volume_and_liquidity_once_an_hour(workspace):
    cfg, conn = workspace
    top = _aged(40) - _aged(40) % 3600  # a row at the top of the hour, then two in the same hour
    _insert(conn, [_row(top + k * 300, "tokA", 0.52, 0.54, 0.53, vol=1000.0 + k) for k in range(3)])
    apply_retention(conn, Tiers.from_config(cfg.maintenance), now=NOW, emit=lambda _: None)
    got = conn.execute(
        "SELECT volume_24h, liquidity, bids FROM snapshot_values ORDER BY timestamp"
    ).fetchall()
    assert [tuple(r) for r in got] == [(1000.0, 500.0, None), (None, None, None), (None, None, None)]


def test_hourly_bar_is_computed_as_by_hand(workspace):
    cfg, conn = workspace
    hour = _aged(400) - _aged(400) % 3600
    rows = [
        _row(hour + 0, "tokA", 0.50, 0.52, 0.51, vol=100.0, liq=10.0),  # mid 0.51
        _row(hour + 300, "tokA", 0.55, 0.59, 0.56, vol=110.0, liq=11.0),  # mid 0.57 (high)
        _row(hour + 600, "tokA", None, 0.40, 0.38, vol=120.0, liq=12.0),  # no mid: last 0.38 (low)
        _row(hour + 900, "tokA", 0.44, 0.46, None, vol=None, liq=13.0),  # mid 0.45
        _row(hour + 1200, "tokA", 0.47, None, None, vol=None, liq=None),  # no mid, no last: no value
        _row(hour + 3600, "tokA", 0.60, 0.62, 0.61),  # the next hour: its own bar
    ]
    _insert(conn, rows)
    apply_retention(conn, Tiers.from_config(cfg.maintenance), now=NOW, emit=lambda _: None)
    first, second = read_bars(conn)
    assert first["hour"] == hour and first["token_id"] == "tokA" and first["market_id"] == "m1"
    assert first["open"] == pytest.approx((0.50 + 0.52) / 2)
    assert first["high"] == pytest.approx((0.55 + 0.59) / 2)
    assert first["low"] == 0.38
    assert first["close"] == pytest.approx((0.44 + 0.46) / 2)
    # the hour's last non-NULL best bid, best ask, last trade, volume and liquidity
    assert (first["bid"], first["ask"], first["last"]) == (0.47, 0.46, 0.38)
    assert (first["volume_24h"], first["liquidity"]) == (120.0, 13.0)
    assert first["samples"] == 5
    assert second["hour"] == hour + 3600 and second["samples"] == 1
    assert second["open"] == second["close"] == pytest.approx(0.61)
    assert conn.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0] == 0


def test_rerunning_changes_nothing(workspace):
    cfg, conn = workspace
    rows = []
    for age in (0.5, 31, 45, 200, 366, 370, 500):
        for minute in (0, 5, 10):
            rows += [_row(_aged(age, minute), t, 0.3, 0.32, 0.31) for t in ("tokA", "tokB", "tokC")]
    _insert(conn, rows)
    tiers = Tiers.from_config(cfg.maintenance)
    first = apply_retention(conn, tiers, now=NOW, emit=lambda _: None)
    assert first.changed > 0
    before = _state(conn)
    again = apply_retention(conn, tiers, now=NOW, emit=lambda _: None)
    assert again.changed == 0 and (again.bars_written, again.bars_merged, again.thinned_bytes) == (0, 0, 0)
    assert _state(conn) == before
    assert conn.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0] == 4 * 3 * 3


def test_a_crash_between_batches_loses_nothing(workspace, monkeypatch):
    """Batches of a few rows; the bar step dies in its third batch. The database holds whole
    batches only, and the next run ends exactly where an uninterrupted run ends."""
    cfg, conn = workspace
    rows = []
    for age in (2, 40, 41, 42, 380, 381, 382, 383):
        rows += [_row(_aged(age, m), t, 0.2, 0.25, 0.22) for m in (0, 5) for t in ("tokA", "tokB")]
    _insert(conn, rows)
    (cfg.root / "ref").mkdir()
    reference = init_workspace(cfg.root / "ref", {"maintenance": TIERS})
    ref = connect(reference)
    _insert(ref, rows)
    monkeypatch.setattr(retention, "BATCH_ROWS", 3)
    apply_retention(ref, Tiers.from_config(cfg.maintenance), now=NOW, emit=lambda _: None)

    calls = {"n": 0}
    real = retention._bar_batch

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process is killed in the middle of a batch
        return real(*args, **kwargs)

    monkeypatch.setattr(retention, "_bar_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        apply_retention(conn, Tiers.from_config(cfg.maintenance), now=NOW, emit=lambda _: None)
    assert not conn.in_transaction
    rows_now, bars_now = _state(conn)
    assert len(bars_now) == 4  # two whole batches (hours) of two tokens
    monkeypatch.setattr(retention, "_bar_batch", real)
    apply_retention(conn, Tiers.from_config(cfg.maintenance), now=NOW, emit=lambda _: None)
    assert _state(conn) == _state(ref)
    ref.close()


def test_late_rows_merge_into_an_existing_bar(workspace):
    cfg, conn = workspace
    hour = _aged(400) - _aged(400) % 3600
    _insert(conn, [_row(hour + 600, "tokA", 0.50, 0.52, 0.51), _row(hour + 900, "tokA", 0.40, 0.42, 0.41)])
    tiers = Tiers.from_config(cfg.maintenance)
    apply_retention(conn, tiers, now=NOW, emit=lambda _: None)
    # a backfill writes the same hour again later (no book: a history price in mid)
    late = (hour, "tokA", "m1", None, None, 0.70, None, 0.70, None, None, None, None, None, None, "backfill")
    _insert(conn, [late])
    res = apply_retention(conn, tiers, now=NOW, emit=lambda _: None)
    assert (res.barred_rows, res.bars_written, res.bars_merged) == (1, 0, 1)
    (bar,) = read_bars(conn)
    assert bar["samples"] == 3 and bar["high"] == 0.70 and bar["low"] == pytest.approx(0.41)
    assert bar["open"] == pytest.approx(0.51) and bar["close"] == pytest.approx(0.41)  # the bar's own


def test_hard_limit_and_bar_retention_delete(tmp_path):
    cfg = init_workspace(
        tmp_path,
        {"maintenance": {**TIERS, "hourly_bar_days": 400, "snapshot_retention_days": 0}},
    )
    conn = connect(cfg)
    _insert(conn, [_row(_aged(age), "tokA", 0.1, 0.12, 0.11) for age in (10, 380, 390, 420)])
    res = apply_retention(conn, Tiers.from_config(cfg.maintenance), now=NOW, emit=lambda _: None)
    # 420 days: barred, then the bar is past hourly_bar_days
    assert (res.barred_rows, res.deleted_bars) == (3, 1)
    assert len(read_bars(conn)) == 2
    hard = Tiers(hard_limit_days=5)
    res = apply_retention(conn, hard, now=NOW, emit=lambda _: None)
    assert (res.deleted_rows, res.deleted_bars) == (1, 2)
    assert conn.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0] == 0
    conn.close()


def test_dry_run_counts_and_changes_nothing(workspace, tmp_path):
    cfg, conn = workspace
    rows = [_row(_aged(age, m), t, 0.6, 0.61, 0.6) for age in (3, 50, 400) for m in (0, 5) for t in "AB"]
    _insert(conn, rows)
    before = _state(conn)
    lines: list[str] = []
    plan = apply_retention(conn, Tiers.from_config(cfg.maintenance), now=NOW, dry_run=True, emit=lines.append)
    assert _state(conn) == before
    assert any("Dry run — nothing changed" in ln for ln in lines)
    done = apply_retention(conn, Tiers.from_config(cfg.maintenance), now=NOW, emit=lambda _: None)
    assert (plan.thinned_rows, plan.thinned_bytes, plan.barred_rows, plan.bars_written) == (
        done.thinned_rows,
        done.thinned_bytes,
        done.barred_rows,
        done.bars_written,
    )
    assert plan.thinned_rows == 4 and plan.barred_rows == 4 and plan.bars_written == 2


def test_quality_accepts_thinned_rows_but_not_a_young_row_without_depth(workspace):
    cfg, conn = workspace
    _insert(conn, [_row(_aged(age), "tokA", 0.5, 0.52, 0.51) for age in (1, 2, 40, 41)])
    apply_retention(conn, Tiers.from_config(cfg.maintenance), now=NOW, emit=lambda _: None)
    since = cfg.maintenance.depth_required_since(NOW)
    assert check_nulls(conn, "", (), depth_since=since).ok
    assert not check_nulls(conn, "", ()).ok  # without the tiers, NULL book levels are a fault
    # the tiers turned off again: the rows already thinned are still no fault
    assert retention.THIN_MARK == THINNED_BEFORE_KEY
    off = load_config(_write(cfg.root, {}), require_mode_secrets=False)
    assert off.maintenance.depth_required_since(NOW) is None
    assert depth_required_since(conn, off, NOW) == int(NOW - 30 * DAY)
    assert check_nulls(conn, "", (), depth_since=depth_required_since(conn, off, NOW)).ok
    # a young collected row without its book is still a fault
    _insert(conn, [_row(_aged(1, 5), "tokA", 0.5, 0.52, 0.51, levels=False)])
    check = check_nulls(conn, "", (), depth_since=depth_required_since(conn, cfg, NOW))
    assert not check.ok and "1 collected rows" in check.text


def _write(root, maintenance):
    write_config(root, {"maintenance": maintenance})
    return root / "config.yaml"


def test_nothing_runs_while_legacy_rows_wait_for_the_migration(workspace):
    cfg, conn = workspace
    with db.atomic(conn):
        conn.execute("CREATE TABLE market_snapshots_legacy (timestamp INTEGER, token_id TEXT)")
    _insert(conn, [_row(_aged(400), "tokA", 0.5, 0.52, 0.51)])
    lines: list[str] = []
    res = apply_retention(conn, Tiers.from_config(cfg.maintenance), now=NOW, emit=lines.append)
    assert res.skipped and "--migrate" in lines[-1]
    assert conn.execute("SELECT COUNT(*) FROM market_snapshots").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("maintenance", "message"),
    [
        ({"full_depth_days": -1}, "'maintenance.full_depth_days' must be ≥ 0"),
        ({"full_depth_days": 400, "top_of_book_days": 365}, "must be less than maintenance.top_of_book_days"),
        ({"hourly_bar_days": 30}, "needs maintenance.top_of_book_days"),
        ({"top_of_book_days": 365, "hourly_bar_days": 100}, "must be more than maintenance.top_of_book_days"),
    ],
)
def test_bad_tier_settings_are_refused_with_one_sentence(tmp_path, maintenance, message):
    write_config(tmp_path, {"maintenance": maintenance})
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "config.yaml", require_mode_secrets=False)
    text = str(err.value)
    assert message in text and text.endswith("fix it in config.yaml.") and "\n" not in text


def test_maintain_database_dry_run_and_real_run(tmp_path, cli):
    cfg = init_workspace(tmp_path, {"maintenance": TIERS})
    conn = connect(cfg)
    import time

    now = int(time.time())
    _insert(
        conn,
        [_row(now - age * DAY - (now - age * DAY) % 300, "tokA", 0.5, 0.52, 0.51) for age in (1, 40, 400)],
    )
    conn.close()
    res = cli("maintain_database.py", "--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (
        "Retention tiers: full depth for 30 days, top of book until 365 days, hourly bars forever"
        in res.stdout
    )
    assert "Top of book: 1 row(s) would be thinned" in res.stdout
    assert "Hourly bars: 1 row(s) would be replaced by 1 bar(s)" in res.stdout
    assert "Starting VACUUM..." not in res.stdout and "✓ Dry run complete" in res.stdout
    plain = sqlite3.connect(cfg.database_path)
    assert plain.execute("SELECT COUNT(*) FROM market_snapshots WHERE bids IS NOT NULL").fetchone()[0] == 3
    res = cli("maintain_database.py")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Top of book: 1 row(s) thinned" in res.stdout and "1 new bar(s)" in res.stdout
    assert "✓ Maintenance complete" in res.stdout
    assert plain.execute("SELECT COUNT(*) FROM snapshot_values").fetchone()[0] == 2
    assert plain.execute("SELECT COUNT(*) FROM snapshot_bars").fetchone()[0] == 1
    plain.close()
