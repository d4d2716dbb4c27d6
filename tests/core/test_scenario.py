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
    "damping.yaml": ("name: x\nmean_field:\n  damping: 1.5\n", "mean_field.damping: Input should be less than or equal to 1"),
    "damping_zero.yaml": ("name: x\nmean_field:\n  damping: 0\n", "mean_field.damping: Input should be greater than 0"),
    "backend.yaml": ("name: x\nbackend:\n  name: gpt5\n", "backend.name: Input should be 'local'"),
    "k_gt_n.yaml": ("name: x\npopulation:\n  n_customers: 5\n  archetypes: 10\n", "archetypes (10) must not exceed"),
    "seed_type.yaml": ("name: x\nseed: abc\n", "seed: Input should be a valid integer"),
    "rounds.yaml": ("name: x\ndecision:\n  debate_rounds: -1\n", "decision.debate_rounds: Input should be greater"),
    "roles.yaml": ("name: x\ndecision:\n  roles: [critic]\n", "decision.roles.0: Input should be"),
    "personas.yaml": ("name: x\npopulation:\n  source: personas\n", "personas_file is required"),
    "economist.yaml": ("name: x\nkind: economist\n", "needs an 'economist:' section"),
    "date.yaml": ("name: x\nenvironment:\n  start_date: yesterday\n", "environment.start_date"),
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
