"""On-disk LLM response cache (SQLite), keyed by model, messages, parameters and seed.

Reruns of the same scenario with the same seed cost nothing and give the same
numbers. Safe across threads (one connection per call) and processes (SQLite
locking, WAL journal).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from malles_graph.paths import home

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_prompt_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL DEFAULT (unixepoch('subsec'))
)
"""


@dataclass(frozen=True)
class CachedResponse:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = 0  # replays report the server's prompt-cache figures of the first call


def cache_key(model: str, messages: list[tuple[str, str]], params: dict[str, object]) -> str:
    payload = json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else home() / "llm-cache.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
            if "cached_prompt_tokens" not in columns:  # a cache file written before prompt-cache accounting
                conn.execute("ALTER TABLE responses ADD COLUMN cached_prompt_tokens INTEGER NOT NULL DEFAULT 0")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def get(self, key: str) -> CachedResponse | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT text, prompt_tokens, completion_tokens, cached_prompt_tokens FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return CachedResponse(*row)

    def put(self, key: str, model: str, response: CachedResponse) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO responses (key, model, text, prompt_tokens, completion_tokens, "
                "cached_prompt_tokens) VALUES (?, ?, ?, ?, ?, ?)",
                (key, model, response.text, response.prompt_tokens, response.completion_tokens,
                 response.cached_prompt_tokens),
            )

    def __len__(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
