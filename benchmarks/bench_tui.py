"""How fast the terminal UI starts and switches screens; prints the figures quoted in docs/tui.md.

    python benchmarks/bench_tui.py [--warm 5] [--size 160x45] [--rounds 4]

* start-up: from spawning ``python`` to the app's first screen being ready (Textual's Ready event),
  headless, on the import path of ``malles tui`` (the CLI package, its ``tui`` command resolved through
  the lazy command table, then the app). *cold* runs with an empty bytecode cache
  (``PYTHONPYCACHEPREFIX`` pointing at a fresh folder, so every module is compiled again, as on the first
  launch after an install), *warm* with the normal cache. Each run reports wall time and the child's CPU
  time, and how much of each went to imports (until the app class is imported).
* screen switch: F2..F6 pressed in a running app (Pilot) once the background preload of the screens has
  finished; time until the app is idle again. The first visit of a screen composes it, later visits only
  show it. CPU is the event loop thread's CPU time (what the switch costs the UI; worker threads that a
  screen starts are not counted) and, in brackets, the whole process's.

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


async def switches(size: tuple[int, int], rounds: int) -> dict[str, list[tuple[float, float, float]]]:
    from malles_graph.tui.app import MallesApp

    keys = {"f3": "debate", "f4": "population", "f5": "history", "f6": "editor", "f2": "run"}
    times: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in keys.values()}
    app = MallesApp(real_sample=False)
    async with app.run_test(size=size) as pilot:
        while any(w.group == "preload" and not w.is_finished for w in app.workers):
            await pilot.pause(0.1)  # the screens' modules are imported in the background first
        await pilot.pause(0.5)
        for _ in range(rounds):
            for key, mode in keys.items():
                start, cpu, thread = time.perf_counter(), time.process_time(), time.thread_time()
                await pilot.press(key)
                await pilot.pause()
                thread = time.thread_time() - thread
                times[mode].append((time.perf_counter() - start, thread, time.process_time() - cpu))
                assert app.current_mode == mode
                await pilot.pause(0.3)  # idle between switches, as a user is
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=5, help="warm start-ups measured")
    parser.add_argument("--size", default="160x45", help="terminal size for the switch timings, e.g. 80x24")
    parser.add_argument("--rounds", type=int, default=4, help="visits of each screen")
    parser.add_argument("--switches-only", action="store_true", help="skip the start-up runs")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    if not args.switches_only:
        startup(args.warm)
    print(load())
    times = asyncio.run(switches((width, height), args.rounds))
    print(f"screen switches at {width}x{height}: wall, event-loop CPU (process CPU); target 200 ms when idle")
    for mode, values in times.items():
        first, later = values[0], values[1:]

        def med(i: int, rows: list[tuple[float, float, float]] = later) -> float:
            return statistics.median(v[i] for v in rows) * 1000

        print(
            f"  {mode:<11} first {first[0] * 1000:5.0f} ms, {first[1] * 1000:4.0f} ms CPU ({first[2] * 1000:4.0f})   "
            f"later median {med(0):5.0f} ms, {med(1):4.0f} ms CPU ({med(2):4.0f}), "
            f"max {max(v[1] for v in later) * 1000:4.0f} ms CPU"
        )
    print(load())


if __name__ == "__main__":
    main()
