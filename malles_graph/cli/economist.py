"""`malles economist`: run the LLM Economist scenario, report on a run, print the baseline welfare table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from malles_graph.cli.tables import CsvOpt, JsonOpt, print_table
from malles_graph.scenario import Scenario

app = typer.Typer(help="LLM Economist: workers choose hours, a planner sets tax rates (Karten et al. 2025).",
                  no_args_is_help=True)
console = Console()

TABLE_COLUMNS = (
    ("welfare_skill_weighted", "W skill-wtd", "{:,.0f}"),
    ("welfare_utilitarian", "W utilitarian", "{:,.0f}"),
    ("welfare_inverse_income", "W inv-income", "{:,.2f}"),
    ("gini_pretax", "Gini pre", "{:.3f}"),
    ("gini_disposable", "Gini post", "{:.3f}"),
    ("revenue_per_worker", "revenue/worker", "{:,.0f}"),
    ("mean_hours", "hours", "{:.1f}"),
    ("idle_share", "idle", "{:.1%}"),
)


def welfare_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    table.add_column("schedule")
    table.add_column("rates %", no_wrap=True)
    for _, header, _ in TABLE_COLUMNS:
        table.add_column(header, justify="right")
    for row in rows:
        rates = " ".join(f"{r:.0f}" for r in row["rates"])
        table.add_row(row["schedule"], rates, *(fmt.format(row[key]) for key, _, fmt in TABLE_COLUMNS))
    return table


def print_run_summary(meta: dict, analysis: dict, steps: list[dict]) -> None:
    print_table(console, welfare_table(analysis.get("table", []), "welfare table (all workers best-responding)"))
    check = analysis.get("stackelberg", {})
    if check.get("enabled"):
        console.print(
            f"near-Stackelberg check ({check['objective']}, {check['sample']:,} workers): final "
            f"{check['final_welfare']:,.1f}, best of a multi-start search {check['best_welfare']:,.1f} "
            f"(gap {check['relative_gap']:.2%}, {check['evaluations']} evaluations, best from {check['best_start']}), "
            f"Saez {check['saez_welfare']:,.1f}, U.S. {check['us_welfare']:,.1f}"
        )
    if steps:
        first, last = steps[0], steps[-1]
        key = f"welfare_{meta.get('objective', 'skill_weighted')}"
        console.print(
            f"run welfare ({key}): step {first['step']} {first[key]:,.1f} -> step {last['step']} {last[key]:,.1f}; "
            f"mean regret {last['mean_regret']:,.0f} $; LLM calls per step {meta.get('llm_calls_per_step', 0):.1f}; "
            f"worker failures {meta.get('worker_failures', 0)}, planner failures {meta.get('planner_failures', 0)}"
        )
        console.print(f"final schedule (the incumbent, from {meta.get('final_source')}): "
                      f"{' '.join(f'{r:.1f}' for r in meta.get('final_schedule', []))}")


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML of kind economist")],
    backend: Annotated[str | None, typer.Option(help="override backend.name (best-response, local, openai, ollama)")] = None,
    workers: Annotated[int | None, typer.Option(help="override economist.n_workers")] = None,
    steps: Annotated[int | None, typer.Option(help="override economist.steps")] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario seed")] = None,
    out: Annotated[Path | None, typer.Option(help="run folder (default runs/economist/<time>-<name>-<key>)")] = None,
) -> None:
    """Run an economist scenario and persist it; prints the welfare table at the end.

    Examples:
      malles economist run scenarios/economist-best-response.yaml
      malles economist run scenarios/economist-local.yaml --workers 10 --steps 4
      malles economist run scenarios/economist-archetypes.yaml --backend best-response
    """
    from malles_graph.scenario import load_scenario

    overrides = {"backend.name": backend, "economist.n_workers": workers, "economist.steps": steps, "seed": seed}
    run_loaded(load_scenario(scenario, overrides), out)


def run_loaded(sc: Scenario, out: Path | None = None) -> None:
    """Run a loaded economist scenario with a progress bar; print the welfare summary (also `malles run`)."""
    from malles_graph.graphs.economist import run_economist

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"), console=console,
    ) as bar:
        task = bar.add_task(sc.name, total=sc.economist.steps, info="")

        def progress(step: int, total: int, row: dict) -> None:
            key = f"welfare_{sc.economist.objective}"
            bar.update(task, completed=step, info=f"W={row[key]:,.0f} hours={row['mean_hours']:.1f}")

        result = run_economist(sc, progress=progress, run_dir=out)
    print_run_summary(result.meta, result.analysis, result.history)
    console.print(f"run folder: {result.run_dir}\nreport: malles economist report {result.run_dir}")


@app.command()
def report(
    run_ref: Annotated[str, typer.Argument(help="run folder, or run id (its folder name or key under runs/economist)")],
    out: Annotated[Path | None, typer.Option(help="where to write the PNG plots (default <run>/report)")] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Tables and plots of a finished run: welfare over time against the Saez and U.S. baselines.

    --json prints the steps, elections, welfare table and run metadata; --csv the steps table.

    Examples:
      malles economist report runs/economist/20260101-120000-economist-best-response-1a2b3c4d
      malles economist report 1a2b3c4d --csv > steps.csv
    """
    from malles_graph.cli.tables import emit, output_format
    from malles_graph.economist.report import make_report

    fmt = output_format(as_json, as_csv)
    rep = make_report(run_ref, out)
    run = rep.run
    steps = run.steps.to_dicts()
    table = Table(title=f"steps of {run.path.name}")
    for col in ("step", "rates %", "W skill-wtd", "W utilitarian", "W inv-income", "hours", "Gini", "regret $", "LLM calls"):
        table.add_column(col, justify="right")
    for row in steps:
        table.add_row(
            str(row["step"]), " ".join(f"{r:.0f}" for r in row["schedule"]), f"{row['welfare_skill_weighted']:,.0f}",
            f"{row['welfare_utilitarian']:,.0f}", f"{row['welfare_inverse_income']:,.2f}", f"{row['mean_hours']:.1f}",
            f"{row['gini_pretax']:.3f}", f"{row['mean_regret']:,.0f}", str(row.get("llm_calls", 0)),
        )
    tables = [table]
    if run.votes:
        votes = Table(title="elections")
        votes.add_column("step")
        votes.add_column("votes")
        votes.add_column("winner")
        for v in run.votes:
            votes.add_row(str(v["step"]), ", ".join(f"{k} {n:g}" for k, n in v["votes"].items()), v["winner"])
        tables.append(votes)
    if fmt != "table":
        data = {"run": str(run.path), "meta": run.meta, "steps": steps, "votes": run.votes,
                "welfare_table": run.analysis.get("table", []), "plots": [str(f) for f in rep.figures]}
        emit(console, tables, fmt, data)
        return
    emit(console, tables, fmt, None)
    print_run_summary(run.meta, run.analysis, steps)
    for fig in rep.figures:
        console.print(f"plot: {fig}")


