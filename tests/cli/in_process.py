"""`malles ARGS` in the test's own process, through the CLI's real entry point (`run_app`).

What a subprocess would give (exit code, stdout, stderr) without starting an interpreter and importing the
graphs again for each call. The console script itself runs in a subprocess in test_usage_errors.py and
test_cli.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from malles_graph.cli import app
from malles_graph.cli.errors import run_app


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def malles(capsys: pytest.CaptureFixture[str], *args: str) -> Done:
    capsys.readouterr()  # only this call's output
    with pytest.raises(SystemExit) as info:
        run_app(app, list(args))
    out = capsys.readouterr()
    return Done(int(info.value.code or 0), out.out, out.err)
