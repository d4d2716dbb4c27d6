"""Tokens and cost of a stored run: the table `malles show` prints, and `malles usage` for any grouping.

Figures come from the stored transcript turns (:func:`malles_graph.store.repository.token_usage`), so
every scenario kind gets them; the cost is priced with the run's stored scenario (see
:mod:`malles_graph.usage` for the formula and which model name the price table is looked up by).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from malles_graph.cli.tables import CsvOpt, JsonOpt, emit, output_format
from malles_graph.usage import TokenUsage, UsageReport

app = typer.Typer()
console = Console()

NO_COST = "-"  # no price table (or it lacks the model): tokens are shown, the cost is not made up


def money(value: float | None) -> str:
    if value is None:
        return NO_COST
    return f"${value:.4f}" if value < 100 else f"${value:,.2f}"


def usage_table(usage: UsageReport, groups: dict[Any, TokenUsage] | None = None, by: str = "role") -> Table:
    """One row per group (roles unless ``groups`` is given), then the total with the run's cost."""
    groups = usage.by_role if groups is None else groups
    priced = f"priced as {usage.model}" if usage.price is not None else f"no price for {usage.model or 'this backend'}: cost -"
    table = Table(title=f"tokens by {by}  (cache hit rate {usage.cache_hit_rate:.1%}; {priced})")
    for name in (by, "calls", "replayed", "prompt", "cached", "completion", "cache hit", "cost"):
        table.add_column(name, justify="left" if name == by else "right")

    def row(label: str, u: TokenUsage, cost: float | None) -> list[str]:
        return [label, f"{u.calls:,}", f"{u.replayed:,}", f"{u.prompt_tokens:,}", f"{u.cached_prompt_tokens:,}",
                f"{u.completion_tokens:,}", f"{u.cache_hit_rate:.1%}", money(cost)]

    for key, u in groups.items():
        table.add_row(*row(str(key), u, usage.cost_of(u)))
    table.add_section()
    table.add_row(*row("total", usage.total, usage.cost_usd))
    return table


@app.command("usage")
def usage(
    run_id: Annotated[str, typer.Argument(help="run id (see `malles runs`)")],
    by: Annotated[str, typer.Option("--by", help="group by role, round or agent")] = "role",
    store: Annotated[str | None, typer.Option("--store", help="store URL; runs/malles.sqlite when empty")] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Print a run's prompt, cached and completion tokens and their cost, grouped by role, round or agent.

    Examples:
      malles usage demo-20260101-120000-ab12 --by agent
      malles usage demo-20260101-120000-ab12 --by round --csv > tokens.csv
    """
    from malles_graph.store import make_engine, normalise_url
    from malles_graph.store import repository as repo
    from malles_graph.store.summary import stored_usage

    column = {"role": "role", "round": "round", "agent": "agent_id"}.get(by)
    if column is None:
        raise typer.BadParameter(f"{by!r} is not one of role, round, agent", param_hint="--by")
    fmt = output_format(as_json, as_csv)
    url = normalise_url(store)
    engine = make_engine(url)
    report = stored_usage(engine, run_id, repo.get_run(engine, run_id).scenario_json)
    groups = repo.token_usage(engine, run_id, column)
    data = {"run_id": run_id, "by": by, "groups": {str(k): v for k, v in groups.items()}, **report.model_dump(mode="json")}
    emit(console, [usage_table(report, groups, by)], fmt, data)
