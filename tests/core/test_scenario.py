import re
from pathlib import Path

import pytest

from malles_graph.errors import ScenarioError
from malles_graph.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parents[2]

BAD_FILES = {
    "not_yaml.yaml": ("name: x\n  bad: [unclosed", "not valid YAML at line"),
    "empty.yaml": ("", "the file is empty"),
    "list.yaml": ("- a\n- b\n", "expected a mapping"),
    "no_name.yaml": ("seed: 1\n", "name: Field required"),
    "unknown_field.yaml": ("name: x\ncolour: red\n", "colour: Extra inputs are not permitted"),
    "damping.yaml": (
        "name: x\nmean_field:\n  damping: 1.5\n",
        "mean_field.damping: Input should be less than or equal to 1",
    ),
    "damping_zero.yaml": ("name: x\nmean_field:\n  damping: 0\n", "mean_field.damping: Input should be greater than 0"),
    "backend.yaml": ("name: x\nbackend:\n  name: gpt5\n", "backend.name: Input should be 'local'"),
    "k_gt_n.yaml": ("name: x\npopulation:\n  n_customers: 5\n  archetypes: 10\n", "archetypes (10) must not exceed"),
    "seed_type.yaml": ("name: x\nseed: abc\n", "seed: Input should be a valid integer"),
    "rounds.yaml": ("name: x\ndecision:\n  debate_rounds: -1\n", "decision.debate_rounds: Input should be greater"),
    "roles.yaml": ("name: x\ndecision:\n  roles: [critic]\n", "decision.roles.0: Input should be"),
    "personas.yaml": ("name: x\npopulation:\n  source: personas\n", "personas_file is required"),
    "economist.yaml": ("name: x\nkind: economist\n", "needs an 'economist:' section"),
    "economist_ray.yaml": (
        "name: x\nkind: economist\neconomist:\n  steps: 2\nexecutor:\n  kind: ray\n",
        "executor.kind 'ray' runs a retail population's decisions",
    ),
    "prices.yaml": ("name: x\nprices:\n  m:\n    prompt_per_1m: -1\n    completion_per_1m: 1\n", "prices.m.prompt_per_1m"),
    "date.yaml": ("name: x\nenvironment:\n  start_date: yesterday\n", "environment.start_date"),
    # Values the schema once allowed and that crashed mid-run, or were silently accepted (issue 16).
    "seed_negative.yaml": ("name: x\nseed: -1\n", "seed: Input should be greater than or equal to 0"),
    "seed_huge.yaml": (f"name: x\nseed: {2**70}\n", "seed: Input should be less than or equal to 4294967295"),
    "candidates.yaml": (
        "name: x\nenvironment:\n  n_candidates: 50\n",
        "environment.n_candidates: Input should be less",
    ),
    "visit_rate.yaml": ("name: x\nenvironment:\n  visit_rate: 1.0e-300\n", "environment.visit_rate: Input should be"),
    "customers_float.yaml": (
        "name: x\npopulation:\n  n_customers: 1.0e+30\n",
        "population.n_customers: Input should be",
    ),
    "customers_huge.yaml": (
        "name: x\npopulation:\n  n_customers: 1000000000000\n",
        "population.n_customers: Input should",
    ),
    "date_early.yaml": ("name: x\nenvironment:\n  start_date: 1990-01-01\n", "outside the Ta Feng data"),
    "date_late.yaml": ("name: x\nenvironment:\n  start_date: 2030-01-01\n", "outside the Ta Feng data"),
    "date_first_day.yaml": ("name: x\nenvironment:\n  start_date: 2000-11-01\n", "2000-11-08 at the earliest"),
    "date_impossible.yaml": (
        "name: x\nenvironment:\n  start_date: 2001-13-45\n",
        "line 3, column 15: '2001-13-45' is not a valid date",
    ),
    "representatives.yaml": (
        "name: x\npopulation:\n  n_customers: 50\n  archetypes: 2\n  representatives: 1000\n",
        "(2 x 1000) must not exceed population.n_customers (50)",
    ),
    "epsilon_inf.yaml": (
        "name: x\nmean_field:\n  epsilon: .inf\n",
        "mean_field.epsilon: Input should be a finite number",
    ),
    "rounds_bool.yaml": (
        "name: x\nmean_field:\n  max_rounds: true\n",
        "mean_field.max_rounds: Input should be a valid integer",
    ),
    "duplicate.yaml": ("name: x\nseed: 1\nseed: 2\n", "line 3, column 1: duplicate key 'seed' (first at line 2)"),
    "deep.yaml": ("name: x\nseed: " + "[" * 20000 + "]" * 20000 + "\n", "nested deeper than 64 levels"),
    "binary.yaml": ("name: x\n\x00\x01\x02", "binary content"),
}


