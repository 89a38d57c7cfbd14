"""Writing and reading compact snapshots; the ``snapshot_values`` view (schema version 6).

Tables (see :mod:`polybot.snapshots.codec` for the encoding):

- ``snapshot_tokens(token_key INTEGER PRIMARY KEY, token_id, market_id)``: one small integer
  per token; a row reaches its market through its token, so rows carry no market key.
- ``market_snapshots``: WITHOUT ROWID, clustered on ``(timestamp, token_key)``. The collector
  appends a whole cycle at one timestamp (sequential pages) and a replay reads time ranges
  (sequential pages); there is no second index (benchmarks/bench_snapshot_insert.py and
  bench_dashboard.py measure the writes and the per-token queries).
- ``snapshot_bars``: hourly bars of the retention tier (:mod:`polybot.ops.retention`).
- ``snapshot_values``: a VIEW with the columns of the old table, decoded in plain SQL (so the
  sqlite3 shell reads it without any registered function); every reader reads it. The
  checklist's ``SELECT COUNT(*) FROM market_snapshots`` counts the table; ``bids``/``asks``
  are the packed BLOBs (:func:`polybot.snapshots.codec.levels_of` reads them). INSERT,
  UPDATE and DELETE on the view go to ``market_snapshots`` through INSTEAD OF triggers (they use
  functions registered by :func:`polybot.db.connect`); the hot paths call :func:`insert_rows`.

A database made before version 6 keeps its rows in ``market_snapshots_legacy`` until
``python maintain_database.py --migrate`` moves them; meanwhile the view shows both.
"""

from __future__ import annotations

import contextlib
import gc
import operator
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain

from . import codec
from .codec import MONEY_SCALE, PRICE_SCALE, SIZE_SCALE, sql_decode

LEGACY_TABLE = "market_snapshots_legacy"
# the values of an hourly bar (``snapshot_bars`` after its key ``hour, token_key``)
BAR_VALUES = ("open", "high", "low", "close", "bid", "ask", "last", "volume_24h", "liquidity", "samples")

TABLES_SQL = """
CREATE TABLE IF NOT EXISTS snapshot_tokens (
    token_key  INTEGER PRIMARY KEY,
    token_id   TEXT NOT NULL UNIQUE,
    market_id  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS market_snapshots (
    timestamp  INTEGER NOT NULL,   -- epoch seconds UTC: the cycle's grid time
    token_key  INTEGER NOT NULL,   -- snapshot_tokens.token_key
    bid,                           -- prices: INTEGER units of 0.0001, or the REAL when off that grid
    ask,
    last,
    bid_depth,                     -- shares over the stored levels: INTEGER centi-shares, or REAL
    ask_depth,
    bids,                          -- BLOB: packed levels, best first (codec.pack_levels); X'' = empty
    asks,
    volume_24h,                    -- USDC: INTEGER micro-units, or REAL
    liquidity,
    mid,                           -- NULL = (bid + ask) / 2; stored only where the row differs
    spread,                        -- NULL = ask - bid; likewise
    source     INTEGER NOT NULL DEFAULT 0,  -- 0 collected, 1 backfill
    PRIMARY KEY (timestamp, token_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshot_bars (
    hour       INTEGER NOT NULL,   -- epoch seconds UTC of the hour's start
    token_key  INTEGER NOT NULL,
    open,                          -- the mid (else the last trade) over the hour, price units
    high,
    low,
    close,
    bid,                           -- the hour's last best bid / ask / last trade
    ask,
    last,
    volume_24h,
    liquidity,
    samples    INTEGER NOT NULL,   -- snapshots the bar summarises
    PRIMARY KEY (hour, token_key)
) WITHOUT ROWID
"""


