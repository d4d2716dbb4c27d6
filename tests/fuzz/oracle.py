"""What a clean outcome is: a valid result, or a MallesError whose message is short, names the file, and
(for multi-problem scenario errors) lists one problem per line. Anything else fails the fuzz test."""

from __future__ import annotations

from malles_graph.errors import MallesError

MAX_LINE = 600
MAX_LINES = 14


def assert_clean_error(exc: BaseException, source: str) -> None:
    assert isinstance(exc, MallesError), f"{type(exc).__name__} escaped: {exc!r}"
    message = str(exc)
    lines = message.splitlines()
    assert lines, "empty error message"
    assert lines[0].startswith(source), f"the error does not name {source}: {message[:300]}"
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines"
    assert all(len(line) <= MAX_LINE for line in lines), f"a line of {max(map(len, lines))} characters"
    assert "Traceback" not in message
