"""Ingest: interrupted and resumed without duplicates; CLI re-runs continue."""

from __future__ import annotations

import pytest
from malles_graph.retrieval import ingest, make_client, open_collection


class Interrupt(KeyboardInterrupt):
    pass


def test_interrupted_ingest_resumes_without_duplicates(tmp_path, episodes, ef):
    subset = episodes.slice(1000, 300)
    client, where = make_client(tmp_path / "mem")
    col = open_collection(client, "resume-test", where, create=True, embedding_function=ef)
    batches = []

    def stop_after_two(n: int) -> None:
        batches.append(n)
        if len(batches) == 2:
            raise Interrupt  # what Ctrl-C does between two writes

    with pytest.raises(Interrupt):
        ingest(col, subset, ef.embed, batch_size=70, progress=stop_after_two)
    assert col.count() == 140  # two whole batches, nothing half-written

    report = ingest(col, subset, ef.embed, batch_size=70)
    assert (report.skipped, report.added, report.total_in_collection) == (140, 160, 300)
    stored = col.get(include=[])["ids"]
    assert len(stored) == len(set(stored)) == 300 and set(stored) == set(subset["id"].to_list())

    again = ingest(col, subset, ef.embed, batch_size=50)  # a different batch size changes nothing
    assert (again.added, again.skipped, col.count()) == (0, 300, 300)


def test_identical_texts_are_embedded_once(tmp_path, episodes, ef):
    subset = episodes.slice(5000, 200)
    client, where = make_client(tmp_path / "mem")
    col = open_collection(client, "dedup-test", where, create=True, embedding_function=ef)
    calls: list[int] = []

    def counting_embed(texts):
        calls.append(len(texts))
        return ef.embed(texts)

    report = ingest(col, subset, counting_embed, batch_size=60)
    assert sum(calls) == report.texts_embedded == subset["text"].n_unique() < subset.height
    got = col.get(ids=subset["id"].to_list()[:3], include=["embeddings"])
    want = ef.embed(subset["text"].to_list()[:3])
    by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
    for i, text_id in enumerate(subset["id"].to_list()[:3]):
        assert by_id[text_id] == pytest.approx(want[i], abs=1e-5)


def test_a_limit_gives_the_first_episodes_priced_from_all_rows(tafeng_path):
    """`malles memory build --limit N`: the first N episodes of the full order, their price ratios from every row."""
    from malles_graph.retrieval import build_episodes

    from malles_graph.data import tafeng

    rows = tafeng.load(tafeng_path).head(20_000)
    full = build_episodes(rows)
    assert build_episodes(rows, limit=300).equals(full.head(300))
    # priced from all the rows: the first 400 rows alone give other regular prices
    assert not build_episodes(rows.head(400), limit=300)["price_ratio"].equals(full.head(300)["price_ratio"])
    assert build_episodes(rows, limit=0).height == 0
