"""An offline sentence embedder for Chroma: MiniLM-L6-v2 (int8 ONNX) via onnxruntime.

Chroma's default embedding function downloads its model on first use, which fails on
a machine without internet. This one reads the model and tokenizer that
``malles data fetch embedder`` placed under MALLES_HOME (``assets.minilm_paths()``),
so nothing is downloaded at run time.

It is registered with Chroma under the name ``malles-minilm-int8``: a collection
created with it records that name and its config, and reopening the collection
rebuilds the same function through :meth:`MiniLMEmbeddingFunction.build_from_config`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from malles_graph.retail.retrieval_api import RetrievalError

NAME = "malles-minilm-int8"
DIM = 384


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2: mean-pooled last hidden state, L2-normalised, 384 dimensions.

    ``model_path``/``tokenizer_path`` default to the fetched assets. Texts are embedded in
    batches of ``batch_size`` and truncated to ``max_length`` tokens (documents here are
    ~30 tokens, so padding per batch keeps the work small).
    """

    def __init__(
        self,
        model_path: str | None = None,
        tokenizer_path: str | None = None,
        batch_size: int = 256,
        max_length: int = 128,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if model_path is None or tokenizer_path is None:
            from malles_graph.data.assets import minilm_paths

            default_model, default_tokenizer = minilm_paths()
            model_path = model_path or str(default_model)
            tokenizer_path = tokenizer_path or str(default_tokenizer)
        for label, path in (("model", model_path), ("tokenizer", tokenizer_path)):
            if not Path(path).is_file():
                raise RetrievalError(f"embedding {label} file {path} not found; run `malles data fetch embedder`")
        self.model_path, self.tokenizer_path = str(model_path), str(tokenizer_path)
        self.batch_size, self.max_length, self.threads = batch_size, max_length, threads
        try:
            self._tokenizer = Tokenizer.from_file(self.tokenizer_path)
        except Exception as exc:
            raise RetrievalError(f"tokenizer {self.tokenizer_path} could not be read ({exc})") from exc
        self._tokenizer.enable_truncation(max_length=max_length)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        # Every usable CPU (up to 4) without spin-waiting: on this 2-core machine two threads
        # embedded 1.85x as fast as one when idle and 1.4-1.7x with two busy processes beside
        # them, with bitwise the same vectors; spinning threads burn the core other work needs.
        options.intra_op_num_threads = threads or min(4, len(os.sched_getaffinity(0)))
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(self.model_path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RetrievalError(f"embedding model {self.model_path} could not be loaded ({exc})") from exc
        self._wants_types = any(i.name == "token_type_ids" for i in self._session.get_inputs())

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed(list(input)))

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts to a (n, 384) float32 array of unit-length rows."""
        out = np.empty((len(texts), DIM), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._wants_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    # --- Chroma's embedding-function protocol: lets a persisted collection reopen ---

    @staticmethod
    def name() -> str:
        return NAME

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        # Paths are not stored: another machine keeps the assets under its own MALLES_HOME.
        return {"batch_size": self.batch_size, "max_length": self.max_length, "dim": DIM}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        from malles_graph.data.assets import minilm_paths

        model, tokenizer = minilm_paths()
        return _shared(str(model), str(tokenizer), int(config.get("batch_size", 256)), int(config.get("max_length", 128)))

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        if new_config.get("dim", DIM) != old_config.get("dim", DIM):
            raise ValueError("the embedding dimension of a collection cannot change")

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        return


@lru_cache(maxsize=4)
def _shared(model_path: str, tokenizer_path: str, batch_size: int, max_length: int) -> MiniLMEmbeddingFunction:
    """One function per configuration: Chroma rebuilds a collection's embedding function from its
    config on every add and get (an ONNX session of 0.15 s each, 31 times in a 30k-line ingest)."""
    return MiniLMEmbeddingFunction(model_path, tokenizer_path, batch_size=batch_size, max_length=max_length)
