"""Rich renderings of wholesale results: the side-by-side table and the Pareto front."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table

from malles_graph.wholesale.regression import Discovery


def comparison_table(rows: Sequence[dict[str, Any]], title: str = "Held-out simulation") -> Table:
    """One row per policy: profit, fill rate, stock-outs, lost and leftover stock, orders (rules: rules_table)."""
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        caption="fill: share of demand served; outs: item-periods with lost sales; lost: units of unmet demand; "
        "left / transit: units on hand / on order at the end; bad: periods where the rule gave no valid order",
    )
    table.add_column("policy", style="bold", min_width=12, max_width=18)
    for name in ("profit", "fill", "outs", "lost", "left", "transit", "ordered", "bad"):
        table.add_column(name, justify="right", no_wrap=True)
    best = max((r["profit"] for r in rows), default=None)
    for r in rows:
        profit = f"{r['profit']:,.0f}"
        table.add_row(
            r["policy"],
            f"[bold green]{profit}[/]" if r["profit"] == best else profit,
            f"{r['fill_rate']:.1%}",
            f"{int(r['stockouts'])}",
            f"{r['lost_units']:,.0f}",
            f"{r['leftover_units']:,.0f}",
            f"{r['in_transit_units']:,.0f}",
            f"{r['units_ordered']:,.0f}",
            f"[red]{int(r['invalid_orders'])}[/]" if r["invalid_orders"] else "0",
        )
    return table


def rules_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Order quantity of each policy", show_header=False)
    table.add_column("policy", style="bold", no_wrap=True)
    table.add_column("rule", overflow="fold")
    for r in rows:
        table.add_row(r["policy"], str(r["rule"]))
    return table


def front_table(discovery: Discovery, dialogue_formula: str | None = None) -> Table:
    table = Table(
        title=f"Pareto front: {discovery.target} ~ f({', '.join(discovery.variables)}), "
        f"{discovery.n_samples} decisions (predicting the mean: error {discovery.baseline_error:,.2f})"
    )
    table.add_column("length", justify="right")
    table.add_column("ops", justify="right")
    table.add_column("mean abs error", justify="right")
    table.add_column("expression (sympy-simplified)", overflow="fold")
    for point in discovery.front:
        mark = " [bold yellow]<- chosen[/]" if point is discovery.chosen or point == discovery.chosen else ""
        table.add_row(str(point.length), str(point.complexity), f"{point.error:,.3f}", point.expression + mark)
    if dialogue_formula:
        table.caption = f"dialogue's formula: {dialogue_formula}"
    return table
