"""Bad input: missing or corrupt folders, another embedding function, unknown collections."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from malles_graph.retrieval import ChromaRetriever, RetrievalError, ingest, make_client, open_collection

from malles_graph.errors import MallesError


@register_embedding_function
class OtherEmbedding(EmbeddingFunction[Documents]):
    """A different (toy) embedding function, as someone else's collection would use."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return [np.ones(8, dtype=np.float32) / np.sqrt(8) for _ in input]

    @staticmethod
    def name() -> str:
        return "malles-test-other"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> OtherEmbedding:
        return OtherEmbedding()


def test_missing_folder_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(RetrievalError, match=f"no Chroma memory at {missing}.*malles memory build"):
        ChromaRetriever.open(path=missing)
    assert not missing.exists()  # reading never creates an empty memory


def test_file_instead_of_folder(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(RetrievalError, match="is a file"):
        make_client(path)


def test_corrupt_folder_names_the_path_and_changes_nothing(tmp_path):
    folder = tmp_path / "corrupt"
    folder.mkdir()
    garbage = b"this is not a sqlite database" * 100
    (folder / "chroma.sqlite3").write_bytes(garbage)
    code = (
        "from retrieval import ChromaRetriever\n"
        f"ChromaRetriever.open(path={str(folder)!r})\n"
    )
    # a fresh process: Chroma caches clients per path inside one process
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "RetrievalError" in done.stderr and str(folder) in done.stderr and "corrupt" in done.stderr
    assert (folder / "chroma.sqlite3").read_bytes() == garbage


def test_collection_built_with_another_embedding_function(tmp_path, episodes, ef):
    client, where = make_client(tmp_path / "mem")
    other = client.create_collection("foreign", embedding_function=OtherEmbedding())
    other.add(ids=["a"], documents=["hello"])
    mine = open_collection(client, "mine", where, create=True, embedding_function=ef)
    ingest(mine, episodes.head(20), ef.embed)
    with pytest.raises(RetrievalError, match="'foreign'.*'malles-test-other', not 'malles-minilm-int8'") as info:
        ChromaRetriever.open(path=tmp_path / "mem", collection="foreign")
    assert isinstance(info.value, MallesError)
    with pytest.raises(RetrievalError, match="'foreign'"):  # nor can a build write into it
        open_collection(client, "foreign", where, create=True, embedding_function=ef)
    assert other.count() == 1 and mine.count() == 20  # nothing lost


def test_unknown_collection_lists_what_is_there(tmp_path, episodes, ef):
    client, where = make_client(tmp_path / "mem")
    ingest(open_collection(client, "present", where, create=True, embedding_function=ef), episodes.head(5), ef.embed)
    with pytest.raises(RetrievalError, match=r"no collection 'absent'.*\['present'\]"):
        ChromaRetriever.open(path=tmp_path / "mem", collection="absent")


def test_bad_server_url():
    with pytest.raises(RetrievalError, match="not of the form"):
        make_client(url="ftp://host")
    with pytest.raises(RetrievalError, match="http://127.0.0.1:9 does not answer"):
        make_client(url="http://127.0.0.1:9")
    with pytest.raises(RetrievalError, match="not both"):
        make_client(path="x", url="http://127.0.0.1:9")
