"""Prompts & personas: edit prompts/*.txt and personas/*.yaml with live validation, preview and "try it".

Edits live in per-file buffers until saved, so moving between files loses
nothing. Every change is validated with the core's own checks; the status line
says what is wrong (unknown or missing variable, malformed brace, out-of-range
rho...). Saving validates again and refuses invalid text; valid text is written
atomically. "Try it" runs one decision with the *unsaved* prompt; "Experiment" runs the
unsaved prompt set against the saved one on N purchase cases, paired, filling a table as it goes.
"""

from __future__ import annotations

from malles_graph.tui import editing, samples
from malles_graph.tui import messages as msg
from malles_graph.tui.editing import EditableFile, Validation, folding
from malles_graph.tui.screens.base import ModeScreen
from malles_graph.tui.widgets.experiment import ExperimentPanel
from malles_graph.tui.widgets.footer import KeyFooter
from malles_graph.tui.widgets.transcript import TranscriptView
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import (
    Button,
    Header,
    Label,
    OptionList,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)
from textual.widgets.option_list import Option, OptionDoesNotExist

from malles_graph.errors import MallesError
from malles_graph.models import ChoiceSituation
from malles_graph.scenario import Scenario

VALIDATE_DELAY_S = 0.25
TRY_HINT = "Press ctrl+t to run one decision with the unsaved prompt."


