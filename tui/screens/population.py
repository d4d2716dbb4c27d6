"""Population: per mean-field round, demand by product and the convergence distance, plus the archetypes.

Charts are drawn with textual-plotext from the figures each finished round
reports; the table lists the current round's archetypes with their mass,
decision and multi-sample agreement; the bar shows the round's progress.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, ProgressBar, Static
from textual_plotext import PlotextPlot

from tui import messages as msg
from tui.session import RoundState, RunSession

MAX_PRODUCTS_PLOTTED = 8


def demand_series(rounds: list[RoundState]) -> dict[str, list[float]]:
    """Product -> demand per finished round (0 where a round did not report the product)."""
    products: list[str] = []
    for state in rounds:
        for product in (state.figures.get("demand") or {}):
            if product not in products:
                products.append(product)
    totals = {p: sum((r.figures.get("demand") or {}).get(p, 0.0) for r in rounds) for p in products}
    top = sorted(products, key=lambda p: -totals[p])[:MAX_PRODUCTS_PLOTTED]
    return {p: [float((r.figures.get("demand") or {}).get(p, 0.0)) for r in rounds] for p in top}


def distance_series(rounds: list[RoundState]) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for state in rounds:
        distance = state.figures.get("distance")
        if isinstance(distance, int | float):
            xs.append(state.index)
            ys.append(float(distance))
    return xs, ys


class PopulationScreen(Screen[None]):
    """How the population moves from round to round."""

    TITLE = "Population"
    BINDINGS = [
        Binding("d", "toggle_log", "Log scale", id="population.log", tooltip="Distance on a log scale or not"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.log_scale = True

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
        yield Footer()

    @property
    def session(self) -> RunSession:
        return self.app.session  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        table = self.query_one("#archetype-table", DataTable)
        table.add_columns("archetype", "mass", "decision", "quantity", "agreement", "calls", "status")
        self.app.run_events.subscribe(self, self.on_run_event, immediate=True)  # type: ignore[attr-defined]
        self.redraw()

    def on_screen_resume(self) -> None:
        self.redraw()

    def on_run_event(self, message: Message) -> None:
        if isinstance(message, msg.RoundFinished | msg.RunStarted | msg.RoundStarted):
            self.redraw()
        elif isinstance(message, msg.DecisionFinished):
            self._draw_progress()
            self._draw_table()

    def redraw(self) -> None:
        self._draw_charts()
        self._draw_progress()
        self._draw_table()

    def _draw_charts(self) -> None:
        finished = self.session.finished_rounds
        demand = self.query_one("#demand-plot", PlotextPlot)
        plt = demand.plt
        plt.clear_figure()
        plt.title("demand by product per round")
        series = demand_series(finished)
        xs = [r.index for r in finished]
        for product, ys in series.items():
            plt.plot(xs, ys, label=product[-10:], marker="braille")
        if not series:
            plt.title("demand by product per round (no finished round yet)")
        plt.xlabel("round")
        demand.refresh()
        distance = self.query_one("#distance-plot", PlotextPlot)
        plt = distance.plt
        plt.clear_figure()
        dxs, dys = distance_series(finished)
        positive = all(y > 0 for y in dys)
        if dys:
            plt.plot(dxs, dys, marker="braille", label="distance")
            if self.log_scale and positive:
                plt.yscale("log")
        failures = [(r.index, r.figures.get("failure_share")) for r in finished]
        failures = [(x, float(y)) for x, y in failures if isinstance(y, int | float)]
        if failures and any(y > 0 for _, y in failures):
            plt.plot([x for x, _ in failures], [y for _, y in failures], marker="braille", label="failure share")
        plt.title("convergence distance" + (" (log)" if self.log_scale and positive and dys else ""))
        plt.xlabel("round")
        distance.refresh()

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
        bits = [f"{state.done}/{state.total} decisions", self.session.status]
        if isinstance(last.get("distance"), int | float):
            bits.append(f"last distance {last['distance']:.4g}")
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
