"""One batch of ``maintain_database.py --migrate``: legacy snapshot rows → compact rows, verified.

:func:`move_batch` runs inside the caller's transaction and either moves the first ``n`` rows
of ``market_snapshots_legacy`` (primary-key order: timestamp, token_id) or raises, and the
caller rolls back — nothing of the batch is committed:

1. the batch's keys and book texts are read; new tokens go to ``snapshot_tokens``; the book
   sides are parsed and packed in bulk (:mod:`polybot.ops.snapshot_arrays`: the bytes of
   ``codec.pack_levels``) into a temporary table;
2. ``INSERT OR REPLACE INTO market_snapshots … SELECT`` joins the batch: the scalar columns are
   encoded in SQL by the exact rule of :func:`polybot.snapshots.codec.encode_scaled` (whole
   units of the scale when ``round(v·scale)/scale == v``, else the REAL itself) and mid/spread
   by :func:`codec._exception`'s rule. A legacy row wins over a compact row of the same key:
   it was written first;
3. the batch is checked DECODED THROUGH THE VIEW's SQL (:func:`store.decoded_select` — what
   every reader sees) in one SQL statement (:data:`VERIFY_SQL`, exact comparisons in C, no
   row comes back to Python): every key of the batch is read back, every other column is
   exactly the legacy row's (the same double, or both NULL; market_id and source as text),
   and each book side is exactly the BLOB packed in Python — whose levels, decoded in the
   codec's format, must equal the old text's parsed with ``float`` (numpy); then an
   order-independent checksum of the decoded values and one of the legacy values
   (:func:`snapshot_arrays.batch_checksum`). On a difference the batch is read back into
   Python to name the first differing value (:func:`_explain`);
4. exactly those legacy rows are deleted: every row up to the batch's last key, and the count
   must be the batch's (so a batch that is not exactly the old table's first rows rolls back).

Step 1's reading and packing, the decoding and hashing of step 3 and the comparison of the
decoded levels with the parsed text (all pure: no database writes) are :func:`read_batch` +
:func:`prepare_batch`; :class:`polybot.ops.snapshot_workers.Prefetcher` runs them one batch
ahead in a process of its own, so the writer (:func:`apply_batch`, steps 2-4) does only the
SQL and the temporary table.

Why not the codec row by row: ~80 µs a row to encode and ~35 µs a row per checksum side would
take ~10 minutes for the 4.32 M-row benchmark; this does the same work in SQL and numpy
(benchmarks/bench_migration.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import PolybotError
from ..snapshots import codec, store
from ..snapshots.codec import MONEY_SCALE, PRICE_SCALE, SIZE_SCALE
from .snapshot_arrays import (
    MASK64,
    Levels,
    batch_checksum,
    decode_blobs,
    first_level_difference,
    pack_bulk,
    parse_texts,
    row_hashes,
)

LEGACY = store.LEGACY_TABLE
_MAX_EXACT = float(1 << 53)

__all__ = ["MASK64", "BatchResult", "MigrationMismatch", "move_batch", "prepare"]


class MigrationMismatch(PolybotError):
    """A batch read back through the view differs from the legacy rows (nothing committed)."""

    exit_code = 3


# ----------------------------------------------------------------------------- SQL
def _enc(col: str, scale: int) -> str:
    """SQL of codec.encode_scaled: INTEGER units when ``round(v*scale)/scale == v`` exactly.
    (SQLite rounds halves away from zero, Python to even; a half is never exact, so the two
    agree wherever the result is INTEGER.)"""
    s = f"{float(scale)!r}"
    k = f"round({col} * {s})"
    return (
        f"CASE WHEN {col} IS NULL THEN NULL "
        f"WHEN abs({k}) < {_MAX_EXACT!r} AND {k} / {s} = {col} THEN CAST({k} AS INTEGER) "
        f"ELSE {col} END"
    )


_BOTH = "l.best_bid IS NOT NULL AND l.best_ask IS NOT NULL"


def _exception(col: str, derived: str) -> str:
    """SQL of codec._exception: NULL when the derived value is the row's, X'' for a NULL the
    derivation would not give, else the value encoded in price units."""
    return (
        f"CASE WHEN {col} IS NULL THEN CASE WHEN {_BOTH} THEN X'' END "
        f"WHEN {_BOTH} AND {col} = {derived} THEN NULL "
        f"ELSE {_enc(col, PRICE_SCALE)} END"
    )


_SOURCE = "COALESCE(NULLIF(l.source, ''), 'collected')"
_JOIN = (
    f"temp.migration_batch b JOIN {LEGACY} l ON l.timestamp = b.timestamp AND l.token_id = b.token_id "
    "JOIN snapshot_tokens k ON k.token_id = b.token_id"
)

INSERT_SQL = (
    f"INSERT OR REPLACE INTO market_snapshots (timestamp, token_key, {', '.join(codec.STORED)}) "
    "SELECT l.timestamp, k.token_key, "
    f"{_enc('l.best_bid', PRICE_SCALE)}, {_enc('l.best_ask', PRICE_SCALE)}, "
    f"{_enc('l.last_trade_price', PRICE_SCALE)}, "
    f"{_enc('l.bid_depth', SIZE_SCALE)}, {_enc('l.ask_depth', SIZE_SCALE)}, b.bids, b.asks, "
    f"{_enc('l.volume_24h', MONEY_SCALE)}, {_enc('l.liquidity', MONEY_SCALE)}, "
    f"{_exception('l.mid', '(l.best_bid + l.best_ask) / 2')}, "
    f"{_exception('l.spread', 'l.best_ask - l.best_bid')}, "
    f"CASE {_SOURCE} WHEN 'collected' THEN 0 WHEN 'backfill' THEN 1 END "
    f"FROM {_JOIN} ORDER BY b.rowid"
)

_SCALARS = (
    "market_id",
    "best_bid",
    "best_ask",
    "mid",
    "spread",
    "last_trade_price",
    "bid_depth",
    "ask_depth",
    "volume_24h",
    "liquidity",
)
# The decoded columns read back (the order row_hashes takes), then the two book sides.
_FETCH = ("timestamp", "token_id", *_SCALARS, "source")
_FLOATS = range(3, 12)  # best_bid … liquidity in _FETCH

COMPARE_SQL = (
    f"SELECT {', '.join(f'v.{c}' for c in _FETCH)}, v.bids, v.asks "
    "FROM temp.migration_batch b JOIN temp.migration_decoded v "
    "ON v.timestamp = b.timestamp AND v.token_id = b.token_id ORDER BY b.rowid"
)


# Every value the view's SQL returns for the batch compared with the legacy row in SQL (exact:
# numbers as doubles — 0.5 IS 0.50, -0.0 IS 0.0 —, NULL IS NULL, texts as texts) and each
# book side byte for byte with the BLOB packed in Python (whose decoding :func:`apply_batch`
# compares with the parsed text): (rows read back, rows with any difference).
_DIFFERS = " OR ".join(
    [f"v.{c} IS NOT l.{c}" for c in _SCALARS]
    + [f"v.source IS NOT {_SOURCE}", "v.bids IS NOT b.bids", "v.asks IS NOT b.asks"]
)
VERIFY_SQL = (
    f"SELECT COUNT(*), TOTAL({_DIFFERS}) FROM temp.migration_batch b "
    f"JOIN {LEGACY} l ON l.timestamp = b.timestamp AND l.token_id = b.token_id "
    "JOIN temp.migration_decoded v ON v.timestamp = b.timestamp AND v.token_id = b.token_id"
)


def _batch_sql(n: int) -> str:
    """The first ``n`` legacy rows: _FETCH's columns (source as the codec reads it), the book
    texts, and the stored source."""
    cols = ", ".join(f"l.{c}" for c in _FETCH[:-1])
    return (
        f"SELECT {cols}, {_SOURCE}, l.bids, l.asks, l.source FROM {LEGACY} l "
        f"ORDER BY l.timestamp, l.token_id LIMIT {int(n)}"
    )


def prepare(conn: sqlite3.Connection) -> None:
    """The temporary objects a batch uses, on this connection."""
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute(f"CREATE TEMP VIEW IF NOT EXISTS migration_decoded AS {store.decoded_select()}")
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS migration_batch (timestamp INTEGER NOT NULL, token_id TEXT NOT NULL, "
        "bids BLOB, asks BLOB)"  # rows in key order (rowid); each is joined by the old table's key
    )


# ----------------------------------------------------------------------------- one batch
@dataclass
class BatchResult:
    rows: int
    checksum: int  # of the decoded values read back through the view
    legacy_checksum: int  # of the legacy rows moved (equal, or the batch raised)


def _describe(ts: int, token: str) -> str:
    return f"timestamp {ts}, token {token}"


def _mismatch(ts: int, token: str, what: str) -> MigrationMismatch:
    return MigrationMismatch(
        f"Snapshot ({_describe(ts, token)}) {what}, so the migration stopped and committed nothing "
        f"of this batch (the old rows are untouched); report it with this line."
    )


def _parse(rows: Sequence[Sequence], col: int) -> Levels:
    texts = [r[col] for r in rows]
    try:
        return parse_texts(texts)
    except ValueError:
        for r in rows:
            try:
                codec.levels_of(r[col])
            except ValueError as exc:
                side = "bids" if col == 3 else "asks"
                raise _mismatch(r[0], r[1], f"holds {side} {r[col]!r} that cannot be read ({exc})") from None
        raise


def _add_tokens(conn: sqlite3.Connection, markets: dict[str, str], known: set[str]) -> None:
    new = {token: market for token, market in markets.items() if token not in known}
    if new:
        conn.executemany(
            "INSERT OR IGNORE INTO snapshot_tokens (token_id, market_id) VALUES (?, ?)", list(new.items())
        )
        known.update(new)


def _first_difference(
    back: Sequence[Sequence], legacy: Sequence[Sequence], got: list[tuple], want: list[tuple]
) -> tuple[int, str] | None:
    """(row, column) of the first decoded value that differs from the legacy row's, or None:
    keys and texts compared as Python values, prices and amounts as doubles (NULL = NULL).
    ``got``/``want`` are the columns of ``back``/``legacy``."""
    bad: set[int] = set()
    for j in range(len(_FETCH)):
        if got[j] == want[j]:
            continue
        if j in _FLOATS:
            try:
                a = np.array(got[j], np.float64)
                b = np.array(want[j], np.float64)
                rows = np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))
                if not len(rows):
                    continue
                bad.add(int(rows[0]))
                continue
            except (TypeError, ValueError):  # not a number in the old table: compare as values
                pass
        bad.add(next(i for i, (x, y) in enumerate(zip(got[j], want[j], strict=True)) if x != y))
    if not bad:
        return None
    i = min(bad)
    name = next(c for c, x, y in zip(_FETCH, back[i], legacy[i], strict=False) if x != y)
    return i, name


@dataclass
class Ready:
    """What :func:`apply_batch` needs of a prepared batch: small and picklable (the read-ahead
    process sends it through a pipe). Every check that needs no database is done already:
    ``level_error`` names the first book side whose packed BLOB decodes differently from the
    old text, and the two checksums are computed."""

    timestamps: Sequence[int]  # the rows' keys, column by column (the temporary table's)
    tokens: Sequence[str]
    packed_b: list
    packed_a: list
    markets: dict[str, str]  # each token's market id (its first row's): new snapshot_tokens rows
    checksum: int  # of the values and the sides decoded from the packed BLOBs
    legacy_checksum: int  # of the values and the sides parsed from the old texts
    level_error: tuple[int, str, str] | None  # (timestamp, token_id, what it reads) or None

    def __len__(self) -> int:
        return len(self.timestamps)


@dataclass
class Prepared(Ready):
    """A batch read from the legacy table with its book sides parsed and packed (no writes),
    the packed sides decoded again, and the hashes of the rows' other values (the checksums'
    part that both share: :func:`apply_batch` proves in SQL that the view returns them)."""

    rows: list
    old_b: Levels
    old_a: Levels
    new_b: Levels
    new_a: Levels
    values: np.ndarray

    def ready(self) -> Ready:
        """The part :func:`apply_batch` needs (each token id one object: a smaller pickle)."""
        same: dict[str, str] = {}
        return Ready(
            self.timestamps,
            [same.setdefault(t, t) for t in self.tokens],
            self.packed_b,
            self.packed_a,
            self.markets,
            self.checksum,
            self.legacy_checksum,
            self.level_error,
        )


_BIDS, _ASKS, _STORED_SOURCE = len(_FETCH), len(_FETCH) + 1, len(_FETCH) + 2


def read_batch(conn: sqlite3.Connection, n: int, after: tuple[int, str] | None = None) -> list:
    """The first ``n`` legacy rows (after the key ``after``), in key order, as plain tuples
    (a third cheaper to make and to index than the connection's ``sqlite3.Row``)."""
    cur = conn.cursor()
    cur.row_factory = None
    if after is None:
        return cur.execute(_batch_sql(n)).fetchall()
    sql = _batch_sql(n).replace(" ORDER BY", " WHERE (l.timestamp, l.token_id) > (?, ?) ORDER BY")
    return cur.execute(sql, after).fetchall()


def prepare_batch(legacy: list) -> Prepared:
    """Check the sources, parse and pack the book sides (pure: no database)."""
    unknown = {r[_STORED_SOURCE] for r in legacy} - {None, "", *codec.SOURCES}
    if unknown:
        r = next(r for r in legacy if r[_STORED_SOURCE] in unknown)
        raise _mismatch(
            r[0],
            r[1],
            f"has source {r[_STORED_SOURCE]!r}, which the compact layout does not know ({', '.join(codec.SOURCES)})",
        )
    old_b, old_a = _parse(legacy, _BIDS), _parse(legacy, _ASKS)
    packed_b = pack_bulk(old_b, [r[_BIDS] for r in legacy])
    packed_a = pack_bulk(old_a, [r[_ASKS] for r in legacy])
    columns = list(zip(*legacy, strict=True))
    values = row_hashes(legacy, columns[: len(_FETCH)])
    new_b, new_a = decode_blobs(packed_b), decode_blobs(packed_a)
    level_error = None
    for side, col, old, new in (("bids", _BIDS, old_b, new_b), ("asks", _ASKS, old_a, new_a)):
        bad = first_level_difference(old, new)
        if bad is not None:
            r = legacy[bad]
            level_error = (r[0], r[1], f"reads {side} {new.row(bad)!r} instead of {r[col]!r}")
            break
    markets: dict[str, str] = {}
    for token, market in zip(columns[1], columns[2], strict=True):
        markets.setdefault(token, market)
    return Prepared(
        columns[0],
        columns[1],
        packed_b,
        packed_a,
        markets,
        batch_checksum(values, new_b, new_a),
        batch_checksum(values, old_b, old_a),
        level_error,
        legacy,
        old_b,
        old_a,
        new_b,
        new_a,
        values,
    )


def move_batch(conn: sqlite3.Connection, n: int, known_tokens: set[str]) -> BatchResult:
    """Move the first ``n`` legacy rows (see the module docstring); the caller holds the
    transaction and commits. Raises :class:`MigrationMismatch` on any difference."""
    legacy = read_batch(conn, n)
    if not legacy:
        return BatchResult(0, 0, 0)
    return apply_batch(conn, prepare_batch(legacy), known_tokens)


def apply_batch(conn: sqlite3.Connection, batch: Ready, known_tokens: set[str]) -> BatchResult:
    """Move a prepared batch, which must be the first rows of the legacy table now: write,
    verify what the view's SQL returns, delete (the caller holds the transaction).

    The check runs in SQL (:data:`VERIFY_SQL`, no row comes back to Python): every batch key
    read back through the view, every value exactly the legacy row's, each book side exactly
    the bytes packed here — whose decoding (the codec's format) must equal the old text's
    levels (``batch.level_error``). The checksum is then that of the decoded values the view
    returns: the rows' values and the decoded sides; the legacy checksum, of the legacy
    values and the parsed text. On any difference :func:`_explain` reads the batch back to
    name the first one."""
    n = len(batch)
    first = (batch.timestamps[0], batch.tokens[0])
    last = (batch.timestamps[-1], batch.tokens[-1])
    _add_tokens(conn, batch.markets, known_tokens)
    conn.execute("DELETE FROM temp.migration_batch")
    conn.executemany(
        "INSERT INTO temp.migration_batch VALUES (?, ?, ?, ?)",
        zip(batch.timestamps, batch.tokens, batch.packed_b, batch.packed_a, strict=True),
    )
    inserted = conn.execute(INSERT_SQL).rowcount
    if inserted != n:  # every key of the batch is in the old table
        raise _mismatch(*first, f"starts a batch of {n} rows of which {inserted} were found to move")
    found, differing = conn.execute(VERIFY_SQL).fetchone()
    if found != n or differing:
        _explain(conn, first, last)
        raise _mismatch(
            *first, f"starts a batch of which {found} of {n} rows were read back, {int(differing)} differing"
        )
    if batch.level_error is not None:
        raise _mismatch(*batch.level_error)
    checksum, legacy_sum = batch.checksum, batch.legacy_checksum
    if checksum != legacy_sum:  # cannot happen once every value compared equal: a second guard
        raise _mismatch(*first, "starts a batch whose checksum differs after the move")
    # the batch must be exactly the table's first rows: deleting every row up to its last key
    # removes exactly its rows (else the whole batch rolls back)
    cur = conn.execute(f"DELETE FROM {LEGACY} WHERE (timestamp, token_id) <= (?, ?)", last)
    if cur.rowcount != n:
        raise _mismatch(
            *first,
            f"starts a batch of {n} rows but the old table holds {cur.rowcount} rows up to its "
            f"last key (something else changed the old table during the migration)",
        )
    return BatchResult(n, checksum, legacy_sum)


def _explain(conn: sqlite3.Connection, first: tuple[int, str], last: tuple[int, str]) -> None:
    """Raise the sentence naming the first difference between the batch (the legacy rows
    from ``first`` to ``last``, read again) read back through the view (Python values) and
    the legacy rows; returns when it finds none."""
    cur = conn.cursor()
    cur.row_factory = None
    sql = _batch_sql(-1).replace(
        " ORDER BY",
        " WHERE (l.timestamp, l.token_id) >= (?, ?) AND (l.timestamp, l.token_id) <= (?, ?) ORDER BY",
    )
    batch = prepare_batch(cur.execute(sql, (*first, *last)).fetchall())
    legacy = batch.rows
    back = conn.execute(COMPARE_SQL).fetchall()
    if len(back) != len(legacy):
        seen = {(v[0], v[1]) for v in back}
        lost = next((r for r in legacy if (r[0], r[1]) not in seen), legacy[-1])
        raise _mismatch(lost[0], lost[1], "is missing from the compact rows read back through the view")
    got, want = list(zip(*back, strict=True)), list(zip(*legacy, strict=True))
    diff = _first_difference(back, legacy, got, want)
    if diff is not None:
        i, name = diff
        j = _FETCH.index(name)
        raise _mismatch(
            legacy[i][0], legacy[i][1], f"reads {name} = {back[i][j]!r} instead of {legacy[i][j]!r}"
        )
    for side, col, old in (("bids", _BIDS, batch.old_b), ("asks", _ASKS, batch.old_a)):
        new = decode_blobs(got[col])
        bad = first_level_difference(old, new)
        if bad is not None:
            r = legacy[bad]
            raise _mismatch(r[0], r[1], f"reads {side} {new.row(bad)!r} instead of {r[col]!r}")


# ----------------------------------------------------------------------------- whole tables
def legacy_checksum(conn: sqlite3.Connection, table: str = LEGACY) -> tuple[int, int]:
    """(rows, checksum) of an old-layout table's values (``market_snapshots`` of a database
    before schema 6, or the legacy table): what the migrated rows must match."""
    cols = ", ".join(f"l.{c}" for c in _FETCH[:-1])
    cur = conn.execute(f"SELECT l.bids, l.asks, {cols}, {_SOURCE} FROM {table} l")
    total = count = 0
    while chunk := cur.fetchmany(100_000):
        b, a = parse_texts([r[0] for r in chunk]), parse_texts([r[1] for r in chunk])
        total = (total + batch_checksum([r[2:] for r in chunk], b, a)) & MASK64
        count += len(chunk)
    return count, total


def view_checksum(conn: sqlite3.Connection, sql: str = "SELECT * FROM snapshot_values") -> tuple[int, int]:
    """(rows, checksum) of decoded rows in :data:`codec.COLUMNS` order (default: the whole
    ``snapshot_values`` view, old-layout rows included while a migration is under way)."""
    from .snapshot_arrays import levels_of_values

    cur = conn.execute(sql)
    total = count = 0
    while chunk := cur.fetchmany(100_000):
        b = levels_of_values([r[10] for r in chunk])
        a = levels_of_values([r[11] for r in chunk])
        rows = [(*r[:10], r[12], r[13], r[14]) for r in chunk]
        total = (total + batch_checksum(rows, b, a)) & MASK64
        count += len(chunk)
    return count, total
