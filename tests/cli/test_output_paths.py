"""An `--out` that cannot be written (a folder where a file goes, a file where a folder goes or in the path):
one `error:` line naming the path and the culprit, exit code 2, never a FileExistsError or IsADirectoryError
traceback (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malles_graph.errors import MallesError
from malles_graph.paths import output_file, output_folder
from malles_graph.store import make_engine
from malles_graph.store.repository import create_run
from malles_graph.store.tables import RunRow
from tests.cli.in_process import malles
from tests.evaluation.test_cases import case_dict


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(case_dict(f"c{i}")) for i in range(3)) + "\n", encoding="utf-8")
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"case_id": "c0", "product_id": "p1", "quantity": 1}) + "\n", encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    create_run(make_engine(store), RunRow(id="r1", name="demo"))
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("already here\n", encoding="utf-8")
    return {"cases": str(cases), "preds": str(preds), "store": store}


# (command writing into OUT, OUT relative to tmp_path, the culprit named after "OUT: ")
COMMANDS = {
    "export into a file": (["export", "r1", "--store", "{store}", "-o", "OUT"], "file.txt", "is a file"),
    "export through a file": (["export", "r1", "--store", "{store}", "-o", "OUT"], "file.txt/sub", "file.txt is a"),
    "eval report into a file": (["eval", "report", "{preds}", "--cases", "{cases}", "-o", "OUT"], "file.txt", "is a"),
    "eval run into a folder": (
        ["eval", "run", "--cases", "{cases}", "-b", "baseline:random", "-o", "OUT"],
        "folder",
        "is a folder, not a file",
    ),
    "eval run through a file": (
        ["eval", "run", "--cases", "{cases}", "-b", "baseline:random", "-o", "OUT"],
        "file.txt/p.jsonl",
        "file.txt is a file, not a folder",
    ),
    "reindex into a file": (["memory", "reindex", "--path", "{cases}.none", "--out", "OUT"], "file.txt", "is a file"),
    "reweight into a folder": (["align", "reweight", "--cases", "{cases}", "-o", "OUT"], "folder", "is a folder"),
}


@pytest.mark.parametrize("case", sorted(COMMANDS))
def test_unwritable_out_is_one_line(
    case: str, files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template, out, culprit = COMMANDS[case]
    target = tmp_path / out
    args = [str(target) if a == "OUT" else a.format(**files) for a in template]
    done = malles(capsys, *args)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {target}: ") and culprit in lines[0], lines[0]
    assert (tmp_path / "file.txt").read_text(encoding="utf-8") == "already here\n"


def test_output_helpers_create_what_is_missing(tmp_path: Path) -> None:
    assert output_folder(tmp_path / "a" / "b").is_dir()
    assert output_file(tmp_path / "c" / "d.json") == tmp_path / "c" / "d.json"
    assert (tmp_path / "c").is_dir() and not (tmp_path / "c" / "d.json").exists()
    with pytest.raises(MallesError, match="is a folder, not a file"):
        output_file(tmp_path / "a")


def test_a_store_through_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file.txt").write_text("already here\n", encoding="utf-8")
    target = tmp_path / "file.txt" / "malles.sqlite"
    done = malles(capsys, "runs", "--store", f"sqlite:///{target}")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == f"error: {target}: {tmp_path / 'file.txt'} is a file, not a folder"
