"""The side index: written by the ingest, resumable, rebuilt by reindex, same answers as Chroma, no leakage."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import polars as pl
import pytest
from malles_graph.retrieval import ChromaRetriever, ingest, make_client, open_collection
from malles_graph.retrieval.side_index import index_dir, read_manifest, rebuild_from_collection
from malles_graph.retrieval.store import to_record
from typer.testing import CliRunner

from malles_graph.retail.retrieval_api import (
    InMemoryRetriever,
    RetrievalQuery,
    UnknownCustomerError,
    key_date,
    query_text,
)
from tests.retrieval.conftest import SMALL

COLLECTION = "tafeng_transactions"


class Interrupt(KeyboardInterrupt):
    pass


@pytest.fixture(scope="module")
def indexed(small_memory) -> ChromaRetriever:
    r = ChromaRetriever.open(path=small_memory)
    assert r.side_index is not None, "the side index written by the ingest was not loaded"
    return r


@pytest.fixture(scope="module")
def chroma_only(small_memory) -> ChromaRetriever:
    r = ChromaRetriever.open(path=small_memory, use_index=False)
    assert r.side_index is None
    return r


@pytest.fixture(scope="module")
def exact(small_episodes, ef) -> InMemoryRetriever:
    return InMemoryRetriever([to_record(r["id"], r, 0.0) for r in small_episodes.to_dicts()], embed=ef.embed)


def test_ingest_writes_the_side_index(small_memory, small_episodes, ef):
    folder = index_dir(small_memory, COLLECTION)
    manifest = read_manifest(folder)
    assert manifest["episodes"] == SMALL and manifest["texts"] == small_episodes["text"].n_unique()
    assert not list((folder / "parts").glob("*.parquet")), "parts are compacted at the end of the ingest"
    episodes = pl.read_parquet(folder / "episodes.parquet")
    texts = pl.read_parquet(folder / "texts.parquet")
    assert sorted(episodes["id"].to_list()) == sorted(small_episodes["id"].to_list())
    vectors = np.load(folder / "vectors.npy")
    assert vectors.shape == (manifest["texts"], 384)
    # every episode points at the vector of its own text
    joined = episodes.join(texts, on="text_no").join(small_episodes.select("id", pl.col("text").alias("want")), on="id")
    assert (joined["text"] == joined["want"]).all()
    sample = joined.head(5)
    assert vectors[sample["text_no"].to_numpy()] == pytest.approx(ef.embed(sample["text"].to_list()), abs=1e-5)


def test_interrupted_ingest_resumes_the_side_index(tmp_path, episodes, ef):
    subset = episodes.slice(2000, 300)
    client, where = make_client(tmp_path / "mem")
    col = open_collection(client, COLLECTION, where, create=True, embedding_function=ef)
    folder = index_dir(where, COLLECTION)
    calls: list[int] = []

    def stop_after_two(n: int) -> None:
        calls.append(n)
        if len(calls) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        ingest(col, subset, ef.embed, batch_size=70, progress=stop_after_two, index_folder=folder)
    assert len(list((folder / "parts").glob("episodes-*.parquet"))) == 2  # one whole part per stored batch
    # opened as it is, the index compacts its parts and matches the 140 stored episodes
    half = ChromaRetriever.open(path=where)
    assert half.side_index is not None and half.side_index.size == col.count() == 140

    ingest(col, subset, ef.embed, batch_size=50, index_folder=folder)  # another batch size: still no duplicates
    ids = pl.read_parquet(folder / "episodes.parquet")["id"].to_list()
    assert len(ids) == len(set(ids)) == 300 and set(ids) == set(subset["id"].to_list())
    assert read_manifest(folder)["texts"] == subset["text"].n_unique()

    # a collection grown without the index: the stale index is not used (Chroma answers) until reindexed
    ingest(col, episodes.slice(2300, 20), ef.embed)
    assert ChromaRetriever.open(path=where).side_index is None
    assert rebuild_from_collection(col, folder) == 320
    assert ChromaRetriever.open(path=where).side_index.size == 320


def test_reindex_rebuilds_the_same_index_without_embedding(small_memory, tmp_path, monkeypatch):
    copy = tmp_path / "mem"
    shutil.copytree(small_memory, copy)
    built = index_dir(small_memory, COLLECTION)
    shutil.rmtree(index_dir(copy, COLLECTION))
    assert ChromaRetriever.open(path=copy).side_index is None

    from malles_graph.retrieval import embedding

    from malles_graph.cli import app, memory

    def refuse(*args, **kwargs):
        raise AssertionError("reindex must not embed")

    monkeypatch.setattr(embedding.MiniLMEmbeddingFunction, "embed", refuse)
    monkeypatch.setattr(memory.console, "width", 200)
    done = CliRunner().invoke(app, ["memory", "reindex", "--path", str(copy)])
    assert done.exit_code == 0, done.output
    assert f"{SMALL:,} episodes" in done.output
    rebuilt = index_dir(copy, COLLECTION)
    for name in ("episodes.parquet", "texts.parquet"):
        assert pl.read_parquet(rebuilt / name).equals(pl.read_parquet(built / name)), name
    assert np.load(rebuilt / "vectors.npy") == pytest.approx(np.load(built / "vectors.npy"), abs=1e-6)


def queries(small_episodes, n: int = 25) -> list[RetrievalQuery]:
    out = []
    for row in small_episodes.sample(n, seed=3).to_dicts():
        before = key_date(row["date"]) + dt.timedelta(days=row["quantity"] % 2)  # the day itself or the day after
        text = query_text(row["age_group"], row["pin_code"], 2, 0.9)
        for kw in ({}, {"subclass": row["subclass"]}, {"customer_id": row["customer_id"]},
                   {"subclass": row["subclass"], "customer_id": row["customer_id"]}):
            out.append(RetrievalQuery(text=text, before=before, k=10, **kw))
    return out


def content(record) -> dict:
    return record.model_dump(exclude={"similarity"})


def test_same_results_as_the_chroma_path_and_exact_search(indexed, chroma_only, exact, small_episodes):
    by_id = {r.id: r for r in exact.records}
    for q in queries(small_episodes):
        got, chroma, want = indexed.search(q), chroma_only.search(q), exact.search(q)
        assert len(got) == len(chroma) == len(want), q
        sims = [r.similarity for r in got]
        assert sims == pytest.approx([r.similarity for r in want], abs=2e-4), q
        assert sims == pytest.approx([r.similarity for r in chroma], abs=2e-4), q
        for r in got:  # every record identical in content to the stored episode
            assert content(r) == content(by_id[r.id])
        if q.customer_id or q.subclass:  # exact on both paths: same episodes (ties may reorder)
            assert {r.id for r in got} == {r.id for r in chroma} or sims[-1] == pytest.approx(sims[-2], abs=2e-4)


def test_no_leakage_of_the_decision_day_or_later(indexed, small_episodes):
    for q in queries(small_episodes, 40):
        assert all(r.date < q.before for r in indexed.search(q.model_copy(update={"k": 200})))
    late = small_episodes.tail(1).row(0, named=True)
    day = key_date(late["date"])
    q = RetrievalQuery(text=late["text"], customer_id=late["customer_id"], before=day, k=50)
    assert late["id"] not in {r.id for r in indexed.search(q)}
    assert late["id"] in {r.id for r in indexed.search(q.model_copy(update={"before": day + dt.timedelta(days=1)}))}
    first = key_date(small_episodes["date"].min())
    assert indexed.search(RetrievalQuery(text=late["text"], before=first)) == []
    with pytest.raises(UnknownCustomerError, match="'nobody'"):
        indexed.search(RetrievalQuery(text="x", customer_id="nobody", before=day))


def test_distinct_texts_are_np_unique_by_either_path():
    from malles_graph.retrieval.side_index import _distinct

    rng = np.random.default_rng(0)
    for size, n in ((5, 1000), (5000, 300), (0, 10)):
        values = rng.integers(0, n, size)
        texts, inverse = _distinct(values, n)
        want_texts, want_inverse = np.unique(values, return_inverse=True)
        assert np.array_equal(texts, want_texts) and np.array_equal(inverse, want_inverse)


def test_episode_metadata_packs_what_no_query_filters_on(small_episodes):
    from malles_graph.retrieval.episodes import FILTER_KEYS, RECORD_KEYS, metadata, unpack

    row = small_episodes.row(0, named=True)
    meta = metadata(row)
    assert set(meta) == {*FILTER_KEYS, "record"}
    assert unpack(meta) == {k: row[k] for k in (*FILTER_KEYS, *RECORD_KEYS)}
    assert unpack(unpack(meta)) == unpack(meta)  # the one-key-per-field layout reads as it is


def test_a_memory_with_one_metadata_key_per_field_is_still_read(small_memory, chroma_only, small_episodes, ef, tmp_path):
    """Memories built before 0.5.4 hold every field as a metadata key of its own: both search paths and
    reindex read them as they read the packed layout."""
    from malles_graph.retrieval.episodes import unpack

    stored = chroma_only.collection.get(include=["embeddings", "metadatas"])
    client, where = make_client(tmp_path / "old")
    col = open_collection(client, COLLECTION, where, create=True, embedding_function=ef)
    col.add(ids=stored["ids"], embeddings=stored["embeddings"], metadatas=[unpack(m) for m in stored["metadatas"]])
    assert "record" not in col.get(limit=1, include=["metadatas"])["metadatas"][0]
    old = ChromaRetriever.open(path=tmp_path / "old", use_index=False)
    for q in queries(small_episodes, 10):
        assert [content(r) for r in old.search(q)] == [content(r) for r in chroma_only.search(q)], q
    assert rebuild_from_collection(col, index_dir(where, COLLECTION)) == SMALL
    built, rebuilt = index_dir(small_memory, COLLECTION), index_dir(where, COLLECTION)
    assert pl.read_parquet(rebuilt / "episodes.parquet").equals(pl.read_parquet(built / "episodes.parquet"))
