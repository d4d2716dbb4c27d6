"""Population supervisor benchmark: cost per round vs N, persistence overhead per decision, seed spread.

    MALLES_HOME=... .venv/bin/python benchmarks/bench_population.py                 # all three parts
    .venv/bin/python benchmarks/bench_population.py --sizes 1000,100000 --k 64 --rounds 2
    .venv/bin/python benchmarks/bench_population.py --skip-scale --skip-spread       # persistence only

1. Scale: for N in --sizes (customers synthesised from Ta Feng by resampling with noise beyond the
   32,266 real ones) at K archetypes, one subprocess per N runs ``run_scenario`` with an instant
   scripted model through the real decision graph (debate off: one LLM call per decision), SQLite
   store and checkpointer. Printed: setup time (features, clustering, situations), wall time per
   round, peak RSS of the process, LLM calls. Per-round cost must stay flat in N.
2. Persistence: the supervisor on the same K representatives with (a) nothing stored, (b) the
   SQLModel recorder, (c) recorder + SqliteSaver checkpointer; overhead per decision = (c - a) / decisions.
3. Stability: the scenario under three seeds with the choice-model backend; spread of the final m.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def scenario(n: int, k: int, rounds: int, url: str, backend: str = "local", seed: int = 0):
    from malles_graph.scenario import Scenario

    return Scenario.model_validate(
        {
            "name": f"bench-{n}",
            "seed": seed,
            "backend": {"name": backend, "cache": False, "max_concurrency": 4},
            "population": {"n_customers": n, "archetypes": k},
            "environment": {"n_candidates": 5, "initial_stock": 100000},
            "decision": {"debate_rounds": 0, "retrieval": False},
            "mean_field": {"max_rounds": rounds, "epsilon": 1e-12},
            "store": {"url": url},
        }
    )


def instant_client():
    from bench_decision import InstantModel  # benchmarks/ is on sys.path when run as documented (never tests.*)

    from malles_graph.backends import build_client
    from malles_graph.scenario import BackendConfig

    return build_client(BackendConfig(cache=False, max_concurrency=4), chat_model=InstantModel())


def one_size(n: int, k: int, rounds: int) -> dict:
    """Run one N (in its own process, so peak RSS is this run's)."""
    from malles_graph.graphs.run import run_scenario

    marks: dict[str, float] = {}

    def timer(event) -> None:
        if event.type == "round_started":
            marks.setdefault("first_round", time.perf_counter())
            marks[f"start{event.round}"] = time.perf_counter()
        elif event.type == "round_finished":
            marks[f"end{event.round}"] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run_scenario(scenario(n, k, rounds, f"sqlite:///{tmp}/bench.sqlite"), on_event=timer,
                               client=instant_client())
        total = time.perf_counter() - start
    per_round = [marks[f"end{r}"] - marks[f"start{r}"] for r in range(1, rounds + 1)]
    return {
        "n": n, "k": k, "setup_s": marks["first_round"] - start, "round_s": per_round, "total_s": total,
        "decisions": summary.decisions, "llm_calls": summary.llm_calls,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def scale(sizes: list[int], k: int, rounds: int) -> None:
    print(f"\n== scale: K={k}, {rounds} rounds, instant scripted model, SQLite store + checkpointer")
    print(f"{'N':>10} {'setup s':>8} {'s/round':>22} {'calls':>6} {'peak RSS MB':>12}")
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--k", str(k), "--rounds", str(rounds)],
                             capture_output=True, text=True, cwd=REPO, env=os.environ)
        if out.returncode != 0:
            print(f"{n:>10} failed: {out.stderr[-800:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rounds_txt = ", ".join(f"{x:.2f}" for x in r["round_s"])
        print(f"{n:>10,} {r['setup_s']:>8.1f} {rounds_txt:>22} {r['llm_calls']:>6} {r['peak_rss_mb']:>12.0f}")


def persistence(k: int, rounds: int) -> None:
    """The same decisions through the bare graph (nothing stored) and through the runner (recorder, checkpointer)."""
    from malles_graph.graphs.decision import graph as decision_graph
    from malles_graph.graphs.population import build_population_graph, run_context, run_inputs
    from malles_graph.graphs.run import run_scenario

    from malles_graph.population.retail import RetailEnvironment

    with tempfile.TemporaryDirectory() as tmp:
        sc = scenario(5000, k, rounds, f"sqlite:///{tmp}/p.sqlite")
        inputs = run_inputs(sc)  # the population once: setup is not what is measured
        times: dict[str, float] = {}
        # a warm-up pass first (prompt files, lazy imports), then each mode twice; the best time counts
        for attempt, mode in enumerate(["graph only"] + 2 * ["graph only", "runner (recorder + checkpointer)"]):
            t = time.perf_counter()
            if mode == "graph only":
                graph = build_population_graph(decision_graph, RetailEnvironment(sc.environment)).compile()
                graph.invoke(inputs, {"max_concurrency": 256}, context=run_context(sc, instant_client()))
            else:
                run_scenario(sc, client=instant_client(), inputs=inputs)
            if attempt:
                times[mode] = min(times.get(mode, float("inf")), time.perf_counter() - t)
        decisions = len(inputs["agents"]) * rounds
        print(f"\n== persistence: K={k}, {rounds} rounds = {decisions} decisions (instant scripted model, SQLite)")
        for mode, s in times.items():
            print(f"{mode:>32}: {s:6.2f} s  ({1000 * s / decisions:6.1f} ms/decision)")
        overhead = (times["runner (recorder + checkpointer)"] - times["graph only"]) / decisions
        print(f"{'overhead per decision':>32}: {1000 * overhead:6.1f} ms")


def spread(k: int, rounds: int) -> None:
    from malles_graph.graphs.run import run_seeds
    from rich.console import Console

    from malles_graph.cli.run_view import spread_table

    with tempfile.TemporaryDirectory() as tmp:
        sc = scenario(32266, k, rounds, f"sqlite:///{tmp}/s.sqlite", backend="choice-model")
        summaries, result = run_seeds(sc, [0, 1, 2])
    print(f"\n== stability: all Ta Feng customers, K={k}, {rounds} rounds, choice-model backend, seeds 0-2")
    Console(width=110).print(spread_table(result))
    for s in summaries:
        print(f"seed {s.seed}: final distance {s.final.distance:.4f}, rounds {len(s.rounds)}, status {s.status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-persistence", action="store_true")
    parser.add_argument("--skip-spread", action="store_true")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.k, args.rounds)))
        return
    if not args.skip_scale:
        scale([int(x) for x in args.sizes.split(",")], args.k, args.rounds)
    if not args.skip_persistence:
        persistence(args.k, 2)
    if not args.skip_spread:
        spread(16, 3)


if __name__ == "__main__":
    main()
