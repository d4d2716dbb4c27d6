"""Population: per mean-field round, demand by product and the convergence distance, plus the archetypes.

Charts are drawn with textual-plotext from the figures each finished round
reports; the table lists the current round's archetypes with their mass,
decision and multi-sample agreement; the bar shows the round's progress.
"""

from __future__ import annotations

import math

from malles_graph.tui import messages as msg
from malles_graph.tui.screens.base import ModeScreen
from malles_graph.tui.session import RoundState, RunSession
from malles_graph.tui.widgets.footer import KeyFooter
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Header, Label, ProgressBar, Static
from textual_plotext import PlotextPlot

MAX_PRODUCTS_PLOTTED = 8


def log10_values(values: list[float]) -> list[float]:
    return [math.log10(v) for v in values]


def option_series(rounds: list[RoundState], key: str = "demand") -> dict[str, list[float]]:
    """Option -> value per finished round of a per-option figure (demand per product, tax rate per bracket)."""
    options: list[str] = []
    for state in rounds:
        for option in state.figures.get(key) or {}:
            if option not in options:
                options.append(option)
    totals = {o: sum(abs((r.figures.get(key) or {}).get(o, 0.0)) for r in rounds) for o in options}
    top = sorted(options, key=lambda o: -totals[o])[:MAX_PRODUCTS_PLOTTED] if key == "demand" else options
    return {o: [float((r.figures.get(key) or {}).get(o, 0.0)) for r in rounds] for o in top}


def demand_series(rounds: list[RoundState]) -> dict[str, list[float]]:
    return option_series(rounds, "demand")


def scalar_series(rounds: list[RoundState], key: str = "distance") -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for state in rounds:
        value = state.figures.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            xs.append(state.index)
            ys.append(float(value))
    return xs, ys


def distance_series(rounds: list[RoundState]) -> tuple[list[int], list[float]]:
    return scalar_series(rounds, "distance")


# What the two charts show, by scenario kind: (left per-option figure, its title), (right scalar, its title).
CHARTS = {
    "retail": (("demand", "demand by product per round"), ("distance", "convergence distance")),
    "economist": (("schedule", "marginal tax rate by bracket per step"), ("welfare", "welfare per step")),
    "wholesale": (("demand", "demand by item"), ("profit", "profit")),
}


