"""Files written whole (``paths.written_whole``): a reader never sees half a file, and two writers of the
same file at once each replace it whole. Two first runs on a fresh MALLES_HOME both extracted the MiniLM
model to one shared ``model.onnx.part``; the second's rename found it gone (a FileNotFoundError traceback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from malles_graph.paths import written_whole


def test_two_writers_of_one_file_at_once_each_replace_it_whole(tmp_path: Path):
    target = tmp_path / "models" / "model.onnx"  # its folder is made
    with written_whole(target) as first:
        first.write_bytes(b"first")
        with written_whole(target) as second:  # a second process, interleaved
            assert second != first
            second.write_bytes(b"second")
        assert target.read_bytes() == b"second"
    assert target.read_bytes() == b"first"  # the last to finish wins, whole
    assert [p.name for p in target.parent.iterdir()] == ["model.onnx"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path):
    target = tmp_path / "vectors.npy"
    np.save(target, np.zeros(3))
    with pytest.raises(RuntimeError), written_whole(target) as tmp:
        np.save(tmp, np.ones(3))  # the temporary name keeps the suffix: np.save adds none
        assert tmp.exists() and tmp.suffix == ".npy"
        raise RuntimeError("interrupted")
    assert np.load(target).tolist() == [0.0, 0.0, 0.0]
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.npy"]
