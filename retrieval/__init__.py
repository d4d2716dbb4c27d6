"""Chroma transaction memory over the Ta Feng data (see docs/retrieval.md).

* :func:`make_client`: embedded ``PersistentClient`` (default: ``<runs>/memory``) or an
  ``HttpClient`` for a Chroma server;
* :class:`MiniLMEmbeddingFunction`: offline MiniLM-L6-v2 int8 ONNX, registered with Chroma;
* :func:`build_episodes` / :func:`ingest`: Ta Feng rows -> one document per
  (customer, day, subclass), batched and resumable;
* :class:`ChromaRetriever`: satisfies ``malles_graph.retail.retrieval_api.Retriever``.

Imports only the core (``malles_graph``). chromadb and onnxruntime load lazily where possible.
"""

from __future__ import annotations

from malles_graph.retrieval.client import default_path, make_client
from malles_graph.retrieval.episodes import build_episodes
from malles_graph.retrieval.ingest import IngestReport, ingest
from malles_graph.retrieval.store import DEFAULT_COLLECTION, ChromaRetriever, HnswParams, open_collection

from malles_graph.retail.retrieval_api import RetrievalError, UnknownCustomerError


def __getattr__(name: str):
    # The embedding module imports chromadb's embedding-function registry; load it on demand.
    if name in ("MiniLMEmbeddingFunction",):
        from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction

        return MiniLMEmbeddingFunction
    raise AttributeError(name)


__all__ = [
    "DEFAULT_COLLECTION",
    "ChromaRetriever",
    "HnswParams",
    "IngestReport",
    "MiniLMEmbeddingFunction",
    "RetrievalError",
    "UnknownCustomerError",
    "build_episodes",
    "default_path",
    "ingest",
    "make_client",
    "open_collection",
]
