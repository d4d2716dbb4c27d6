"""`malles eval` commands through typer's CliRunner (and one subprocess for the error path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from malles_graph.cli import app
from malles_graph.evaluation.cases import EvaluationError, read_cases, read_predictions

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    result = runner.invoke(app, ["eval", *args], catch_exceptions=True, terminal_width=200)
    return result


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, f"{args} -> {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result.output


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """Rich tables at 200 columns so the assertions see whole cells, not folded ones."""
    from rich.console import Console

    import malles_graph.cli.eval as eval_cli

    monkeypatch.setattr(eval_cli, "console", Console(width=200))


@pytest.fixture(scope="module")
def files(tmp_path_factory, real_frame):
    """Small test and train case files written by the build command."""
    folder = tmp_path_factory.mktemp("eval")
    test, train = folder / "test.jsonl", folder / "train.jsonl"
    out = ok("build", "--out", str(test), "-n", "80", "--seed", "2")
    assert "wrote 80 cases" in out
    ok("build", "--split", "train", "--out", str(train), "-n", "400")
    return folder, test, train


@pytest.mark.parametrize("command", ["build", "schema", "fit", "run", "backends", "score", "stability", "report"])
def test_help_has_examples(command):
    out = ok(command, "--help")
    assert "Example" in out


def test_schema_prints_json():
    data = json.loads(ok("schema", "case"))
    assert "truth_product_id" in data["properties"]
    assert "probs" in json.loads(ok("schema", "prediction"))["properties"]


def test_build_run_score_report(files, tmp_path):
    folder, test, train = files
    cases = read_cases(test)
    assert len(cases) == 80 and len({c.case_id for c in cases}) == 80
    assert all(c.date.month == 2 for c in cases) and all(c.date.month == 1 for c in read_cases(train))
    ok("backends")
    pop, cm = tmp_path / "popular.jsonl", tmp_path / "cm.jsonl"
    ok("run", "--cases", str(test), "-b", "baseline:popular", "-o", str(pop))
    model = tmp_path / "cm.json"
    ok("fit", "--kind", "choice-model", "--cases", str(train), "-o", str(model))
    ok("run", "--cases", str(test), "-b", "baseline:logit", "--model", str(model), "-o", str(cm))
    assert len(read_predictions(cm)) == 80
    out = ok("score", str(pop), str(cm), "--cases", str(test))
    assert "hit@1" in out and "popular" in out
    scores = json.loads(ok("score", str(pop), str(cm), "--cases", str(test), "--json"))
    assert [s["name"] for s in scores] == ["popular", "cm"] and scores[1]["overall"]["coverage"] == 1.0
    report = tmp_path / "report"
    ok("report", str(pop), str(cm), "--cases", str(test), "-o", str(report), "--name", "popular", "--name", "model")
    for name in ("report.md", "report.html", "scores.json", "hit_by_subclass_size.png", "quantity_error.png"):
        assert (report / name).stat().st_size > 0
    assert "| model |" in (report / "report.md").read_text()


def test_resume_and_stability(files, tmp_path):
    _, test, _ = files
    out = tmp_path / "r.jsonl"
    ok("run", "--cases", str(test), "-b", "baseline:random", "-o", str(out), "--limit", "30", "--seed", "1")
    first = out.read_text().splitlines()
    text = ok("run", "--cases", str(test), "-b", "baseline:random", "-o", str(out), "--resume", "--seed", "1")
    assert "skipped 30" in text
    lines = out.read_text().splitlines()
    assert lines[:30] == first and len(lines) == 80
    other = tmp_path / "r2.jsonl"
    ok("run", "--cases", str(test), "-b", "baseline:random", "-o", str(other), "--seed", "2")
    text = ok("stability", str(out), str(other), "--cases", str(test))
    assert "pairwise product agreement" in text and "hit@1 mean +- sd (range)" in text
    assert "pairwise product agreement" in ok("score", str(out), str(other), "--cases", str(test), "--stability")


def test_bad_inputs_are_clear_errors(files, tmp_path):
    _, test, _ = files
    lines = test.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], lines[1][:-5], *lines[2:5]]) + "\n")
    result = invoke("run", "--cases", str(bad), "-b", "baseline:random", "-o", str(tmp_path / "p.jsonl"))
    assert isinstance(result.exception, EvaluationError) and "bad.jsonl:2: not valid JSON" in str(result.exception)
    result = invoke("run", "--cases", str(test), "-b", "baseline:logit", "-o", str(tmp_path / "p.jsonl"))
    assert isinstance(result.exception, EvaluationError) and "--train" in str(result.exception)
    result = invoke("run", "--cases", str(test), "-b", "local", "-o", str(tmp_path / "p.jsonl"), "--ablation", "no-x")
    assert "unknown ablation 'no-x'" in str(result.exception)
    # a prediction for a case that is not in the case file: the CLI exits 2 with file and line
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"case_id": "nobody", "product_id": "x", "quantity": 1}\n')
    done = subprocess.run(
        [sys.executable, "-m", "malles_graph.cli", "eval", "score", str(preds), "--cases", str(test)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 2
    assert "preds.jsonl:1: prediction for unknown case_id 'nobody'" in " ".join(done.stderr.split())


def test_ablation_and_set_reach_the_scenario():
    from malles_graph.cli.eval import eval_scenario

    scenario = eval_scenario("local", None, ["decision.samples=3", "backend.max_tokens=32"], ["no-retrieval", "no-z"])
    assert scenario.backend.name == "local" and scenario.backend.max_tokens == 32
    assert scenario.decision.samples == 3
    assert scenario.decision.retrieval is False and scenario.decision.hidden_factors is False
    single = eval_scenario("ollama", None, [], ["single-agent", "no-multi-sampling"])
    assert single.decision.single_agent is True and single.decision.samples == 1


@pytest.mark.parametrize("backend", ["baseline:lgbm", "agent"])
def test_run_refuses_a_train_file_whose_attributes_disagree_with_the_cases(backend, tmp_path):
    """The backends that read product attributes would get missing values for an attribute that is a number in
    --train and text in --cases, or for cases that carry none of the training attributes: refused before the
    fit, naming the file and the attribute, with no prediction file written."""
    from tests.evaluation.test_agent import panel

    def write(name: str, cases) -> Path:
        path = tmp_path / name
        path.write_text("".join(c.model_dump_json() + "\n" for c in cases), encoding="utf-8")
        return path

    train = write("train.jsonl", panel(8, range(0, 6), seed=1))
    texty = [
        c.model_copy(
            update={
                "candidates": [
                    p.model_copy(update={"attributes": {**p.attributes, "display": "yes"}}) for p in c.candidates
                ]
            }
        )
        for c in panel(8, range(6, 9), seed=2)
    ]
    out = tmp_path / "p.jsonl"
    result = invoke(
        "run", "--cases", str(write("texty.jsonl", texty)), "-b", backend, "--train", str(train), "-o", str(out)
    )
    assert isinstance(result.exception, EvaluationError), result.output
    assert f"texty.jsonl: attribute 'display' is text in the cases but a number in --train {train}" in str(
        result.exception
    )
    bare = write("bare.jsonl", panel(8, range(6, 9), seed=2, attributes=False))
    result = invoke("run", "--cases", str(bare), "-b", backend, "--train", str(train), "-o", str(out))
    assert isinstance(result.exception, EvaluationError), result.output
    assert "bare.jsonl: the cases carry none of the product attributes of --train" in str(result.exception)
    assert not out.exists()
