"""Run: pick a scenario, override a few fields with validation, start and cancel runs.

The form never runs anything itself: ``build_scenario`` loads the file with the
overrides through the core's ``load_scenario`` (so the errors are the CLI's,
naming file and field) and the app starts the worker. While a run goes, the
tokens it spent and their cost are summed live (:class:`LiveUsage`) the way the
store sums them; the finished line shows the stored figures.
"""

from __future__ import annotations

from pathlib import Path

from malles_graph.tui import messages as msg
from malles_graph.tui.screens.base import ModeScreen
from malles_graph.tui.screens.open_file import OpenFileScreen
from malles_graph.tui.widgets.footer import KeyFooter
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Header, Input, Label, OptionList, ProgressBar, RichLog, Select, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.errors import ScenarioError
from malles_graph.paths import scenarios_dir
from malles_graph.scenario import BACKEND_NAMES, Scenario, load_scenario
from malles_graph.usage import UsageReport, report_from_turns

# Which scenario field the "rounds" and "archetypes" boxes override, by scenario kind.
ROUND_FIELDS = {"retail": "mean_field.max_rounds", "economist": "economist.steps", "wholesale": "wholesale.periods"}
ARCHETYPE_FIELDS = {"retail": "population.archetypes", "economist": "economist.archetypes"}
FROM_SCENARIO = "__scenario__"


def scenario_files(folder: Path | None = None) -> list[Path]:
    folder = folder or scenarios_dir()
    return sorted(folder.glob("*.y*ml")) if folder.is_dir() else []


