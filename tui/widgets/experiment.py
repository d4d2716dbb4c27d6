"""The editor's Experiment tab: the unsaved prompt set against the saved one on N cases, filled in as it runs.

The panel owns its inputs (number of cases, cases file), the live table and the summary, and the
worker that runs the experiment (``malles_graph.tui.experimenting``); the editor hands it the edited
prompt texts and the Run screen's scenario, and forwards its f8/escape keys.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from malles_graph.tui.editing import folding
from malles_graph.tui.experimenting import (
    DEFAULT_CASES,
    EDITED,
    SAVED,
    ExperimentAnswered,
    ExperimentFinished,
    ExperimentRequest,
)
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Static

from malles_graph.errors import MallesError
from malles_graph.scenario import Scenario

if TYPE_CHECKING:
    from malles_graph.experiments.scoring import ExperimentResult

EXPERIMENT_HINT = (
    "f8 runs the unsaved prompts against the saved ones on N purchase cases (paired); escape cancels. "
    "Cases file: empty = build N Ta Feng test cases."
)


class ExperimentPanel(Vertical):
    """Saved vs edited prompts on N purchase cases: a row per case, a paired summary at the end."""

    DEFAULT_CSS = "ExperimentPanel { height: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name for it
        super().__init__(id=id)
        self._cancel: threading.Event | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="experiment-options"):
            n_cases = Input(str(DEFAULT_CASES), id="experiment-n", type="integer", compact=True, tooltip="cases to run")
            n_cases.styles.width = 6  # inline: the only fixed-width input of the editor
            yield n_cases
            yield Input(
                "",
                id="experiment-cases",
                placeholder="cases file (JSON lines)",
                compact=True,
                tooltip="a case file from `malles eval build`; empty: build from Ta Feng",
            )
        yield Static(EXPERIMENT_HINT, id="experiment-status")
        yield DataTable(id="experiment-table", zebra_stripes=True, cursor_type="row")
        yield Static("", id="experiment-summary")

    def start(self, edited: dict[str, str], scenario: Scenario | None) -> bool:
        """Run ``edited`` (prompt name -> unsaved text) against the saved set; False if the inputs are invalid."""
        n_text = self.query_one("#experiment-n", Input).value.strip()
        cases_text = self.query_one("#experiment-cases", Input).value.strip()
        try:
            n = int(n_text)
        except ValueError:
            self.notify(f"cases: {n_text!r} is not a whole number", severity="error")
            return False
        request = ExperimentRequest(edited, n, Path(cases_text) if cases_text else None, scenario)
        table = self.query_one("#experiment-table", DataTable)
        table.clear(columns=True)
        table.add_column("case", key="case")
        table.add_column("bought", key="truth")
        table.add_column(SAVED, key=SAVED)
        table.add_column(EDITED, key=EDITED)
        self.query_one("#experiment-summary", Static).update("")
        self.query_one("#experiment-status", Static).update(
            f"Running saved vs edited ({', '.join(sorted(edited))}) on {n} case(s)... escape cancels."
        )
        self._cancel = threading.Event()
        self.running = True
        self.run_experiment(request, self._cancel)
        return True

    def cancel(self) -> None:
        if self.running and self._cancel is not None:
            self._cancel.set()
            self.query_one("#experiment-status", Static).update("Cancelling after the decision in flight...")

    @work(thread=True, exclusive=True, exit_on_error=False, group="experiment", description="prompt experiment")
    def run_experiment(self, request: ExperimentRequest, cancelled: threading.Event) -> None:
        from malles_graph.tui.experimenting import run_editor_experiment

        try:
            run_editor_experiment(
                request,
                post=self.post_message,
                cancelled=cancelled,
                chat_model_factory=getattr(self.app, "chat_model_factory", None),
            )
        except MallesError as exc:
            self.post_message(ExperimentFinished(None, None, error=str(exc)))
        except Exception as exc:  # noqa: BLE001 - any failure is shown, the app keeps running
            self.post_message(ExperimentFinished(None, None, error=f"{type(exc).__name__}: {exc}"))

    @on(ExperimentAnswered)
    def _answered(self, message: ExperimentAnswered) -> None:
        table = self.query_one("#experiment-table", DataTable)
        case, pred = message.case, message.prediction
        labels = {c.product_id: c.label or c.product_id for c in case.candidates}
        if case.case_id not in table.rows:
            table.add_row(
                case.case_id, labels.get(case.truth_product_id, case.truth_product_id), "", "", key=case.case_id
            )
        if pred.product_id is None:
            cell = Text("failed", style="red")
        else:
            hit = pred.product_id == case.truth_product_id
            cell = Text(
                f"{labels.get(pred.product_id, pred.product_id)}x{pred.quantity} {'hit' if hit else 'miss'}",
                style="green" if hit else "",
            )
        table.update_cell(case.case_id, message.variant, cell)

    @on(ExperimentFinished)
    def _finished(self, message: ExperimentFinished) -> None:
        self.running = False
        status = self.query_one("#experiment-status", Static)
        if message.error or message.result is None:
            status.update(Text.assemble(("experiment failed: ", "bold red"), message.error or "no result"))
            self.notify(message.error or "no result", title="Experiment failed", severity="error", timeout=10)
            return
        done = "cancelled" if message.cancelled else "finished"
        status.update(
            Text.assemble(
                (f"experiment {done}: ", "bold green"),
                f"{message.result.n_paired} paired case(s); report in {message.out}",
            )
        )
        self.query_one("#experiment-summary", Static).update(summary_table(message.result))


def summary_table(result: ExperimentResult) -> Table:
    """The report's variant table (main columns) with the paired difference as caption."""
    from malles_graph.experiments.report import difference_table, variant_table

    summary = Table(title="saved vs edited (paired; Δ = edited - saved, bootstrap 95% CI)")
    header, rows = variant_table(result)
    keep = [header.index(h) for h in ("variant", "n", "hit@1", "failures", "prompt tok/dec")]
    for i in keep:
        summary.add_column(header[i])
    for row in rows:
        summary.add_row(*(row[i] for i in keep))
    _, diffs = difference_table(result)
    for d in diffs:
        summary.caption = f"Δ hit@1 {d[2]}; wins/losses {d[5]}; sign test p {d[6]}"
    return folding(summary)
