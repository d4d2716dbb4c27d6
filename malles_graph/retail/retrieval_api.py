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
the future. Both raise :class:`UnknownCustomerError` (a :class:`RetrievalError`, itself a
``MallesError``) when ``customer_id`` names a customer the memory has never seen; a
known customer with nothing before the date gives an empty list.

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

from malles_graph.errors import MallesError


class RetrievalError(MallesError):
    """The memory is missing, corrupt, unreachable, built differently, or asked something it cannot answer."""


class UnknownCustomerError(RetrievalError):
    """A query names a customer id that the memory has never seen (at any date)."""

    def __init__(self, customer_id: str, where: str) -> None:
        super().__init__(f"unknown customer id {customer_id!r}: no episode of this customer in {where}")
        self.customer_id = customer_id


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


def price_phrase(price_ratio: float) -> str:
    """Paid-vs-regular price in words, in 5% steps (coarse on purpose: identical texts embed once)."""
    pct = int(round((1.0 - price_ratio) * 20)) * 5
    if pct > 0:
        return f"{pct}% below regular price"
    if pct < 0:
        return f"{-pct}% above regular price"
    return "at regular price"


def episode_text(age_group: str, pin_code: str, quantity: int, n_products: int, price_ratio: float) -> str:
    """The short text embedded for an episode: who, how many, at what price vs regular.

    Ids of customers, products and subclasses are left out on purpose: they are opaque
    codes that carry no meaning for a sentence embedder (subclass 100205 is not "close" to
    100201), they are matched exactly through metadata filters instead, and leaving them
    out makes most texts identical, which the ingest embeds only once (700k episodes,
    ~10k distinct texts). See docs/retrieval.md.
    """
    products = "1 product" if n_products == 1 else f"{n_products} products"
    units = "1 unit" if quantity == 1 else f"{quantity} units"
    return f"age {age_group}, area {pin_code}: bought {units} of {products}, {price_phrase(price_ratio)}"


def query_text(age_group: str, pin_code: str, quantity: int | None = None, price_ratio: float = 1.0) -> str:
    """A query in the words of :func:`episode_text` for a customer facing an offer.

    ``quantity`` is the amount the situation suggests (e.g. the usual quantity); leave it
    out to match on who and price only.
    """
    units = "" if quantity is None else (" 1 unit" if quantity == 1 else f" {quantity} units")
    return f"age {age_group}, area {pin_code}: bought{units}, {price_phrase(price_ratio)}"


def make_record(
    customer_id: str,
    day: dt.date,
    subclass: str,
    product_ids: Sequence[str],
    quantity: int,
    unit_price: float,
    price_ratio: float,
    age_group: str = "Unknown",
    pin_code: str = "Unknown",
) -> RetrievedRecord:
    """An episode record with its id and text filled in (for InMemoryRetriever and tests)."""
    products = list(dict.fromkeys(product_ids))
    return RetrievedRecord(
        id=episode_id(customer_id, day, subclass),
        text=episode_text(age_group, pin_code, quantity, len(products), price_ratio),
        customer_id=customer_id,
        subclass=subclass,
        date=day,
        product_ids=products,
        quantity=quantity,
        unit_price=unit_price,
        price_ratio=price_ratio,
        age_group=age_group,
        pin_code=pin_code,
    )


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
        self._known_customers = set(self._customers.tolist())

    def __len__(self) -> int:
        return len(self.records)

    def search(self, query: RetrievalQuery) -> list[RetrievedRecord]:
        """Best ``query.k`` records passing the filters; UnknownCustomerError for a customer never seen."""
        if query.customer_id is not None and query.customer_id not in self._known_customers:
            raise UnknownCustomerError(query.customer_id, f"the in-memory retriever ({len(self.records)} records)")
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
