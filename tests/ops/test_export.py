"""export_data.py on a real database: one file per UTC day with the day's rows, decoded values
(CSV read back with pandas; Parquet when pyarrow is installed), hourly bars for barred days,
owner-only files, and one sentence with exit code 2 for bad arguments or a missing pyarrow."""

from __future__ import annotations

import math
import sys

import pandas as pd
import pytest

from polybot import db
from polybot.ops import export as export_mod
from polybot.ops.retention import Tiers, apply_retention, read_bars
from polybot.snapshots import codec
from polybot.snapshots.store import insert_rows
from polybot.timefmt import utc_day
from tests.ops.helpers import connect, init_workspace

DAY = 86_400
D = 1_796_083_200  # a UTC midnight: the newest day
LAYOUT = {D: 5, D - DAY: 3, D - 3 * DAY: 4}  # rows per day; D - 2 days has none


def _row(ts, i, *, source="collected"):
    bid, ask = round(0.30 + 0.01 * (i % 7), 2), round(0.33 + 0.01 * (i % 7), 2)
    if source == "backfill":
        return (
            ts,
            f"tok{i % 3}",
            "m1",
            None,
            None,
            0.4125,
            None,
            0.4125,
            None,
            None,
            None,
            None,
            None,
            None,
            source,
        )
    return (
        ts,
        f"tok{i % 3}",
        f"m{i % 3 // 2}",
        bid,
        ask,
        (bid + ask) / 2,
        ask - bid,
        0.31,
        1234.5,
        99.25,
        f"{bid}:1000,{round(bid - 0.01, 2)}:234.5",
        f"{ask}:50.25" if i % 2 else "",
        52_000.123456,
        7_100.5,
        source,
    )


@pytest.fixture
def workspace(tmp_path):
    cfg = init_workspace(tmp_path)
    conn = connect(cfg)
    rows = []
    for day, n in LAYOUT.items():
        rows += [_row(day + 300 * i, i) for i in range(n)]
    rows.append(_row(D + 3600, 1, source="backfill"))
    with db.atomic(conn):
        insert_rows(conn, rows)
    # the oldest day ages into hourly bars (its rows go)
    apply_retention(conn, Tiers(top_of_book_days=1), now=D - 2 * DAY + 7200, emit=lambda _: None)
    conn.close()
    return cfg


def _view(cfg, start, end) -> list[dict]:
    conn = connect(cfg)
    try:
        return [
            dict(r)
            for r in conn.execute(
                "SELECT * FROM snapshot_values WHERE timestamp >= ? AND timestamp < ? ORDER BY timestamp",
                (start, end),
            )
        ]
    finally:
        conn.close()


def _same(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == b


def test_csv_one_file_per_day_with_decoded_values(workspace, cli, monkeypatch):
    monkeypatch.setattr(export_mod, "BATCH_ROWS", 2)  # streamed in batches across a day
    res = cli("export_data.py", "--format", "csv", "--days", "4")
    assert res.returncode == 0, res.stdout + res.stderr
    out = workspace.root / "exports"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        f"bars_{utc_day(D - 3 * DAY)}.csv",
        f"snapshots_{utc_day(D - DAY)}.csv",
        f"snapshots_{utc_day(D)}.csv",
    ]
    assert f"{utc_day(D - 2 * DAY)}: no data" in res.stdout
    assert "Exported 9 snapshot rows and" in res.stdout and "docs/data_export.md" in res.stdout
    for p in out.iterdir():
        assert p.stat().st_mode & 0o777 == 0o600
    day = pd.read_csv(out / f"snapshots_{utc_day(D)}.csv", dtype={"token_id": str, "market_id": str})
    assert list(day.columns) == list(codec.COLUMNS)
    expected = _view(workspace, D, D + DAY)
    assert len(day) == len(expected) == 6  # 5 collected + 1 backfill
    for got, want in zip(day.to_dict("records"), expected, strict=True):
        for col in codec.COLUMNS:
            if col in ("bids", "asks"):
                text = codec.text_of(want[col])
                assert _same(
                    None if (isinstance(got[col], float) and math.isnan(got[col])) else got[col], text or None
                ), (
                    col,
                    got,
                    want,
                )
            else:
                assert _same(got[col], want[col]), (col, got[col], want[col])
    first = day.iloc[0]
    assert (
        first["bids"] == "0.3:1000,0.29:234.5"
        and first["best_bid"] == 0.30
        and first["volume_24h"] == 52_000.123456
    )
    assert len(pd.read_csv(out / f"snapshots_{utc_day(D - DAY)}.csv")) == 3
    bars = pd.read_csv(out / f"bars_{utc_day(D - 3 * DAY)}.csv", dtype={"token_id": str})
    conn = connect(workspace)
    want_bars = read_bars(conn, D - 3 * DAY, D - 2 * DAY)
    conn.close()
    assert len(bars) == len(want_bars) == 3 and int(bars["samples"].sum()) == 4
    assert list(bars.columns) == list(export_mod.BAR_COLUMNS)
    assert bars.to_dict("records")[0]["close"] == pytest.approx(want_bars[0]["close"])