@app.command()
def baselines(
    workers: Annotated[int, typer.Option(help="population size")] = 10_000,
    seed: Annotated[int, typer.Option(help="population seed")] = 0,
    scenario: Annotated[Path | None, typer.Option(help="take the economist options from this scenario")] = None,
) -> None:
    """Welfare table of the baselines (U.S., flat, zero, Saez for each objective) with best-responding workers.

    Examples:
      malles economist baselines --workers 100000
      malles economist baselines --scenario scenarios/economist-best-response.yaml
    """
    import numpy as np

    from malles_graph.economist.economy import labour_model
    from malles_graph.economist.options import EconomistOptions
    from malles_graph.economist.population import sample_population
    from malles_graph.economist.saez import saez_schedule
    from malles_graph.economist.search import equilibrium_table
    from malles_graph.economist.tax import flat_schedule, us_schedule, zero_schedule
    from malles_graph.economist.welfare import OBJECTIVES
    from malles_graph.scenario import load_scenario

    options = load_scenario(scenario).economist if scenario else EconomistOptions()
    if options is None:
        raise typer.BadParameter(f"{scenario} has no economist: section")
    pop = sample_population(workers, options, np.random.default_rng(seed))
    model = labour_model(options)
    args = (pop.skill, pop.potential_income, pop.weight, model, options)
    schedules = {"us 2024": us_schedule(options.brackets),
                 f"flat {options.flat_rate:g}%": flat_schedule(options.flat_rate, options.brackets),
                 "zero": zero_schedule(options.brackets)}
    for objective in OBJECTIVES:
        schedules[f"saez ({objective})"] = saez_schedule(*args, objective=objective).schedule
    print_table(console, welfare_table(equilibrium_table(schedules, *args), f"baselines, {workers:,} best-responding workers"))
    console.print(f"labour cost c = {model.cost:.4g}, delta = {model.exponent:g}, elasticity = {options.delta_elasticity():g}")
