"""Rich rendering of population runs: a RunProgress progress bar and the summary/round tables.

Used by ``malles run``/``malles demo`` (the lead's commands) and ``malles show``::

    with RichRunProgress(console) as progress:
        summary = run_scenario(scenario, progress=progress)
    console.print(summary_table(summary)); console.print(rounds_table(summary.rounds))
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from malles_graph.agents import TranscriptTurn
from malles_graph.graphs.runner import RunSummary, SeedSpread
from malles_graph.population.meanfield import WeightedOutcome
from malles_graph.population.reporters import RoundReport

TOP_OPTIONS = 6


class RichRunProgress:
    """A RunProgress drawing one bar per round (decisions done/total, ETA) and one line per finished round."""

    def __init__(self, console: Console | None = None, show_turns: bool = False) -> None:
        self.console = console or Console()
        self.show_turns = show_turns
        self.progress = Progress(
            TextColumn("[bold]round {task.fields[round]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("decisions"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._task: int | None = None

    def __enter__(self) -> RichRunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def message(self, text: str) -> None:
        self.progress.console.print(f"[dim]{text}[/]")

    def round_started(self, round: int, total: int, done: int) -> None:
        self._task = self.progress.add_task("round", total=total, completed=done, round=round)

    def decision_done(self, round: int, done: int, total: int, outcome: WeightedOutcome | None) -> None:
        if self._task is not None:
            self.progress.update(self._task, completed=done, total=total)

    def round_finished(self, report: RoundReport, metrics: dict[str, float]) -> None:
        units = sum(report.demand.values())
        self.progress.console.print(
            f"round {report.round}: distance {report.distance:.4f}, failed {report.failed_share:.0%}, "
            f"units demanded {units:,.1f}" + (" [green]converged[/]" if report.converged else "")
        )

    def transcript_turn(self, turn: TranscriptTurn) -> None:
        if self.show_turns:
            self.progress.console.print(f"[dim]{turn.agent_id} {turn.role}:[/] {turn.text[:120]}")


def summary_table(summary: RunSummary) -> Table:
    """Headline figures of a run plus the final m, demand and prices of the top options."""
    table = Table(title=f"run {summary.run_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    final = summary.final
    rows = [
        ("scenario", summary.name),
        ("status", summary.status + (" (resumed)" if summary.resumed else "")),
        ("backend / seed", f"{summary.backend} / {summary.seed}"),
        ("customers", f"{summary.n_customers:,}"),
        ("archetypes x representatives", f"{summary.archetypes} x {summary.representatives}"),
        ("rounds", f"{len(summary.rounds)}" + (" (converged)" if summary.converged else "")),
        ("decisions (failed)", f"{summary.decisions} ({summary.failed})"),
        ("LLM calls", str(summary.llm_calls)),
        ("final distance", f"{final.distance:.4f}" if final else "-"),
        ("store", summary.store_url),
    ]
    if summary.wall_s:
        rows.append(("wall time", f"{summary.wall_s:.1f} s"))
    for key, value in rows:
        table.add_row(key, value)
    if final:
        top = sorted(final.m.items(), key=lambda kv: -kv[1])[:TOP_OPTIONS]
        for option, share in top:
            demand = final.demand.get(option)
            price = final.prices.get(option)
            extra = "" if demand is None else f", demand {demand:,.1f}"
            extra += "" if price is None else f", price {price:.2f}"
            table.add_row(escape(f"m[{option}]"), f"{share:.3f}{extra}")
    return table


def rounds_table(rounds: Sequence[RoundReport]) -> Table:
    """One row per round: decisions, failures, distance, units, revenue, sold out, promotions."""
    table = Table(title="rounds")
    for name in ("round", "decisions", "failed", "distance", "units", "revenue", "sold out", "promo", "price idx"):
        table.add_column(name, justify="right")
    for r in rounds:
        f = r.figures
        table.add_row(
            str(r.round), str(r.n_decisions), f"{r.failed_share:.0%}", f"{r.distance:.4f}",
            f"{sum(r.demand.values()):,.1f}", f"{f.get('revenue', 0):,.1f}", f"{f.get('sold_out', 0):.0f}",
            f"{f.get('on_promotion', 0):.0f}", f"{f.get('mean_price_index', 0):.3f}",
        )
    return table


def spread_table(spread: SeedSpread) -> Table:
    """Final m per option across seeds: mean and standard deviation (stability)."""
    table = Table(title=f"seed spread over seeds {spread.seeds} (max TV between seeds {spread.max_tv_between_seeds:.4f})")
    table.add_column("option")
    table.add_column("mean m", justify="right")
    table.add_column("std", justify="right")
    for option in sorted(spread.mean, key=lambda k: -spread.mean[k])[: TOP_OPTIONS * 2]:
        table.add_row(option, f"{spread.mean[option]:.4f}", f"{spread.std[option]:.4f}")
    return table
