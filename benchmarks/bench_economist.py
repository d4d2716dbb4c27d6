"""Benchmark of the economist scenario: steps/s with best-response workers, LLM calls per step with archetypes.

Usage:
  .venv/bin/python benchmarks/bench_economist.py                 # N = 100, 10k, 1M best response; call counts
  .venv/bin/python benchmarks/bench_economist.py --sizes 100 10000
  .venv/bin/python benchmarks/bench_economist.py --local         # also one real step on the bundled model (slow)

Figures printed:
- graph steps/s: a full run through the LangGraph graph (worker node, planner every 2 steps), timed from
  the first to the last step's progress callback, so population sampling, the Saez fixed point and the
  post-run analysis are not counted (their times are printed separately);
- kernel steps/s: best response + evaluation + summary alone (numpy), without the graph;
- LLM calls per step: counted with a counting chat model that always answers validly (so the figure is
  the structural cost: one call per simulated worker, plus the planner's call on planner steps); --local
  repeats it on the real bundled llama.cpp model for a small population.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from malles_graph.graphs.economist import run_economist

from malles_graph.economist.economy import best_response, evaluate, labour_model
from malles_graph.economist.options import EconomistOptions
from malles_graph.economist.population import sample_population
from malles_graph.economist.tax import us_schedule
from malles_graph.economist.welfare import summarise
from malles_graph.scenario import parse_scenario


class CountingChatModel(BaseChatModel):
    """Answers every role with a valid JSON (benchmark only: measures structure, not model quality)."""

    @property
    def _llm_type(self) -> str:
        return "counting"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        text = messages[0].content
        if "tax planner" in text:
            answer = '{"rates": [12, 14, 24, 26, 33, 36, 38]}'
        elif "election" in text:
            answer = '{"vote": "A"}'
        else:
            answer = '{"hours": 40}'
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=answer))])


def scenario(n: int, steps: int, backend: str = "best-response", **econ: Any):
    return parse_scenario(
        {
            "name": f"bench-{n}",
            "kind": "economist",
            "seed": 0,
            "backend": {"name": backend, "cache": False, "max_tokens": 32, "max_retries": 1, "max_concurrency": 2},
            "economist": {"n_workers": n, "steps": steps, "planner_every": 2, "stackelberg_check": False,
                          "keep_worker_rows": 0, **econ},
        }
    )


def bench_graph(n: int, steps: int) -> dict[str, float]:
    stamps: list[tuple[float, float]] = []
    start = time.perf_counter()

    def progress(*_: Any) -> None:
        stamps.append((time.perf_counter(), time.process_time()))

    run = run_economist(scenario(n, steps), progress=progress, write=False)
    total = time.perf_counter() - start
    wall = stamps[-1][0] - stamps[0][0]
    cpu = stamps[-1][1] - stamps[0][1]
    return {
        "n": n,
        "graph_steps_per_s": (len(stamps) - 1) / wall if wall > 0 else float("inf"),
        "graph_steps_per_cpu_s": (len(stamps) - 1) / cpu if cpu > 0 else float("inf"),
        "setup_s": stamps[0][0] - start,
        "total_s": total,
        "mean_hours": run.history[-1]["mean_hours"],
    }


def bench_kernel(n: int, repeats: int) -> tuple[float, float]:
    opt = EconomistOptions(n_workers=n)
    pop = sample_population(n, opt, np.random.default_rng(0))
    model = labour_model(opt)
    sched = us_schedule()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        hours, best = best_response(pop.skill, sched, model)
        out = evaluate(pop.skill, hours, sched, model, pop.weight, best_private=best)
        summarise(out, pop.potential_income, opt)
    return repeats / (time.perf_counter() - start), repeats / (time.process_time() - cpu)


def bench_calls(n: int, archetypes: int | None, steps: int, backend: str, chat: BaseChatModel | None) -> dict[str, Any]:
    start = time.perf_counter()
    run = run_economist(scenario(n, steps, backend, archetypes=archetypes), chat_model=chat, write=False)
    worker_calls = [r["llm_calls"] for r in run.history]
    planner_calls = sum(e["calls"] for e in run.planner_log)
    return {
        "n": n,
        "archetypes": archetypes,
        "worker_calls_per_step": float(np.mean(worker_calls)),
        "all_calls_per_step": run.llm_calls_per_step,
        "planner_calls": planner_calls,
        "failures": run.meta["worker_failures"],
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--local", action="store_true", help="also run one step on the real bundled model")
    args = parser.parse_args()

    print("best-response workers (graph: worker node + planner node every 2 steps); wall-clock and per CPU-second")
    print("(on a shared machine the wall figures depend on the load; the CPU figures are what one free core gives)")
    print(f"{'N':>10} {'graph st/s':>11} {'graph st/cpu-s':>15} {'kernel st/s':>12} {'kernel st/cpu-s':>16} "
          f"{'setup s':>8} {'total s':>8}")
    for n in args.sizes:
        g = bench_graph(n, args.steps)
        k_wall, k_cpu = bench_kernel(n, repeats=3 if n >= 1_000_000 else 10)
        print(f"{n:>10,} {g['graph_steps_per_s']:>11.2f} {g['graph_steps_per_cpu_s']:>15.2f} {k_wall:>12.2f} "
              f"{k_cpu:>16.2f} {g['setup_s']:>8.2f} {g['total_s']:>8.2f}")

    print("\nLLM calls per step (counting chat model; planner acts every 2 steps)")
    print(f"{'N':>10} {'archetypes':>11} {'worker calls/step':>18} {'all calls/step':>15} {'seconds':>8}")
    for n, k in ((100, None), (10_000, 100)):
        c = bench_calls(n, k, 4, "local", CountingChatModel())
        print(f"{n:>10,} {str(k or '-'):>11} {c['worker_calls_per_step']:>18.1f} {c['all_calls_per_step']:>15.2f} "
              f"{c['seconds']:>8.1f}")
    if args.local:
        print("\nreal bundled model (local backend), 1,000 workers in 4 archetypes, 2 steps")
        c = bench_calls(1_000, 4, 2, "local", None)
        print(f"worker calls/step {c['worker_calls_per_step']:.1f}, all calls/step {c['all_calls_per_step']:.2f}, "
              f"failures {c['failures']}, {c['seconds']:.1f} s")


if __name__ == "__main__":
    main()
