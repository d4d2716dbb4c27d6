"""How fast the terminal UI starts and switches screens; prints the figures quoted in docs/tui.md.

    python benchmarks/bench_tui.py [--warm 5] [--size 160x45] [--rounds 4] [--switches-only] [--real-sample]

* start-up: from spawning ``python`` to the app's first screen being ready (Textual's Ready event),
  headless, on the import path of ``malles tui`` (the CLI package, its ``tui`` command resolved through
  the lazy command table, then the app). *cold* runs with an empty bytecode cache
  (``PYTHONPYCACHEPREFIX`` pointing at a fresh folder, so every module is compiled again, as on the first
  launch after an install), *warm* with the normal cache. Each run reports wall time and the child's CPU
  time, and how much of each went to imports (until the app class is imported).
* screen switch: F3, F4, F5, F6, F2 pressed in a running app (Pilot) once the background preload has
  finished (the operator reads the first screen meanwhile), each screen visited ``--rounds`` times. Per
  visit: *shown*, wall time from the key to the compositor's first frame of the new screen (what the
  operator waits for); *loaded*, until the screen's own workers are done (runs listed, sample customer
  built) and the app is idle; "UI CPU a/b", the event-loop thread's CPU until shown / until loaded (what
  the switch costs the UI), and in brackets the whole process's until loaded (worker threads included).
  The first visit composes the screen and loads its data; later ones only show it. Then one round of
  first visits straight after start-up, while the preload still runs. Each of the two runs in a fresh
  process, so no module is imported before its app starts.

On a shared machine the wall time is mostly waiting for a core: the load average is printed before and
after each part, and CPU time is the fair proxy for "when idle". Targets (issue 17): start-up 2 s warm,
10 s cold; 200 ms per switch when idle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, NamedTuple

CHILD = """
import time
import typer
import malles_graph.cli as cli  # what `malles` imports
typer.main.get_command(cli.app).commands["tui"]  # what `malles tui` imports to find its command
from malles_graph.tui.app import MallesApp  # what the command imports
print("imported", time.time(), time.process_time(), flush=True)

class Timed(MallesApp):
    def on_ready(self) -> None:
        print("ready", time.time(), time.process_time(), flush=True)
        self.exit()

Timed(real_sample=False).run(headless=True, size=(160, 45))
"""


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def start_once(env: dict[str, str]) -> dict[str, float]:
    """Wall and CPU seconds to the end of the imports and to the first screen."""
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    marks = {}
    for line in proc.stdout:
        name, at, cpu = line.split()
        marks[f"{name}_wall"], marks[f"{name}_cpu"] = float(at) - start, float(cpu)
        if name == "ready":
            break
    proc.wait(timeout=120)
    if "ready_wall" not in marks:
        raise SystemExit(f"the app did not start (exit code {proc.returncode})")
    return marks


def describe(marks: list[dict[str, float]]) -> str:
    def med(key: str) -> float:
        return statistics.median(m[key] for m in marks)

    return (
        f"{med('ready_wall'):.2f} s wall, {med('ready_cpu'):.2f} s CPU; "
        f"imports {med('imported_wall'):.2f} s wall ({med('imported_wall') / med('ready_wall'):.0%}), "
        f"{med('imported_cpu'):.2f} s CPU ({med('imported_cpu') / med('ready_cpu'):.0%})"
    )


def startup(warm_runs: int) -> None:
    print(load())
    with tempfile.TemporaryDirectory(prefix="malles-pycache-") as cache:
        cold = start_once({**os.environ, "PYTHONPYCACHEPREFIX": cache})
    print(f"cold start (empty bytecode cache; target 10 s): {describe([cold])}")
    start_once(dict(os.environ))  # make sure the normal bytecode cache is filled
    warm = [start_once(dict(os.environ)) for _ in range(warm_runs)]
    print(
        f"warm start, median of {warm_runs} (target 2 s): {describe(warm)}; "
        f"max {max(m['ready_wall'] for m in warm):.2f} s wall"
    )
    print(load())


KEYS = {"f3": "debate", "f4": "population", "f5": "history", "f6": "editor", "f2": "run"}
BACKGROUND = ("preload", "run")  # app-level workers; every other worker belongs to the screen shown


class Visit(NamedTuple):
    """One screen switch: wall ms until the new screen's first frame and until it has loaded, and CPU ms."""

    shown: float  # key press -> the compositor's first frame of the new screen
    loaded: float  # key press -> the screen's own workers done (data read, sample built) and the app idle
    ui_cpu_shown: float  # event-loop thread CPU until the first frame
    ui_cpu: float  # event-loop thread CPU until loaded: what the switch costs the UI
    cpu: float  # whole process CPU until loaded (worker threads included)


