"""Benchmark: the wholesale dialogue's purchasing rule against the baselines on held-out Ta Feng weeks.

Runs the dialogue once on the given backend (default: the bundled `local` SmolLM2-135M), then
prints profit, fill rate, stock-outs and leftover stock of the dialogue rule, the scenario's
hand-written reference rule, and the newsvendor, order-up-to and last-period-demand baselines.

    MALLES_HOME=... .venv/bin/python benchmarks/bench_wholesale.py
    .venv/bin/python benchmarks/bench_wholesale.py --no-llm             # reference rule and baselines only
    .venv/bin/python benchmarks/bench_wholesale.py --backend openai --model gpt-4o-mini --discover
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from rich.console import Console

from malles_graph.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
console = Console(width=120)


def markdown(rows: list[dict]) -> str:
    lines = [
        "| policy | profit | fill rate | stock-outs | lost units | leftover | in transit | ordered | invalid |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['profit']:,.0f} | {r['fill_rate']:.1%} | {int(r['stockouts'])} | "
            f"{r['lost_units']:,.0f} | {r['leftover_units']:,.0f} | {r['in_transit_units']:,.0f} | "
            f"{r['units_ordered']:,.0f} | {int(r['invalid_orders'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "wholesale-tafeng.yaml"))
    parser.add_argument("--backend", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--rounds", type=int, default=None, help="override wholesale.dialogue_rounds")
    parser.add_argument("--no-llm", action="store_true", help="skip the dialogue: reference rule and baselines")
    parser.add_argument("--discover", action="store_true", help="also run symbolic regression on the run")
    args = parser.parse_args()

    overrides: dict[str, object] = {"backend.name": args.backend, "backend.model": args.model}
    if args.rounds is not None:
        overrides["wholesale.dialogue_rounds"] = args.rounds
    scenario = load_scenario(args.scenario, overrides)
    options = scenario.wholesale

    if args.no_llm:
        from malles_graph.wholesale.compare import compare
        from malles_graph.wholesale.demand import load_demand
        from malles_graph.wholesale.formula import parse_formula

        items = load_demand(options)
        reference = parse_formula(options.reference_rule) if options.reference_rule else None
        rows = [r.summary for r in compare(items, options, None, reference)]
        run = None
    else:
        from malles_graph.graphs.wholesale import run_wholesale

        start = time.perf_counter()

        def show(event: dict) -> None:
            if event["event"] == "turn":
                turn = event["turn"]
                console.print(f"[dim]{time.perf_counter() - start:6.1f}s[/] {turn.role} ({turn.kind}): "
                              f"{turn.text[:160]!r}")

        run = run_wholesale(scenario, progress=show)
        elapsed = time.perf_counter() - start
        rows = run.table.to_dicts()
        tokens = sum(t["prompt_tokens"] + t["completion_tokens"] for t in run.transcript)
        console.print(
            f"dialogue: backend {scenario.backend.name}, {run.meta['llm_calls']} LLM calls, {tokens} tokens, "
            f"{elapsed:.0f} s; rule {'ok: ' + run.rule['expression'] if run.ok else 'FAILED: ' + str(run.meta['error'])}"
        )
        console.print(f"run folder: {run.folder}")

    items_text = f"{options.n_items} {options.level}(s)" if not options.items else ", ".join(options.items)
    console.print(
        f"held-out: last {options.periods} complete {options.period}s, {items_text}; lead time {options.lead_time}, "
        f"margin {options.target_margin:.0%}, holding {options.holding_cost_rate:.0%}/week, "
        f"min order {options.min_order}"
    )
    from malles_graph.wholesale.report import comparison_table, rules_table

    console.print(rules_table(rows))
    console.print(comparison_table(rows))
    console.print(markdown(rows))
    if args.discover and run is not None:
        from malles_graph.wholesale.discovery import discover_run
        from malles_graph.wholesale.report import front_table

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = discover_run(run)
        console.print(front_table(found, run.rule["expression"] if run.rule else None))


if __name__ == "__main__":
    main()
