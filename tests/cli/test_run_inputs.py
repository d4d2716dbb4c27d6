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