class EditorScreen(ModeScreen):
    """Edit role prompts and persona/style files; invalid content is never saved."""

    TITLE = "Prompts & personas"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="editor.save", tooltip="Validate and write the file atomically"),
        Binding("ctrl+t", "try_it", "Try it", id="editor.try", tooltip="Run one decision with the unsaved prompt"),
        Binding("f7", "revert", "Revert", id="editor.revert", tooltip="Drop the unsaved edits of this file"),
        Binding(
            "f8",
            "experiment",
            "A/B",
            id="editor.experiment",
            tooltip="Run the unsaved prompt set against the saved one on N purchase cases",
        ),
        Binding(
            "escape",
            "cancel_experiment",
            "Cancel experiment",
            id="editor.experiment.cancel",
            show=False,
            tooltip="Stop the running experiment after the decision in flight",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.files: list[EditableFile] = []
        self.current: EditableFile | None = None
        self.buffers: dict[str, str] = {}
        self.validation = Validation(None)
        self._validate_timer: Timer | None = None
        self._loading = False
        self._try_token = 0
        self.sample_values: dict[str, object] = {}
        self.sample_label = "example values"

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="editor-main"):
            with Vertical(id="editor-files", classes="sidebar"):
                yield Label("Files", classes="section-title")
                yield OptionList(id="file-list")
            with Vertical(id="editor-center"):
                yield Label("", id="file-title", classes="section-title")
                yield TextArea("", id="editor-text", show_line_numbers=True, soft_wrap=True, tab_behavior="indent")
                yield Static("", id="validation")
                with Horizontal(id="editor-buttons", classes="button-row"):
                    yield Button("Save", id="save", variant="primary", tooltip="ctrl+s", compact=True)
                    yield Button(
                        "Try it", id="try", tooltip="ctrl+t: one decision with the unsaved prompt", compact=True
                    )
                    yield Button(
                        "Revert", id="revert", variant="warning", tooltip="f7: drop unsaved edits", compact=True
                    )
            with TabbedContent(id="editor-side", initial="tab-preview"):
                with TabPane("Preview", id="tab-preview"):
                    with VerticalScroll():
                        yield Static("", id="preview")
                with TabPane("Try it", id="tab-try"):
                    yield Static(TRY_HINT, id="try-status")
                    yield TranscriptView(id="try-transcript")
                with TabPane("Experiment", id="tab-experiment"):
                    yield ExperimentPanel(id="experiment")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.reload_files()
        self.load_sample(getattr(self.app, "real_sample", True))

    @work(thread=True, exclusive=True, exit_on_error=False, group="sample", description="load the sample customer")
    def load_sample(self, real: bool) -> None:
        """The preview's customer, made in a thread: the decision graph's views import LangGraph, which
        would hold the screen up; until then the preview uses the generic example values."""
        builtin = "built-in sample customer"
        self._post_sample(
            samples.builtin_situation(), f"{builtin} (loading a Ta Feng customer...)" if real else builtin
        )
        if real:
            situation = samples.sample_situation(real=True)
            if situation.customer.customer_id.startswith("sample"):  # no Ta Feng data here: the built-in one stays
                self._post_sample(situation, builtin)
            else:
                label = f"Ta Feng customer {situation.customer.customer_id} on {situation.date}"
                self._post_sample(situation, f"{label} (subclass {situation.subclass})")

    def _post_sample(self, situation: ChoiceSituation, label: str) -> None:
        try:
            values = samples.prompt_values(situation)
        except Exception:  # noqa: BLE001 - without the decision graph the generic examples are used
            values = {}
        self.post_message(self.SampleLoaded(values, label))

    class SampleLoaded(Message):
        def __init__(self, values: dict[str, object], label: str) -> None:
            super().__init__()
            self.values = values
            self.label = label

    @on(SampleLoaded)
    def _sample_loaded(self, message: SampleLoaded) -> None:
        self.sample_values, self.sample_label = message.values, message.label
        self._show_preview()

    # ---- files ----------------------------------------------------------------------------------

    def reload_files(self) -> None:
        self.files = editing.editable_files()
        options = self.query_one("#file-list", OptionList)
        options.clear_options()
        groups = (("prompt", "prompts/"), ("styles", "personas/ styles"), ("personas", "personas/"))
        for kind, heading in groups:
            entries = [f for f in self.files if f.kind == kind]
            if not entries:
                continue
            options.add_option(Option(Text(heading, style="bold"), disabled=True))
            for file in entries:
                missing = "" if file.path.exists() else "  (missing)"
                options.add_option(Option(f"  {file.label}{missing}", id=file.key))
        if self.files:
            self.open_file(self.files[0])

    def file_by_key(self, key: str) -> EditableFile | None:
        return next((f for f in self.files if f.key == key), None)

    @on(OptionList.OptionSelected, "#file-list")
    @on(OptionList.OptionHighlighted, "#file-list")
    def _file_chosen(self, event: OptionList.OptionSelected | OptionList.OptionHighlighted) -> None:
        file = self.file_by_key(event.option.id or "")
        if file is not None and file != self.current:
            self.open_file(file)

    def open_file(self, file: EditableFile) -> None:
        if self.current is not None:
            self.buffers[self.current.key] = self.text
        self.current = file
        text = self.buffers.get(file.key)
        if text is None:
            text = editing.read_text(file)
        area = self.query_one("#editor-text", TextArea)
        self._loading = True
        area.load_text(text)
        self._loading = False
        self._clear_try()
        self.validate_now()
        self._highlight(file)

    def _highlight(self, file: EditableFile) -> None:
        """Keep the list's highlight on the open file (without re-opening it through the highlight event)."""
        options = self.query_one("#file-list", OptionList)
        try:
            index = options.get_option_index(file.key)
        except OptionDoesNotExist:
            return
        if options.highlighted != index:
            with self.prevent(OptionList.OptionHighlighted):
                options.highlighted = index

    def _clear_try(self) -> None:
        """Forget the last "try it" result: it was for another file (a running try is cancelled)."""
        self._try_token += 1  # a try still running in its thread posts nothing more
        self.query_one("#try-status", Static).update(TRY_HINT)
        self.query_one("#try-transcript", TranscriptView).show([], "No try yet for this file.")
        self.query_one(TabbedContent).active = "tab-preview"

    def select_file(self, key: str) -> None:
        """Open a file by key (``prompt:persona.txt``, ``personas:retail_households.yaml``)."""
        file = self.file_by_key(key)
        if file is None:
            raise KeyError(f"no editable file {key!r}; known: {[f.key for f in self.files]}")
        self.open_file(file)

    @property
    def text(self) -> str:
        return self.query_one("#editor-text", TextArea).text

    @property
    def dirty(self) -> bool:
        return self.current is not None and self.text != editing.read_text(self.current)

    # ---- validation -----------------------------------------------------------------------------

    @on(TextArea.Changed, "#editor-text")
    def _text_changed(self) -> None:
        if self._loading:
            return
        if self._validate_timer is not None:
            self._validate_timer.stop()
        self._validate_timer = self.set_timer(VALIDATE_DELAY_S, self.validate_now)
        self._show_title()

    def validate_now(self) -> Validation:
        if self.current is None:
            return self.validation
        self.validation = editing.validate(self.current, self.text)
        self._show_title()
        self._show_validation()
        self._show_preview()
        return self.validation

    def _show_title(self) -> None:
        if self.current is None:
            return
        title = Text(f"{self.current.path.parent.name}/{self.current.path.name}")
        if self.dirty:
            title.append("  modified", "bold yellow")
        label = self.query_one("#file-title", Label)
        label.update(title)
        label.tooltip = str(self.current.path)

    def _show_validation(self) -> None:
        status = self.query_one("#validation", Static)
        if self.validation.ok:
            status.update(Text.assemble(("valid ", "bold green"), self.validation.summary))
            status.set_class(False, "error")
        else:
            status.update(Text.assemble(("invalid ", "bold red"), self.validation.error or ""))
            status.set_class(True, "error")

    def _show_preview(self) -> None:
        """Render the preview from the text as it is now (it may have changed since the last validation)."""
        preview = self.query_one("#preview", Static)
        file = self.current
        if file is None:
            return
        fix_first = Text("Fix the error to see the preview.", style="dim")
        if not self.validation.ok:
            preview.update(fix_first)
            return
        try:
            if file.kind == "prompt":
                _, template = editing.validate_prompt(file, self.text)
                if template is None:  # edited after the last validation; the pending one will report it
                    preview.update(fix_first)
                    return
                header = Text(f"Rendered for {self.sample_label}:\n\n", style="dim italic")
                preview.update(header + Text(editing.render_preview(template, self.sample_values)))
            else:
                preview.update(self._persona_table(file))
        except MallesError as exc:
            preview.update(Text(str(exc), style="red"))

    def _persona_table(self, file: EditableFile) -> Table:
        loaded = editing.load_yaml_text(file, self.text)
        # One column per preset or persona and one row per field: the long field names fit a narrow pane.
        if isinstance(loaded, dict):
            table = Table("rho", *loaded, title="style presets")
            for field in editing.STYLE_FIELDS:
                table.add_row(field, *(f"{getattr(style, field):.2f}" for style in loaded.values()))
            return folding(table)
        table = Table("", *(persona.name for persona in loaded), title="personas")
        table.add_row("age", *(persona.age_group for persona in loaded))
        table.add_row("area", *(persona.pin_code for persona in loaded))
        for field in editing.STYLE_FIELDS:
            table.add_row(field, *(f"{getattr(persona.style, field):.2f}" for persona in loaded))
        return folding(table)

    # ---- actions --------------------------------------------------------------------------------

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        file = self.current
        if file is None:
            return
        try:
            result = editing.save(file, self.text)
        except OSError as exc:
            self.notify(f"{file.path}: could not write ({exc})", title="Not saved", severity="error", timeout=10)
            return
        self.validation = result
        self._show_validation()
        if result.ok:
            self.buffers.pop(file.key, None)
            self._show_title()
            self.notify(f"Saved {file.path}", title="Saved")
        else:
            self.notify(result.error or "invalid", title="Not saved: invalid content", severity="error", timeout=10)

    @on(Button.Pressed, "#revert")
    def action_revert(self) -> None:
        if self.current is None:
            return
        self.buffers.pop(self.current.key, None)
        file, self.current = self.current, None
        self.open_file(file)
        self.notify(f"Reverted {file.path} to the saved version.")

    @on(Button.Pressed, "#try")
    def action_try_it(self) -> None:
        file = self.current
        if file is None or file.kind != "prompt":
            self.notify("Try it runs a decision with a prompt: open a prompt file first.", severity="warning")
            return
        if not self.validate_now().ok:
            self.notify(self.validation.error or "invalid", title="Cannot try an invalid prompt", severity="error")
            return
        self.query_one(TabbedContent).active = "tab-try"
        self.query_one("#try-transcript", TranscriptView).show([], "Running one decision...")
        self.query_one("#try-status", Static).update("Running one decision with the unsaved prompt...")
        # Widgets are read here, on the UI thread; the worker only gets plain values.
        self._try_token += 1
        self.run_try(file.name, self.text, self._run_scenario(), self._try_token)

    @work(thread=True, exclusive=True, exit_on_error=False, group="try", description="try a prompt")
    def run_try(self, name: str, text: str, scenario: Scenario | None, token: int) -> None:
        from malles_graph.tui.trying import try_prompt

        def post(message: Message) -> None:
            if token == self._try_token:  # the operator has not moved to another file meanwhile
                self.post_message(message)

        try:
            outcome = try_prompt(
                name,
                text,
                on_turn=lambda turn: post(msg.TryTurnStreamed(turn)),
                chat_model_factory=getattr(self.app, "chat_model_factory", None),
                scenario=scenario,
                real_sample=getattr(self.app, "real_sample", True),
            )
        except MallesError as exc:
            post(msg.TryFinished(None, str(exc)))
        except Exception as exc:  # noqa: BLE001 - any failure is shown, the app keeps running
            post(msg.TryFinished(None, f"{type(exc).__name__}: {exc}"))
        else:
            post(msg.TryFinished(outcome))

    # ---- experiment (the panel in tui/widgets/experiment.py runs it) ----------------------------

    def edited_prompts(self) -> dict[str, str]:
        """Every prompt buffer that differs from its file (the open file's text included)."""
        if self.current is not None:
            self.buffers[self.current.key] = self.text
        out = {}
        for file in self.files:
            text = self.buffers.get(file.key)
            if file.kind == "prompt" and text is not None and text != editing.read_text(file):
                out[file.name] = text
        return out

    def action_experiment(self) -> None:
        panel = self.query_one(ExperimentPanel)
        if panel.running:
            self.notify("An experiment is running; escape cancels it.", severity="warning")
            return
        edited = self.edited_prompts()
        if not edited:
            self.notify(
                "No unsaved prompt edits: change a prompt first (the saved set is the reference).",
                title="Nothing to compare",
                severity="warning",
            )
            return
        if panel.start(edited, self._run_scenario()):
            self.query_one(TabbedContent).active = "tab-experiment"

    def action_cancel_experiment(self) -> None:
        self.query_one(ExperimentPanel).cancel()

    def _run_scenario(self) -> Scenario | None:
        """The scenario chosen on the Run screen, so "try it" uses the same backend."""
        try:
            run_screen = self.app.get_screen_stack("run")[0]
        except (KeyError, IndexError):
            return None
        return run_screen.build_scenario(quiet=True)

    @on(msg.TryTurnStreamed)
    def _try_turn(self, message: msg.TryTurnStreamed) -> None:
        view = self.query_one("#try-transcript", TranscriptView)
        if view.turn_count == 0:
            view.clear()
        view.add_turn(message.turn)

    @on(msg.TryFinished)
    def _try_finished(self, message: msg.TryFinished) -> None:
        status = self.query_one("#try-status", Static)
        if message.error:
            status.update(Text.assemble(("try failed: ", "bold red"), message.error))
            self.notify(message.error, title="Try it failed", severity="error", timeout=10)
            return
        outcome = message.outcome
        if outcome is None:
            status.update(Text("try ended without an outcome", style="red"))
            return
        view = self.query_one("#try-transcript", TranscriptView)
        if view.turn_count == 0:
            view.show(list(outcome.transcript))
        if outcome.ok:
            status.update(
                Text.assemble(("decision: ", "bold green"), f"{outcome.choice} x {outcome.quantity:g}", _cost(outcome))
            )
        else:
            status.update(Text.assemble(("no valid decision: ", "bold red"), outcome.error or "", _cost(outcome)))


def _cost(outcome: object) -> str:
    calls = getattr(outcome, "llm_calls", 0)
    tokens = getattr(outcome, "prompt_tokens", 0) + getattr(outcome, "completion_tokens", 0)
    return f"   ({calls} LLM call(s), {tokens} tokens; nothing saved)"
