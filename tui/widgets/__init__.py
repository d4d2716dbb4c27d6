"""Reusable widgets of the app (each keeps its own DEFAULT_CSS)."""
