"""`malles economist`: run the LLM Economist scenario, report on a run, print the baseline welfare table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from malles_graph.cli.tables import CsvOpt, JsonOpt, print_table
from malles_graph.economist.options import MAX_WORKERS
from malles_graph.scenario import MAX_SEED

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
    set_: Annotated[list[str] | None, typer.Option("--set", help="override any field: key.path=value")] = None,
    resume: Annotated[str | None, typer.Option(help="resume the interrupted run RUN_ID")] = None,
    store: Annotated[str | None, typer.Option(help="database URL (sqlite:///... or postgresql://...)")] = None,
) -> None:
    """Run an economist scenario (the same runner and store as `malles run`); prints the welfare table at the end.

    Examples:
      malles economist run scenarios/economist-best-response.yaml
      malles economist run scenarios/economist-local.yaml --workers 10 --steps 4
      malles economist run scenarios/economist-best-response.yaml --set economist.n_workers=200
      malles economist run scenarios/economist-local.yaml --resume economist-local-20261123-171500-ab12
    """
    from malles_graph.cli.running import run_any
    from malles_graph.errors import ScenarioError
    from malles_graph.scenario import load_scenario, parse_sets

    overrides = {"backend.name": backend, "economist.n_workers": workers, "economist.steps": steps, "seed": seed}
    sc = load_scenario(scenario, overrides | parse_sets(set_ or []))
    if sc.kind != "economist":
        raise ScenarioError(f"{scenario}: kind is {sc.kind!r}; `malles economist run` runs economist scenarios "
                            "(use `malles run` for any kind)")
    run_any(sc, resume=resume, store=store, console=console)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="run id of a stored economist run (see `malles runs`)")],
    out: Annotated[Path | None, typer.Option(help="where to write the PNG plots (default runs/<run id>/report)")] = None,
    store: Annotated[str | None, typer.Option(help="database URL (sqlite:///... or postgresql://...)")] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Tables and plots of a stored run: welfare over time against the Saez and U.S. baselines.

    --json prints the steps, elections, welfare table and run metadata; --csv the steps table.

    Examples:
      malles economist report economist-best-response-20260101-120000-ab12
      malles economist report economist-best-response-20260101-120000-ab12 --csv > steps.csv
    """
    from malles_graph.cli.tables import emit, output_format
    from malles_graph.economist.report import make_report

    fmt = output_format(as_json, as_csv)
    rep = make_report(run_id, out, store)
    run = rep.run
    steps = run.history
    table = Table(title=f"steps of {run.run_id}")
    for col in ("step", "rates %", "W skill-wtd", "W utilitarian", "W inv-income", "hours", "Gini", "regret $", "LLM calls"):
        table.add_column(col, justify="right")
    for row in steps:
        table.add_row(
            str(row["step"]), " ".join(f"{r:.0f}" for r in row["schedule"]), f"{row['welfare_skill_weighted']:,.0f}",
            f"{row['welfare_utilitarian']:,.0f}", f"{row['welfare_inverse_income']:,.2f}", f"{row['mean_hours']:.1f}",
            f"{row['gini_pretax']:.3f}", f"{row['mean_regret']:,.0f}", f"{row.get('llm_calls', 0):g}",
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
        data = {"run": run.run_id, "status": run.run.status, "meta": run.meta, "steps": steps, "votes": run.votes,
                "welfare_table": run.analysis.get("table", []), "plots": [str(f) for f in rep.figures]}
        emit(console, tables, fmt, data)
        return
    emit(console, tables, fmt, None)
    print_run_summary(run.meta, run.analysis, steps)
    for fig in rep.figures:
        console.print(f"plot: {fig}")


@app.command()
def baselines(
    workers: Annotated[int, typer.Option(min=1, max=MAX_WORKERS, help="population size")] = 10_000,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="population seed")] = 0,
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
