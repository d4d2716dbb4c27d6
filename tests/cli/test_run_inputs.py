"""`malles run` refuses a scenario whose files cannot be used before the run row exists: exit code 2, the field
and file named, no run stored and no traceback (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from malles_graph.store import make_engine
from malles_graph.store.repository import list_runs
from tests.cli.in_process import malles
from tests.cli.test_usage_errors import DEMO


def test_a_missing_calibration_stops_the_run_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    missing = tmp_path / "nope.json"
    done = malles(
        capsys, "run", DEMO, "-b", "choice-model", "--store", store, "--set", f"decision.calibration={missing}"
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert f"decision.calibration: {missing}: calibration file not found" in done.stderr
    assert list_runs(make_engine(store), 5) == []


WHOLESALE = str(Path(DEMO).with_name("wholesale-tafeng.yaml"))


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("wholesale.items=[nosuch]", "wholesale.items: unknown subclass id(s) ['nosuch'] in the Ta Feng data"),
        ("wholesale.periods=1000", "fewer than periods (1000)"),
        ("wholesale.reference_rule=Max(", "wholesale.reference_rule: the formula is not valid arithmetic"),
    ],
)
def test_wholesale_options_the_data_refuses_stop_the_run_before_it_starts(
    override: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    done = malles(
        capsys, "wholesale", "run", WHOLESALE, "-b", "openai", "--set", f"store.url={store}", "--set", override
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert problem in done.stderr
    assert list_runs(make_engine(store), 5) == []


def test_a_run_id_that_would_leave_the_runs_folder_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    done = malles(capsys, "wholesale", "run", WHOLESALE, "-b", "openai", "--run-id", "../escaped")
    assert done.returncode == 2 and done.stderr.startswith("error: run id '../escaped': use letters"), done.stderr


def test_a_failed_wholesale_run_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreachable server fails the dialogue: the run is stored as failed and the command says so."""
    done = malles(
        capsys, "wholesale", "run", WHOLESALE, "-q", "-b", "openai", "--no-cache",
        "--set", "backend.base_url=http://127.0.0.1:9/v1", "--set", "backend.call_retries=0",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "run failed" in done.stdout and "Traceback" not in done.stderr
