"""Regression corpus: every input that once crashed, hung or was silently accepted (tests/fuzz/corpus/) is now
rejected with one clean error naming the file, through the same path a user's input takes (issue 16).

Add a file here whenever a fuzz run or a user finds a new failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from malles_graph.graphs.decision.answer import DecisionAnswer, answer_problems

from malles_graph.backends.client import parse_structured
from malles_graph.errors import MallesError
from malles_graph.evaluation.cases import ChoiceCase, read_cases, read_predictions
from malles_graph.prompts import PromptSpec, check_prompts, parse_prompt, read_prompt_text
from malles_graph.scenario import load_scenario, parse_sets
from tests.evaluation.test_cases import case_dict
from tests.fuzz.oracle import assert_clean_error

pytestmark = pytest.mark.fuzz
CORPUS = Path(__file__).parent / "corpus"


def corpus(folder: str) -> list[Path]:
    return sorted((CORPUS / folder).iterdir())


@pytest.mark.parametrize("path", corpus("scenarios"), ids=lambda p: p.name)
def test_scenarios(path: Path) -> None:
    with pytest.raises(MallesError) as info:
        load_scenario(path)
    assert_clean_error(info.value, str(path))


SETS = [line for line in (CORPUS / "sets" / "overrides.txt").read_text().splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("pair", SETS)
def test_set_overrides(pair: str, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: x\n")
    with pytest.raises(MallesError) as info:
        load_scenario(path, parse_sets([pair]))
    first = str(info.value).splitlines()[0]
    assert_clean_error(info.value, "--set" if first.startswith("--set") else str(path))


@pytest.mark.parametrize("path", corpus("cases"), ids=lambda p: p.name)
def test_case_files(path: Path) -> None:
    with pytest.raises(MallesError) as info:
        read_cases(path)
    assert_clean_error(info.value, str(path))


@pytest.mark.parametrize("path", corpus("predictions"), ids=lambda p: p.name)
def test_prediction_files(path: Path) -> None:
    cases = {c: ChoiceCase.model_validate(case_dict(c)) for c in ("c0", "c1")}
    with pytest.raises(MallesError) as info:
        read_predictions(path, cases)
    assert_clean_error(info.value, str(path))


@pytest.mark.parametrize("path", corpus("prompts"), ids=lambda p: p.name)
def test_prompt_files(path: Path, tmp_path: Path) -> None:
    with pytest.raises(MallesError) as info:
        parse_prompt("persona", read_prompt_text(path), path, PromptSpec.of("customer"))
    assert_clean_error(info.value, str(path))


def test_prompt_folder_entry_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "persona.txt").mkdir()
    assert check_prompts(tmp_path)["persona"] == f"{tmp_path / 'persona.txt'}: is a folder, not a prompt file"


@pytest.mark.parametrize("path", corpus("answers"), ids=lambda p: p.name)
def test_llm_answers(path: Path) -> None:
    situation = ChoiceCase.model_validate(case_dict("c1")).situation()
    value, reason = parse_structured(path.read_text(), DecisionAnswer, lambda a: answer_problems(a, situation, 20))
    assert value is None and reason
