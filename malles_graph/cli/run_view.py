"""Rich rendering of runs of any kind: the live event printer and the summary/round tables.

``malles run``, ``malles demo`` and ``malles wholesale run`` consume one event stream::

    with RunPrinter(console) as printer:
        summary = start_run(scenario).run(printer)
    print_table(console, rounds_table(summary.rounds)); print_table(console, summary_table(summary))

Nothing here switches on the scenario kind: rounds show their stored metrics, the run its
summary figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from malles_graph.events import (
    DecisionFinished,
    Message,
    PopulationPrepared,
    RoundFinished,
    RoundStarted,
    RunEvent,
    RunFinished,
    RunStarted,
    TurnStreamed,
)
from malles_graph.retail.seeds import SeedSpread
from malles_graph.store.repository import RoundRecord
from malles_graph.store.summary import RunSummary

TOP_OPTIONS = 6
TURN_CHARS = 160
ROUND_METRICS = 4  # metrics printed on a finished round's line
# Friendly column names of well-known metrics (any other metric keeps its own name).
LABELS = {
    "units_demanded": "units", "revenue": "revenue", "sold_out": "sold out", "on_promotion": "promo",
    "mean_price_index": "price idx",
}
BASE_METRICS = ("decisions", "failed", "failed_share", "distance")


# Border colours of the transcript panels, by role (any kind's) and by event kind (which wins).
ROLE_STYLE = {
    "product_specialist": "cyan", "price_analyst": "yellow", "persona": "magenta", "decide": "green",
    "single_agent": "green", "stabilise": "blue", "system": "dim",
    "marketing": "cyan", "manufacturer": "magenta", "wholesaler": "green",
}
KIND_STYLE = {"retry": "orange3", "failure": "red", "conflict": "red", "decision": "bold green"}
SAMPLED_ROLES = ("decide", "single_agent")  # their round is the vote's sample, not a debate round
UNROUNDED_ROLES = ("stabilise", "system")  # one per decision


def turn_panel(turn: Any) -> Panel:
    """One transcript turn (streamed, or stored: the same fields) as a panel: role, round and kind in the
    title, tokens below (``malles decide`` live, ``malles show --turns`` from the store)."""
    title = turn.role.replace("_", " ")
    if turn.role in SAMPLED_ROLES:
        title += f" - sample {turn.round}"
    elif turn.role not in UNROUNDED_ROLES:
        title += f" - round {turn.round}"
    if turn.kind != "turn":
        title += f" [{turn.kind}]"
    sub = None
    if turn.prompt_tokens or turn.completion_tokens:
        sub = f"{turn.prompt_tokens} prompt / {turn.completion_tokens} completion tokens"
        sub += " (cached)" if turn.cached else ""
    colour = KIND_STYLE.get(turn.kind, ROLE_STYLE.get(turn.role, "white"))
    return Panel(Text(turn.text), title=escape(title), title_align="left", subtitle=sub, subtitle_align="right",
                 border_style=colour)


class RunPrinter:
    """Prints a run's events as they happen: one bar per round, turns (unless hidden), one line per round."""

    def __init__(self, console: Console | None = None, show_turns: bool = True) -> None:
        self.console = console or Console()
        self.show_turns = show_turns
        self.progress = Progress(
            TextColumn("[bold]round {task.fields[round]}"), BarColumn(), MofNCompleteColumn(), TextColumn("decisions"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False,
        )
        self._task: Any = None
        self._done = 0
        self.finished: RunFinished | None = None

    def __enter__(self) -> RunPrinter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def print(self, text: str) -> None:
        self.progress.console.print(text)

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            rounds = f", up to {event.total_rounds} round(s)" if event.total_rounds else ""
            verb = "resuming" if event.resumed else "started"
            self.print(f"[bold]{escape(event.name)}[/] ({event.kind}): {verb} run [bold]{event.run_id}[/], "
                       f"backend {event.backend}, seed {event.seed}{rounds}")
        elif isinstance(event, Message):
            style = {"info": "dim", "warning": "yellow", "error": "red"}[event.level]
            self.print(f"[{style}]{escape(event.text)}[/]")
        elif isinstance(event, PopulationPrepared):
            self.print(f"[dim]population: {event.n_customers:,} in {len(event.archetypes)} archetype(s)[/]")
        elif isinstance(event, RoundStarted):
            self._done = event.done
            self._task = self.progress.add_task("round", total=event.total or None, completed=event.done,
                                                round=event.round)
        elif isinstance(event, TurnStreamed):
            if self.show_turns:
                turn = event.turn
                text = " ".join(turn.text.split())[:TURN_CHARS]
                self.print(f"[dim]{escape(turn.agent_id)} {escape(turn.role)}:[/] {escape(text)}")
        elif isinstance(event, DecisionFinished):
            self._done += 1
            if self._task is not None:
                self.progress.update(self._task, completed=self._done)
            if not event.ok and event.error:
                self.print(f"[yellow]{escape(event.agent_id)} failed:[/] {escape(event.error[:TURN_CHARS])}")
        elif isinstance(event, RoundFinished):
            self.print(round_line(event.round, event.metrics, bool(event.summary.get("converged"))))
        elif isinstance(event, RunFinished):
            self.finished = event
            colour = {"finished": "green", "failed": "red"}.get(event.status, "yellow")
            reason = f": {escape(event.reason)}" if event.reason else ""
            self.print(f"[{colour}]run {event.status}[/]{reason}")


def round_line(number: int, metrics: dict[str, float], converged: bool) -> str:
    shown = [f"{LABELS.get(k, k).replace('_', ' ')} {_fmt(v)}" for k, v in list(metrics.items())[:ROUND_METRICS]]
    return f"round {number}: " + ", ".join(shown) + (" [green]converged[/]" if converged else "")


def _fmt(value: float) -> str:
    return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"


def summary_table(summary: RunSummary) -> Table:
    """Headline figures of a run, then its kind's final figures (e.g. the final m of the top options)."""
    table = Table(title=f"run {summary.run_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    final = summary.final
    rows = [
        ("scenario", f"{summary.name} ({summary.kind})"),
        ("status", summary.status + (" (resumed)" if summary.resumed else "")),
        ("backend / seed", f"{summary.backend} / {summary.seed}"),
        ("customers", f"{summary.n_customers:,}"),
        ("archetypes x representatives", f"{summary.archetypes} x {summary.representatives}"),
        ("rounds", f"{len(summary.rounds)}" + (" (converged)" if summary.converged else "")),
        ("decisions (failed)", f"{summary.decisions} ({summary.failed})"),
        ("LLM calls (cached)", f"{summary.llm_calls} ({summary.cached})"),
        *_token_rows(summary),
        ("final distance", f"{final.distance:.4f}" if final else "-"),
        ("store", summary.store_url),
    ]
    if summary.reason:
        rows.insert(2, ("reason", summary.reason))
    if summary.wall_s:
        rows.append(("wall time", f"{summary.wall_s:.1f} s"))
    for key, value in rows:
        table.add_row(key, escape(value))
    if final:
        m, demand, prices = (final.summary.get(k) or {} for k in ("m", "demand", "prices"))
        for option, share in sorted(m.items(), key=lambda kv: -kv[1])[:TOP_OPTIONS]:
            extra = "" if option not in demand else f", demand {demand[option]:,.1f}"
            extra += "" if option not in prices else f", price {prices[option]:.2f}"
            table.add_row(escape(f"m[{option}]"), f"{share:.3f}{extra}")
    # the kind's own final figures, as its run_summary hook declared them (see graphs/run/table.py)
    for label, text in (summary.summary.get("figures") or {}).items():
        table.add_row(escape(label), escape(str(text)))
    tables = summary.summary.get("tables") or {}
    if not isinstance(tables, dict):  # a bare list of names: every column
        tables = dict.fromkeys(tables, ())
    for name, columns in tables.items():
        rows = summary.summary.get(name) or []
        if rows:
            table.add_row(escape(name.replace("_", " ")), rows_table(rows, columns))
    return table


def rows_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] = ()) -> Table:
    """A list of flat records as a table (``columns`` of them, default all): numbers formatted, lists joined."""
    table = Table(show_edge=False, pad_edge=False)
    columns = [c for c in columns if c in rows[0]] or list(rows[0])
    for name in columns:
        table.add_column(name.replace("_", " "), justify="left" if isinstance(rows[0][name], str) else "right")
    for row in rows:
        table.add_row(*(escape(_cell(row.get(name))) for name in columns))
    return table


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(_cell(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:g}" if abs(value) < 100 and float(value).is_integer() else _fmt(float(value))


def _metric(r: RoundRecord, name: str) -> float | None:
    if name in r.metrics:
        return r.metrics[name]
    figures = r.summary.get("figures") or {}
    if name in figures:
        return float(figures[name])
    if name == "units_demanded" and "demand" in r.summary:
        return float(sum((r.summary.get("demand") or {}).values()))
    return None


def rounds_table(rounds: Sequence[RoundRecord]) -> Table:
    """One row per round: decisions, failures, distance, then the round's metrics (well-known ones first)."""
    known = [k for k in LABELS if any(_metric(r, k) is not None or "demand" in r.summary for r in rounds)]
    others: list[str] = []
    for r in rounds:
        others += [k for k in r.metrics if k not in BASE_METRICS and k not in LABELS and k not in others]
    table = Table(title="rounds")
    for name in ("round", "decisions", "failed", "distance", *(LABELS[k] for k in known), *others):
        table.add_column(name.replace("_", " "), justify="right")
    for r in rounds:
        cells = [str(r.round), str(r.n_decisions), f"{r.failed_share:.0%}", f"{r.distance:.4f}"]
        for name in (*known, *others):
            value = _metric(r, name)
            cells.append("-" if value is None else _fmt(value))
        table.add_row(*cells)
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


def _token_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """Tokens (and cost, when the scenario prices its model) in the end-of-run table; none for runs without LLM."""
    used = summary.usage.total
    if not used.calls:
        return []
    rows = [("tokens prompt (cached) / completion",
             f"{used.prompt_tokens:,} ({used.cached_prompt_tokens:,}, {summary.usage.cache_hit_rate:.0%}) / "
             f"{used.completion_tokens:,}")]
    if summary.usage.cost_usd is not None:
        rows.append(("cost", f"${summary.usage.cost_usd:,.4f}"))
    return rows
