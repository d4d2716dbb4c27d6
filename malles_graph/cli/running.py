"""`malles run` / `malles demo`: dispatch a loaded scenario by kind and show it with rich."""

from __future__ import annotations

from rich.console import Console

from malles_graph.scenario import Scenario


def run_any(scenario: Scenario, *, resume: str | None, store: str | None, console: Console, seeds: int = 1) -> None:
    if scenario.kind == "economist":
        run_economist_scenario(scenario, console)
    elif scenario.kind == "wholesale":
        run_wholesale_scenario(scenario, console)
    elif seeds > 1:
        run_retail_seeds(scenario, seeds, store, console)
    else:
        run_retail(scenario, resume, store, console)


def run_retail(scenario: Scenario, resume: str | None, store: str | None, console: Console) -> None:
    from malles_graph.cli.run_view import RichRunProgress, rounds_table, summary_table
    from malles_graph.cli.tables import print_table
    from malles_graph.graphs.runner import run_scenario

    console.print(
        f"[bold]{scenario.name}[/]: backend {scenario.backend.name}, K={scenario.population.archetypes} archetypes, "
        f"up to {scenario.mean_field.max_rounds} rounds, seed {scenario.seed}"
    )
    with RichRunProgress(console) as progress:
        summary = run_scenario(scenario, run_id=resume, resume=resume is not None, store_url=store, progress=progress)
    print_table(console, rounds_table(summary.rounds))
    print_table(console, summary_table(summary))
    console.print(
        f"wrote: {summary.store_url} (run {summary.run_id}); "
        f"see it with `malles show {summary.run_id}`, export with `malles export {summary.run_id}`"
    )


def run_retail_seeds(scenario: Scenario, seeds: int, store: str | None, console: Console) -> None:
    from malles_graph.cli.run_view import RichRunProgress, spread_table
    from malles_graph.cli.tables import print_table
    from malles_graph.graphs.runner import run_seeds

    seed_list = [scenario.seed + i for i in range(seeds)]
    with RichRunProgress(console) as progress:
        summaries, spread = run_seeds(scenario, seed_list, store_url=store, progress=progress)
    print_table(console, spread_table(spread))
    console.print(f"runs: {', '.join(s.run_id for s in summaries)}")


def run_economist_scenario(scenario: Scenario, console: Console) -> None:
    from malles_graph.cli.economist import run_loaded

    run_loaded(scenario)


def run_wholesale_scenario(scenario: Scenario, console: Console) -> None:
    from malles_graph.cli.wholesale import run_loaded

    run_loaded(scenario)
