"""The second process that writes a memory's Chroma collection from its side index."""

from __future__ import annotations

from pathlib import Path

import pytest
from malles_graph.retrieval.fill import CollectionWriter
from malles_graph.retrieval.store import HnswParams

from malles_graph.retail.retrieval_api import RetrievalError


def test_a_failed_write_is_an_error_naming_the_memory_and_the_cause(tmp_path: Path):
    folder = tmp_path / "memory"  # no side index to write from
    folder.mkdir()
    writer = CollectionWriter(folder, "case_memory", HnswParams())
    with pytest.raises(
        RetrievalError, match=r"writing the Chroma collection of .*memory failed \(exit 1\): .*episodes\.parquet"
    ):
        writer.wait()
