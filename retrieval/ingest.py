"""Ingest episodes into a Chroma collection: batched, deduplicated embedding, resumable.

Resuming works because ids are derived from (customer, date, subclass) and episodes
come in a fixed order: each batch first asks Chroma which of its ids already exist and
adds only the others, so a second run after an interruption continues where the first
stopped and never duplicates. One ``collection.add`` call is one atomic write, so an
interruption loses at most the batch in flight, never what was already stored.

Embedding is the expensive part on a small CPU. Episode texts leave out ids (see
``episode_text``), so 700k episodes have ~18k distinct texts; each distinct text is
embedded once per run and its vector reused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from malles_graph.retrieval.episodes import metadata
from malles_graph.retrieval.side_index import IndexWriter, compact
from pydantic import BaseModel

from malles_graph.retail.retrieval_api import RetrievalError

Progress = Callable[[int], None]


class IngestReport(BaseModel):
    episodes: int
    added: int
    skipped: int
    texts_embedded: int
    seconds: float
    embed_seconds: float
    total_in_collection: int

    @property
    def docs_per_second(self) -> float:
        return self.added / self.seconds if self.seconds > 0 else 0.0


def ingest(
    collection: Any,
    episodes: pl.DataFrame,
    embed: Callable[[list[str]], np.ndarray],
    batch_size: int = 2000,
    progress: Progress | None = None,
    index_folder: Path | None = None,
) -> IngestReport:
    """Add the episodes missing from ``collection``; ``progress(n)`` after each batch of n.

    With ``index_folder`` (``side_index.index_dir(persist folder, collection)``), each batch is
    also appended to the side index after Chroma's write, and the index is compacted at the end.
    """
    if batch_size < 1:
        raise RetrievalError(f"batch size must be at least 1, got {batch_size}")
    writer = IndexWriter(index_folder) if index_folder is not None else None
    started = time.perf_counter()
    cache: dict[str, np.ndarray] = {}
    planned: set[str] = set()  # texts whose embedding is done or under way
    added = skipped = 0
    embed_seconds = 0.0

    def timed_embed(texts: list[str]) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        return np.asarray(embed(texts), dtype=np.float32), time.perf_counter() - t0

    def prepare(start: int) -> tuple[pl.DataFrame, pl.DataFrame, int, list[str], Future | None]:
        """A batch's episodes still missing, and its new texts sent to be embedded."""
        whole = episodes.slice(start, batch_size)
        present = set(collection.get(ids=whole["id"].to_list(), include=[])["ids"])
        batch = whole.filter(~pl.col("id").is_in(list(present))) if present else whole
        new = [t for t in dict.fromkeys(batch["text"].to_list()) if t not in planned]
        planned.update(new)
        return whole, batch, len(present), new, pool.submit(timed_embed, new) if new else None

    # The next batch is embedded (onnxruntime, which releases the GIL) while this one is written to
    # Chroma; each batch is embedded and added exactly as one after the other would, same vectors.
    with ThreadPoolExecutor(max_workers=1) as pool:
        starts = range(0, episodes.height, batch_size)
        queue = [prepare(starts[0])] if starts else []
        for i in range(len(starts)):
            if i + 1 < len(starts):
                queue.append(prepare(starts[i + 1]))
            whole, batch, n_present, new, future = queue.pop(0)
            skipped += n_present
            if future is not None:
                vectors, seconds = future.result()
                embed_seconds += seconds
                cache.update(zip(new, vectors, strict=True))
            if batch.height:
                rows = batch.to_dicts()
                collection.add(
                    ids=[r["id"] for r in rows],
                    embeddings=np.stack([cache[t] for t in batch["text"].to_list()]),
                    metadatas=[metadata(r) for r in rows],
                )
                added += batch.height
            if writer is not None:
                writer.append(whole, lambda texts, whole=whole: _vectors(collection, whole, texts, cache))
            if progress:
                progress(whole.height)
    if writer is not None:
        compact(index_folder, collection.name)
    return IngestReport(
        episodes=episodes.height,
        added=added,
        skipped=skipped,
        texts_embedded=len(cache),
        seconds=time.perf_counter() - started,
        embed_seconds=embed_seconds,
        total_in_collection=collection.count(),
    )


def _vectors(collection: Any, batch: pl.DataFrame, texts: list[str], cache: dict[str, np.ndarray]) -> np.ndarray:
    """Vectors of ``texts``: from this run's cache, else read back from Chroma (never re-embedded)."""
    missing = [t for t in texts if t not in cache]
    if missing:
        reps = batch.filter(pl.col("text").is_in(missing)).unique("text", keep="first")
        got = collection.get(ids=reps["id"].to_list(), include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
        for text, rid in zip(reps["text"].to_list(), reps["id"].to_list(), strict=True):
            cache[text] = np.asarray(by_id[rid], dtype=np.float32)
    return np.stack([cache[t] for t in texts])
