"""Run persistence: SQLModel tables on SQLite (default) or PostgreSQL, the LangGraph checkpointer, export."""

from malles_graph.store.engine import StoreError, check_reachable, default_url, make_engine, normalise_url

__all__ = ["StoreError", "check_reachable", "default_url", "make_engine", "normalise_url"]
