"""The command line, end to end: what a user types, through the CLI's real entry point.

Most commands run in process (tests/cli/in_process.py: the same exit code and output, without an interpreter
and its imports per call); the help and a bad scenario file run the `python -m malles_graph.cli` entry point
in a subprocess.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import in_process

REPO = Path(__file__).resolve().parents[2]


def subprocess_malles(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "malles_graph.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    if check and done.returncode != 0:
        raise AssertionError(f"malles {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture
def malles(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``malles ARGS`` in this process, in the repository folder; fails on a non-zero exit unless check=False."""
    monkeypatch.chdir(REPO)

    def run(*args: str, check: bool = True) -> in_process.Done:
        done = in_process.malles(capsys, *args)
        if check and done.returncode != 0:
            raise AssertionError(f"malles {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    return run


def test_help_lists_commands_with_one_line_each() -> None:
    out = subprocess_malles("--help").stdout
    for command in ("demo", "run", "data", "backends", "prompts"):
        assert command in out


def test_help_prose_wraps_at_the_terminal_width_and_examples_keep_their_lines() -> None:
    """Typer keeps a docstring's line breaks: at 80 columns a paragraph wrapped for 100 broke mid-sentence
    ("... (matplotlib, Agg)." then "With --reference, a table ..." on a line of its own)."""
    done = subprocess.run(
        [sys.executable, "-m", "malles_graph.cli", "eval", "report", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env={**os.environ, "COLUMNS": "80"},
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and all(len(line) <= 80 for line in lines)
    assert any("(matplotlib, Agg). With --reference, a table of what each" in line for line in lines)
    assert "  malles eval report preds/*.jsonl --cases test.jsonl --out reports/feb" in "\n".join(lines)


def test_examples_under_a_heading_keep_their_indentation_in_help() -> None:
    """When the examples are the only paragraph after the first line, Typer's `inspect.cleandoc` of that part
    measured the indentation under "Examples:" alone and stripped it: every example started at column 1."""
    done = subprocess.run(
        [sys.executable, "-m", "malles_graph.cli", "run", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env={**os.environ, "COLUMNS": "80"},
    )
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    assert done.returncode == 0 and " Examples:" in lines
    assert "   malles run scenarios/tafeng-retail.yaml" in lines
    assert "   malles run scenarios/economist-best-response.yaml --seed 3" in lines


@pytest.mark.parametrize(
    "args",
    [["demo"], ["run"], ["data", "fetch"], ["data", "info"], ["backends"], ["prompts", "check"]],
    ids=lambda a: " ".join(a),
)
def test_every_command_has_help_with_examples(args: list[str], malles) -> None:
    out = malles(*args, "--help").stdout
    assert "Usage" in out and "Example" in out


def test_data_info_summarises_tafeng(tafeng_path: Path, malles) -> None:
    out = malles("data", "info", "tafeng").stdout
    assert "817,741" in out and "32,266" in out


def test_prompts_check_passes_on_shipped_prompts(malles) -> None:
    assert "prompts valid" in malles("prompts", "check").stdout


def test_prompts_check_fails_on_bad_folder(tmp_path: Path, malles) -> None:
    done = malles("prompts", "check", "--dir", str(tmp_path), check=False)
    assert done.returncode == 1 and "prompt file not found" in done.stdout


def test_backends_lists_registry(malles) -> None:
    out = malles("backends").stdout
    for name in ("local", "openai", "ollama", "choice-model"):
        assert name in out


def test_backends_check_reports_unreachable_server(malles) -> None:
    done = malles("backends", "--check", "--backend", "ollama", "--base-url", "http://127.0.0.1:9", check=False)
    assert done.returncode == 1 and "no answer" in done.stdout


def test_bad_scenario_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmean_field:\n  damping: 3\n")
    done = subprocess_malles("run", str(bad), check=False)
    assert done.returncode == 2
    assert "mean_field.damping" in done.stderr and "Traceback" not in done.stderr


def test_unknown_set_path_is_reported(tmp_path: Path, malles) -> None:
    good = tmp_path / "s.yaml"
    good.write_text("name: x\n")
    done = malles("run", str(good), "--set", "decision.colour=red", check=False)
    assert done.returncode == 2 and "decision.colour" in done.stderr


def test_run_dispatches_an_economist_scenario(malles) -> None:
    done = malles(
        "run",
        "scenarios/economist-best-response.yaml",
        "--set",
        "economist.steps=2",
        "--set",
        "economist.n_workers=50",
        "--set",
        "economist.check_budget=10",  # the end-of-run search at its smallest: its table is shown all the same
    )
    # The generic runner's output: the kind is named and the economist's figures appear per round.
    assert "(economist)" in done.stdout and "welfare" in done.stdout.lower()