async def visit(app: Any, pilot: Any, key: str, mode: str) -> Visit:
    frames: list[tuple[float, float]] = []
    display = app._display

    def timed_display(screen: Any, renderable: Any) -> None:
        if renderable is not None and screen is app.screen and app.current_mode == mode and not frames:
            frames.append((time.perf_counter(), time.thread_time()))
        display(screen, renderable)

    app._display = timed_display
    start, cpu, thread = time.perf_counter(), time.process_time(), time.thread_time()
    await pilot.press(key)
    await pilot.pause()
    while any(w.group not in BACKGROUND and not w.is_finished for w in app.workers):
        await pilot.pause(0.01)
    await pilot.pause()
    loaded = time.perf_counter()
    ui_cpu, all_cpu = time.thread_time() - thread, time.process_time() - cpu
    app._display = display
    assert app.current_mode == mode and frames, f"{mode} was not shown"
    shown, shown_cpu = frames[0]
    ms = [(shown - start), (loaded - start), (shown_cpu - thread), ui_cpu, all_cpu]
    return Visit(*(v * 1000 for v in ms))


async def switches(size: tuple[int, int], rounds: int, wait_preload: bool, real_sample: bool) -> dict[str, list[Visit]]:
    """Visit every screen ``rounds`` times; the first visit composes it. With ``wait_preload`` the visits
    start once the background preload is done (a user reading the first screen), else straight away."""
    from malles_graph.tui.app import MallesApp

    times: dict[str, list[Visit]] = {mode: [] for mode in KEYS.values()}
    app = MallesApp(real_sample=real_sample)
    async with app.run_test(size=size) as pilot:
        if wait_preload:
            while any(w.group == "preload" and not w.is_finished for w in app.workers):
                await pilot.pause(0.1)  # what the screens need is imported in the background first
            await pilot.pause(0.5)
        for _ in range(rounds):
            for key, mode in KEYS.items():
                times[mode].append(await visit(app, pilot, key, mode))
                await pilot.pause(0.3)  # idle between switches, as a user is
    return times


def report_switches(times: dict[str, list[Visit]]) -> None:
    for mode, values in times.items():
        first, later = values[0], values[1:]
        kind = "back " if mode == "run" else "first"  # the app starts on Run: its first switch is a return
        line = (
            f"  {mode:<11} {kind}: shown {first.shown:5.0f} ms, loaded {first.loaded:5.0f} ms, "
            f"UI CPU {first.ui_cpu_shown:3.0f}/{first.ui_cpu:3.0f} ms (all {first.cpu:4.0f})"
        )
        if later:
            line += (
                f"   later median: shown {statistics.median(v.shown for v in later):4.0f} ms, "
                f"UI CPU {statistics.median(v.ui_cpu for v in later):4.0f} ms, "
                f"max shown {max(v.shown for v in later):4.0f} ms"
            )
        print(line)


def visits(variant: str, size: tuple[int, int], rounds: int, real_sample: bool) -> None:
    """One variant of the switch timings; run in its own process, so no module is imported before the app."""
    print(load())
    if variant == "idle":
        print(f"screen switches at {size[0]}x{size[1]}, idle (after the background preload); target 200 ms")
        report_switches(asyncio.run(switches(size, rounds, wait_preload=True, real_sample=real_sample)))
    else:
        print(f"first visits at {size[0]}x{size[1]} straight after start-up (background preload still running)")
        report_switches(asyncio.run(switches(size, 1, wait_preload=False, real_sample=real_sample)))
    print(load())


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def terminal_size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) >= 20 and int(height) >= 10):
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (at least 20x10), e.g. 80x24")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=positive, default=5, help="warm start-ups measured")
    parser.add_argument(
        "--size", type=terminal_size, default="160x45", help="terminal size for the switch timings, e.g. 80x24"
    )
    parser.add_argument("--rounds", type=positive, default=4, help="visits of each screen")
    parser.add_argument("--switches-only", action="store_true", help="skip the start-up runs")
    parser.add_argument(
        "--real-sample",
        action="store_true",
        help="the editor builds its Ta Feng sample customer, as `malles tui` does (needs the data; seconds); "
        "default: the built-in customer",
    )
    parser.add_argument("--visits", choices=("idle", "early"), help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    if args.visits:
        visits(args.visits, args.size, args.rounds, args.real_sample)
        return

    if not args.switches_only:
        startup(args.warm)
    for variant in ("idle", "early"):
        size = "x".join(map(str, args.size))
        child = [sys.executable, __file__, "--visits", variant, "--size", size, "--rounds", str(args.rounds)]
        child += ["--real-sample"] if args.real_sample else []
        subprocess.run(child, check=True)


if __name__ == "__main__":
    main()
