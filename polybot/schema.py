"""The database schema, as an ordered list of forward migrations.

``PRAGMA user_version`` holds the number of the last applied migration, and the
``schema_migrations`` table records when each ran. A migration is never edited
once released: a change is a new step appended to ``MIGRATIONS``, so an older
database is upgraded in place and never dropped.

Conventions (see polybot/money.py): times are INTEGER epoch seconds UTC; money and
share amounts that settle are INTEGER micro-units (columns ending in ``_micro``);
market-data prices are stored compactly (polybot/snapshots/codec.py) and decoded to REAL by
the ``market_snapshots`` view (they never settle).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .snapshots.store import migrate_schema

# Version 1: the operator checklist's six tables.
_V1 = """
CREATE TABLE markets (
    id                  TEXT PRIMARY KEY,          -- Gamma market id
    condition_id        TEXT NOT NULL,
    question            TEXT NOT NULL,
    slug                TEXT,
    event_id            TEXT,
    event_title         TEXT,
    neg_risk            INTEGER NOT NULL DEFAULT 0,
    neg_risk_market_id  TEXT,
    version             TEXT NOT NULL DEFAULT 'v1', -- 'v1' clobTokenIds / 'v2' positionIds
    token_ids           TEXT NOT NULL,             -- JSON array, index-aligned with outcomes
    outcomes            TEXT NOT NULL,             -- JSON array
    end_date            INTEGER,
    active              INTEGER NOT NULL DEFAULT 1,
    closed              INTEGER NOT NULL DEFAULT 0,
    accepting_orders    INTEGER NOT NULL DEFAULT 1,
    tick_size           REAL NOT NULL DEFAULT 0.01,
    min_order_size      REAL NOT NULL DEFAULT 5,
    fees_enabled        INTEGER NOT NULL DEFAULT 0,
    fee_rate            REAL NOT NULL DEFAULT 0,
    fee_exponent        REAL NOT NULL DEFAULT 1,
    volume_24h          REAL,
    liquidity           REAL,
    resolution_status   TEXT,                      -- umaResolutionStatus
    payouts             TEXT,                      -- JSON {token_id: 1|0|0.5} once resolved
    resolved_at         INTEGER,
    tracked             INTEGER NOT NULL DEFAULT 0, -- in the collection universe now
    first_seen          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX idx_markets_tracked ON markets(tracked);
CREATE INDEX idx_markets_event ON markets(event_id);

CREATE TABLE market_tokens (
    token_id       TEXT PRIMARY KEY,               -- CLOB token id / v2 position id
    market_id      TEXT NOT NULL REFERENCES markets(id),
    outcome        TEXT NOT NULL,
    outcome_index  INTEGER NOT NULL
);
CREATE INDEX idx_market_tokens_market ON market_tokens(market_id);

CREATE TABLE market_snapshots (
    timestamp         INTEGER NOT NULL,           -- cycle time, epoch seconds UTC
    token_id          TEXT NOT NULL,
    market_id         TEXT NOT NULL,
    best_bid          REAL,
    best_ask          REAL,
    mid               REAL,
    spread            REAL,
    last_trade_price  REAL,
    bid_depth         REAL,                       -- shares over the top levels
    ask_depth         REAL,
    bids              TEXT,                       -- top levels "p:s,p:s" best first
    asks              TEXT,
    volume_24h        REAL,
    liquidity         REAL,
    source            TEXT NOT NULL DEFAULT 'collected',  -- 'collected' | 'backfill'
    PRIMARY KEY (timestamp, token_id)
) WITHOUT ROWID;
CREATE INDEX idx_snapshots_token_time ON market_snapshots(token_id, timestamp);

CREATE TABLE trades (
    id                  INTEGER PRIMARY KEY,
    trade_id            TEXT NOT NULL UNIQUE,      -- exchange trade id, or paper/settlement id
    order_id            INTEGER,                   -- orders.id (NULL for settlements)
    timestamp           INTEGER NOT NULL,
    mode                TEXT NOT NULL,             -- 'paper' | 'live'
    kind                TEXT NOT NULL DEFAULT 'fill', -- 'fill' | 'settlement'
    token_id            TEXT NOT NULL,
    market_id           TEXT NOT NULL,
    side                TEXT NOT NULL,             -- 'BUY' | 'SELL'
    price_micro         INTEGER NOT NULL,
    size_micro          INTEGER NOT NULL,
    notional_micro      INTEGER NOT NULL,
    fee_micro           INTEGER NOT NULL DEFAULT 0,
    realized_pnl_micro  INTEGER,                   -- on position-reducing trades
    strategy            TEXT,
    reason              TEXT
);
CREATE INDEX idx_trades_time ON trades(timestamp);
CREATE INDEX idx_trades_token ON trades(token_id, timestamp);

CREATE TABLE positions (
    mode                TEXT NOT NULL,
    token_id            TEXT NOT NULL,
    market_id           TEXT NOT NULL,
    size_micro          INTEGER NOT NULL,          -- shares held
    cost_micro          INTEGER NOT NULL,          -- cost basis incl. fees of shares held
    realized_pnl_micro  INTEGER NOT NULL DEFAULT 0,
    opened_at           INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    closed_at           INTEGER,
    status              TEXT NOT NULL DEFAULT 'open', -- 'open' | 'closed'
    stop_price_micro    INTEGER,
    strategy            TEXT,
    group_key           TEXT,                      -- event / correlated group for exposure caps
    PRIMARY KEY (mode, token_id)
);

CREATE TABLE performance (
    id                    INTEGER PRIMARY KEY,
    timestamp             INTEGER NOT NULL,
    mode                  TEXT NOT NULL,
    equity_micro          INTEGER NOT NULL,
    cash_micro            INTEGER NOT NULL,
    exposure_micro        INTEGER NOT NULL,
    realized_pnl_micro    INTEGER NOT NULL,
    unrealized_pnl_micro  INTEGER NOT NULL,
    daily_pnl_micro       INTEGER NOT NULL,
    open_positions        INTEGER NOT NULL
);
CREATE INDEX idx_performance_time ON performance(mode, timestamp);

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY,
    timestamp     INTEGER NOT NULL,
    level         TEXT NOT NULL,                   -- 'critical' | 'warning' | 'info'
    key           TEXT NOT NULL,                   -- throttling key, e.g. 'daily_loss_limit'
    message       TEXT NOT NULL,
    channels      TEXT NOT NULL DEFAULT '[]',      -- JSON list tried
    delivery      TEXT NOT NULL DEFAULT '{}',      -- JSON {channel: 'sent'|'failed: …'}
    status        TEXT NOT NULL DEFAULT 'pending', -- 'sent'|'partial'|'failed'|'throttled'|'pending'|'logged'
    repeat_count  INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX idx_alerts_time ON alerts(timestamp);
CREATE INDEX idx_alerts_key ON alerts(key, timestamp);
"""

# Version 2: what the engine, collector and operations need beyond the checklist.
_V2 = """
CREATE TABLE orders (
    id                 INTEGER PRIMARY KEY,
    client_order_id    TEXT NOT NULL UNIQUE,
    exchange_order_id  TEXT,                       -- CLOB order hash (live) or paper id
    mode               TEXT NOT NULL,
    token_id           TEXT NOT NULL,
    market_id          TEXT NOT NULL,
    side               TEXT NOT NULL,
    order_type         TEXT NOT NULL,
    price_micro        INTEGER NOT NULL,
    size_micro         INTEGER NOT NULL,
    filled_micro       INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL,              -- INTENT|PENDING_SUBMIT|LIVE|PARTIALLY_FILLED|FILLED|CANCELED|REJECTED|UNKNOWN|EXPIRED
    signed_payload     TEXT,                       -- the signed order, re-posted verbatim on retry
    strategy           TEXT,
    reason             TEXT,
    error              TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX idx_orders_status ON orders(mode, status);
CREATE INDEX idx_orders_exchange_id ON orders(exchange_order_id);

CREATE TABLE bot_state (
    key         TEXT PRIMARY KEY,                  -- e.g. heartbeat, pid, halted, halt_reason
    value       TEXT,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE halts (
    id          INTEGER PRIMARY KEY,
    timestamp   INTEGER NOT NULL,
    mode        TEXT NOT NULL,
    breaker     TEXT NOT NULL,                     -- api_errors|daily_loss|position_anomaly|database|emergency_stop
    reason      TEXT NOT NULL,
    details     TEXT,
    cleared_at  INTEGER,
    cleared_by  TEXT
);

CREATE TABLE collection_cycles (
    id            INTEGER PRIMARY KEY,
    started_at    INTEGER NOT NULL,
    cycle_ts      INTEGER NOT NULL,                -- the snapshot timestamp of the cycle
    finished_at   INTEGER,
    kind          TEXT NOT NULL DEFAULT 'cycle',   -- 'cycle' | 'initial' | 'backfill'
    status        TEXT NOT NULL,                   -- 'running'|'ok'|'partial'|'failed'
    markets       INTEGER NOT NULL DEFAULT 0,
    snapshots     INTEGER NOT NULL DEFAULT 0,
    errors        INTEGER NOT NULL DEFAULT 0,
    api_seconds   REAL NOT NULL DEFAULT 0,
    duration      REAL,
    error_detail  TEXT
);
CREATE INDEX idx_cycles_time ON collection_cycles(cycle_ts);

CREATE TABLE backups (
    id          INTEGER PRIMARY KEY,
    timestamp   INTEGER NOT NULL,
    path        TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    integrity   TEXT NOT NULL,
    offsite     TEXT
);

CREATE TABLE job_runs (
    id           INTEGER PRIMARY KEY,
    job          TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    exit_code    INTEGER,
    duration     REAL,
    detail       TEXT
);
CREATE INDEX idx_job_runs ON job_runs(job, started_at);
"""

# Version 3: live trading held to the exchange (issue 13).
# - trades.trade_status: the CLOB trade lifecycle (MATCHED → MINED → CONFIRMED, or RETRYING →
#   FAILED); paper fills and settlements are final ('CONFIRMED'). A FAILED fill is undone by a
#   ``kind='reversal'`` row (trade_id ``reversal:<trade_id>``) so every Σ over trades stays right.
# - orders.exchange_status / exchange_matched_micro: the exchange's own word on the order (its
#   status and size_matched), which decides FILLED — never the fills read so far.
# - external_holdings: what the account held that is not the bot's: the baseline taken at the
#   first live start (Data API positions) plus fills of orders the bot never placed.
# - external_trades: the account's trades that are not the bot's (the history before the
#   baseline, and fills of orders placed by hand); never in the ledger.
_V3 = """
ALTER TABLE trades ADD COLUMN trade_status TEXT NOT NULL DEFAULT 'CONFIRMED';
ALTER TABLE orders ADD COLUMN exchange_status TEXT;
ALTER TABLE orders ADD COLUMN exchange_matched_micro INTEGER;
CREATE INDEX idx_trades_status ON trades(mode, trade_status);

CREATE TABLE external_holdings (
    mode                   TEXT NOT NULL,
    token_id               TEXT NOT NULL,
    market_id              TEXT,                      -- NULL when the token is not in the markets table
    condition_id           TEXT,
    size_micro             INTEGER NOT NULL,          -- external shares now (baseline + external fills)
    baseline_size_micro    INTEGER NOT NULL DEFAULT 0,
    avg_price_micro        INTEGER,
    title                  TEXT,
    recorded_at            INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    PRIMARY KEY (mode, token_id)
);

CREATE TABLE external_trades (
    trade_id        TEXT PRIMARY KEY,
    mode            TEXT NOT NULL,
    timestamp       INTEGER NOT NULL,
    token_id        TEXT NOT NULL,
    side            TEXT NOT NULL,
    price_micro     INTEGER NOT NULL,
    size_micro      INTEGER NOT NULL,
    fee_micro       INTEGER NOT NULL DEFAULT 0,
    trade_status    TEXT NOT NULL,
    order_id        TEXT,                             -- the exchange's order id (not one of ours)
    in_baseline     INTEGER NOT NULL DEFAULT 0,       -- 1: before the baseline (already in its positions)
    recorded_at     INTEGER NOT NULL
);
CREATE INDEX idx_external_trades_token ON external_trades(mode, token_id);
"""

# Version 4 (issue 14): point-in-time market metadata.
# ``market_metadata_history`` keeps every distinct (tick, minimum size, fees, end date) of a
# market with the time it took effect, so a replay applies the value in force at each step
# instead of today's (``markets`` keeps only the latest). A row is written when the collector
# sees a value change, and by the backfill for markets it adds; ``effective_from`` is the
# exchange time the value was first seen (for the seed rows below: the market's first_seen,
# the earliest time we know anything).
_V4_POINT_IN_TIME = """
CREATE TABLE market_metadata_history (
    market_id       TEXT NOT NULL,
    effective_from  INTEGER NOT NULL,              -- epoch seconds UTC the values took effect
    tick_size       REAL NOT NULL,
    min_order_size  REAL NOT NULL,
    fees_enabled    INTEGER NOT NULL,
    fee_rate        REAL NOT NULL,
    fee_exponent    REAL NOT NULL,
    end_date        INTEGER,
    source          TEXT NOT NULL DEFAULT 'collected', -- 'collected' | 'backfill' | 'migration'
    PRIMARY KEY (market_id, effective_from)
) WITHOUT ROWID;
INSERT OR IGNORE INTO market_metadata_history
    (market_id, effective_from, tick_size, min_order_size, fees_enabled, fee_rate, fee_exponent,
     end_date, source)
    SELECT id, first_seen, tick_size, min_order_size, fees_enabled, fee_rate, fee_exponent,
           end_date, 'migration' FROM markets;
"""

# Version 5 (issue 15 #2): a change of the configured paper capital is a deposit or a
# withdrawal, never P&L. Each change is a row here; the daily-loss baseline and the day's low
# are read in today's capital terms (+ the flows after them).
_V5_CAPITAL_FLOWS = """
CREATE TABLE capital_flows (
    id             INTEGER PRIMARY KEY,
    timestamp      INTEGER NOT NULL,                -- epoch seconds UTC (exchange clock)
    mode           TEXT NOT NULL,
    amount_micro   INTEGER NOT NULL,                -- + deposit, - withdrawal
    capital_micro  INTEGER NOT NULL,                -- the configured capital after the change
    reason         TEXT NOT NULL
);
CREATE INDEX idx_capital_flows ON capital_flows(mode, timestamp);
"""


# Version 6 (issue 16): compact market snapshots. Integer token keys, prices in 0.0001 units,
# depth packed in BLOBs, mid/spread derived on read; ``market_snapshots`` becomes a view with
# the old columns (polybot/snapshots/store.py). Existing rows wait in market_snapshots_legacy
# for ``maintain_database.py --migrate``. A Python step: the view's triggers hold ';'.
def _v6_compact_snapshots(conn: sqlite3.Connection) -> None:
    migrate_schema(conn)


# (version, name, SQL or a function run in the migration's transaction). Append only.
MIGRATIONS: list[tuple[int, str, str | Callable[[sqlite3.Connection], None]]] = [
    (1, "checklist tables: markets, market_snapshots, trades, positions, performance, alerts", _V1),
    (2, "orders, bot_state, halts, collection_cycles, backups, job_runs", _V2),
    (3, "live trading: trade status, the exchange's order status, external holdings and trades", _V3),
    (4, "point-in-time market metadata (market_metadata_history)", _V4_POINT_IN_TIME),
    (5, "capital changes recorded as cash flows (capital_flows)", _V5_CAPITAL_FLOWS),
    (
        6,
        "compact market snapshots (market_snapshots, snapshot_tokens, snapshot_bars; the snapshot_values view)",
        _v6_compact_snapshots,
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]

CHECKLIST_TABLES = ("markets", "market_snapshots", "trades", "positions", "performance", "alerts")
