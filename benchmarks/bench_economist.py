"""Benchmarks of the economist scenario: the CMA-ES planner against Saez and a multi-start search, the cost of a
million-worker step, and the bundled local LLM as planner and workers.

Usage:
  .venv/bin/python benchmarks/bench_economist.py planner                 # 1,000 and 10,000 workers, seeds 7-11
  .venv/bin/python benchmarks/bench_economist.py planner --sizes 1000 --seeds 7 8
  .venv/bin/python benchmarks/bench_economist.py million                 # one planner step at 1,000,000 workers
  .venv/bin/python benchmarks/bench_economist.py local --workers 3 --steps 3   # the bundled SmolLM2 (slow)

Figures printed:
- planner: per size and seed, the run's final schedule (the incumbent) in best-response equilibrium, the Saez
  schedule, and the best schedule of a multi-start CMA-ES search (starts: final, U.S., Saez, flat; --budget
  evaluations each), with the gap final vs best; at most --steps planner steps (one per step, planner_every 1);
- million: wall and CPU seconds of one step's best response + evaluation + summary at 1,000,000 workers
  (the work of the best_response node) and of one planner action (one CMA-ES generation on the oracle sample);
- local: the share of planner answers that parsed, worker failures, the workers' mean regret against the
  best response, LLM calls and seconds, on the real bundled model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
from malles_graph.graphs.economist import run_context
from malles_graph.graphs.run import run_scenario

from malles_graph.economist.economy import best_response, evaluate
from malles_graph.economist.runs import EconomistRunData, load_economist_run
from malles_graph.economist.search import replay_cma, schedule_welfare
from malles_graph.economist.tax import us_schedule
from malles_graph.economist.welfare import summarise
from malles_graph.scenario import parse_scenario


def scenario(n: int, steps: int, seed: int, backend: str = "best-response", **econ):
    return parse_scenario({
        "name": f"bench-{n}", "kind": "economist", "seed": seed,
        "backend": {"name": backend, "cache": False, "max_retries": 1, "max_concurrency": 1,
                    "max_tokens": 64, "temperature": 0.7},
        "economist": {"n_workers": n, "steps": steps, **econ},
    })


def run_stored(sc) -> EconomistRunData:
    """Run through the generic runner into a throw-away store (as `malles economist run` does) and read it back."""
    store = f"sqlite:///{tempfile.mkdtemp(prefix='bench-economist-')}/runs.sqlite"
    summary = run_scenario(sc, store_url=store)
    if summary.status != "finished":
        raise SystemExit(f"run {summary.run_id} {summary.status}: {summary.reason}")
    return load_economist_run(summary.run_id, store)


def bench_planner(sizes: list[int], seeds: list[int], steps: int, budget: int) -> None:
    print(f"CMA-ES planner, best-response workers, {steps} planner steps (planner_every 1), objective skill_weighted")
    print(f"{'N':>7} {'seed':>4} {'final W':>9} {'Saez W':>9} {'best multi':>10} {'gap %':>6} {'> Saez':>6} "
          f"{'steps':>5} {'run s':>6}")
    for n in sizes:
        wins = within = 0
        for seed in seeds:
            sc = scenario(n, steps, seed, planner_every=1, check_budget=budget)
            start = time.perf_counter()
            run = run_stored(sc)
            check = run.analysis["stackelberg"]
            beats = check["final_welfare"] > check["saez_welfare"]
            ok = check["relative_gap"] <= 0.01
            wins, within = wins + beats, within + ok
            print(f"{n:>7,} {seed:>4} {check['final_welfare']:>9,.0f} {check['saez_welfare']:>9,.0f} "
                  f"{check['best_welfare']:>10,.0f} {100 * check['relative_gap']:>6.2f} {str(beats):>6} "
                  f"{run.meta['planner_actions']:>5} {time.perf_counter() - start:>6.0f}", flush=True)
        print(f"{n:>7,}: above Saez on {wins} of {len(seeds)} seeds; within 1% of the multi-start best on "
              f"{within} of {len(seeds)}")


def bench_million(n: int, repeats: int) -> None:
    sc = scenario(n, 2, 5)
    ctx = run_context(sc)
    start = time.perf_counter()
    world = ctx.world
    print(f"{n:,} workers: population, Saez and oracle sample built in {time.perf_counter() - start:.1f} s")
    sched = us_schedule()
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        hours, best = best_response(world.pop.skill, sched, world.model)
        out = evaluate(world.pop.skill, hours, sched, world.model, world.pop.weight, best_private=best)
        summarise(out, world.pop.potential_income, ctx.options)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    print(f"step (best response + evaluation + summary): wall median {statistics.median(walls):.3f} s "
          f"(min {min(walls):.3f}), CPU median {statistics.median(cpus):.3f} s over {repeats} repeats")
    t, c = time.perf_counter(), time.process_time()
    cs = replay_cma(list(sched.rates), ctx.options.cma_sigma, 0, [])
    oracle = world.oracle
    for x in cs.pending:
        schedule_welfare(sched.model_copy(update={"rates": tuple(x)}), oracle.skill, oracle.potential_income,
                         oracle.weight, world.model, ctx.options, ctx.options.objective)
    print(f"planner action (one CMA-ES generation of {len(cs.pending)} on {len(oracle.skill):,} oracle workers): "
          f"wall {time.perf_counter() - t:.3f} s, CPU {time.process_time() - c:.3f} s")


def bench_local(workers: int, steps: int, seed: int) -> None:
    sc = scenario(workers, steps, seed, backend="local", planner_every=1, stackelberg_check=False)
    start = time.perf_counter()
    run = run_stored(sc)
    llm = [e for e in run.planner_log if e["policy"] == "llm"]
    parsed = sum(e["ok"] for e in llm)
    hours = [r["mean_hours"] for r in run.history]
    print(f"local bundled model, {workers} LLM workers, LLM planner, {steps} steps, seed {seed}: "
          f"{time.perf_counter() - start:.0f} s, {run.meta['llm_calls']} LLM calls")
    print(f"planner answers parsed: {parsed} of {len(llm)} ({parsed / max(1, len(llm)):.0%}); "
          f"planner failures recorded {run.meta['planner_failures']}")
    print(f"worker failures: {run.meta['worker_failures']} of {workers * steps} decisions; mean hours per step "
          f"{[round(h, 1) for h in hours]}; mean regret vs best response per step "
          f"{[round(r['mean_regret']) for r in run.history]} $ (mean {np.mean([r['mean_regret'] for r in run.history]):,.0f} $)")
    for e in llm:
        error = "" if e["ok"] else f" error {e['error']!r}"
        print(f"  step {e['step']}: ok={e['ok']} applied {[round(r) for r in e['after']]} "
              f"answer {e['answer'][:120]!r}{error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("planner")
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    p.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9, 10, 11])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--budget", type=int, default=800, help="evaluations per start of the multi-start search")
    m = sub.add_parser("million")
    m.add_argument("--workers", type=int, default=1_000_000)
    m.add_argument("--repeats", type=int, default=5)
    loc = sub.add_parser("local")
    loc.add_argument("--workers", type=int, default=3)
    loc.add_argument("--steps", type=int, default=3)
    loc.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.what == "planner":
        bench_planner(args.sizes, args.seeds, args.steps, args.budget)
    elif args.what == "million":
        bench_million(args.workers, args.repeats)
    else:
        bench_local(args.workers, args.steps, args.seed)


if __name__ == "__main__":
    main()
