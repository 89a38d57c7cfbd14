"""Compact market snapshots: the codec, the store and the ``market_snapshots`` view (issue 16)."""
