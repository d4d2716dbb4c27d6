"""A memory's Chroma collection written from its side index, in a process of its own.

The agent's case memory is searched only in its side index (exact; ``ChromaRetriever`` prefers it),
and Chroma's ``add`` holds the GIL for most of a memory build (27 of 37 s for the 2,000 Feb-2001
cases), so no thread can run beside it. So the side index is written first, the run searches it at
once, and ``python -m malles_graph.retrieval.fill FOLDER COLLECTION HNSW_JSON`` writes the store of
record meanwhile on the other core: :class:`CollectionWriter` starts it and waits for it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from malles_graph.retrieval.episodes import metadata
from malles_graph.retrieval.side_index import read_manifest

from malles_graph.retail.retrieval_api import RetrievalError


def fill_collection(collection: Any, index_folder: Path, batch_size: int = 2000) -> int:
    """Add every episode of the side index in ``index_folder`` to ``collection`` (the reverse of
    ``side_index.rebuild_from_collection``); returns the collection's count."""
    episodes = pl.read_parquet(index_folder / "episodes.parquet")
    vectors = np.load(index_folder / "vectors.npy")
    text_no = episodes["text_no"].to_numpy()
    for start in range(0, episodes.height, batch_size):
        batch = episodes.slice(start, batch_size)
        collection.add(
            ids=batch["id"].to_list(),
            embeddings=vectors[text_no[start : start + batch.height]],
            metadatas=[metadata(row) for row in batch.to_dicts()],
        )
    return collection.count()


class CollectionWriter:
    """The process writing one memory's collection from its side index (``wait`` before reading it)."""

    def __init__(self, folder: Path, collection: str, hnsw: Any) -> None:
        self.folder, self.collection = folder, collection
        self.log = folder / "fill.log"
        command = [sys.executable, "-m", "malles_graph.retrieval.fill", str(folder), collection, hnsw.model_dump_json()]
        with self.log.open("w", encoding="utf-8") as log:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def wait(self) -> None:
        """Until the collection is written; a RetrievalError with the writer's last line if it failed."""
        code = self._process.wait()
        if code != 0:
            lines = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            raise RetrievalError(
                f"writing the Chroma collection of {self.folder} failed (exit {code}): "
                f"{lines[-1] if lines else 'no output'} (log: {self.log})"
            )


def main(argv: list[str] | None = None) -> None:
    from malles_graph.retrieval.client import make_client
    from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction
    from malles_graph.retrieval.side_index import index_dir
    from malles_graph.retrieval.store import HnswParams, open_collection

    folder, name, hnsw = argv if argv is not None else sys.argv[1:]
    client, where = make_client(Path(folder), None, create=True)
    col = open_collection(
        client, name, where, create=True, hnsw=HnswParams.model_validate_json(hnsw),
        embedding_function=MiniLMEmbeddingFunction(),
    )  # fmt: skip
    index = index_dir(where, name)
    count = fill_collection(col, index)
    expected = read_manifest(index).get("episodes")
    if count != expected:
        raise RetrievalError(f"collection {name!r} in {where} holds {count} episodes, its side index {expected}")


if __name__ == "__main__":
    main()
