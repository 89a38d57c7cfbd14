"""``python export_data.py --format parquet|csv --days N [--out DIR]``: market data for research.

One file per UTC day, ``snapshots_YYYY-MM-DD.csv`` / ``.parquet``, with the decoded columns
of the ``snapshot_values`` view (:data:`polybot.snapshots.codec.COLUMNS`), rows in time
order; days whose hours have been turned into hourly bars by the retention tiers also get
``bars_YYYY-MM-DD.<ext>`` (:data:`BAR_COLUMNS`). docs/data_export.md documents every column.

- The days: the last ``--days`` UTC days, ending with the day of the newest snapshot (or bar).
- Book levels (``bids``/``asks``): text ``"price:size,price:size"`` best first in CSV (the
  old column format, :func:`polybot.snapshots.codec.text_of`); in Parquet a list of
  ``{price, size}`` structs, ``[]`` for an empty side and null where none was recorded
  (top-of-book tier, backfilled rows). CSV writes both as an empty field (the depth column
  tells them apart: 0 for an empty side).
- Streaming: each day is read in batches of :data:`BATCH_ROWS` rows and written as it is
  read, so memory stays bounded whatever the day's size.
- Files are written under a temporary name and renamed when complete (an interrupted export
  leaves no half file), owner-only (0600) like the reports; an existing file of the same day
  is replaced (re-exporting today refreshes it).
- Parquet needs ``pyarrow`` (requirements.txt); without it ``--format parquet`` stops with
  one sentence naming the package before anything is written, and ``--format csv`` works.
"""

from __future__ import annotations

import argparse
import csv
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .. import db
from ..config import Config
from ..errors import PolybotError
from ..snapshots import codec
from ..snapshots.codec import MONEY_SCALE, PRICE_SCALE, decode_scaled
from ..snapshots.store import BAR_VALUES, latest_timestamp
from ..timefmt import utc_day

DAY = 86_400
BATCH_ROWS = 50_000
FORMATS = ("parquet", "csv")
MAX_DAYS = 3650
CACHE_ENTRIES = 100_000  # decoded book texts kept while writing a CSV file

SNAPSHOT_COLUMNS = codec.COLUMNS
BAR_COLUMNS = ("hour", "token_id", "market_id", *BAR_VALUES)


class ExportError(PolybotError):
    """A bad request or a missing package: one sentence, exit code 2."""

    exit_code = 2


@dataclass
class ExportResult:
    files: list[Path] = field(default_factory=list)
    rows: int = 0
    bars: int = 0
    bytes: int = 0
    days: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ----------------------------------------------------------------------------- reading
def _day_range(conn: sqlite3.Connection, days: int) -> tuple[int, int] | None:
    """[start, end) of the last ``days`` UTC days, ending with the newest data's day."""
    newest = latest_timestamp(conn)  # a primary-key seek (MAX over the view would scan it)
    if _has_bars(conn):
        bar = conn.execute("SELECT MAX(hour) FROM snapshot_bars").fetchone()[0]
        if bar is not None and (newest is None or bar > newest):
            newest = bar
    if newest is None:
        return None
    end = int(newest) - int(newest) % DAY + DAY
    return end - days * DAY, end


def _has_bars(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'snapshot_bars'").fetchone()
        is not None
    )


def _batches(cursor: sqlite3.Cursor) -> Iterator[list[tuple]]:
    while True:
        rows = cursor.fetchmany(BATCH_ROWS)
        if not rows:
            return
        yield [tuple(r) for r in rows]


def snapshot_batches(conn: sqlite3.Connection, start: int, end: int) -> Iterator[list[tuple]]:
    """The decoded snapshots of [start, end) in time order, :data:`SNAPSHOT_COLUMNS`, in batches."""
    cols = ", ".join(SNAPSHOT_COLUMNS)
    cur = conn.execute(
        f"SELECT {cols} FROM snapshot_values WHERE timestamp >= ? AND timestamp < ? ORDER BY timestamp",
        (start, end),
    )
    return _batches(cur)


def _decode_bar(r: Sequence) -> tuple:
    return (
        r[0],
        r[1],
        r[2],
        *(decode_scaled(v, PRICE_SCALE) for v in r[3:10]),
        decode_scaled(r[10], MONEY_SCALE),
        decode_scaled(r[11], MONEY_SCALE),
        r[12],
    )


