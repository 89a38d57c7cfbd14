"""Event-driven backtester: replay of stored snapshots (engine), ledger (portfolio),
metrics, report, and the ``backtest.py`` command (cli)."""
