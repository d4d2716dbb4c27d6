"""Persona files as experiment variants: a real difference in a persona's description is detected,
identical persona files show none, the persona set is recorded with the predictions, the manifest,
the report and each decision, and a bad persona file is refused before any LLM call."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from malles_graph.cli import app
from malles_graph.cli.errors import run_app
from malles_graph.cli.eval import eval_scenario
from malles_graph.cli.prompt_experiment import _prepare, graph_decide
from malles_graph.evaluation.cases import read_cases
from malles_graph.experiments.report import markdown
from malles_graph.experiments.store import read_manifest
from malles_graph.experiments.variants import ExperimentError, persona_for, split_spec
from malles_graph.models import Customer, Persona
from malles_graph.prompt_sets import load_persona_set
from malles_graph.retail.personas import PersonaError
from tests.experiments.scripted import WORD, persona_file, prompt_folder, scripted_client, write_cases
from tests.experiments.test_experiment import SETS, run


def test_a_word_in_a_persona_description_is_detected(tmp_path: Path) -> None:
    plain, thrifty = persona_file(tmp_path / "plain.yaml"), persona_file(tmp_path / "thrifty.yaml", WORD)
    result, out, _ = run(tmp_path, [plain, thrifty])
    by_name = {r.name: r for r in result.rows}
    assert by_name["plain"].hit1 == pytest.approx(6 / 24)  # the persona prefers A, the decision follows
    assert by_name["thrifty"].hit1 == pytest.approx(18 / 24)  # the thrifty persona prefers the cheapest C
    diff = result.differences[0]
    assert diff.hit1 == pytest.approx(0.5) and diff.hit1_low > 0 and (diff.wins, diff.losses) == (18, 6)
    assert diff.sign_p < 0.05
    # the persona role is the one that changed its mind: it agrees with thrifty's decisions now
    assert (result.roles["thrifty"]["persona"].stated, result.roles["thrifty"]["persona"].agreed) == (24, 24)
    # same prompts, different persona sets: recorded in the manifest, each prediction and the report
    manifest = read_manifest(out)
    records = {v.name: v for v in manifest.variants}
    assert records["plain"].digest == records["thrifty"].digest
    assert records["plain"].personas.digest == load_persona_set(plain).digest != records["thrifty"].personas.digest
    assert records["thrifty"].personas.file == str(thrifty) and "personas" in records["thrifty"].personas.files
    line = json.loads((out / "thrifty" / "repeat-0.jsonl").read_text().splitlines()[0])
    assert line["meta"]["persona_set"] == records["thrifty"].personas.digest
    assert line["meta"]["persona"] == "regular"  # the persona matching the customer, not the file's first
    assert by_name["thrifty"].persona_digest == records["thrifty"].personas.digest[:12]
    assert f"persona set {records['thrifty'].personas.digest[:12]}" in markdown(result, None)


def test_identical_persona_files_show_no_difference(tmp_path: Path) -> None:
    a = persona_file(tmp_path / "a" / "households.yaml", WORD)
    b = tmp_path / "b" / "copy.yaml"  # another folder and name: the same set
    b.parent.mkdir()
    shutil.copy(a, b)
    result, _, _ = run(tmp_path, [a, b], n=12)
    diff = result.differences[0]
    assert (diff.hit1, diff.hit1_low, diff.hit1_high) == (0.0, 0.0, 0.0)
    assert (diff.wins, diff.losses, diff.sign_p) == (0, 0, 1.0)
    assert result.rows[0].persona_digest == result.rows[1].persona_digest != ""


def test_a_prompt_folder_with_a_persona_file_and_the_decision_records_both(tmp_path: Path) -> None:
    folder, personas = prompt_folder(tmp_path / "mine"), persona_file(tmp_path / "p.yaml", WORD)
    assert split_spec(f"{folder}:{personas}") == (folder, personas)
    assert split_spec(folder) == (folder, None) and split_spec("retail_households.yaml") == (
        None,
        Path("retail_households.yaml"),
    )
    cases_file = write_cases(tmp_path / "cases.jsonl", 2)
    _, _, variants = _prepare([folder, f"{folder}:{personas}"], cases_file, 2, 0, 1, "local", SETS, None)
    assert [v.name for v in variants] == ["mine", "mine+p"]
    assert variants[1].prompts.digest == variants[0].prompts.digest and variants[0].prompts.personas is None
    client, _ = scripted_client()
    decide = graph_decide(eval_scenario("local", None, SETS, []), client=client)
    situation = read_cases(cases_file)[0].situation()
    plain = decide(situation, variants[0], 0).outcome.details
    dressed = decide(variants[1].dressed(situation), variants[1], 0)
    assert "persona_set" not in plain and plain["prompt_set"] == variants[0].prompts.digest
    assert dressed.outcome.details["persona_set"] == variants[1].prompts.personas.digest
    assert dressed.outcome.details["prompt_set"] == variants[1].prompts.digest
    assert dressed.decision.product_id.endswith("C")  # the persona text reached the debate


def test_the_persona_matching_the_customer_stands_in_for_them() -> None:
    def persona(name: str, age: str, pin: str) -> Persona:
        return Persona(name=name, age_group=age, pin_code=pin)

    personas = (
        persona("first", "<25", "221"),
        persona("area", "30-34", "999"),
        persona("age", "30-34", "115"),
        persona("age-again", "30-34", "115"),
    )
    assert persona_for(Customer(customer_id="c", age_group="30-34", pin_code="115"), personas).name == "age"
    assert persona_for(Customer(customer_id="c", age_group="30-34", pin_code="106"), personas).name == "area"
    assert persona_for(Customer(customer_id="c", age_group=">64", pin_code="221"), personas).name == "first"
    assert persona_for(Customer(customer_id="c", age_group=">64", pin_code="000"), personas).name == "first"


def test_bad_persona_files_are_refused_naming_file_and_field(tmp_path: Path, capsys) -> None:
    cases_file = write_cases(tmp_path / "cases.jsonl", 4)
    good = persona_file(tmp_path / "good.yaml")
    with pytest.raises(PersonaError, match=r"missing\.yaml: persona file not found"):
        _prepare([good, tmp_path / "missing.yaml"], cases_file, 2, 0, 1, "local", SETS, None)
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("discount_sensitivity: 0.6", "discount_sensitivity: 7"))
    with pytest.raises(PersonaError, match=r"bad\.yaml: personas\.1\.style\.discount_sensitivity: "):
        _prepare([good, bad], cases_file, 2, 0, 1, "local", SETS, None)
    with pytest.raises(ExperimentError, match="two variants named 'good'"):
        _prepare([good, good], cases_file, 2, 0, 1, "local", SETS, None)
    # the CLI: one line, exit 2, and no backend is ever loaded (the local model would take seconds)
    two_errors = tmp_path / "two.yaml"
    two_errors.write_text("personas:\n  - {name: x, style: {loss_aversion: 9, brand_loyalty: 3}}\n")
    with pytest.raises(SystemExit) as info:
        run_app(
            app,
            [
                "prompts",
                "experiment",
                str(good),
                str(two_errors),
                "--cases",
                str(cases_file),
                "-o",
                str(tmp_path / "exp"),
            ],
        )
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert info.value.code == 2 and len(lines) == 1, lines
    assert "two.yaml: personas.0.style.loss_aversion" in lines[0] and "(and 1 more)" in lines[0]
    assert not (tmp_path / "exp").exists()
