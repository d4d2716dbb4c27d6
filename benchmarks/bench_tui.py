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


def start_once(env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait(timeout=120)
    if line.strip() != "ready":
        raise SystemExit(f"the app did not start (exit code {proc.returncode})")
    return elapsed


def startup(warm_runs: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory(prefix="malles-pycache-") as cache:
        cold = start_once({**os.environ, "PYTHONPYCACHEPREFIX": cache})
    start_once(dict(os.environ))  # make sure the normal bytecode cache is filled
    warm = [start_once(dict(os.environ)) for _ in range(warm_runs)]
    return cold, warm


async def switches(size: tuple[int, int], rounds: int = 3) -> dict[str, list[float]]:
    from malles_graph.tui.app import MallesApp

    keys = {"f3": "debate", "f4": "population", "f5": "history", "f6": "editor", "f2": "run"}
    times: dict[str, list[float]] = {mode: [] for mode in keys.values()}
    app = MallesApp(real_sample=False)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)
        for _ in range(rounds):
            for key, mode in keys.items():
                start = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                times[mode].append(time.perf_counter() - start)
                assert app.current_mode == mode
                await pilot.pause(0.3)  # idle between switches, as a user is
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=5, help="warm start-ups measured")
    parser.add_argument("--size", default="160x45", help="terminal size for the switch timings, e.g. 80x24")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    cold, warm = startup(args.warm)
    print(
        f"start-up to the first screen: cold {cold:.2f} s (target 10 s); warm median {statistics.median(warm):.2f} s, "
        f"max {max(warm):.2f} s over {len(warm)} runs (target 2 s)"
    )
    times = asyncio.run(switches((width, height)))
    print(f"screen switches at {width}x{height} (first visit composes the screen; target 200 ms when idle):")
    for mode, values in times.items():
        later = values[1:]
        print(
            f"  {mode:<11} first {values[0] * 1000:6.0f} ms   later median {statistics.median(later) * 1000:5.0f} ms, "
            f"max {max(later) * 1000:5.0f} ms"
        )


if __name__ == "__main__":
    main()
