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

STEPS = 10  # off a terminal, a count is printed at each tenth of the total


def _lines(console: Console) -> Callable[[str], None]:
    """Print each message as a line on stderr."""
    err = Console(stderr=True, highlight=False, soft_wrap=True, force_terminal=False, no_color=console.no_color)
    return lambda message: err.print(escape(message))


@contextmanager
def stages(console: Console, first: str) -> Iterator[Callable[[str], None]]:
    """A long step told stage by stage: yields ``say(message)``, which starts the next stage.

    Off a terminal each stage is printed when it ends, with its seconds: a bad input refused in the
    first stage then leaves stderr the one line of its error.
    """
    if console.is_terminal:
        with console.status(first) as status:
            yield status.update
        return
    out, current = _lines(console), {"stage": first, "start": time.perf_counter()}

    def finish() -> None:
        out(f"{current['stage']}: {time.perf_counter() - current['start']:.1f} s")

    def say(message: str) -> None:
        finish()
        current.update(stage=message, start=time.perf_counter())

    yield say
    finish()  # not reached when the step raised: its error is the last line


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
    out, start, size = _lines(console), time.perf_counter(), max(total, 1)
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

    yield advance
