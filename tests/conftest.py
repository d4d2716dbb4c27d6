"""Shared fixtures: the real bundled llama.cpp backend, a clean runs folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from malles_graph.scenario import BackendConfig

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run outputs (databases, memories, reports) of every test go to its own tmp folder."""
    monkeypatch.setenv("MALLES_RUNS", str(tmp_path / "runs"))


@pytest.fixture(scope="session")
def local_backend() -> BackendConfig:
    """The `local` backend on the bundled SmolLM2 GGUF, cache off, short answers."""
    from malles_graph.data.assets import bundled_model_path

    bundled_model_path()  # fetched once by `malles data fetch model`; fetched here otherwise
    return BackendConfig(name="local", max_tokens=64, cache=False, temperature=0.2, max_concurrency=1)


@pytest.fixture(scope="session")
def tafeng_path() -> Path:
    from malles_graph.data import tafeng

    return tafeng.fetch()


def pytest_report_header(config: pytest.Config) -> str:
    return f"MALLES_HOME={os.environ.get('MALLES_HOME', '~/.cache/malles-graph')}"
