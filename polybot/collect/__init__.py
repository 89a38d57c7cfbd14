"""Market data collection: universe selection, 5-minute cycles, backfill, verification,
data quality and storage estimates.

Modules:

- :mod:`.common`   — the 5-minute grid, the exchange clock, job locks, formatting;
- :mod:`.universe` — which markets are tracked (config ``collection:`` filters);
- :mod:`.store`    — SQL for markets, tokens, snapshots and collection_cycles;
- :mod:`.cycle`    — one collection cycle (``collect_market_data.py [--initial]``);
- :mod:`.backfill` — history from ``/prices-history`` (``--backfill --days N``);
- :mod:`.storage`  — measured storage growth (``--estimate-storage``);
- :mod:`.verify`   — ``verify_data_collection.py`` (cycles, gaps, stale markets);
- :mod:`.quality`  — ``data_quality_check.py`` (the checklist's ✓/✗ checks);
- :mod:`.main`     — argument parsing and dispatch for ``collect_market_data.py``.

Clock: every snapshot timestamp is the EXCHANGE's clock (CLOB ``GET /time``; the
simulator answers with its own sim time) floored to the collection interval, so a
re-run of the same cycle collides on the (timestamp, token_id) primary key and a
simulator with a manual clock gets one distinct cycle per ``advance(300)``.
``verify_data_collection.py`` and ``data_quality_check.py`` measure freshness against
the same clock (falling back to the local clock when the exchange cannot be reached).
"""
