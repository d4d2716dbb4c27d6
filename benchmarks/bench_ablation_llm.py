"""Mechanism ablations of the LLM decision graph on held-out Ta Feng cases (prints a table; no asserts).

Runs the decision graph with an LLM backend (default: the bundled SmolLM2-135M through llama.cpp)
on the first N cases of a case file, once with every mechanism on and once with each switched off,
and prints hit@1, quantity MAE, the share of decisions that took the first listed candidate and
the paired bootstrap 95% interval of each ablation's hit@1 change against the full graph.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_ablation_llm.py --cases cases/test.jsonl -n 16

The memory holds the episodes of the cases' subclasses before the last case day (every query is
filtered to days before its own decision, so no case sees its future). Prompts and answers go
through the LLM response cache, so a configuration that repeats the full graph's calls (no vote:
sample 0 is the full graph's sample 0) costs nothing new.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from malles_graph.graphs.decision import DecisionContext, context_for_scenario, decide_situation
from rich.console import Console
from rich.table import Table

from malles_graph.evaluation.cases import ChoiceCase, read_cases
from malles_graph.scenario import BackendConfig, DecisionOptions, Scenario

console = Console()

ABLATIONS: dict[str, dict[str, object]] = {
    "full graph": {},
    "no retrieval": {"retrieval": False},
    "no Z": {"hidden_factors": False},
    "no debate (decide only)": {"debate_rounds": 0},
    "no vote (1 sample)": {"samples": 1},
    "no shuffle (vote, fixed order)": {"shuffle": False},
    "single agent": {"single_agent": True},
}


def run(cases: list[ChoiceCase], ctx: DecisionContext, name: str = "") -> list[dict]:
    rows = []
    for case in cases:
        start = time.perf_counter()
        result = decide_situation(case, ctx)
        d = result.decision
        rows.append(
            {
                "hit": float(d is not None and d.product_id == case.truth_product_id),
                "first": float(d is not None and d.product_id == case.candidates[0].product_id),
                "qerr": abs((d.quantity if d else 0) - case.truth_quantity),
                "ok": result.ok,
                "calls": result.outcome.llm_calls,
                "s": time.perf_counter() - start,
            }
        )
        r = rows[-1]
        console.print(
            f"  {name} {case.case_id}: hit {r['hit']:.0f} first-listed {r['first']:.0f} qerr {r['qerr']} "
            f"ok {r['ok']} calls {r['calls']} {r['s']:.0f} s "
            f"votes {result.outcome.details.get('votes')} error {result.outcome.error}"
        )
    return rows


def paired_ci(a: np.ndarray, b: np.ndarray, reps: int = 5000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of mean(b - a) over case resamples."""
    rng = np.random.default_rng(seed)
    diff = b - a
    idx = rng.integers(0, len(diff), size=(reps, len(diff)))
    means = diff[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", required=True)
    parser.add_argument("-n", type=int, default=16, help="first N cases of the file")
    parser.add_argument("--backend", default="local")
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per LLM call (a loaded machine needs more)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="debate rounds of the full graph (0: decide only)")
    parser.add_argument(
        "--samples", type=int, default=None, help="decisions drawn per case (default: the backend's default)"
    )
    parser.add_argument("--only", nargs="*", default=None, help="ablation names to run (default: all)")
    args = parser.parse_args()

    cases = read_cases(args.cases)[: args.n]
    before = max(c.date for c in cases)
    scenario = Scenario(
        name="ablation",
        backend=BackendConfig(name=args.backend, model=args.model, max_tokens=args.max_tokens, timeout_s=args.timeout),
        decision=DecisionOptions(debate_rounds=args.rounds, samples=args.samples),
    )
    start = time.perf_counter()
    base, _ = context_for_scenario(scenario, subclasses=sorted({c.subclass for c in cases}), before=before)
    console.print(
        f"{len(cases)} cases, {len({c.subclass for c in cases})} subclasses; memory ready in "
        f"{time.perf_counter() - start:.0f} s; samples {base.samples}"
    )
    base = replace(base, turn_max_tokens=args.max_tokens, decide_max_tokens=args.max_tokens)
    results: dict[str, list[dict]] = {}
    for name, change in ABLATIONS.items():
        # Without a vote (one sample) the vote and shuffle ablations are the full graph again.
        if (
            (args.only and name not in args.only and name != "full graph")
            or (name.startswith("no debate") and not args.rounds)
            or (base.samples == 1 and name.startswith(("no vote", "no shuffle")))
        ):
            continue
        t0 = time.perf_counter()
        results[name] = run(cases, replace(base, **change), name)
        console.print(f"{name}: {time.perf_counter() - t0:.0f} s")

    full = results["full graph"]
    table = Table(title=f"LLM decision graph ({args.backend}), first {len(cases)} cases of {args.cases}")
    for col in (
        "configuration",
        "hit@1",
        "d hit@1 [95% CI]",
        "qty MAE",
        "first listed",
        "failed",
        "LLM calls",
        "s/case",
    ):
        table.add_column(col, justify="left" if col == "configuration" else "right")
    for name, rows in results.items():
        hit = np.array([r["hit"] for r in rows])
        delta = ""
        if name != "full graph":
            lo, hi = paired_ci(np.array([r["hit"] for r in full]), hit)
            delta = f"{hit.mean() - np.mean([r['hit'] for r in full]):+.3f} [{lo:+.3f}, {hi:+.3f}]"
        table.add_row(
            name,
            f"{hit.mean():.3f}",
            delta,
            f"{np.mean([r['qerr'] for r in rows]):.2f}",
            f"{np.mean([r['first'] for r in rows]):.2f}",
            str(sum(not r["ok"] for r in rows)),
            str(sum(r["calls"] for r in rows)),
            f"{np.mean([r['s'] for r in rows]):.1f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
