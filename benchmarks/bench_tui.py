"""How fast the terminal UI starts and switches screens; prints the figures quoted in docs/tui.md.

    python benchmarks/bench_tui.py [--warm 5] [--size 160x45]

* start-up: wall time from spawning ``python`` to the app's first screen being ready (Textual's Ready
  event), on the same import path as ``malles tui`` (the CLI package, then the app), headless;
  *cold* runs with an empty bytecode cache (``PYTHONPYCACHEPREFIX`` pointing at a fresh folder, so every
  module is compiled again, as on the first launch after an install), *warm* with the normal cache.
* screen switch: F2..F6 pressed in a running app (Pilot), time until the app is idle again; the first
  visit of a screen composes it, later visits only show it. Targets (issue 17): 2 s warm, 10 s cold,
  200 ms per switch when idle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = """
import malles_graph.cli  # what `malles tui` imports before the app
from malles_graph.tui.app import MallesApp

class Timed(MallesApp):
    def on_ready(self) -> None:
        print("ready", flush=True)
        self.exit()

Timed(real_sample=False).run(headless=True, size=(160, 45))
"""


def start_once(env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds to the first screen, CPU seconds the child used in all): on a shared machine the
    CPU time shows the app's own cost, the wall time what the user waited."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait(timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if line.strip() != "ready":
        raise SystemExit(f"the app did not start (exit code {proc.returncode})")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def startup(warm_runs: int) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    with tempfile.TemporaryDirectory(prefix="malles-pycache-") as cache:
        cold = start_once({**os.environ, "PYTHONPYCACHEPREFIX": cache})
    start_once(dict(os.environ))  # make sure the normal bytecode cache is filled
    warm = [start_once(dict(os.environ)) for _ in range(warm_runs)]
    return cold, warm


async def switches(size: tuple[int, int], rounds: int = 3) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    from malles_graph.tui.app import MallesApp

    keys = {"f3": "debate", "f4": "population", "f5": "history", "f6": "editor", "f2": "run"}
    times: dict[str, list[float]] = {mode: [] for mode in keys.values()}
    cpu_times: dict[str, list[float]] = {mode: [] for mode in keys.values()}
    app = MallesApp(real_sample=False)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)
        for _ in range(rounds):
            for key, mode in keys.items():
                start, cpu = time.perf_counter(), time.process_time()
                await pilot.press(key)
                await pilot.pause()
                times[mode].append(time.perf_counter() - start)
                cpu_times[mode].append(time.process_time() - cpu)
                assert app.current_mode == mode
                await pilot.pause(0.3)  # idle between switches, as a user is
    return times, cpu_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=5, help="warm start-ups measured")
    parser.add_argument("--size", default="160x45", help="terminal size for the switch timings, e.g. 80x24")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    cold, warm = startup(args.warm)
    walls = [w for w, _ in warm]
    print(
        f"start-up to the first screen: cold {cold[0]:.2f} s wall, {cold[1]:.2f} s CPU (target 10 s); "
        f"warm median {statistics.median(walls):.2f} s wall (max {max(walls):.2f} s over {len(warm)} runs), "
        f"{statistics.median(c for _, c in warm):.2f} s CPU (target 2 s)"
    )
    times, cpu_times = asyncio.run(switches((width, height)))
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"screen switches at {width}x{height} (first visit composes the screen; target 200 ms when idle):")
    for mode, values in times.items():
        later = values[1:]
        cpu = cpu_times[mode]
        print(
            f"  {mode:<11} first {values[0] * 1000:6.0f} ms ({cpu[0] * 1000:5.0f} ms CPU)   "
            f"later median {statistics.median(later) * 1000:5.0f} ms ({statistics.median(cpu[1:]) * 1000:4.0f} ms CPU), "
            f"max {max(later) * 1000:5.0f} ms"
        )


if __name__ == "__main__":
    main()
