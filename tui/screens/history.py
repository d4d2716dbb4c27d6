"""History: past runs from the run store (SQLite or PostgreSQL); open one, browse it, export it.

Every database call runs in a thread worker, so a slow or unreachable server never
freezes the app; a store that cannot be opened shows in the error panel and the
app keeps running. Runs of every kind (retail, economist, wholesale) are recorded here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from malles_graph.tui import messages as msg
from malles_graph.tui.screens.base import ModeScreen
from malles_graph.tui.screens.export import ExportRequest, ExportScreen
from malles_graph.tui.widgets.footer import KeyFooter
from malles_graph.tui.widgets.transcript import TranscriptView
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Header, Input, Label, Static, TabbedContent, TabPane

from malles_graph.errors import MallesError

if TYPE_CHECKING:
    from malles_graph.tui.history_data import RunDetail

# The database layer (SQLAlchemy, SQLModel) is imported inside the thread workers, on first use: the
# screen shows at once and the import never blocks the UI.


class HistoryScreen(ModeScreen):
    """Past runs: pick one (enter) to see its rounds, decisions and transcripts."""

    TITLE = "History"
    AUTO_FOCUS = "#runs-table"  # r/o/e and Enter work at once (a focused store box would take the letters)
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="history.refresh", tooltip="Reload the list of runs from the store"),
        Binding("o", "open_run", "Open", id="history.open", tooltip="Open the highlighted run"),
        Binding("e", "export", "Export", id="history.export", tooltip="Write the open run's tables to CSV/parquet"),
    ]

    class RunsLoaded(Message):
        def __init__(self, engine: Any, runs: list[Any]) -> None:
            super().__init__()
            self.engine = engine
            self.runs = runs

    class RunLoaded(Message):
        def __init__(self, detail: RunDetail) -> None:
            super().__init__()
            self.detail = detail

    class TranscriptLoaded(Message):
        def __init__(self, title: str, turns: list[Any]) -> None:
            super().__init__()
            self.title = title
            self.turns = turns

    class StoreFailed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    class Exported(Message):
        def __init__(self, files: list[Path]) -> None:
            super().__init__()
            self.files = files

    def __init__(self) -> None:
        super().__init__()
        self.engine: Any = None
        self.detail: RunDetail | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="history-main"):
            with Vertical(id="history-left"):
                yield Label("Run store", classes="section-title")
                yield Input(placeholder="sqlite:///... or postgresql://...", id="store-url", compact=True)
                yield Static("", id="history-error", classes="error-panel")
                yield Label("Past runs", classes="section-title")
                yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="history-detail"):
                yield Label("Open a run (enter) to browse it.", id="run-title", classes="section-title")
                with TabbedContent(id="history-tabs", initial="tab-rounds"):
                    with TabPane("Rounds", id="tab-rounds"):
                        yield DataTable(id="rounds-table", cursor_type="row", zebra_stripes=True)
                    with TabPane("Decisions", id="tab-decisions"):
                        yield DataTable(id="decisions-table", cursor_type="row", zebra_stripes=True)
                    with TabPane("Transcript", id="tab-transcript"):
                        yield Label("Pick a decision (enter) to read its transcript.", id="transcript-title")
                        yield TranscriptView(id="history-transcript")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#runs-table", DataTable).add_columns(
            "run id", "scenario", "status", "rounds", "backend", "created"
        )
        self.query_one("#rounds-table", DataTable).add_columns(
            "round", "decisions", "failed", "distance", "converged", "top demand"
        )
        self.query_one("#decisions-table", DataTable).add_columns(
            "round", "agent", "ok", "choice", "qty", "agreement", "calls", "tokens", "error"
        )
        self.query_one("#history-error", Static).display = False
        url = getattr(self.app, "last_store_url", None) or getattr(self.app, "store_url", None)
        if url:
            self.query_one("#store-url", Input).value = url
        self.app.run_events.subscribe(self, self._on_run_event, immediate=True)  # type: ignore[attr-defined]
        self.action_refresh()

    def _on_run_event(self, message: Message) -> None:
        # A run that ends (however it ends) changes the list: reload it, from the run's own store.
        if isinstance(message, msg.RunFinished | msg.RunFailed) or (
            isinstance(message, msg.RunCancelled) and message.stopped
        ):
            latest = getattr(self.app, "last_store_url", None)
            if latest:
                self.query_one("#store-url", Input).value = latest
            self.action_refresh()

    # ---- loading --------------------------------------------------------------------------------

    def store_url(self) -> str | None:
        typed = self.query_one("#store-url", Input).value.strip()
        return typed or getattr(self.app, "last_store_url", None) or getattr(self.app, "store_url", None)

    @on(Input.Submitted, "#store-url")
    def action_refresh(self) -> None:
        self.query_one("#runs-table", DataTable).loading = True  # until the worker answers, either way
        self.load_runs(self.store_url())

    class DefaultStore(Message):
        def __init__(self, url: str) -> None:
            super().__init__()
            self.url = url

    @on(DefaultStore)
    def _default_store(self, message: DefaultStore) -> None:
        # The real default (under MALLES_RUNS), so the operator sees which file is read.
        self.query_one("#store-url", Input).placeholder = f"{message.url} (default)"

    @work(thread=True, exclusive=True, exit_on_error=False, group="history", description="load past runs")
    def load_runs(self, url: str | None) -> None:
        from malles_graph.tui import history_data

        from malles_graph.store.engine import default_url

        try:
            self.post_message(self.DefaultStore(default_url()))
        except MallesError:  # an unusable MALLES_RUNS: open_store below says why, in the error panel
            pass
        try:
            engine = history_data.open_store(url)
            runs = history_data.list_runs(engine)
        except MallesError as exc:
            self.post_message(self.StoreFailed(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - a driver error must not take the app down
            self.post_message(self.StoreFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.RunsLoaded(engine, runs))

    @on(RunsLoaded)
    def _runs_loaded(self, message: RunsLoaded) -> None:
        self.engine = message.engine
        self.show_error(None)
        table = self.query_one("#runs-table", DataTable)
        table.loading = False
        table.clear()
        for run in message.runs:
            status = Text(
                run.status, style={"finished": "green", "failed": "red", "running": "yellow"}.get(run.status, "")
            )
            table.add_row(
                run.id,
                run.name,
                status,
                f"{run.rounds_done}/{run.max_rounds}",
                run.backend,
                f"{run.created_at:%Y-%m-%d %H:%M}",
                key=run.id,
            )
        if not message.runs:
            self.notify("The run store holds no runs yet.", severity="information")

    @on(StoreFailed)
    def _store_failed(self, message: StoreFailed) -> None:
        self.show_error(message.error)
        table = self.query_one("#runs-table", DataTable)
        table.loading = False
        table.clear()
        self.notify(message.error, title="Run store", severity="error", timeout=10)

    def show_error(self, error: str | None) -> None:
        panel = self.query_one("#history-error", Static)
        panel.display = bool(error)
        panel.update(Text(error or ""))

    # ---- opening a run --------------------------------------------------------------------------

    def highlighted_run_id(self) -> str | None:
        table = self.query_one("#runs-table", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    @on(DataTable.RowSelected, "#runs-table")
    def action_open_run(self) -> None:
        run_id = self.highlighted_run_id()
        if run_id is None or self.engine is None:
            self.notify("No run to open: the list is empty.", severity="warning")
            return
        self.open_run(run_id)

    def open_run(self, run_id: str) -> None:
        self.query_one("#run-title", Label).update(f"loading {run_id}...")
        self.load_run(run_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="history-run", description="load one run")
    def load_run(self, run_id: str) -> None:
        from malles_graph.tui import history_data

        try:
            detail = history_data.run_detail(self.engine, run_id)
        except Exception as exc:  # noqa: BLE001 - shown, the app keeps running
            self.post_message(self.StoreFailed(f"{run_id}: {exc}"))
            return
        self.post_message(self.RunLoaded(detail))

    @on(RunLoaded)
    def _run_loaded(self, message: RunLoaded) -> None:
        self.detail = detail = message.detail
        run = detail.run
        error = f"  [red]{run.error}[/]" if run.error else ""
        from malles_graph.tui import history_data

        digest, personas = history_data.prompt_digest(run), history_data.persona_digest(run)
        self.query_one("#run-title", Label).update(
            f"[b]{run.id}[/]  {run.name}  {run.status}  seed {run.seed}  {run.backend}  "
            f"K={run.archetypes}  N={run.n_customers:,}" + (f"  prompts {digest}" if digest else "")
            + (f"  personas {personas}" if personas else "") + error
        )
        rounds = self.query_one("#rounds-table", DataTable)
        rounds.clear()
        for r in detail.rounds:
            top = sorted((r.summary.get("demand") or {}).items(), key=lambda kv: -kv[1])[:3]
            rounds.add_row(
                str(r.round),
                str(r.n_decisions),
                str(r.n_failed),
                f"{r.distance:.4f}",
                "yes" if r.converged else "",
                ", ".join(f"{k}: {v:g}" for k, v in top),
            )
        decisions = self.query_one("#decisions-table", DataTable)
        decisions.clear()
        for d in detail.decisions:
            decisions.add_row(
                str(d.round),
                d.agent_id,
                Text("ok", "green") if d.ok else Text("failed", "red"),
                d.choice or "-",
                f"{d.quantity:g}",
                f"{d.agreement:.0%}" if d.agreement is not None else "-",
                str(d.llm_calls),
                str(d.prompt_tokens + d.completion_tokens),
                (d.error or "")[:60],
                key=f"{d.round}|{d.agent_id}",
            )
        self.query_one("#history-transcript", TranscriptView).show([], "Pick a decision to read its transcript.")

    @on(DataTable.RowSelected, "#decisions-table")
    def _decision_picked(self, event: DataTable.RowSelected) -> None:
        if self.detail is None or event.row_key.value is None:
            return
        round_text, agent_id = str(event.row_key.value).split("|", 1)
        self.load_transcript(self.detail.run.id, int(round_text), agent_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="history-turns", description="load a transcript")
    def load_transcript(self, run_id: str, round_index: int, agent_id: str) -> None:
        from malles_graph.tui import history_data

        try:
            turns = history_data.transcript(self.engine, run_id, round_index, agent_id)
        except Exception as exc:  # noqa: BLE001 - shown, the app keeps running
            self.post_message(self.StoreFailed(f"{run_id}: {exc}"))
            return
        self.post_message(self.TranscriptLoaded(f"{agent_id}, round {round_index}", turns))

    @on(TranscriptLoaded)
    def _transcript_loaded(self, message: TranscriptLoaded) -> None:
        self.query_one("#transcript-title", Label).update(f"{message.title}: {len(message.turns)} turn(s)")
        self.query_one("#history-transcript", TranscriptView).show(message.turns, "No transcript stored.")
        self.query_one("#history-tabs", TabbedContent).active = "tab-transcript"

    # ---- export ---------------------------------------------------------------------------------

    def action_export(self) -> None:
        run_id = self.detail.run.id if self.detail is not None else self.highlighted_run_id()
        if run_id is None or self.engine is None:
            self.notify("Open a run first.", severity="warning")
            return

        def chosen(request: ExportRequest | None) -> None:
            if request is not None:
                self.export_run(run_id, request)

        self.app.push_screen(ExportScreen(run_id), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="history-export", description="export a run")
    def export_run(self, run_id: str, request: ExportRequest) -> None:
        from malles_graph.tui import history_data

        try:
            files = history_data.export(self.engine, run_id, request.folder, request.fmt)
        except Exception as exc:  # noqa: BLE001 - e.g. an unwritable folder: shown, nothing else changes
            self.post_message(self.StoreFailed(f"export of {run_id} failed: {exc}"))
            return
        self.post_message(self.Exported(files))

    @on(Exported)
    def _exported(self, message: Exported) -> None:
        folder = message.files[0].parent if message.files else "?"
        self.notify(f"Wrote {len(message.files)} file(s) to {folder}", title="Exported")