@pytest.mark.parametrize("filename", sorted(BAD_FILES))
def test_bad_scenario_names_file_and_field(tmp_path: Path, filename: str) -> None:
    text, expected = BAD_FILES[filename]
    path = tmp_path / filename
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario("no/such/file.yaml")


def test_overrides_apply_and_validate(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: x\n")
    scenario = load_scenario(path, {"seed": 9, "mean_field.damping": 0.3, "backend.name": None})
    assert scenario.seed == 9 and scenario.mean_field.damping == 0.3 and scenario.backend.name == "local"
    with pytest.raises(ScenarioError, match="mean_field.damping"):
        load_scenario(path, {"mean_field.damping": 2})


def test_defaults() -> None:
    scenario = Scenario(name="x")
    assert scenario.backend.name == "local" and scenario.backend.cache is True
    assert scenario.mean_field.damping == 0.5 and scenario.mean_field.max_rounds == 5
    assert scenario.decision.debate_rounds == 2
    assert scenario.decision.roles == ["product_specialist", "price_analyst", "persona"]


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_load(path: Path) -> None:
    assert load_scenario(path).name


def test_alias_bomb_is_refused_quickly_and_bounded(tmp_path: Path) -> None:
    """Billion laughs: 9 levels of 9 aliases; it once grew memory without limit in the error message."""
    lines = ['name: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScenarioError, match="aliases expand to more than 100,000 values") as info:
        load_scenario(path)
    assert str(path) in str(info.value) and len(str(info.value)) < 300


def test_folder_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="is a folder, not a scenario file"):
        load_scenario(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        load_scenario(latin)


def test_error_shows_a_long_value_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text("name: x\nseed: [" + ", ".join(["1"] * 5000) + "]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert "seed: Input should be a valid integer" in str(info.value) and len(str(info.value)) < 300


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("noequals", "--set 'noequals': expected key.path=value"),
        ("=3", "expected key.path=value"),
        ("a..b=3", "expected key.path=value"),
        ("seed=[1,2", "--set seed: '[1,2' is not a valid YAML value"),
    ],
)
def test_parse_sets_rejects_malformed_pairs(pair: str, expected: str) -> None:
    from malles_graph.scenario import parse_sets

    with pytest.raises(ScenarioError, match=re.escape(expected)):
        parse_sets([pair])


def test_set_through_a_value_is_an_error(tmp_path: Path) -> None:
    from malles_graph.scenario import parse_sets

    path = tmp_path / "s.yaml"
    path.write_text("name: x\n")
    with pytest.raises(ScenarioError, match=r"--set name.foo: name is a value \('x'\), not a section"):
        load_scenario(path, parse_sets(["name.foo=1"]))
    scenario = load_scenario(path, parse_sets(["decision.samples=3", "environment.start_date=2001-01-05"]))
    assert scenario.decision.samples == 3 and str(scenario.environment.start_date) == "2001-01-05"


def test_set_to_nothing_sets_null_and_an_option_not_given_changes_nothing(tmp_path: Path) -> None:
    from malles_graph.scenario import parse_sets

    path = tmp_path / "s.yaml"
    path.write_text("name: s\nmemory:\n  path: /somewhere\nbackend:\n  model: m.gguf\n", encoding="utf-8")
    scenario = load_scenario(path, {"seed": None} | parse_sets(["memory.path=", "backend.model=null"]))
    assert scenario.memory.path is None and scenario.backend.model is None and scenario.seed == 0
    with pytest.raises(ScenarioError, match="name: Input should be a valid string"):
        load_scenario(path, parse_sets(["name="]))
