"""The core retriever interface: models, ids, texts and the in-memory retriever."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from pydantic import ValidationError

from malles_graph.errors import MallesError
from malles_graph.retail.retrieval_api import (
    InMemoryRetriever,
    RetrievalError,
    RetrievalQuery,
    Retriever,
    UnknownCustomerError,
    date_key,
    episode_id,
    episode_text,
    key_date,
    make_record,
    price_phrase,
    query_text,
)

D = dt.date


def records():
    return [
        make_record("c1", D(2000, 11, 1), "s1", ["p1"], 1, 10.0, 1.0, "30-34", "115"),
        make_record("c1", D(2000, 11, 8), "s1", ["p1", "p2"], 4, 8.0, 0.8, "30-34", "115"),
        make_record("c1", D(2000, 11, 15), "s2", ["p3"], 2, 5.0, 1.0, "30-34", "115"),
        make_record("c2", D(2000, 11, 8), "s1", ["p1"], 6, 7.0, 0.7, ">64", "221"),
        make_record("c2", D(2000, 11, 20), "s1", ["p2"], 1, 12.0, 1.0, ">64", "221"),
    ]


def test_date_key_round_trip_and_ids_are_deterministic():
    assert date_key(D(2000, 11, 5)) == 20001105
    assert key_date(20010228) == D(2001, 2, 28)
    assert episode_id("0001", D(2001, 1, 2), "100205") == "0001-20010102-100205"
    assert make_record("c", D(2001, 1, 2), "s", ["p", "p"], 2, 1.0, 1.0).product_ids == ["p"]


def test_texts_describe_who_how_many_and_price():
    text = episode_text("35-39", "115", 3, 2, 0.8)
    assert text == "age 35-39, area 115: bought 3 units of 2 products, 20% below regular price"
    assert price_phrase(1.0) == "at regular price" and price_phrase(1.12) == "10% above regular price"
    assert "1 unit" in query_text("<25", "E", 1) and "units" not in query_text("<25", "E")


def test_query_validation():
    with pytest.raises(ValidationError):
        RetrievalQuery(text="x")  # the decision date is required
    with pytest.raises(ValidationError):
        RetrievalQuery(text="x", before=D(2001, 1, 1), k=0)
    with pytest.raises(ValidationError):
        RetrievalQuery(text="", before=D(2001, 1, 1))


def test_in_memory_satisfies_protocol_and_filters():
    retriever = InMemoryRetriever(records())
    assert isinstance(retriever, Retriever)
    q = RetrievalQuery(text=query_text("30-34", "115", 4, 0.8), before=D(2000, 11, 16), subclass="s1")
    got = retriever.search(q)
    assert [r.id for r in got][:1] == ["c1-20001108-s1"]  # same words: closest
    assert {r.subclass for r in got} == {"s1"} and all(r.date < q.before for r in got)
    assert got == sorted(got, key=lambda r: -r.similarity)
    mine = retriever.search(q.model_copy(update={"customer_id": "c2"}))
    assert [r.id for r in mine] == ["c2-20001108-s1"]


def test_in_memory_never_returns_the_decision_day_or_later():
    retriever = InMemoryRetriever(records())
    got = retriever.search(RetrievalQuery(text="bought", before=D(2000, 11, 8), k=10))
    assert [r.id for r in got] == ["c1-20001101-s1"]
    assert retriever.search(RetrievalQuery(text="bought", before=D(2000, 11, 1))) == []


def test_in_memory_unknown_customer_is_a_clear_error():
    retriever = InMemoryRetriever(records())
    with pytest.raises(UnknownCustomerError, match="'nobody'") as info:
        retriever.search(RetrievalQuery(text="x", before=D(2001, 1, 1), customer_id="nobody"))
    assert isinstance(info.value, RetrievalError) and isinstance(info.value, MallesError)
    # a known customer with nothing before the date: empty, not an error
    assert retriever.search(RetrievalQuery(text="x", before=D(2000, 11, 1), customer_id="c1")) == []


def test_in_memory_rejects_duplicate_ids():
    with pytest.raises(ValueError, match="duplicate"):
        InMemoryRetriever(records() + records()[:1])


def test_core_api_imports_neither_chroma_nor_retrieval():
    code = (
        "import sys, malles_graph.retail.retrieval_api;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('chromadb','onnxruntime') or m.split('.')[:2] in (['malles_graph','retrieval'],['malles_graph','graphs'],['malles_graph','tui'])];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
