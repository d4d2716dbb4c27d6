"""`malles decide` end to end on Ta Feng with the LLM-free choice-model backend, through the CLI's real entry point.

In process (tests/cli/in_process.py): a subprocess would import the graphs and load Ta Feng again for each call.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from malles_graph.evaluation.choice_model import ChoiceModel
from malles_graph.evaluation.features import FEATURES, QUANTITY_FEATURES
from tests.cli import in_process


@pytest.fixture
def malles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``malles ARGS`` in this process, run in tmp_path on a 120-column console."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    return functools.partial(in_process.malles, capsys)


DECIDE = ("decide", "-c", "01220551", "-d", "2001-02-13", "--backend", "choice-model", "--choice-model")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cm") / "choice_model.json"
    return ChoiceModel(np.linspace(-1, 1, len(FEATURES)), np.zeros(len(QUANTITY_FEATURES)), 0.7).save(path)


def test_decide_prints_transcript_and_decision(tafeng_path, model_file, malles):
    run = malles(
        *DECIDE,
        str(model_file),
        "--samples",
        "3",
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for part in (
        "product specialist - round 1",
        "price analyst - round 1",
        "persona - round 1",
        "[computed",
        "really bought",
        "agreement",
        "wall time",
    ):
        assert part in out, part


def test_decide_json_and_errors(tafeng_path, model_file, malles):
    run = malles(
        *DECIDE,
        str(model_file),
        "--no-retrieval",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["outcome"]["ok"] and data["decision"]["product_id"] in data["outcome"]["details"]["votes"]
    assert data["outcome"]["details"]["neighbours"] == 0 and data["actual"]
    bad = malles("decide", "-c", "nobody", "-d", "2001-02-13")
    assert bad.returncode == 2 and "customer 'nobody' is not in the transactions" in bad.stderr
    bad_date = malles("decide", "-c", "01220551", "-d", "13/02/2001")
    assert bad_date.returncode != 0 and "YYYY-MM-DD" in bad_date.stderr + bad_date.stdout


def test_decide_refuses_a_calibration_for_another_model(tafeng_path, model_file, tmp_path, malles):
    cal = tmp_path / "cal.json"
    cal.write_text(
        '{"format": "malles-calibration/1", "probability": {"method": "temperature", "coef": [1.0]}, '
        '"fitted_for": {"backend": "local"}}',
        encoding="utf-8",
    )
    run = malles(
        "decide",
        "-c",
        "01220551",
        "-d",
        "2001-02-13",
        "--backend",
        "choice-model",
        "--no-retrieval",
        "--choice-model",
        str(model_file),
        "--calibration",
        str(cal),
    )
    assert run.returncode == 2
    assert f"{cal}: fitted_for.backend is 'local' but the decisions come from backend 'choice-model'" in run.stderr
    assert "Traceback" not in run.stderr
