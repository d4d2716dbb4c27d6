"""Progress off a terminal: plain lines on stderr (rich draws its spinner and bar only on a terminal)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from malles_graph.cli.progress import counted, stages


def piped() -> Console:
    return Console(file=io.StringIO(), force_terminal=False)


def test_stages_are_lines_with_their_seconds_when_they_end(capsys: pytest.CaptureFixture[str]) -> None:
    console = piped()
    with stages(console, "reading [cases]") as say:
        say("fitting the persona")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert re.fullmatch(r"reading \[cases\]: \d+\.\d s", err[0])  # markup-like text printed as it is
    assert re.fullmatch(r"fitting the persona: \d+\.\d s", err[1])
    assert console.file.getvalue() == ""  # stdout keeps only the command's result


def test_a_failed_stage_leaves_only_its_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError), stages(piped(), "reading cases"):
        raise ValueError("cases.jsonl:2: invalid case")
    assert capsys.readouterr().err == ""


def test_a_count_is_a_line_at_each_tenth(capsys: pytest.CaptureFixture[str]) -> None:
    with counted(piped(), "agent", 2000) as advance:
        for _ in range(2000 // 256 + 1):
            advance(min(256, 2000 - _ * 256))
    err = capsys.readouterr().err.splitlines()
    # batches of 256 cross the tenths 1..9 and reach the total: one line each crossing, none twice
    assert [int(re.match(r"agent: (\d+) of 2000", line).group(1)) for line in err] == [
        256,
        512,
        768,
        1024,
        1280,
        1536,
        1792,
        2000,
    ]
    assert "s left" in err[0] and err[-1].startswith("agent: 2000 of 2000 (100%) in ") and "left" not in err[-1]


def test_a_resumed_count_starts_after_what_was_done(capsys: pytest.CaptureFixture[str]) -> None:
    with counted(piped(), "agent", 100, done=95) as advance:
        advance(4)  # 99 of 100: no tenth crossed since the 90% already done
        advance(1)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("agent: 100 of 100 (100%) in ")


def test_a_count_line_carries_the_latest_figures(capsys: pytest.CaptureFixture[str]) -> None:
    with counted(piped(), "training", 4) as advance:
        for step in range(4):
            advance(1, f"loss {1.0 / (step + 1):.4f}")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and lines[-1].startswith("training: 4 of 4 (100%) in ")
    assert lines[-1].endswith("; loss 0.2500") and lines[0].endswith("; loss 1.0000")


def test_a_count_inside_a_stage(capsys: pytest.CaptureFixture[str]) -> None:
    """Off a terminal the count's tenths are lines, and the stage still ends with its own line."""
    with stages(piped(), "building the memory") as say:
        advance = say.count("episodes", 50)
        for _ in range(5):
            advance(10)
        say("fitting")
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in err[:5]] == [f"episodes: {n} of 50" for n in (10, 20, 30, 40, 50)]
    assert re.fullmatch(r"building the memory: \d+\.\d s", err[5]) and err[6].startswith("fitting: ")


def test_on_a_terminal_the_count_is_in_the_spinner() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with stages(console, "embedding the queries") as say:
        say("building the memory")
        advance = say.count("episodes", 2000)
        advance(500)
        assert say._status.renderable.text.plain == "episodes: 500 of 2,000 - building the memory"
