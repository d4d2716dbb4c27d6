"""`malles eval score` on hostile case and prediction files: one `error:` line naming the file (and line and
field), exit code 2, never a traceback or a score of nothing (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_usage_errors import run_cli
from tests.evaluation.test_cases import case_dict


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(json.dumps(case_dict(f"c{i}")) for i in range(3)) + "\n", encoding="utf-8")
    return path


def pred(case_id: str = "c0", **fields: object) -> str:
    return json.dumps({"case_id": case_id, "product_id": "p1", "quantity": 1, **fields})


PREDICTIONS = {
    "empty": ("", "no predictions in the file"),
    "probs 1e308": (pred(probs={"p1": 1e308, "p2": 1e308}), ":1: invalid prediction: (top level): Value error, probs:"),
    "probs Infinity": ('{"case_id": "c0", "product_id": "p1", "quantity": 1, "probs": {"p1": Infinity}}', "probs:"),
    "probs NaN": ('{"case_id": "c0", "product_id": "p1", "quantity": 1, "probs": {"p1": NaN}}', "probs:"),
    "probs all zero": (pred(probs={"p1": 0.0, "p2": 0.0}), "probs: probabilities are all zero"),
    "probs unknown ids": (pred(probs={"p1": 0.5, "zz9": 0.5}), ":1: probs: unknown candidate id(s) ['zz9']"),
    "deep JSON": ("[" * 100_000 + "]" * 100_000, ":1: JSON nested too deeply"),
    "binary": (b"\x00\xff\xfe\x80" * 50, "not UTF-8 text"),
}


@pytest.mark.parametrize("case", sorted(PREDICTIONS))
def test_bad_prediction_file(case: str, cases: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, expected = PREDICTIONS[case]
    path = tmp_path / "preds.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, output = run_cli(["eval", "score", str(path), "--cases", str(cases)], capsys)
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in output, output
    assert lines[0].startswith(f"error: {path}") and expected in lines[0], lines[0]


@pytest.mark.parametrize("kind", ["folder", "binary", "deep"])
def test_bad_case_file(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cases.jsonl"
    if kind == "folder":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    else:
        path.write_text('{"case_id": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    preds = tmp_path / "preds.jsonl"
    preds.write_text(pred() + "\n")
    code, output = run_cli(["eval", "score", str(preds), "--cases", str(path)], capsys)
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in output, output
    assert lines[0].startswith(f"error: {path}")


def test_a_good_prediction_file_scores(cases: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "preds.jsonl"
    path.write_text(pred(probs={"p1": 0.25, "p2": 0.75}) + "\n")
    code, output = run_cli(["eval", "score", str(path), "--cases", str(cases), "--json"], capsys)
    assert code == 0, output
    assert json.loads(output)[0]["overall"]["n"] == 3