def decoded_select() -> str:
    def price(c: str) -> str:
        return sql_decode(f"s.{c}", PRICE_SCALE)

    bid, ask = price("bid"), price("ask")
    both = "s.bid IS NOT NULL AND s.ask IS NOT NULL"
    return (
        "SELECT s.timestamp AS timestamp, k.token_id AS token_id, k.market_id AS market_id, "
        f"{bid} AS best_bid, {ask} AS best_ask, "
        f"CASE WHEN s.mid IS NULL THEN CASE WHEN {both} THEN ({bid} + {ask}) / 2 END "
        f"WHEN typeof(s.mid) = 'blob' THEN NULL ELSE {price('mid')} END AS mid, "
        f"CASE WHEN s.spread IS NULL THEN CASE WHEN {both} THEN {ask} - {bid} END "
        f"WHEN typeof(s.spread) = 'blob' THEN NULL ELSE {price('spread')} END AS spread, "
        f"{price('last')} AS last_trade_price, "
        f"{sql_decode('s.bid_depth', SIZE_SCALE)} AS bid_depth, "
        f"{sql_decode('s.ask_depth', SIZE_SCALE)} AS ask_depth, "
        "s.bids AS bids, s.asks AS asks, "
        f"{sql_decode('s.volume_24h', MONEY_SCALE)} AS volume_24h, "
        f"{sql_decode('s.liquidity', MONEY_SCALE)} AS liquidity, "
        "CASE s.source WHEN 0 THEN 'collected' WHEN 1 THEN 'backfill' END AS source "
        "FROM market_snapshots s JOIN snapshot_tokens k ON k.token_key = s.token_key"
    )


_TRIGGERS = (
    # INSERT INTO snapshot_values (...) → market_snapshots (the conflict clause of the outer
    # statement — OR IGNORE / OR REPLACE — applies to the inner insert, per SQLite's rules)
    "CREATE TRIGGER snapshot_values_insert INSTEAD OF INSERT ON snapshot_values BEGIN "
    "INSERT INTO snapshot_tokens (token_id, market_id) SELECT NEW.token_id, NEW.market_id "
    "WHERE NOT EXISTS (SELECT 1 FROM snapshot_tokens WHERE token_id = NEW.token_id); "
    "INSERT INTO market_snapshots (timestamp, token_key, bid, ask, last, bid_depth, ask_depth, bids, asks, "
    "volume_24h, liquidity, mid, spread, source) SELECT NEW.timestamp, k.token_key, "
    "snapshot_encode(NEW.best_bid, 'price'), snapshot_encode(NEW.best_ask, 'price'), "
    "snapshot_encode(NEW.last_trade_price, 'price'), snapshot_encode(NEW.bid_depth, 'size'), "
    "snapshot_encode(NEW.ask_depth, 'size'), snapshot_levels(NEW.bids), snapshot_levels(NEW.asks), "
    "snapshot_encode(NEW.volume_24h, 'money'), snapshot_encode(NEW.liquidity, 'money'), "
    "snapshot_mid(NEW.mid, NEW.best_bid, NEW.best_ask), snapshot_spread(NEW.spread, NEW.best_bid, NEW.best_ask), "
    "snapshot_source(NEW.source) FROM snapshot_tokens k WHERE k.token_id = NEW.token_id; END",
    "CREATE TRIGGER snapshot_values_delete INSTEAD OF DELETE ON snapshot_values BEGIN "
    "DELETE FROM market_snapshots WHERE timestamp = OLD.timestamp AND token_key = "
    "(SELECT token_key FROM snapshot_tokens WHERE token_id = OLD.token_id); END",
    # UPDATE (tests that corrupt rows as a buggy writer would; repairs by hand): the row is
    # deleted and the new values inserted through the insert trigger
    "CREATE TRIGGER snapshot_values_update INSTEAD OF UPDATE ON snapshot_values BEGIN "
    "DELETE FROM market_snapshots WHERE timestamp = OLD.timestamp AND token_key = "
    "(SELECT token_key FROM snapshot_tokens WHERE token_id = OLD.token_id); "
    f"INSERT INTO snapshot_values ({', '.join(codec.COLUMNS)}) VALUES "
    f"({', '.join('NEW.' + c for c in codec.COLUMNS)}); END",
)

_LEGACY_COLUMNS = ", ".join(codec.COLUMNS)


def install_view(conn: sqlite3.Connection) -> None:
    """(Re)create the ``snapshot_values`` view and its triggers: over ``market_snapshots``,
    plus the legacy table while one is left to migrate."""
    legacy = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEGACY_TABLE,)
    ).fetchone()
    conn.execute("DROP VIEW IF EXISTS snapshot_values")
    sql = decoded_select()
    if legacy:
        sql += f" UNION ALL SELECT {_LEGACY_COLUMNS} FROM {LEGACY_TABLE}"
    conn.execute(f"CREATE VIEW snapshot_values AS {sql}")
    for trigger in _TRIGGERS:
        conn.execute(trigger)


