"""Progress on long work, on a terminal and off it.

On a terminal a command shows rich's spinner (:func:`stages`) or bar (:func:`counted`). Rich draws
neither when stdout is a file, a pipe or a CI log, so a four-minute `malles eval fit > fit.log` was
four silent minutes; off a terminal the same progress is printed as plain lines on stderr instead
(each stage with its seconds, a count at every tenth of the total), and stdout keeps only the
command's result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.status import Status

STEPS = 10  # off a terminal, a count is printed at each tenth of the total


def _lines(console: Console) -> Callable[[str], None]:
    """Print each message as a line on stderr."""
    err = Console(stderr=True, highlight=False, soft_wrap=True, force_terminal=False, no_color=console.no_color)
    return lambda message: err.print(escape(message))


class Stage:
    """What :func:`stages` yields: ``say(message)`` starts the next stage, and ``say.count(label, total)``
    gives ``advance(n)`` for a count inside the current stage (on a terminal in the spinner's text, off one
    as a line at each tenth, like :func:`counted`, whose bar cannot run inside the spinner)."""

    def __init__(self, first: str, status: Status | None = None, out: Callable[[str], None] | None = None) -> None:
        self._status, self._out = status, out  # on a terminal rich's spinner, else lines on stderr
        self._stage, self._start = first, time.perf_counter()

    def __call__(self, message: str) -> None:
        if self._status is not None:
            self._status.update(message)
        else:
            self.finish()
            self._start = time.perf_counter()
        self._stage = message

    def count(self, label: str, total: int) -> Callable[[int], None]:
        if self._status is not None:
            status, stage, state = self._status, self._stage, {"done": 0}

            def show(n: int) -> None:
                state["done"] += n
                # the count first: a long stage message (a folder) runs past the terminal's width
                status.update(f"{label}: {state['done']:,} of {total:,} - {stage}")

            return show
        assert self._out is not None
        return _tenths(self._out, label, total, 0)

    def finish(self) -> None:
        if self._out is not None:
            self._out(f"{self._stage}: {time.perf_counter() - self._start:.1f} s")


@contextmanager
def stages(console: Console, first: str) -> Iterator[Stage]:
    """A long step told stage by stage: yields a :class:`Stage`, ``say``; ``say(message)`` starts the next
    stage.

    Off a terminal each stage is printed when it ends, with its seconds: a bad input refused in the
    first stage then leaves stderr the one line of its error.
    """
    if console.is_terminal:
        with console.status(first) as status:
            yield Stage(first, status=status)
        return
    say = Stage(first, out=_lines(console))
    yield say
    say.finish()  # not reached when the step raised: its error is the last line


def _tenths(out: Callable[[str], None], label: str, total: int, done: int) -> Callable[..., None]:
    """``advance(n, detail="")`` printing a line at each tenth of ``total`` reached, with the time left."""
    start, size = time.perf_counter(), max(total, 1)
    state = {"done": done, "next": done * STEPS // size + 1}

    def advance(n: int, detail: str = "") -> None:
        state["done"] += n
        step = state["done"] * STEPS // size
        if step < state["next"]:
            return
        state["next"] = step + 1
        seconds = time.perf_counter() - start
        rate = (state["done"] - done) / max(seconds, 1e-9)
        left = f", about {(total - state['done']) / rate:.0f} s left" if 0 < rate and state["done"] < total else ""
        figures = f"; {detail}" if detail else ""
        out(f"{label}: {state['done']} of {total} ({100 * state['done'] // size}%) in {seconds:.0f} s{left}{figures}")

    return advance


@contextmanager
def counted(console: Console, label: str, total: int, done: int = 0) -> Iterator[Callable[..., None]]:
    """Work of ``total`` units, ``done`` of them already done: yields ``advance(n, detail="")``
    (``detail``: the latest figures worth showing, such as a training loss).

    Off a terminal a line is printed at each tenth of the total reached, with the time left.
    """
    if console.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        details = (TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, *details, console=console) as bar:
            task = bar.add_task(label, total=total, completed=done, detail="")
            yield lambda n, detail="": bar.update(task, advance=n, detail=detail)
        return
    yield _tenths(_lines(console), label, total, done)
