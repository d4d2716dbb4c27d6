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


# ---- issue 14: inputs that do not match each other are refused before any decision is made


def _run_one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code, output = run_cli(args, capsys)
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith("note:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def test_calibration_fitted_for_another_model_is_refused(cases: Path, tmp_path: Path, capsys) -> None:
    import numpy as np

    from malles_graph.alignment.calibration import fit_calibration

    cal = tmp_path / "cal.json"
    probs = [np.array([0.7, 0.3]), np.array([0.4, 0.6]), np.array([0.8, 0.2])]
    fit_calibration(probs, [0, 1, 1], fitted_for={"backend": "ollama", "model": "qwen2.5:7b"}).save(cal)
    out = tmp_path / "p.jsonl"
    args = ["eval", "run", "--cases", str(cases), "-b", "local", "--set", f"decision.calibration={cal}", "-o", str(out)]
    line = _run_one_line(args, capsys)
    assert f"{cal}: fitted_for.backend is 'ollama'" in line and "'local'" in line, line
    assert not out.exists() or not out.read_text().strip()  # nothing decided


def test_memory_that_does_not_cover_the_cases_is_refused(cases: Path, tmp_path: Path, capsys) -> None:
    """A memory of other subclasses would answer no query: refused naming the memory and the subclass."""
    import datetime as dt

    import polars as pl
    from malles_graph.retrieval import build_episodes, ingest, make_client, open_collection
    from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction
    from malles_graph.retrieval.side_index import index_dir

    rows = pl.DataFrame(
        {
            "customer_id": ["u9", "u9"],
            "date": [dt.date(2001, 1, 5), dt.date(2001, 1, 9)],
            "subclass": ["other", "other"],
            "product_id": ["x1", "x2"],
            "quantity": [1, 2],
            "unit_price": [3.0, 4.0],
            "sales": [3.0, 8.0],
            "age_group": ["A", "A"],
            "pin_code": ["1", "1"],
        }
    )
    folder = tmp_path / "memory"
    client, where = make_client(folder, None, create=True)
    ef = MiniLMEmbeddingFunction()
    col = open_collection(client, "tafeng_transactions", where, create=True, embedding_function=ef)
    ingest(col, build_episodes(rows), ef.embed, index_folder=index_dir(where, "tafeng_transactions"))
    del client, col
    out = tmp_path / "p.jsonl"
    line = _run_one_line(
        ["eval", "run", "--cases", str(cases), "-b", "local", "--memory", str(folder), "-o", str(out)], capsys
    )
    assert line.startswith(f"error: {folder}: memory") and "has no episodes of subclass 's'" in line, line
    assert not out.exists() or not out.read_text().strip()


def test_case_file_whose_candidates_disagree_on_an_attribute_type(tmp_path: Path, capsys) -> None:
    first, second = case_dict("c0"), case_dict("c1")
    first["candidates"][0]["attributes"] = {"display": 1}
    second["candidates"][1]["attributes"] = {"display": "yes"}
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n", encoding="utf-8")
    line = _run_one_line(
        ["eval", "run", "--cases", str(path), "-b", "baseline:popular", "-o", str(tmp_path / "p.jsonl")], capsys
    )
    assert line.startswith(f"error: {path}:2: candidates.p2.attributes.display: text 'yes', but a number at line 1"), (
        line
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--cases", "{cases}", "-b", "baseline:popular", "-o", "{cases}"], "--out {cases} is also an input"),
        (["fit", "--cases", "{cases}", "-o", "{cases}"], "--out {cases} is also an input"),
        (["run", "--cases", "{cases}", "-b", "baseline:popular", "-o", "{tmp}"], "{tmp}: is a folder, not a file"),
        (["fit", "--cases", "{cases}", "-o", "{cases}/agent.joblib"], "{cases} is a file, not a folder"),
        (["build", "-o", "{tmp}"], "{tmp}: is a folder, not a file"),
        (["build", "-o", "{tmp}/x.jsonl", "-k", "1"], "malles eval build: k: Input should be greater than or equal to 2"),
        (["run", "--cases", "{cases}", "-b", "baseline:popular", "-o", "{tmp}/p.jsonl", "--limit", "0"], "'--limit'"),
        (["run", "--cases", "{cases}", "-b", "baseline:popular", "-o", "{tmp}/p.jsonl", "--seed", "-1"], "'--seed'"),
        (["run", "--cases", "{cases}", "-b", "baseline:popular", "-o", "{tmp}/p.jsonl", "--max-failures", "0"], "failures"),
    ],
)
def test_eval_outputs_and_options_checked_before_any_work(
    args: list[str], expected: str, cases: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An --out that is an input (the case file was overwritten), a folder or a path through a file, and options
    out of range: one line, exit 2, and the case file is left as it was."""
    before = cases.read_bytes()
    fill = {"cases": str(cases), "tmp": str(tmp_path)}
    code, output = run_cli(["eval", *(a.format(**fill) for a in args)], capsys)
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in output, output
    assert expected.format(**fill) in lines[0], lines[0]
    assert cases.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["fit", "--kind", "choice-model", "-o", "{tmp}/cm.json"], "{train}: the choice model needs a training case"),
        (["run", "-b", "baseline:logit", "-o", "{tmp}/p.jsonl"], "baseline:logit needs a training case"),
        (["run", "-b", "baseline:lgbm", "-o", "{tmp}/p.jsonl"], "baseline:lgbm needs a training case"),
    ],
)
def test_choice_models_refuse_training_cases_without_a_choice(
    args: list[str], expected: str, cases: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cases that each offer one candidate teach a choice model nothing: the logit saved zero coefficients and
    answered ties. The quantity regressor, which needs no choice, still fits on them."""
    rows = [case_dict(f"t{i}") for i in range(30)]
    for row in rows:
        row["candidates"] = [p for p in row["candidates"] if p["product_id"] == row["truth_product_id"]]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    fill = {"tmp": str(tmp_path), "train": str(train)}
    where = ["--cases", str(train)] if args[0] == "fit" else ["--cases", str(cases), "--train", str(train)]
    line = _run_one_line(["eval", *(a.format(**fill) for a in args), *where], capsys)
    assert line == f"error: {expected.format(**fill)} with two or more candidates, got 0 (of 30 cases)"
    out = tmp_path / "pop.jsonl"
    code, output = run_cli(
        ["eval", "run", "--cases", str(cases), "-b", "baseline:popular", "--train", str(train),
         "--quantity", "regressor", "-o", str(out)],
        capsys,
    )
    assert code == 0 and len(out.read_text().splitlines()) == 3, output