def bar_batches(conn: sqlite3.Connection, start: int, end: int) -> Iterator[list[tuple]]:
    """The decoded hourly bars of [start, end) in time order, :data:`BAR_COLUMNS`, in batches."""
    if not _has_bars(conn):
        return iter(())
    cur = conn.execute(
        "SELECT b.hour, k.token_id, k.market_id, b.open, b.high, b.low, b.close, b.bid, b.ask, b.last, "
        "b.volume_24h, b.liquidity, b.samples FROM snapshot_bars b JOIN snapshot_tokens k "
        "ON k.token_key = b.token_key WHERE b.hour >= ? AND b.hour < ? ORDER BY b.hour",
        (start, end),
    )
    return ([_decode_bar(r) for r in batch] for batch in _batches(cur))


# ----------------------------------------------------------------------------- writing
def _open_private(path: Path) -> IO[bytes]:
    """A new owner-only (0600) file, replacing a stale one."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    return os.fdopen(fd, "wb")


class _CsvWriter:
    def __init__(self, fh: IO[bytes], columns: Sequence[str], levels: bool):
        import io

        self.text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        self.out = csv.writer(self.text)
        self.out.writerow(columns)
        self.levels = levels

        # a book that did not change from one cycle to the next is decoded once (bounded)
        self.texts: dict[bytes | str, str | None] = {}

    def _text(self, value: bytes | str | None) -> str | None:
        if value is None:
            return None
        text = self.texts.get(value)
        if text is None:
            if len(self.texts) >= CACHE_ENTRIES:
                self.texts.clear()
            text = self.texts[value] = codec.text_of(value)
        return text

    def write(self, rows: list[tuple]) -> None:
        if self.levels:  # bids, asks → "p:s,p:s"
            t = self._text
            rows = [(*r[:10], t(r[10]), t(r[11]), *r[12:]) for r in rows]
        self.out.writerows(rows)

    def close(self) -> None:
        self.text.flush()
        self.text.detach()


def _pyarrow() -> Any:
    """pyarrow, imported only for Parquet. Missing, the import fails and polybot.cli.run says in
    one sentence which package to install (CSV needs nothing beyond the standard library)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


def _arrow_schema(pa: Any, bars: bool) -> Any:
    f64, text = pa.float64(), pa.string()
    if bars:
        return pa.schema(
            [("hour", pa.int64()), ("token_id", text), ("market_id", text)]
            + [(c, f64) for c in BAR_COLUMNS[3:12]]
            + [("samples", pa.int64())]
        )
    level = pa.list_(pa.struct([("price", f64), ("size", f64)]))
    fields = [("timestamp", pa.int64()), ("token_id", text), ("market_id", text)]
    fields += [(c, f64) for c in SNAPSHOT_COLUMNS[3:10]]
    fields += [("bids", level), ("asks", level), ("volume_24h", f64), ("liquidity", f64), ("source", text)]
    return pa.schema(fields)


