"""Everything that talks to Polymarket (or the local simulator) goes through this package."""
