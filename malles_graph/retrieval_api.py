"""The retriever interface the decision graph codes against (core: no Chroma here).

The decision graph's ``retrieve`` node calls ``retriever.search(RetrievalQuery(...))``
and gets typed :class:`RetrievedRecord` rows back. Two implementations satisfy the
:class:`Retriever` protocol:

* :class:`InMemoryRetriever` (here, in the core): numpy cosine over a small list of
  records, for tests and small runs;
* ``retrieval.ChromaRetriever`` (the ``retrieval`` package): the Chroma transaction
  memory over the full Ta Feng data.

Both apply the same filters: ``customer_id`` and ``subclass`` when given, and the date
strictly before ``before`` (the decision date), so a decision never sees its own day or
the future.

One record is one *episode*: what one customer bought in one product subclass on one
day (all products and units of that subclass in that basket). :func:`episode_text` is
the one place that turns an episode into the short text that is embedded, so the
in-memory and Chroma retrievers embed the same text, and :func:`query_text` builds a
query in the same words.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

Embedder = Callable[[Sequence[str]], np.ndarray]
"""Maps texts to a (n, dim) float32 array of L2-normalised rows."""


class RetrievalQuery(BaseModel):
    """What the decision graph asks the memory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, description="free text to match, e.g. query_text(...) for a situation")
    customer_id: str | None = Field(default=None, description="only this customer's episodes when set")
    subclass: str | None = Field(default=None, description="only episodes in this product subclass when set")
    before: dt.date = Field(description="decision date: only episodes strictly before this day are returned")
    k: int = Field(default=10, ge=1, le=1000, description="number of records to return (at most)")


class RetrievedRecord(BaseModel):
    """One past episode: a customer's purchases in one subclass on one day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="stable id derived from (customer_id, date, subclass)")
    text: str = Field(description="the embedded description of the episode")
    customer_id: str
    subclass: str
    date: dt.date
    product_ids: list[str] = Field(min_length=1, description="products bought in the subclass that day")
    quantity: int = Field(ge=0, description="total units bought in the subclass that day")
    unit_price: float = Field(ge=0, description="paid price per unit (sales / quantity)")
    price_ratio: float = Field(ge=0, description="paid unit price / regular unit price (1.0 = regular, 0.8 = 20% off)")
    age_group: str = "Unknown"
    pin_code: str = "Unknown"
    similarity: float = Field(default=0.0, description="cosine similarity to the query text (1 = same)")

    @field_validator("product_ids", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        # Chroma metadata holds the list as one "a,b,c" string.
        return [p for p in value.split(",") if p] if isinstance(value, str) else value


@runtime_checkable
class Retriever(Protocol):
    """Anything that answers a RetrievalQuery with at most ``query.k`` records, best first."""

    def search(self, query: RetrievalQuery) -> list[RetrievedRecord]: ...


def date_key(day: dt.date) -> int:
    """A date as an int (2000-11-05 -> 20001105) so metadata range filters work."""
    return day.year * 10000 + day.month * 100 + day.day


def key_date(key: int) -> dt.date:
    """Inverse of :func:`date_key`."""
    return dt.date(key // 10000, key // 100 % 100, key % 100)


def episode_id(customer_id: str, day: dt.date, subclass: str) -> str:
    """Deterministic id of an episode: re-ingesting the same data gives the same ids."""
    return f"{customer_id}-{date_key(day)}-{subclass}"


def _price_phrase(price_ratio: float) -> str:
    pct = round((1.0 - price_ratio) * 100)
    if pct >= 3:
        return f"{pct}% below regular price"
    if pct <= -3:
        return f"{-pct}% above regular price"
    return "at regular price"


def episode_text(
    age_group: str, pin_code: str, subclass: str, quantity: int, n_products: int, unit_price: float, price_ratio: float
) -> str:
    """The short text embedded for an episode.

    Who (age group, area), what (subclass, number of distinct products), how many and at
    what price relative to regular. Ids of customers and products are left out on purpose:
    they carry no meaning for a sentence embedder and live in the metadata instead, and
    leaving them out makes many texts identical, which the ingest embeds only once.
    """
    products = "1 product" if n_products == 1 else f"{n_products} products"
    units = "1 unit" if quantity == 1 else f"{quantity} units"
    return (
        f"age {age_group}, area {pin_code}: bought {units} of {products} in subclass {subclass} "
        f"at {unit_price:.0f} per unit, {_price_phrase(price_ratio)}"
    )


def query_text(age_group: str, pin_code: str, subclass: str, unit_price: float | None = None,
               price_ratio: float = 1.0) -> str:
    """A query in the words of :func:`episode_text` for a customer facing a subclass."""
    price = "" if unit_price is None else f" at {unit_price:.0f} per unit, {_price_phrase(price_ratio)}"
    return f"age {age_group}, area {pin_code}: buys in subclass {subclass}{price}"


_TOKEN = re.compile(r"[a-z0-9<>%-]+")


def hashing_embedder(dim: int = 256) -> Embedder:
    """A dependency-free embedder (hashed word and word-pair counts, L2-normalised).

    Good enough for tests and tiny runs; pass ``retrieval.MiniLMEmbeddingFunction()`` as
    ``embed`` for real sentence embeddings.
    """

    def bucket(token: str) -> int:
        return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little") % dim

    def embed(texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            for token in words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]:
                out[i, bucket(token)] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)

    return embed


class InMemoryRetriever:
    """Exact cosine search over records held in memory; satisfies :class:`Retriever`.

    ``records`` carry their own ``text``; their ``similarity`` field is ignored and
    replaced by the score of each query.
    """

    def __init__(self, records: Sequence[RetrievedRecord], embed: Embedder | None = None) -> None:
        self.records = list(records)
        self.embed = embed or hashing_embedder()
        ids = [r.id for r in self.records]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"duplicate record id {dup!r}")
        texts = [r.text for r in self.records]
        self._vectors = np.asarray(self.embed(texts), dtype=np.float32) if texts else np.zeros((0, 1), np.float32)
        self._customers = np.array([r.customer_id for r in self.records], dtype=object)
        self._subclasses = np.array([r.subclass for r in self.records], dtype=object)
        self._dates = np.array([date_key(r.date) for r in self.records], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.records)

    def search(self, query: RetrievalQuery) -> list[RetrievedRecord]:
        if not self.records:
            return []
        mask = self._dates < date_key(query.before)
        if query.customer_id is not None:
            mask &= self._customers == query.customer_id
        if query.subclass is not None:
            mask &= self._subclasses == query.subclass
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return []
        q = np.asarray(self.embed([query.text]), dtype=np.float32)[0]
        scores = self._vectors[idx] @ q
        # Stable order: best score first, ties broken by position (i.e. insertion order).
        order = np.lexsort((idx, -scores))[: query.k]
        return [self.records[idx[i]].model_copy(update={"similarity": float(scores[i])}) for i in order]