class _ParquetWriter:
    def __init__(self, fh: IO[bytes], bars: bool):
        self.pa, pq = _pyarrow()
        self.schema = _arrow_schema(self.pa, bars)
        self.bars = bars
        self.writer = pq.ParquetWriter(fh, self.schema, compression="zstd")

    def _levels(self, values: Sequence[bytes | str | None]) -> Any:
        """One list<struct<price, size>> column built from flat arrays (null: not recorded)."""
        pa = self.pa
        offsets, prices, sizes, nulls = [0], [], [], []
        for v in values:
            nulls.append(v is None)
            for p, q in codec.levels_of(v):
                prices.append(p)
                sizes.append(q)
            offsets.append(len(prices))
        structs = pa.StructArray.from_arrays(
            [pa.array(prices, type=pa.float64()), pa.array(sizes, type=pa.float64())], names=["price", "size"]
        )
        return pa.ListArray.from_arrays(
            pa.array(offsets, type=pa.int32()), structs, mask=pa.array(nulls, type=pa.bool_())
        )

    def write(self, rows: list[tuple]) -> None:
        columns = list(zip(*rows, strict=True))
        arrays = []
        for i, (col, f) in enumerate(zip(columns, self.schema, strict=True)):
            levels = not self.bars and i in (10, 11)
            arrays.append(self._levels(col) if levels else self.pa.array(col, type=f.type))
        self.writer.write_table(self.pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


def _write_file(path: Path, fmt: str, batches: Iterator[list[tuple]], *, bars: bool) -> int:
    """Write ``batches`` to ``path`` (via a temporary file renamed when complete); rows written.
    No file when there is no row."""
    first = next(batches, None)
    if first is None:
        return 0
    tmp = path.with_name(f".{path.name}.part")
    n = 0
    fh = _open_private(tmp)
    try:
        columns = BAR_COLUMNS if bars else SNAPSHOT_COLUMNS
        writer: _CsvWriter | _ParquetWriter = (
            _CsvWriter(fh, columns, levels=not bars) if fmt == "csv" else _ParquetWriter(fh, bars)
        )
        for batch in _chain(first, batches):
            writer.write(batch)
            n += len(batch)
        writer.close()
        fh.flush()
        os.fsync(fh.fileno())
    except BaseException:
        fh.close()
        tmp.unlink(missing_ok=True)
        raise
    fh.close()
    os.replace(tmp, path)
    return n


def _chain(first: list[tuple], rest: Iterator[list[tuple]]) -> Iterator[list[tuple]]:
    yield first
    yield from rest


# ----------------------------------------------------------------------------- run
def export(
    cfg: Config,
    fmt: str,
    days: int,
    out_dir: Path | None = None,
    *,
    emit: Callable[[str], object] = print,
    progress_bar: bool | None = None,
) -> ExportResult:
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; use --format parquet or --format csv.")
    if not 1 <= days <= MAX_DAYS:
        raise ExportError(f"--days must be a whole number from 1 to {MAX_DAYS} (got {days}).")
    if fmt == "parquet":
        _pyarrow()  # before anything is written
    started = time.monotonic()
    res = ExportResult()
    conn = db.open_database(cfg, readonly=True)
    try:
        span = _day_range(conn, days)
        if span is None:
            emit(f"No market data in {cfg.database_path} yet: nothing to export.")
            return res
        if out_dir is None:
            out = db.ensure_private_dir(Path(cfg.root) / "exports")
        else:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True, mode=0o700)
        start, end = span
        emit(f"Exporting {days} UTC day(s) {utc_day(start)} … {utc_day(end - DAY)} as {fmt} to {out}")
        from tqdm import tqdm

        bar = tqdm(
            total=days, unit="day", desc="export", disable=None if progress_bar is None else not progress_bar
        )
        try:
            for day in range(start, end, DAY):
                name = utc_day(day)
                res.days.append(name)
                n = _write_file(
                    out / f"snapshots_{name}.{fmt}", fmt, snapshot_batches(conn, day, day + DAY), bars=False
                )
                b = _write_file(out / f"bars_{name}.{fmt}", fmt, bar_batches(conn, day, day + DAY), bars=True)
                parts = []
                for count, kind, prefix in ((n, "rows", "snapshots"), (b, "hourly bars", "bars")):
                    if count:
                        path = out / f"{prefix}_{name}.{fmt}"
                        size = path.stat().st_size
                        res.files.append(path)
                        res.bytes += size
                        parts.append(f"{count:,} {kind} → {path.name} ({_fmt(size)})")
                res.rows += n
                res.bars += b
                bar.update(1)
                line = f"  {name}: {'; '.join(parts) if parts else 'no data'}"
                if bar.disable:
                    emit(line)
                else:
                    bar.write(line)  # above the bar
        finally:
            bar.close()
    finally:
        conn.close()
    res.seconds = time.monotonic() - started
    emit(
        f"Exported {res.rows:,} snapshot rows and {res.bars:,} hourly bars in {len(res.files)} file(s) "
        f"({_fmt(res.bytes)}) to {out} in {res.seconds:.1f} s; the columns are described in docs/data_export.md"
    )
    return res


def _fmt(n: float) -> str:
    from .common import fmt_bytes

    return fmt_bytes(n)


def main(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .common import configure_quiet

    cfg = load_config(args.config, require_mode_secrets=False)
    configure_quiet(cfg)
    export(cfg, args.format, args.days, Path(args.out) if args.out else None)
    return 0
