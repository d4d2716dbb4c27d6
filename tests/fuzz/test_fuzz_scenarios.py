"""Fuzz: scenario files and --set overrides end in a valid Scenario or one clean ScenarioError (issue 16)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from malles_graph.errors import ScenarioError
from malles_graph.scenario import EARLIEST_START, MAX_SEED, TAFENG_LAST_DAY, Scenario, load_scenario, parse_sets
from tests.fuzz.oracle import assert_clean_error
from tests.fuzz.strategies import paths, scenario_texts, scratch_folder, values

pytestmark = pytest.mark.fuzz
FOLDER = scratch_folder()


def check_valid(scenario: Scenario) -> None:
    """An accepted scenario is one the run can use: what the validators promise, and it survives the store."""
    assert 0 <= scenario.seed <= MAX_SEED
    day = scenario.environment.start_date
    assert day is None or EARLIEST_START <= day <= TAFENG_LAST_DAY
    n = scenario.population.n_customers
    assert n is None or scenario.population.archetypes * scenario.population.representatives <= n
    assert Scenario.model_validate_json(scenario.model_dump_json()) == scenario  # how a resume reads it back


def load_or_clean_error(path: Path, overrides: dict[str, object] | None = None, sources: tuple[str, ...] = ()) -> None:
    try:
        scenario = load_scenario(path, overrides)
    except ScenarioError as exc:
        assert_clean_error(exc, str(path)) if not sources else _clean_any(exc, (str(path), *sources))
        return
    check_valid(scenario)


def _clean_any(exc: BaseException, sources: tuple[str, ...]) -> None:
    first = str(exc).splitlines()[0] if str(exc) else ""
    assert_clean_error(exc, next((s for s in sources if first.startswith(s)), sources[0]))


@given(content=st.one_of(scenario_texts.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=200)))
def test_scenario_files(content: bytes) -> None:
    path = FOLDER / "scenario.yaml"
    path.write_bytes(content)
    load_or_clean_error(path)


@given(
    pairs=st.lists(
        st.one_of(
            st.tuples(paths, st.text(max_size=20)).map(lambda kv: f"{kv[0]}={kv[1]}"),
            st.tuples(paths, values).map(lambda kv: f"{kv[0]}={kv[1]!s}"),
            st.text(max_size=20),
        ),
        max_size=4,
    )
)
def test_set_overrides(pairs: list[str]) -> None:
    path = FOLDER / "base.yaml"
    if not path.exists():
        path.write_text(
            "name: base\nbackend: {name: choice-model}\npopulation: {n_customers: 100, archetypes: 4}\n"
            f"environment: {{start_date: {dt.date(2001, 2, 1)}}}\n"
        )
    try:
        overrides = parse_sets(pairs)
    except ScenarioError as exc:
        assert_clean_error(exc, "--set")
        return
    load_or_clean_error(path, overrides, sources=("--set",))