def migrate_schema(conn: sqlite3.Connection) -> None:
    """Schema version 6, inside :func:`polybot.db.migrate`'s transaction: the compact
    tables and the view. The old table's rows stay (renamed ``market_snapshots_legacy``)
    for ``maintain_database.py --migrate``; an empty old table is simply dropped."""
    old_columns = {r[1] for r in conn.execute("PRAGMA table_info(market_snapshots)")}
    if "token_id" in old_columns:  # the layout of versions 1-5
        if conn.execute("SELECT 1 FROM market_snapshots LIMIT 1").fetchone():
            conn.execute(f"ALTER TABLE market_snapshots RENAME TO {LEGACY_TABLE}")
        else:
            conn.execute("DROP TABLE market_snapshots")  # its index goes with it
    uncommented = "\n".join(line.split("--", 1)[0] for line in TABLES_SQL.splitlines())
    for statement in uncommented.split(";"):
        if statement.strip():
            conn.execute(statement)
    install_view(conn)


# ----------------------------------------------------------------------------- writing
def _sql_encode(value, kind: str):
    return codec.encode_scaled(value, {"price": PRICE_SCALE, "size": SIZE_SCALE, "money": MONEY_SCALE}[kind])


def _sql_mid(mid, bid, ask):
    return codec._exception(mid, codec.derived_mid(bid, ask))


def _sql_spread(spread, bid, ask):
    return codec._exception(spread, codec.derived_spread(bid, ask))


def _sql_source(source):
    return codec.SOURCE_CODE[source or "collected"]


def register_functions(conn: sqlite3.Connection) -> None:
    """The functions the view's triggers and our queries use (on every connection)."""
    conn.create_function("snapshot_encode", 2, _sql_encode, deterministic=True)
    conn.create_function("snapshot_levels", 1, codec._levels_blob, deterministic=True)
    conn.create_function("snapshot_mid", 3, _sql_mid, deterministic=True)
    conn.create_function("snapshot_spread", 3, _sql_spread, deterministic=True)
    conn.create_function("snapshot_source", 1, _sql_source, deterministic=True)
    codec.register_functions(conn)


