"""Fixtures of the retrieval tests: real episodes, the real embedder, small real Chroma memories."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

SMALL = 400  # episodes in the shared small memory (the full data is for the benchmark)


@pytest.fixture(scope="session")
def episodes(tafeng_path: Path) -> pl.DataFrame:
    """All 699,799 Ta Feng episodes (grouping takes a few seconds)."""
    from malles_graph.retrieval import build_episodes

    from malles_graph.data import tafeng

    return build_episodes(tafeng.load(tafeng_path))


@pytest.fixture(scope="session")
def ef():
    from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction

    return MiniLMEmbeddingFunction()


@pytest.fixture(scope="session")
def small_episodes(episodes: pl.DataFrame) -> pl.DataFrame:
    """The first episodes plus a later slice, so date filters have something on both sides."""
    return pl.concat([episodes.head(SMALL // 2), episodes.slice(300_000, SMALL // 2)])


@pytest.fixture(scope="session")
def small_memory(tmp_path_factory: pytest.TempPathFactory, small_episodes: pl.DataFrame, ef) -> Path:
    """A persisted Chroma memory of SMALL episodes with its side index; returns its folder."""
    from malles_graph.retrieval import ingest, make_client, open_collection
    from malles_graph.retrieval.side_index import index_dir

    path = tmp_path_factory.mktemp("memory")
    client, where = make_client(path)
    col = open_collection(client, "tafeng_transactions", where, create=True, embedding_function=ef)
    ingest(col, small_episodes, ef.embed, batch_size=100, index_folder=index_dir(where, "tafeng_transactions"))
    return path