def peek_kind(path: Path) -> str:
    """The scenario's kind, read leniently (the form needs it before full validation)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return "retail"
    kind = data.get("kind", "retail") if isinstance(data, dict) else "retail"
    return kind if kind in ROUND_FIELDS else "retail"


class LiveUsage:
    """The tokens of the run going, counted as the store counts them.

    A finished decision's transcript replaces whatever was counted for its (round, agent); dialogue
    turns stored one by one (economist, wholesale: they carry a ``seq``) count until then. Live
    previews of debate turns (no ``seq``) are not counted: their decision brings them, once.
    """

    def __init__(self, scenario: Scenario | None = None) -> None:
        self.scenario = scenario
        self._decided: dict[tuple[int, str], list[TranscriptTurn]] = {}
        self._stored: dict[tuple[int, str, int], TranscriptTurn] = {}

    def add_decision(self, round_index: int, outcome: AgentOutcome) -> None:
        self._decided[(round_index, outcome.agent_id)] = list(outcome.transcript)

    def add_turn(self, round_index: int | None, seq: int | None, turn: TranscriptTurn) -> bool:
        """Count a stored turn; False for a live preview (nothing changed)."""
        if seq is None:
            return False
        self._stored[(round_index or 0, turn.agent_id, seq)] = turn
        return True

    def turns(self) -> list[TranscriptTurn]:
        loose = [t for (rnd, agent, _), t in self._stored.items() if (rnd, agent) not in self._decided]
        return [t for turns in self._decided.values() for t in turns] + loose

    def report(self) -> UsageReport:
        return report_from_turns(self.turns(), self.scenario)


def usage_line(usage: UsageReport) -> str:
    """Tokens and cost in one line ("cost -" when the scenario has no price for its model)."""
    total = usage.total
    cost = "-" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"
    return (
        f"tokens {total.prompt_tokens:,} prompt ({usage.cache_hit_rate:.0%} from the server's cache) + "
        f"{total.completion_tokens:,} completion in {total.calls:,} calls; cost {cost}"
    )


class RunScreen(ModeScreen):
    """Choose what to run and watch its progress; the transcript is on Live debate (F3)."""

    TITLE = "Run"
    AUTO_FOCUS = "#scenario-list"  # Enter picks the highlighted scenario at once
    BINDINGS = [
        Binding("ctrl+o", "open_file", "Open file", id="run.open", tooltip="Run a scenario YAML outside scenarios/"),
    ]

    class ScenarioChosen(Message):
        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self) -> None:
        super().__init__()
        self.scenario_path: Path | None = None
        self.extra_files: list[Path] = []
        self._box_error: str | None = None
        self.usage = LiveUsage()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="run-main"):
            with Vertical(id="run-scenarios", classes="sidebar"):
                yield Label("Scenarios", classes="section-title")
                yield OptionList(id="scenario-list")
                yield Button("Open file...", id="open-file", tooltip="ctrl+o: a scenario YAML anywhere", compact=True)
            # Compact fields (one line each) and a scrolling form: the whole form fits 80x24.
            with VerticalScroll(id="run-form"):
                yield Label("No scenario chosen", id="scenario-title", classes="section-title")
                yield Static("", id="scenario-description")
                with Grid(id="form-grid"):
                    yield Label("Backend")
                    yield Select(
                        [("as in the scenario", FROM_SCENARIO), *((name, name) for name in BACKEND_NAMES)],
                        value=FROM_SCENARIO,
                        allow_blank=False,
                        id="backend",
                        compact=True,
                    )
                    yield Label("Model")
                    yield Input(placeholder="as in the scenario", id="model", compact=True)
                    # An empty box means "as in the scenario": only typed text is validated.
                    yield Label("Seed")
                    yield Input(
                        placeholder="as in the scenario", type="integer", id="seed", compact=True, valid_empty=True
                    )
                    yield Label("Rounds", id="rounds-label")
                    yield Input(
                        placeholder="as in the scenario", type="integer", id="rounds", compact=True, valid_empty=True
                    )
                    yield Label("Archetypes")
                    yield Input(
                        placeholder="as in the scenario",
                        type="integer",
                        id="archetypes",
                        compact=True,
                        valid_empty=True,
                    )
                    yield Label("Resume run id")
                    yield Input(placeholder="start a new run", id="resume", compact=True)
                    yield Label("Store URL")
                    yield Input(placeholder="as in the scenario", id="store", compact=True)
                yield Static("", id="form-error", classes="error-panel")
                with Horizontal(classes="button-row"):
                    yield Button("Start ^r", id="start", variant="success", tooltip="ctrl+r", compact=True)
                    yield Button(
                        "Cancel run ^g", id="cancel", variant="error", tooltip="ctrl+g", disabled=True, compact=True
                    )
            with Vertical(id="run-status"):
                yield Label("Progress", classes="section-title")
                yield Static("idle", id="run-state")
                yield ProgressBar(id="round-progress", show_eta=False)
                yield Static("", id="round-info")
                yield Static("", id="run-usage")
                yield RichLog(id="run-log", wrap=True, markup=True, min_width=1)
        yield KeyFooter()

    def on_mount(self) -> None:
        app = self.app
        store_url = getattr(app, "store_url", None)
        if store_url:
            self.query_one("#store", Input).value = store_url
        self.query_one("#form-error", Static).display = False
        self.reload_scenarios()
        initial = getattr(app, "scenario_path", None)
        if initial is not None:
            self.choose(Path(initial))
        else:
            self.query_one("#scenario-list", OptionList).highlighted = 0  # Enter picks it at once
        app.run_events.subscribe(self, self.on_run_event, immediate=True)  # type: ignore[attr-defined]
        self._show_state()

    # ---- choosing a scenario --------------------------------------------------------------------

    def reload_scenarios(self) -> None:
        options = self.query_one("#scenario-list", OptionList)
        options.clear_options()
        files = scenario_files() + [p for p in self.extra_files if p not in scenario_files()]
        for path in files:
            options.add_option(Option(path.stem, id=str(path)))
        if not files:
            options.add_option(Option(Text("no scenarios in scenarios/", style="dim"), disabled=True))

    @on(OptionList.OptionSelected, "#scenario-list")
    def _scenario_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.choose(Path(event.option.id))

    def choose(self, path: Path) -> None:
        """Make ``path`` the scenario to run, showing its description or its validation error."""
        path = path.expanduser()
        self.scenario_path = path
        if path.parent.resolve() != scenarios_dir().resolve() and path not in self.extra_files:
            self.extra_files.append(path)
            self.reload_scenarios()
        options = self.query_one("#scenario-list", OptionList)
        try:
            options.highlighted = options.get_option_index(str(path))
        except OptionDoesNotExist:
            pass
        kind = peek_kind(path)
        self.query_one("#rounds-label", Label).update(
            {"retail": "Rounds", "economist": "Steps", "wholesale": "Periods"}[kind]
        )
        self.query_one("#archetypes", Input).disabled = kind not in ARCHETYPE_FIELDS
        title = self.query_one("#scenario-title", Label)
        description = self.query_one("#scenario-description", Static)
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            title.update(f"{path.name}  [b red]invalid[/]")
            description.update("")
            self.show_error(str(exc))
            return
        self.show_error(None)
        title.update(Text.assemble((scenario.name, "bold"), (f"  ({scenario.kind}, {path.name})", "dim")))
        title.tooltip = str(path)
        self._describe_with_overrides(scenario)

    def _describe_with_overrides(self, fallback: Scenario | None = None) -> None:
        """The description line shows the run as it would start: backend, seed and rounds after the overrides."""
        scenario = self.build_scenario(quiet=True) or fallback
        if scenario is not None:
            self.query_one("#scenario-description", Static).update(self._describe(scenario))

    @staticmethod
    def _describe(scenario: Scenario) -> str:
        rounds_field = ROUND_FIELDS[scenario.kind]
        rounds = _dotted(scenario, rounds_field)
        bits = [
            scenario.description or "",
            f"backend [b]{scenario.backend.name}[/]{' ' + scenario.backend.model if scenario.backend.model else ''}"
            f", seed {scenario.seed}, {rounds_field} = {rounds}",
        ]
        if scenario.kind in ARCHETYPE_FIELDS:
            bits[-1] += f", {ARCHETYPE_FIELDS[scenario.kind]} = {_dotted(scenario, ARCHETYPE_FIELDS[scenario.kind])}"
        return "\n".join(b for b in bits if b)

    @on(Button.Pressed, "#open-file")
    def action_open_file(self) -> None:
        def opened(path: Path | None) -> None:
            if path is not None:
                self.choose(path)

        self.app.push_screen(OpenFileScreen(), opened)

    # ---- the form -------------------------------------------------------------------------------

    def overrides(self) -> dict[str, object]:
        kind = peek_kind(self.scenario_path) if self.scenario_path else "retail"
        values: dict[str, object] = {}
        backend = self.query_one("#backend", Select).value
        if backend not in (FROM_SCENARIO, Select.BLANK):
            values["backend.name"] = backend
        model = self.query_one("#model", Input).value.strip()
        if model:
            values["backend.model"] = model
        for box, field in (
            ("seed", "seed"),
            ("rounds", ROUND_FIELDS[kind]),
            ("archetypes", ARCHETYPE_FIELDS.get(kind)),
        ):
            raw = self.query_one(f"#{box}", Input).value.strip()
            if raw and field:
                try:
                    values[field] = int(raw)
                except ValueError:
                    raise ScenarioError(f"{box}: expected a whole number, got {raw!r}") from None
        store = self.query_one("#store", Input).value.strip()
        if store:
            values["store.url"] = store
        return values

    def build_scenario(self, quiet: bool = False) -> Scenario | None:
        """The chosen scenario with the form's overrides, or None (and the error shown) when invalid."""
        if self.scenario_path is None:
            if not quiet:
                self.show_error("Choose a scenario in the list (or open a file with ctrl+o) first.")
                self.notify("Choose a scenario first.", severity="warning")
            return None
        try:
            scenario = load_scenario(self.scenario_path, self.overrides())
        except ScenarioError as exc:
            if not quiet:
                self.show_error(str(exc))
                self.notify(str(exc), title="Scenario invalid", severity="error", timeout=10)
            return None
        if not quiet:
            self.show_error(None)
        return scenario

    def resume_id(self) -> str | None:
        return self.query_one("#resume", Input).value.strip() or None

    def show_error(self, error: str | None) -> None:
        panel = self.query_one("#form-error", Static)
        panel.display = bool(error)
        panel.update(Text(error or ""))

    @on(Input.Changed, "#form-grid Input")
    def _check_boxes(self, event: Input.Changed) -> None:
        # Integer boxes validate as typed (the full check runs on start); clear only what this check showed.
        result = event.validation_result
        if result is not None and not result.is_valid:
            self._box_error = f"{event.input.id}: {'; '.join(result.failure_descriptions)}"
            self.show_error(self._box_error)
            return
        if self._box_error is not None:
            self._box_error = None
            self.show_error(None)
        self._describe_with_overrides()

    @on(Select.Changed, "#backend")
    def _backend_changed(self) -> None:
        self._describe_with_overrides()

    @on(Button.Pressed, "#start")
    async def _start(self) -> None:
        await self.app.run_action("start_run")

    @on(Button.Pressed, "#cancel")
    async def _cancel(self) -> None:
        await self.app.run_action("cancel_run")

    # ---- progress -------------------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self._show_state()

    def _show_state(self) -> None:
        session = self.app.session  # type: ignore[attr-defined]
        active = session.status in ("running", "cancelling")
        self.query_one("#start", Button).disabled = active
        self.query_one("#cancel", Button).disabled = session.status != "running"
        colour = {"running": "green", "cancelling": "yellow", "failed": "red", "cancelled": "yellow"}.get(
            session.status, "white"
        )
        text = f"[b {colour}]{session.status}[/]"
        if session.scenario_name:
            text += f"  {session.scenario_name} ({session.kind})"
        if session.run_id:
            text += f"\nrun id [b]{session.run_id}[/]"
        if session.error:
            text += f"\n[red]{session.error}[/]"
        self.query_one("#run-state", Static).update(text)
        bar = self.query_one("#round-progress", ProgressBar)
        bar.display = bool(session.rounds)  # an idle indeterminate bar would pulse for nothing
        if session.rounds:
            current = session.current
            bar.update(total=max(current.total, 1), progress=current.done)
            self.query_one("#round-info", Static).update(
                f"round {current.index}: {current.done}/{current.total} decisions"
            )
        else:
            self.query_one("#round-info", Static).update("")

    def on_run_event(self, message: Message) -> None:
        log = self.query_one("#run-log", RichLog)
        if isinstance(message, msg.RunStarted) and message.run_id is None:
            log.clear()
            log.write(f"[b]started[/] {message.scenario_name} ({message.kind})")
            self.usage = LiveUsage(self.build_scenario(quiet=True))  # the form's scenario prices the tokens
            self._show_usage()
        elif isinstance(message, msg.RunStarted):
            log.write(f"run id [b]{message.run_id}[/]")
        elif isinstance(message, msg.RoundStarted):
            log.write(f"round {message.round_index}: {message.n_decisions} decision(s)")
        elif isinstance(message, msg.RoundFinished):
            log.write(f"round {message.round_index} done: {_figures_line(message.figures)}")
        elif isinstance(message, msg.DecisionFinished):
            self.usage.add_decision(message.round_index, message.outcome)
            self._show_usage()
        elif isinstance(message, msg.TurnStreamed):
            seq = getattr(getattr(message, "event", None), "seq", None)
            if self.usage.add_turn(message.round_index, seq, message.turn):
                self._show_usage()
        elif isinstance(message, msg.RunFinished):
            stored = getattr(message.summary, "usage", None)  # the store's figures replace the live sums
            if isinstance(stored, UsageReport):
                self.query_one("#run-usage", Static).update(usage_line(stored))
            log.write(f"[b green]finished[/] {_summary_line(message.summary)}")
        elif isinstance(message, msg.RunFailed):
            log.write(f"[b red]failed[/] {Text(message.error).markup}")
        elif isinstance(message, msg.RunCancelled):
            log.write("[b yellow]cancelled[/]" if message.stopped else "[yellow]cancel requested[/]")
        elif isinstance(message, msg.RunLogged):
            log.write(Text(message.text, style="dim"))
        self._show_state()

    def _show_usage(self) -> None:
        self.query_one("#run-usage", Static).update(usage_line(self.usage.report()))