class PopulationScreen(ModeScreen):
    """How the population moves from round to round."""

    TITLE = "Population"
    BINDINGS = [
        Binding("d", "toggle_log", "Log scale", id="population.log", tooltip="Distance on a log scale or not"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.log_scale = True
        self.stale = False  # a run event arrived while the screen was hidden: redraw when it shows again

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="population-main"):
            with Horizontal(id="population-charts"):
                yield PlotextPlot(id="demand-plot")
                yield PlotextPlot(id="distance-plot")
            with Horizontal(id="population-progress"):
                yield Label("round -", id="population-round")
                yield ProgressBar(id="population-bar", show_eta=False)
                yield Static("", id="population-figures")
            yield DataTable(id="archetype-table", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    @property
    def session(self) -> RunSession:
        return self.app.session  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        table = self.query_one("#archetype-table", DataTable)
        table.add_columns("archetype", "mass", "decision", "quantity", "agreement", "calls", "status")
        self.app.run_events.subscribe(self, self.on_run_event, immediate=True)  # type: ignore[attr-defined]
        self.redraw()

    def on_screen_resume(self) -> None:
        if self.stale:
            self.redraw()

    def on_run_event(self, message: Message) -> None:
        # Hidden: draw once when shown (charts redrawn behind another screen were wasted CPU).
        if not self.is_current:
            self.stale = True
        elif isinstance(message, msg.RoundFinished | msg.RunStarted | msg.RoundStarted):
            self.redraw()
        elif isinstance(message, msg.DecisionFinished):
            self._draw_progress()
            self._draw_table()

    def redraw(self) -> None:
        self.stale = False
        self._draw_charts()
        self._draw_progress()
        self._draw_table()

    def _draw_charts(self) -> None:
        finished = self.session.finished_rounds
        (left_key, left_title), (right_key, right_title) = CHARTS.get(self.session.kind or "retail", CHARTS["retail"])
        left = self.query_one("#demand-plot", PlotextPlot)
        plt = left.plt
        plt.clear_figure()
        series = option_series(finished, left_key)
        xs = [r.index for r in finished]
        for option, ys in series.items():
            plt.plot(xs, ys, label=option, marker="braille")  # the whole id, as in the table
        plt.title(left_title if series else f"{left_title} (no finished round yet)")
        if xs:
            plt.xticks(xs)
        plt.xlabel("round")
        left.refresh()
        right = self.query_one("#distance-plot", PlotextPlot)
        plt = right.plt
        plt.clear_figure()
        dxs, dys = scalar_series(finished, right_key)
        # A log axis needs two positive points to be readable (one point gives inverted ticks).
        log = self.log_scale and right_key == "distance" and len(dys) > 1 and all(y > 0 for y in dys)
        # The log scale is drawn as log10 values on a linear axis with 10^k tick labels: plotext's own
        # yscale("log") rewrites the data in place at every build, so a second render (a resize) would
        # take the log of a log and fail.
        scale = log10_values if log else list
        failures = [(x, y) for x, y in zip(*scalar_series(finished, "failure_share"), strict=True)]
        failures = [(x, y) for x, y in failures if y > 0 or not log]
        if dys:
            plt.plot(dxs, scale(dys), marker="braille", label=right_key)
        if right_key == "distance" and any(y > 0 for _, y in failures):
            plt.plot([x for x, _ in failures], scale([y for _, y in failures]), marker="braille", label="failure share")
        if log:
            shown = scale(dys) + scale([y for _, y in failures])
            low, high = min(shown), max(shown)
            ticks = [low + (high - low) * i / 3 for i in range(4)]
            plt.yticks(ticks, [f"{10**t:.2g}" for t in ticks])
        plt.title(right_title + (" (log)" if log else ""))
        if dxs:
            plt.xticks(dxs)
        plt.xlabel("round")
        right.refresh()

    def _draw_progress(self) -> None:
        bar = self.query_one("#population-bar", ProgressBar)
        label = self.query_one("#population-round", Label)
        info = self.query_one("#population-figures", Static)
        bar.display = bool(self.session.rounds)
        if not self.session.rounds:
            label.update("round -")
            info.update(f"[dim]{self.session.status}[/]")
            return
        state = self.session.current
        label.update(f"round {state.index}")
        bar.update(total=max(state.total, 1), progress=state.done)
        last = self.session.finished_rounds[-1].figures if self.session.finished_rounds else {}
        unit = "steps" if self.session.kind == "economist" else "decisions"
        bits = [f"{state.done}/{state.total} {unit}", self.session.status]
        if isinstance(last.get("distance"), int | float):
            bits.append(f"last distance {last['distance']:.4g}")
        if isinstance(last.get("welfare"), int | float):
            bits.append(f"welfare {last['welfare']:,.1f}")
        if isinstance(last.get("failure_share"), int | float):
            bits.append(f"failures {last['failure_share']:.0%}")
        info.update("  ".join(bits))

    def _draw_table(self) -> None:
        table = self.query_one("#archetype-table", DataTable)
        table.clear()
        if not self.session.rounds:
            return
        state = self.session.current
        for agent_id, row in state.archetypes.items():
            outcome = row.outcome
            if outcome is None:
                cells = ("-", "-", "-", "-", "deciding")
            elif outcome.ok:
                agreement = f"{outcome.agreement:.0%}" if outcome.agreement is not None else "-"
                cells = (str(outcome.choice), f"{outcome.quantity:g}", agreement, str(outcome.llm_calls), "ok")
            else:
                cells = ("-", "-", "-", str(outcome.llm_calls), f"failed: {(outcome.error or '')[:40]}")
            mass = f"{row.mass:.3f}" if row.mass is not None else "-"
            table.add_row(agent_id, mass, *cells, key=agent_id)

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        self._draw_charts()
