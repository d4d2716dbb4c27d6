"""The Chroma transaction memory: collection settings, opening, search and exact search.

:class:`ChromaRetriever` satisfies ``malles_graph.retail.retrieval_api.Retriever``: the decision
graph receives it (or the in-memory one) and calls ``search``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from malles_graph.retrieval.client import make_client
from malles_graph.retrieval.episodes import unpack
from malles_graph.retrieval.side_index import SideIndex, index_dir, load_side_index
from pydantic import BaseModel, ConfigDict, Field

from malles_graph.retail.retrieval_api import (
    RetrievalError,
    RetrievalQuery,
    RetrievedRecord,
    UnknownCustomerError,
    date_key,
    episode_text,
    key_date,
)

DEFAULT_COLLECTION = "tafeng_transactions"


class HnswParams(BaseModel):
    """HNSW index settings of a collection (Chroma's collection configuration ``hnsw``).

    ``max_neighbors`` (M) and ``ef_construction`` are fixed when the collection is created;
    ``ef_search`` can be changed later (``ChromaRetriever.open(..., ef_search=N)``).
    The defaults were chosen from measured recall@10 on the full data (docs/retrieval.md).
    """

    model_config = ConfigDict(extra="forbid")

    space: str = Field(default="cosine", description="distance: cosine (embeddings are unit length)")
    max_neighbors: int = Field(default=16, ge=4, le=128, description="M: graph degree")
    ef_construction: int = Field(default=100, ge=8, le=2000, description="candidate list size while inserting")
    ef_search: int = Field(default=200, ge=8, le=5000, description="candidate list size while searching")

    def configuration(self) -> dict[str, Any]:
        return {"hnsw": self.model_dump()}


def default_embedding_function():
    from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction

    return MiniLMEmbeddingFunction()


def open_collection(
    client: Any,
    name: str = DEFAULT_COLLECTION,
    where: str = "",
    create: bool = False,
    hnsw: HnswParams | None = None,
    embedding_function: Any = None,
):
    """Get (or with ``create``, get or create) a collection, checking its embedding function.

    A collection built with another embedding function is refused with a RetrievalError
    naming both functions, rather than mixing incompatible vectors.
    """
    from chromadb.errors import NotFoundError

    ef = embedding_function or default_embedding_function()
    try:
        collection = client.get_collection(name)
    except NotFoundError:
        if not create:
            names = [c.name for c in client.list_collections()]
            raise RetrievalError(
                f"no collection {name!r} in Chroma memory {where} (collections there: {names or 'none'}); "
                "run `malles memory build` or pick another --collection"
            ) from None
        try:
            return client.create_collection(
                name, configuration=(hnsw or HnswParams()).configuration(), embedding_function=ef
            )
        except ValueError as exc:
            raise RetrievalError(f"collection {name!r} in {where} could not be created: {exc}") from exc
    except Exception as exc:
        raise RetrievalError(f"collection {name!r} in Chroma memory {where} could not be read ({exc})") from exc
    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    if stored.get("name") != ef.name():
        raise RetrievalError(
            f"collection {name!r} in {where} was built with embedding function {stored.get('name')!r}, "
            f"not {ef.name()!r}; its vectors are not comparable. Use another --collection or rebuild it"
        )
    return client.get_collection(name, embedding_function=ef)


class ChromaRetriever:
    """Similarity search over the Chroma memory with metadata filters (Retriever protocol)."""

    def __init__(
        self, collection: Any, embedding_function: Any = None, where: str = "", side_index: SideIndex | None = None
    ) -> None:
        self.collection = collection
        self.side_index = side_index
        self.embedding_function = embedding_function or default_embedding_function()
        self.where = where or collection.name
        self._embed_one = lru_cache(maxsize=4096)(self._embed_uncached)
        self.overfetch = 3

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        url: str | None = None,
        collection: str = DEFAULT_COLLECTION,
        embedding_function: Any = None,
        ef_search: int | None = None,
        index_path: str | Path | None = None,
        use_index: bool = True,
    ) -> ChromaRetriever:
        """Open an existing memory for reading (errors name the path/URL and collection).

        The side index (``<path>/malles-index/<collection>/``, or ``index_path``, e.g. a local copy
        for a Chroma server) serves searches when present and up to date (same episode count as
        the collection); otherwise, or with ``use_index=False``, searches go to Chroma.
        """
        client, where = make_client(path, url, create=False)
        ef = embedding_function or default_embedding_function()
        col = open_collection(client, collection, where, create=False, embedding_function=ef)
        if ef_search is not None:
            col.modify(configuration={"hnsw": {"ef_search": ef_search}})
        side = None
        if use_index:
            folder = Path(index_path) if index_path else (index_dir(where, collection) if not url else None)
            side = load_side_index(folder, expected_count=col.count()) if folder is not None else None
        return cls(col, ef, where=f"collection {collection!r} at {where}", side_index=side)

    @classmethod
    def on_side_index(cls, index_folder: Path, where: str, embedding_function: Any) -> ChromaRetriever:
        """Searches in a side index alone while another process writes its collection
        (``fill.CollectionWriter``): until then there is no collection to count or read."""
        side = load_side_index(index_folder)
        if side is None:
            raise RetrievalError(f"no side index in {index_folder}")
        return cls(None, embedding_function, where=where, side_index=side)

    @classmethod
    def from_config(cls, memory: Any, run_dir: Path | None = None) -> ChromaRetriever:
        """From a scenario's ``memory:`` section (MemoryConfig: path, url, collection)."""
        from malles_graph.retrieval.client import default_path

        path = None if memory.url else (memory.path or default_path(run_dir))
        return cls.open(path=path, url=memory.url, collection=memory.collection)

    def count(self) -> int:
        return self.collection.count()

    def _embed_uncached(self, text: str) -> tuple[float, ...]:
        return tuple(float(x) for x in np.asarray(self.embedding_function([text]), dtype=np.float32)[0])

    def search(self, query: RetrievalQuery) -> list[RetrievedRecord]:
        """Top ``query.k`` episodes strictly before ``query.before``, filtered, best first.

        Two paths, chosen from what was measured on the full memory (docs/retrieval.md):

        * customer or subclass given (selective): Chroma's filtered HNSW search walks most
          of the 700k-node graph to find a few allowed nodes (~0.5 s), so the candidates are
          fetched by metadata filter (an indexed SQLite lookup, date included) and scored
          exactly with numpy: exact results;
        * neither: an HNSW query without a filter (about a millisecond), over-fetched, with
          the date applied here; if too few candidates survive (early decision dates) the
          over-fetch grows, and as a last resort the date goes into Chroma's filter.

        Every returned record is checked against the date again: nothing from the decision
        day or later can slip in.
        """
        vector = np.asarray(self._embed_one(query.text), dtype=np.float32)
        cutoff = date_key(query.before)
        if self.side_index is not None:
            return self._search_index(vector, cutoff, query)
        if query.customer_id is not None or query.subclass is not None:
            hits = self._exact(vector, query)
        else:
            hits = []
            for fetch in (max(query.k * self.overfetch, 30), max(query.k * 30, 300), 3000):
                ids, metas, dists = self._query(vector.tolist(), fetch, None)
                hits = [(i, m, d) for i, m, d in zip(ids, metas, dists, strict=True) if m["date"] < cutoff]
                if len(hits) >= query.k or len(ids) < fetch:
                    break
            else:
                ids, metas, dists = self._query(vector.tolist(), query.k, build_where(query))
                hits = list(zip(ids, metas, dists, strict=True))
            hits = [h for h in hits if h[1]["date"] < cutoff]
        if not hits and query.customer_id is not None and not self.knows_customer(query.customer_id):
            raise UnknownCustomerError(query.customer_id, self.where)
        return [to_record(i, m, 1.0 - float(d)) for i, m, d in hits[: query.k]]

    def _search_index(self, vector: np.ndarray, cutoff: int, query: RetrievalQuery) -> list[RetrievedRecord]:
        """Exact search in the side index (filters by dict lookup + date bisection, numpy cosine)."""
        side = self.side_index
        assert side is not None
        if query.customer_id is not None and not side.knows_customer(query.customer_id):
            raise UnknownCustomerError(query.customer_id, self.where)
        if query.customer_id is not None or query.subclass is not None:
            hits = side.filtered(vector, cutoff, query.k, query.customer_id, query.subclass)
        else:
            hits = side.unfiltered(vector, cutoff, query.k)
        out = []
        for row, sim in hits:
            record_id, meta = side.record_fields(row)
            if meta["date"] >= cutoff:  # belt and braces: never the decision day or later
                raise RetrievalError(f"side index {side.folder} returned {record_id} on/after {query.before}")
            out.append(to_record(record_id, meta, sim))
        return out

    def _exact(self, vector: np.ndarray, query: RetrievalQuery) -> list[tuple[str, dict, float]]:
        """Exact cosine over every episode passing the full filter (fetched by metadata)."""
        try:
            got = self.collection.get(where=build_where(query), include=["embeddings", "metadatas"])
        except Exception as exc:
            raise RetrievalError(f"query on {self.where} failed ({type(exc).__name__}: {exc})") from exc
        if not got["ids"]:
            return []
        sims = np.asarray(got["embeddings"], dtype=np.float32) @ vector
        order = np.lexsort((np.arange(sims.size), -sims))[: query.k]
        return [(got["ids"][j], got["metadatas"][j], 1.0 - float(sims[j])) for j in order]

    def _query(self, vector: list[float], n: int, where: dict[str, Any] | None) -> tuple[list, list, list]:
        try:
            found = self.collection.query(
                query_embeddings=[vector], n_results=n, where=where, include=["metadatas", "distances"]
            )
        except Exception as exc:
            raise RetrievalError(f"query on {self.where} failed ({type(exc).__name__}: {exc})") from exc
        return found["ids"][0], found["metadatas"][0], found["distances"][0]

    def knows_customer(self, customer_id: str) -> bool:
        return bool(self.collection.get(where={"customer_id": customer_id}, limit=1, include=[])["ids"])


def build_where(query: RetrievalQuery) -> dict[str, Any]:
    """Chroma ``where`` for the query's filters; the date is always strictly before ``before``."""
    clauses: list[dict[str, Any]] = [{"date": {"$lt": date_key(query.before)}}]
    if query.customer_id is not None:
        clauses.append({"customer_id": {"$eq": query.customer_id}})
    if query.subclass is not None:
        clauses.append({"subclass": {"$eq": query.subclass}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def to_record(record_id: str, meta: dict[str, Any], similarity: float) -> RetrievedRecord:
    """A Chroma hit as a typed record; the text is rebuilt from the metadata (see docs)."""
    meta = unpack(meta)
    products = [p for p in meta["product_ids"].split(",") if p]
    return RetrievedRecord(
        id=record_id,
        text=episode_text(
            meta["age_group"], meta["pin_code"], meta["quantity"], len(products), meta["price_ratio"]
        ),
        customer_id=meta["customer_id"],
        subclass=meta["subclass"],
        date=key_date(int(meta["date"])),
        product_ids=products,
        quantity=meta["quantity"],
        unit_price=meta["unit_price"],
        price_ratio=meta["price_ratio"],
        age_group=meta["age_group"],
        pin_code=meta["pin_code"],
        similarity=similarity,
    )


def iter_embeddings(collection: Any, page: int = 20000) -> Iterator[tuple[list[str], np.ndarray, list[dict]]]:
    """All stored (ids, embeddings, every field of each episode), page by page (for exact search and checks)."""
    offset = 0
    while True:
        got = collection.get(limit=page, offset=offset, include=["embeddings", "metadatas"])
        if not got["ids"]:
            return
        yield got["ids"], np.asarray(got["embeddings"], dtype=np.float32), [unpack(m) for m in got["metadatas"]]
        offset += len(got["ids"])
