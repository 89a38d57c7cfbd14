-- The database schema of polybot at commit 15cb2c7 (schema versions 1 and 2), copied verbatim
-- from that commit's polybot/schema.py (git show 15cb2c7:polybot/schema.py): the layout whose
-- market_snapshots rows python maintain_database.py --migrate moves to the compact tables.
-- tests/ops/test_snapshot_migration.py builds a database from it (then PRAGMA user_version = 2).

-- version 1: checklist tables: markets, market_snapshots, trades, positions, performance, alerts
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

-- version 2: orders, bot_state, halts, collection_cycles, backups, job_runs
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
