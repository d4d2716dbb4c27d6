"""Fixtures for the TUI tests: a small Ta Feng home, tmp copies of prompts/ and personas/, a tiny scenario.

Nothing here touches the repository's prompts or personas: MALLES_PROMPTS and MALLES_PERSONAS
point at copies in tmp_path for every test.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from malles_graph.paths import REPO_ROOT
from tests.fakes import ScriptedChatModel
from tests.population.responders import decision_responder

SUBCLASS = "100205"  # the busiest subclass before 2001-02-01: all the tiny scenario needs

TINY_SCENARIO = """\
name: tiny
kind: retail
seed: 0
backend: {{name: local, max_concurrency: 2, cache: false, max_retries: 1}}
population: {{source: personas, personas_file: retail_households.yaml, archetypes: 3}}
environment: {{n_subclasses: 1, n_candidates: 3, start_date: 2001-02-01}}
mean_field: {{max_rounds: {rounds}, epsilon: 0.000001}}
decision: {{debate_rounds: 1, samples: 1, retrieval: false, hidden_factors: false}}
"""


@pytest.fixture(scope="session")
def small_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MALLES_HOME whose Ta Feng table holds one subclass (the runner then sets up in a second)."""
    import polars as pl

    from malles_graph.data import tafeng

    full = tafeng.fetch()
    home = tmp_path_factory.mktemp("home")
    (home / "data").mkdir()
    lines = pl.read_parquet(full).filter(pl.col("subclass") == SUBCLASS)
    lines = lines.filter(pl.col("date") <= dt.date(2001, 2, 1))
    lines.write_parquet(home / "data" / "tafeng.parquet")
    return home


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_home: Path) -> None:
    monkeypatch.setenv("MALLES_HOME", str(small_home))
    prompts, personas = tmp_path / "prompts", tmp_path / "personas"
    shutil.copytree(REPO_ROOT / "prompts", prompts)
    shutil.copytree(REPO_ROOT / "personas", personas)
    monkeypatch.setenv("MALLES_PROMPTS", str(prompts))
    monkeypatch.setenv("MALLES_PERSONAS", str(personas))


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return tmp_path / "prompts"


@pytest.fixture
def personas(tmp_path: Path) -> Path:
    return tmp_path / "personas"


@pytest.fixture
def scenario_file(tmp_path: Path) -> Callable[..., Path]:
    def make(rounds: int = 2, text: str | None = None, name: str = "tiny.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text if text is not None else TINY_SCENARIO.format(rounds=rounds), encoding="utf-8")
        return path

    return make


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


def scripted(delay_s: float = 0.0) -> Callable[[Any], ScriptedChatModel]:
    """A chat-model factory for the app: debate turns get a sentence, decisions the first product."""
    return lambda _scenario: ScriptedChatModel(responder=lambda m: decision_responder(m, delay_s))


def restless(delay_s: float) -> Callable[[Any], ScriptedChatModel]:
    """Like ``scripted`` but decisions rotate over the offered products, so the run does not converge."""
    counter = itertools.count()

    def respond(messages: list) -> str:
        text = decision_responder(messages, delay_s)
        if text.startswith("{"):
            answer = json.loads(text)
            offered = re.findall(r'"([A-Z])"', str(messages[0].content))
            if offered:
                answer["product"] = offered[next(counter) % len(offered)]
            return json.dumps(answer)
        return text

    return lambda _scenario: ScriptedChatModel(responder=respond)


class Recorder:
    """A message_hook collecting the app's messages by type."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def __call__(self, message: Any) -> None:
        self.messages.append(message)

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 60.0, step: float = 0.05) -> None:
    """Let the app run until ``condition()`` holds (fails the test after ``timeout`` seconds)."""
    import time

    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(step)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# The store tests' throwaway PostgreSQL server (fixtures imported here so tests/tui can use them).
from tests.store.conftest import postgres_url, postgresql_proc  # noqa: E402, F401
