"""The offline MiniLM embedding function and its registration with Chroma."""

from __future__ import annotations

import numpy as np
import pytest

from malles_graph.retail.retrieval_api import RetrievalError, episode_text


def test_shape_and_unit_length(ef):
    texts = [episode_text("30-34", "115", q, 1, 0.9) for q in range(1, 6)] + ["x"]
    vectors = ef.embed(texts)
    assert vectors.shape == (6, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert ef.embed([]).shape == (0, 384)
    # Chroma's call interface gives the same vectors, and order is kept despite length sorting
    np.testing.assert_allclose(np.asarray(ef(texts)), vectors, atol=1e-6)
    np.testing.assert_allclose(ef.embed(texts[::-1])[::-1], vectors, atol=1e-5)


def test_similar_texts_are_closer(ef):
    a, b, c = ef.embed([
        episode_text("30-34", "115", 2, 1, 0.8),
        episode_text("30-34", "115", 2, 1, 0.75),
        episode_text(">64", "E", 24, 6, 1.2),
    ])
    assert a @ b > a @ c + 0.05
    cat, kitten, market = ef.embed(["a cat sits on the mat", "a kitten sits on a rug", "stock market crash"])
    assert cat @ kitten > cat @ market + 0.3


def test_registered_so_a_persisted_config_rebuilds_it(ef):
    from chromadb.utils.embedding_functions import config_to_embedding_function, known_embedding_functions
    from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction

    assert known_embedding_functions[ef.name()] is MiniLMEmbeddingFunction
    rebuilt = config_to_embedding_function({"name": ef.name(), "type": "known", "config": ef.get_config()})
    assert isinstance(rebuilt, MiniLMEmbeddingFunction)
    np.testing.assert_allclose(rebuilt.embed(["age 30-34"]), ef.embed(["age 30-34"]), atol=1e-6)
    assert not ef.is_legacy() and ef.default_space() == "cosine"


def test_missing_model_file_is_a_clear_error(tmp_path):
    from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction

    missing = tmp_path / "model.onnx"
    with pytest.raises(RetrievalError, match=str(missing)):
        MiniLMEmbeddingFunction(model_path=str(missing), tokenizer_path=str(missing))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    from malles_graph.data.assets import minilm_paths

    with pytest.raises(RetrievalError, match="could not be loaded"):
        MiniLMEmbeddingFunction(model_path=str(broken), tokenizer_path=str(minilm_paths()[1]))