def test_days_counts_back_from_the_newest_day(workspace, cli, tmp_path):
    res = cli("export_data.py", "--format", "csv", "--days", "1", "--out", str(tmp_path / "one"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [f"snapshots_{utc_day(D)}.csv"]


def test_parquet_with_list_columns(workspace, cli):
    pytest.importorskip("pyarrow")
    res = cli("export_data.py", "--format", "parquet", "--days", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    path = workspace.root / "exports" / f"snapshots_{utc_day(D)}.parquet"
    assert path.stat().st_mode & 0o777 == 0o600
    day = pd.read_parquet(path)
    assert list(day.columns) == list(codec.COLUMNS) and len(day) == 6
    expected = _view(workspace, D, D + DAY)
    first = day.iloc[0]
    assert [dict(x) for x in first["bids"]] == [
        {"price": p, "size": s} for p, s in codec.levels_of(expected[0]["bids"])
    ]
    assert list(day.iloc[0]["asks"]) == []  # an empty side
    assert day.iloc[5]["bids"] is None and day.iloc[5]["source"] == "backfill"  # not recorded
    assert day["timestamp"].tolist() == [r["timestamp"] for r in expected]
    assert day["mid"].tolist() == [r["mid"] for r in expected]


def test_parquet_without_pyarrow_is_one_sentence_and_writes_nothing(workspace, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    res = cli("export_data.py", "--format", "parquet", "--days", "2")
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "package pyarrow is not installed" in lines[0]
    assert "pip install -r requirements.txt" in lines[0]
    assert "Traceback" not in res.stdout + res.stderr
    assert not (workspace.root / "exports").exists()
    res = cli("export_data.py", "--format", "csv", "--days", "2")  # CSV needs no pyarrow
    assert res.returncode == 0 and len(list((workspace.root / "exports").iterdir())) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "csv", "--days", "0"], "argument --days: must be from 1 to 3650 days (got 0)"),
        (["--format", "csv", "--days", "seven"], "argument --days: 'seven' is not a whole number of days"),
        (["--format", "csv", "--days", "99999"], "must be from 1 to 3650 days"),
        (["--format", "xlsx", "--days", "3"], "argument --format: invalid choice: 'xlsx'"),
        (["--days", "3"], "the following arguments are required: --format"),
    ],
)
def test_bad_arguments_one_sentence_exit_2(workspace, cli, args, message):
    res = cli("export_data.py", *args)
    assert res.returncode == 2
    assert "Traceback" not in res.stdout + res.stderr
    assert res.stderr.splitlines()[-1].startswith("export_data.py: error: ") and message in res.stderr
    assert not (workspace.root / "exports").exists()


def test_empty_database_exports_nothing(tmp_path, cli):
    init_workspace(tmp_path)
    res = cli("export_data.py", "--format", "csv", "--days", "3")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No market data" in res.stdout and not (tmp_path / "exports").exists()