class TokenKeys:
    """token_id → token_key, created on first sight (cached per connection user)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.keys: dict[str, int] = {}

    def load(self) -> None:
        self.keys = {t: k for k, t in self.conn.execute("SELECT token_key, token_id FROM snapshot_tokens")}

    def key(self, token_id: str, market_id: str) -> int:
        k = self.keys.get(token_id)
        if k is None:
            row = self.conn.execute(
                "SELECT token_key FROM snapshot_tokens WHERE token_id = ?", (token_id,)
            ).fetchone()
            if row is None:
                cur = self.conn.execute(
                    "INSERT INTO snapshot_tokens (token_id, market_id) VALUES (?, ?)", (token_id, market_id)
                )
                k = int(cur.lastrowid or 0)
            else:
                k = int(row[0])
            self.keys[token_id] = k
        return k

    def many(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        """The keys of (token_id, market_id) pairs, in order; the tokens not seen yet are
        added in one ``executemany`` and looked up in batches (a first cycle of 100,000
        tokens would otherwise take a SELECT and an INSERT per token)."""
        keys = self.keys
        missing = {t: m for t, m in pairs if t not in keys}
        if missing:
            self.conn.executemany(
                "INSERT OR IGNORE INTO snapshot_tokens (token_id, market_id) VALUES (?, ?)", missing.items()
            )
            todo = list(missing)
            for i in range(0, len(todo), 500):
                part = todo[i : i + 500]
                for k, t in self.conn.execute(
                    f"SELECT token_key, token_id FROM snapshot_tokens WHERE token_id IN ({', '.join('?' * len(part))})",
                    part,
                ):
                    keys[t] = int(k)
        return [keys[t] for t, _ in pairs]


INSERT_SQL = (
    "INSERT OR IGNORE INTO market_snapshots (timestamp, token_key, "
    + ", ".join(codec.STORED)
    + ") VALUES ("
    + ", ".join("?" * (2 + len(codec.STORED)))
    + ")"
)


def insert_rows(
    conn: sqlite3.Connection,
    rows: Iterable[Sequence],
    *,
    keys: TokenKeys | None = None,
    replace: bool = False,
) -> int:
    """Insert decoded snapshots (:data:`codec.COLUMNS` order). The first row written for a
    (timestamp, token) wins unless ``replace``. Returns the rows given. Callers own the
    transaction (``db.atomic``). The rows are encoded as one batch
    (:func:`codec.encode_rows`) and go in sorted by the primary key (appends, not splits)."""
    keys = keys or TokenKeys(conn)
    batch = rows if isinstance(rows, list) else list(rows)
    if not batch:
        return 0
    with cyclic_gc_paused():
        token_keys = keys.many([(r[1], r[2]) for r in batch])
        columns, encoded = codec.encode_rows(batch, token_keys, blob_type=bytearray)
        encoded.sort(key=_PRIMARY_KEY)
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        execute_rows(
            conn, f"{verb} INTO market_snapshots ({', '.join(columns)}) VALUES ", len(columns), encoded
        )
    return len(encoded)


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the block (reference counting still
    frees everything at once), e.g. while a batch is encoded and written: encoding 100,000
    rows makes several hundred thousand tuples and lists that live until the insert, and
    each allocation burst ran the collector over every live object: half of
    ``encode_rows``' CPU (1.31 s → 0.67 s per 100,000 rows, measured). The collector's
    cycle pauses it for a whole cycle. It resumes as it was, also on an exception."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_PRIMARY_KEY = operator.itemgetter(0, 1)  # (timestamp, token_key)
ROWS_PER_STATEMENT = 250  # multi-row VALUES: ~0.3 fewer CPU s per 100k rows than executemany


def execute_rows(conn: sqlite3.Connection, head: str, width: int, rows: Sequence[Sequence]) -> None:
    """``head`` (an INSERT up to and including ``VALUES``) for every row of ``rows`` (each
    ``width`` values), in statements of up to :data:`ROWS_PER_STATEMENT` rows (a multi-row
    VALUES each: SQLite's per-statement work and the module's per-row step and reset are paid
    once per statement; the conflict clause still applies row by row and, as with
    ``executemany``, the first of two rows with one key goes in first). Fewer rows a
    statement where the connection's variable limit asks for it."""
    one = "(" + ", ".join("?" * width) + ")"
    per = max(1, min(ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    full = len(rows) - len(rows) % per
    flat = chain.from_iterable
    if full:
        sql = head + ",".join([one] * per)
        for k in range(0, full, per):
            conn.execute(sql, list(flat(rows[k : k + per])))
    if full < len(rows):
        rest = rows[full:]
        conn.execute(head + ",".join([one] * len(rest)), list(flat(rest)))


def delete_before(conn: sqlite3.Connection, cutoff: int, limit: int) -> int:
    """Delete up to ``limit`` rows older than ``cutoff`` (oldest first); rows deleted."""
    cur = conn.execute(
        "DELETE FROM market_snapshots WHERE (timestamp, token_key) IN (SELECT timestamp, token_key "
        "FROM market_snapshots WHERE timestamp < ? ORDER BY timestamp LIMIT ?)",
        (int(cutoff), int(limit)),
    )
    return cur.rowcount


def has_legacy(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEGACY_TABLE,)
        ).fetchone()
        is not None
    )


def latest_timestamp(conn: sqlite3.Connection) -> int | None:
    """The newest snapshot time (an index seek, legacy rows included)."""
    row = conn.execute("SELECT MAX(timestamp) FROM market_snapshots").fetchone()
    best = row[0] if row else None
    if has_legacy(conn):
        old = conn.execute(f"SELECT MAX(timestamp) FROM {LEGACY_TABLE}").fetchone()[0]
        if old is not None and (best is None or old > best):
            best = old
    return best


def latest_snapshots(conn: sqlite3.Connection, token_ids: Sequence[str]) -> dict[str, sqlite3.Row]:
    """Each token's newest ``snapshot_values`` row (tokens without one are absent).

    There is no per-token index: the tokens of the newest cycle are primary-key lookups at
    that timestamp; only the others scan back from the newest row until they are found."""
    out: dict[str, sqlite3.Row] = {}
    wanted = list(dict.fromkeys(token_ids))
    newest = latest_timestamp(conn) if wanted else None
    if newest is None:
        return out
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    for i in range(0, len(wanted), 500):
        part = wanted[i : i + 500]
        marks = ",".join("?" * len(part))
        for r in cur.execute(
            f"SELECT * FROM snapshot_values WHERE timestamp = ? AND token_id IN ({marks})", (newest, *part)
        ).fetchall():
            out[r["token_id"]] = r
    for token in wanted:
        if token not in out:
            r = cur.execute(
                "SELECT * FROM snapshot_values WHERE token_id = ? ORDER BY timestamp DESC LIMIT 1", (token,)
            ).fetchone()
            if r is not None:
                out[token] = r
    return out
