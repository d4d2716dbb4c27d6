"""The Chroma memory on disk: reopening, filters, no leakage, parity with the exact retriever."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from malles_graph.retrieval import ChromaRetriever
from malles_graph.retrieval.store import to_record

from malles_graph.retail.retrieval_api import (
    InMemoryRetriever,
    RetrievalQuery,
    RetrievedRecord,
    Retriever,
    UnknownCustomerError,
    key_date,
    query_text,
)
from tests.retrieval.conftest import SMALL


@pytest.fixture(scope="module")
def retriever(small_memory) -> ChromaRetriever:
    return ChromaRetriever.open(path=small_memory)


@pytest.fixture(scope="module")
def exact(small_episodes, ef) -> InMemoryRetriever:
    """The same episodes in the exact in-memory retriever, with the same embedder."""
    rows = small_episodes.to_dicts()
    return InMemoryRetriever([to_record(r["id"], r, 0.0) for r in rows], embed=ef.embed)


def test_reopens_in_a_fresh_process_with_its_embedding_function(small_memory):
    code = f"""
import json, chromadb
import malles_graph.retrieval.embedding  # registers the function by name
from malles_graph.retrieval import ChromaRetriever
col = chromadb.PersistentClient({str(small_memory)!r}).get_collection("tafeng_transactions")
r = ChromaRetriever.open(path={str(small_memory)!r})
hits = col.query(query_texts=["age 30-34, area 115: bought 1 unit of 1 product"], n_results=3)  # embeds offline
print(json.dumps({{"count": col.count(), "ef": type(col.configuration["embedding_function"]).__name__,
                  "config": col.configuration_json["hnsw"], "reopened": r.count(), "hits": len(hits["ids"][0])}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["count"] == info["reopened"] == SMALL
    assert info["ef"] == "MiniLMEmbeddingFunction" and info["hits"] == 3
    assert info["config"]["space"] == "cosine" and info["config"]["ef_search"] == 200


def test_records_are_typed_and_complete(retriever, small_episodes):
    row = small_episodes.row(0, named=True)
    got = retriever.search(RetrievalQuery(text=row["text"], customer_id=row["customer_id"],
                                          subclass=row["subclass"], before=dt.date(2001, 3, 1), k=1))
    assert isinstance(retriever, Retriever)
    (record,) = got
    assert isinstance(record, RetrievedRecord)
    assert record.id == row["id"] and record.text == row["text"]
    assert record.date == key_date(row["date"]) and record.product_ids == row["product_ids"].split(",")
    assert record.quantity == row["quantity"] and record.price_ratio == pytest.approx(row["price_ratio"])
    assert record.similarity == pytest.approx(1.0, abs=1e-4)


def test_filters_and_no_leakage(retriever, small_episodes):
    late = small_episodes.tail(1).row(0, named=True)
    before = key_date(late["date"])
    for subclass, customer in ((None, None), (late["subclass"], None), (None, late["customer_id"])):
        q = RetrievalQuery(text=query_text(late["age_group"], late["pin_code"], 2), subclass=subclass,
                           customer_id=customer, before=before, k=50)
        got = retriever.search(q)
        assert all(r.date < before for r in got), "an episode on or after the decision date leaked"
        assert all(subclass is None or r.subclass == subclass for r in got)
        assert all(customer is None or r.customer_id == customer for r in got)
        assert got == sorted(got, key=lambda r: -r.similarity)
    # the customer's own decision day is excluded, the day after includes it
    same_day = RetrievalQuery(text=late["text"], customer_id=late["customer_id"], before=before, k=50)
    assert late["id"] not in {r.id for r in retriever.search(same_day)}
    next_day = same_day.model_copy(update={"before": before + dt.timedelta(days=1)})
    assert late["id"] in {r.id for r in retriever.search(next_day)}
    first = key_date(small_episodes["date"].min())
    assert retriever.search(RetrievalQuery(text="bought", before=first)) == []


def test_date_filter_when_few_candidates_survive(retriever, small_episodes):
    """Early decision dates: the over-fetched list has too few old episodes; the exact filter runs."""
    second_day = sorted(set(small_episodes["date"].to_list()))[1]
    n_old = small_episodes.filter(small_episodes["date"] < second_day).height
    got = retriever.search(RetrievalQuery(text="age 30-34: bought 1 unit", before=key_date(second_day), k=5))
    assert len(got) == min(5, n_old) and all(r.date < key_date(second_day) for r in got)


def test_same_answers_as_exact_search(retriever, exact, small_episodes):
    rows = small_episodes.sample(20, seed=1).to_dicts()
    for row in rows:
        q = RetrievalQuery(text=query_text(row["age_group"], row["pin_code"], 3, 0.9),
                           before=key_date(row["date"]) + dt.timedelta(days=1), k=10)
        got, want = retriever.search(q), exact.search(q)
        assert len(got) == len(want)
        # ties are common (identical texts); compare the similarity profile, not tie order
        assert [round(r.similarity, 4) for r in got] == pytest.approx([round(r.similarity, 4) for r in want], abs=2e-4)


def test_unknown_customer_is_a_clear_error(retriever, small_episodes):
    with pytest.raises(UnknownCustomerError, match="'no-such-customer'.*tafeng_transactions"):
        retriever.search(RetrievalQuery(text="x", customer_id="no-such-customer", before=dt.date(2001, 3, 1)))
    known = small_episodes.row(0, named=True)["customer_id"]
    assert retriever.search(RetrievalQuery(text="x", customer_id=known, before=dt.date(2000, 1, 1))) == []


def test_opens_from_a_scenario_memory_section(small_memory, tmp_path, monkeypatch):
    from malles_graph.retail.retrieval_api import RetrievalError
    from malles_graph.scenario import MemoryConfig

    assert ChromaRetriever.from_config(MemoryConfig(path=str(small_memory))).count() == SMALL
    monkeypatch.setenv("MALLES_RUNS", str(tmp_path / "empty-runs"))
    with pytest.raises(RetrievalError, match=str(tmp_path / "empty-runs" / "memory")):
        ChromaRetriever.from_config(MemoryConfig())  # default: <runs>/memory, not built yet
