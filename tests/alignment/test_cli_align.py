"""`malles align` commands on real cases: calibrate (fit f, apply through the registry), reweight, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from malles_graph.cli import app
from malles_graph.evaluation.builder import TEST_SPLIT, TRAIN_SPLIT, build_cases
from malles_graph.evaluation.cases import write_jsonl
from malles_graph.evaluation.predictors import PredictorOptions, make_predictor

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tafeng_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("align-cli")
    train = build_cases(TRAIN_SPLIT.model_copy(update={"n_cases": 400}))
    val = build_cases(TEST_SPLIT.model_copy(update={"n_cases": 300, "seed": 2}))
    popular = make_predictor("baseline:popular", PredictorOptions(train_cases=train))
    write_jsonl(val, folder / "val.jsonl")
    write_jsonl(popular.predict([c.situation() for c in val]), folder / "p-val.jsonl")
    from malles_graph.evaluation.choice_model import ChoiceModel

    ChoiceModel.fit(train).save(folder / "cm.json")
    return folder


def test_calibrate_writes_f_and_reports_ece(files) -> None:
    out = files / "model" / "calibration.json"
    result = runner.invoke(
        app,
        ["align", "calibrate", "--cases", str(files / "val.jsonl"), "--predictions", str(files / "p-val.jsonl"),
         "-o", str(out), "--method", "stacked", "--choice-model", str(files / "cm.json")],
    )
    assert result.exit_code == 0, result.output
    assert "ece" in result.output
    data = json.loads(out.read_text())
    assert data["probability"]["method"] == "stacked" and data["probability"]["use_utility"]
    assert data["report"]["fit_logloss_after"] < data["report"]["fit_logloss_before"]
    assert (files / "model" / "choice_model.json").exists()


def test_calibrate_stacked_needs_a_choice_model(files) -> None:
    result = runner.invoke(
        app,
        ["align", "calibrate", "--cases", str(files / "val.jsonl"), "--predictions", str(files / "p-val.jsonl"),
         "-o", str(files / "x.json"), "--method", "stacked"],
    )
    assert result.exit_code != 0
    assert "--choice-model" in str(result.exception) + result.output


def test_reweight_command(files) -> None:
    out = files / "w.json"
    result = runner.invoke(app, ["align", "reweight", "--cases", str(files / "val.jsonl"), "-o", str(out),
                                 "--margins", "age_group"])
    assert result.exit_code == 0, result.output
    assert "demand_error_weighted" in result.output
    assert json.loads(out.read_text())["kind"] == "raking"
