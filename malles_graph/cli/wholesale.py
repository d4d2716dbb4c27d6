"""`malles wholesale`: the wholesale dialogue on Ta Feng demand, and symbolic regression of its decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from malles_graph.cli.progress import stages
from malles_graph.cli.tables import print_table
from malles_graph.scenario import Scenario

app = typer.Typer(
    help="Wholesale dialogue (wholesaler, marketing, manufacturer) -> purchasing rule; simulation; discovery.",
    no_args_is_help=True,
)
console = Console()


def _overrides(
    backend: str | None, model: str | None, seed: int | None, no_cache: bool, sets: list[str] | None
) -> dict[str, object]:
    from malles_graph.scenario import parse_sets

    overrides: dict[str, object] = {"backend.name": backend, "backend.model": model, "seed": seed}
    if no_cache:
        overrides["backend.cache"] = False
    overrides.update(parse_sets(sets or []))
    return overrides


@app.command()
def run(
    scenario_file: Annotated[Path, typer.Argument(help="wholesale scenario YAML", metavar="SCENARIO.yaml")],
    backend: Annotated[str | None, typer.Option("--backend", "-b", help="LLM backend (local, openai, ollama)")] = None,
    model: Annotated[str | None, typer.Option(help="model name or GGUF path")] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario seed")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not use the LLM response cache")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a field: key.path=value")] = None,
    run_id: Annotated[str | None, typer.Option(help="the run's id (default: a new id)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="do not print the dialogue turns")] = False,
) -> None:
    """Run the dialogue, simulate its rule against the baselines on held-out weeks, save the run.

    Examples:
      malles wholesale run scenarios/wholesale-tafeng.yaml
      malles wholesale run scenarios/wholesale-tafeng.yaml -b openai --model gpt-4o-mini
      malles wholesale run scenarios/wholesale-tafeng.yaml --set wholesale.lead_time=2 --set wholesale.n_items=5
    """
    from malles_graph.errors import ScenarioError
    from malles_graph.scenario import load_scenario

    scenario = load_scenario(scenario_file, _overrides(backend, model, seed, no_cache, set_))
    if scenario.kind != "wholesale":
        raise ScenarioError(f"{scenario_file}: kind is {scenario.kind!r}; `malles wholesale run` needs 'wholesale'")
    run_loaded(scenario, run_id=run_id, quiet=quiet)


def run_loaded(scenario: Scenario, run_id: str | None = None, quiet: bool = False) -> None:
    """Run a loaded wholesale scenario through the generic runner, the dialogue shown live; print the comparison."""
    from malles_graph.cli.run_view import RunPrinter
    from malles_graph.cli.running import exit_for_status
    from malles_graph.graphs.run import start_run
    from malles_graph.wholesale.runs import load_run

    handle = start_run(scenario, run_id=run_id)
    with RunPrinter(console, show_turns=not quiet) as printer:
        summary = handle.run(printer)
    print_result(load_run(summary.run_id, store_url=scenario.store.url))
    exit_for_status(summary.status)  # a failed run exited 0, as if it had produced a rule


def print_result(result) -> None:
    import polars as pl

    from malles_graph.wholesale.compare import DIALOGUE
    from malles_graph.wholesale.report import comparison_table, rules_table

    if result.ok:
        rule = result.rule
        console.print(f"[bold green]purchasing rule:[/] {rule['expression']}")
        if rule.get("rationale"):
            console.print(f"[dim]rationale: {rule['rationale']}[/]")
        orders = ", ".join(f"{k}: {v:,.0f}" for k, v in result.meta.get("orders", {}).items())
        console.print(f"orders proposed for the first held-out period: {orders}")
        first = result.orders.filter((pl.col("policy") == DIALOGUE) & (pl.col("index") == 1))
        by_rule = ", ".join(f"{item}: {order:,.0f}" for item, order in first.select("item", "order").iter_rows())
        console.print(f"the rule's own orders for that period:        {by_rule}")
    else:
        console.print(f"[bold red]no valid rule:[/] {result.meta.get('error')}")
    rows = result.table.to_dicts()
    print_table(console, rules_table(rows))
    print_table(console, comparison_table(rows, title=f"Held-out simulation ({result.run_id})"))
    console.print(f"run {result.run_id} stored  (next: malles show {result.run_id} --turns; malles wholesale discover {result.run_id})")


@app.command()
def discover(
    run_ref: Annotated[str, typer.Argument(help="run id or run folder", metavar="RUN_ID")],
    source: Annotated[
        str | None,
        typer.Option(help="dialogue | demand | a policy name (newsvendor, order-up-to, ...); default dialogue"),
    ] = None,
    population: Annotated[int | None, typer.Option(help="gplearn population (default: scenario sr_population)")] = None,
    generations: Annotated[int | None, typer.Option(help="gplearn generations (default: sr_generations)")] = None,
    random_state: Annotated[int | None, typer.Option(help="gplearn random_state (default: the run's seed)")] = None,
) -> None:
    """Symbolic regression of a run's decisions: Pareto front of complexity vs error, chosen expression.

    Examples:
      malles wholesale discover wholesale-20261123-170102-ab12cd
      malles wholesale discover runs/wholesale-20261123-170102-ab12cd --source demand
      malles wholesale discover RUN_ID --source order-up-to --generations 30
    """
    import warnings

    from malles_graph.wholesale.discovery import discover_run, rule_at_constants
    from malles_graph.wholesale.report import front_table
    from malles_graph.wholesale.runs import load_run

    result = load_run(run_ref)
    with stages(console, "evolving expressions (gplearn)..."), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gplearn's scikit-learn deprecation notices
        found = discover_run(
            result, source, population=population, generations=generations, random_state=random_state
        )
    rule = result.rule["expression"] if result.rule else None
    print_table(console, front_table(found, rule))
    console.print(f"[bold]chosen:[/] {found.chosen.expression}   (mean abs error {found.chosen.error:,.3f})")
    console.print(f"[bold]dialogue's formula:[/] {rule or '(none: ' + str(result.meta.get('error')) + ')'}")
    if rule:
        console.print(f"[bold]dialogue's formula at this run's constants:[/] {rule_at_constants(result)}")
    console.print(f"saved to {result.folder / 'discovery.json'}")