def _dotted(model: object, dotted: str) -> object:
    for part in dotted.split("."):
        model = getattr(model, part, None)
    return model


def _figures_line(figures: dict) -> str:
    bits = []
    if figures.get("distance") is not None:
        bits.append(f"distance {figures['distance']:.4f}")
    if figures.get("failure_share") is not None:
        bits.append(f"failures {figures['failure_share']:.0%}")
    for key in ("welfare", "profit", "fill_rate"):
        if isinstance(figures.get(key), int | float):
            bits.append(f"{key} {figures[key]:.3g}")
    return ", ".join(bits) or "no figures"


def _summary_line(summary: object) -> str:
    """One line about a finished run, whatever its kind returned."""
    if summary is None:
        return ""
    if hasattr(summary, "decisions") and hasattr(summary, "failed"):  # retail RunSummary
        converged = "converged" if getattr(summary, "converged", False) else "not converged"
        usage = getattr(summary, "usage", None)
        return (
            f"{summary.decisions} decisions, {summary.failed} failed, {getattr(summary, 'llm_calls', 0)} LLM calls, "
            f"{converged}, {getattr(summary, 'wall_s', 0.0):.1f}s"
            + (f"; {usage_line(usage)}" if isinstance(usage, UsageReport) else "")
        )
    meta = getattr(summary, "meta", None)
    if isinstance(meta, dict):  # economist or wholesale run
        where = getattr(summary, "run_dir", None) or getattr(summary, "folder", None)
        calls = meta.get("llm_calls", 0)
        return f"{calls} LLM calls; run folder {where}" if where else f"{calls} LLM calls"
    return ""
