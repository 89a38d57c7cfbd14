"""Compact market snapshots: the codec, the store and the ``snapshot_values`` view (issue 16)."""
