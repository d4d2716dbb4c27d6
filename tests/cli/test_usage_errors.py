"""Every CLI usage error: a one-line `error:` message naming what is wrong, exit code 2, no traceback (issue 16).

In process through the real entry point (`run_app`), so many cases stay cheap; one subprocess case checks the
installed console script end to end.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from malles_graph.cli import app
from malles_graph.cli.errors import run_app

REPO = Path(__file__).resolve().parents[2]
DEMO = str(REPO / "scenarios" / "demo.yaml")
ECONOMIST = str(REPO / "scenarios" / "economist-best-response.yaml")


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        run_app(app, args)
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.err + captured.out


CASES = {
    "run without a file": (["run"], "malles run: Missing argument 'SCENARIO.yaml'"),
    "seed not a number": (["run", DEMO, "--seed", "abc"], "Invalid value for '--seed'"),
    "unknown option": (["run", DEMO, "--bogus-opt"], "No such option: --bogus-opt"),
    "unknown command": (["nosuchcommand"], "No such command 'nosuchcommand'"),
    "zero seeds": (["run", DEMO, "--seeds", "0"], "Invalid value for '--seeds'"),
    "set without =": (["run", DEMO, "--set", "noequals"], "--set 'noequals': expected key.path=value"),
    "set through a value": (["run", DEMO, "--set", "name.foo=1"], "--set name.foo: name is a value"),
    "set with broken YAML": (["run", DEMO, "--set", "seed=[1,2"], "--set seed: '[1,2' is not a valid YAML value"),
    "set a bad value": (["run", DEMO, "--set", "seed=-1"], "seed: Input should be greater than or equal to 0"),
    "scenario is a folder": (["run", str(REPO / "scenarios")], "is a folder, not a scenario file"),
    "eval option": (["eval", "run", "--bogus"], "No such option: --bogus"),
    "check an unknown backend": (["backends", "--check", "-b", "bogus"], "--backend: 'bogus' is not one of local"),
    "runs past a database integer": (["runs", "-n", str(10**20)], "Input should be less than or equal to 1000000"),
    "HNSW M negative": (["memory", "build", "--m", "-1"], "--m: Input should be greater than or equal to 4 (got -1)"),
    "HNSW ef_search zero": (["memory", "build", "--ef-search", "0"], "--ef-search: Input should be greater than or"),
    "baselines of no workers": (["economist", "baselines", "--workers", "0"], "'--workers': Input should be greater"),
    "baselines seed negative": (["economist", "baselines", "--seed", "-1"], "'--seed': Input should be greater than"),
    "seeds past the largest seed": (
        ["run", DEMO, "-b", "choice-model", "--seed", str(2**32 - 1), "--seeds", "2"],
        "seed 4294967296: the seeds run must lie in 0..4294967295",
    ),
    "resume with seeds": (["run", DEMO, "--seeds", "2", "--resume", "x"], "--resume continues one run; it cannot"),
    "decide seed negative": (["decide", "-c", "1", "-d", "2001-02-13", "--seed", "-1"], "'--seed': Input should be"),
    "decide temperature NaN": (
        ["decide", "-c", "1", "-d", "2001-02-13", "--temperature", "nan"],
        "malles decide: temperature: Input should be a finite number (got nan)",
    ),
    "align export no examples": (
        ["align", "export", "-o", "x", "--n-examples", "0"],
        "malles align export: n_examples: Input should be greater than or equal to 1 (got 0)",
    ),
    "align export bad date": (["align", "export", "-o", "x", "--fit-start", "bogus"], "split.fit_start: Input should"),
    "align export fraction NaN": (["align", "export", "-o", "x", "--holdout-fraction", "nan"], "holdout_fraction:"),
    "align train config a folder": (
        ["align", "train", "--examples", "x", "-o", "y", "--config", str(REPO / "tests" / "fuzz")],
        "is a folder, not a training config file",
    ),
    "align train unknown device": (
        ["align", "train", "--examples", "x", "-o", "y", "--device", "bogus"],
        "malles align train: device: String should match pattern",
    ),
    "experiment seed negative": (
        ["prompts", "experiment", "a/", "b/", "--cases", "c.jsonl", "--seed", "-1"],
        "'--seed': Input should be greater than or equal to 0",
    ),
    "experiment no failures allowed": (
        ["prompts", "experiment", "a/", "b/", "--cases", "c.jsonl", "--max-failures", "0"],
        "'--max-failures': Input should be greater than or equal to 1",
    ),
    "set a required field empty": (["run", DEMO, "--set", "name="], "demo.yaml: name: Input should be a valid string"),
    "case seed negative": (["eval", "build", "-o", "cases.jsonl", "--seed", "-1"], "greater than or equal to 0"),
    "economist workers past memory": (
        ["economist", "run", ECONOMIST, "--workers", str(10**12)],
        "economist.n_workers: Input should be less than or equal to 10000000",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_usage_error_is_one_line_exit_2(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    args, expected = CASES[case]
    code, output = run_cli(args, capsys)
    assert code == 2, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert expected in lines[0]


def test_console_script_usage_error_has_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "malles_graph.cli", "run", "--seed", "abc"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: ")
