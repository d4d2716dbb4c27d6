"""Data sets and packaged assets (Ta Feng transactions, bundled models)."""
