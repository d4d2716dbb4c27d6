"""Live debate: the transcript of the decision being simulated, streamed turn by turn.

The list on the left holds the archetypes (agents) of the round; by default the
view *follows* the run: it stays on one agent until its decision lands, then moves
to the next agent that speaks (agents debate in parallel). Picking an agent pins
the view to it (press ``f`` to follow again). Retries, conflicts and failures are badged in the
transcript; the structured decision shows below it when it lands.
"""

from __future__ import annotations

from malles_graph.tui import messages as msg
from malles_graph.tui.screens.base import ModeScreen
from malles_graph.tui.session import RoundState, RunSession
from malles_graph.tui.widgets.footer import KeyFooter
from malles_graph.tui.widgets.transcript import TranscriptView
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Header, Label, OptionList, Select, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from malles_graph.agents import AgentOutcome


def outcome_text(outcome: AgentOutcome | None) -> Text:
    """The structured decision of one agent (or why it failed)."""
    if outcome is None:
        return Text("deciding...", style="dim")
    if not outcome.ok:
        return Text.assemble(("FAILED ", "bold white on red"), " ", outcome.error or "no valid decision")
    text = Text.assemble(("DECISION ", "bold black on green"), " ", (f"{outcome.choice}", "bold"))
    text.append(f" x {outcome.quantity:g}")
    if outcome.agreement is not None:
        text.append(f"   agreement {outcome.agreement:.0%}")
    text.append(f"   {outcome.llm_calls} call(s), {outcome.prompt_tokens}+{outcome.completion_tokens} tokens", "dim")
    retries = outcome.details.get("retries") if isinstance(outcome.details, dict) else None
    if retries:
        text.append(f"   retries {retries}", "yellow")
    return text


def agent_label(agent_id: str, state: RoundState) -> Text:
    row = state.archetypes.get(agent_id)
    outcome = row.outcome if row else None
    turns = state.transcripts.get(agent_id, [])
    flagged = any(t.kind in ("retry", "conflict") for t in turns)
    if outcome is None:
        mark = ("… ", "yellow")
    elif outcome.ok:
        mark = ("✓ ", "green")
    else:
        mark = ("✗ ", "red")
    label = Text.assemble(mark, agent_id)
    if flagged:
        label.append(" !", "bold dark_orange3")
    return label


class DebateScreen(ModeScreen):
    """Watch the debate of the current round, one archetype at a time."""

    TITLE = "Live debate"
    BINDINGS = [
        Binding("n", "step(1)", "Next agent", id="debate.next", tooltip="Show the next archetype's transcript"),
        Binding("p", "step(-1)", "Prev agent", id="debate.prev", tooltip="Show the previous archetype's transcript"),
        Binding("f", "follow", "Follow", id="debate.follow", tooltip="Follow whichever agent is speaking"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.round_index: int | None = None  # None: the latest round
        self.agent_id: str | None = None
        self.follow = True
        self.stale = False  # a run event arrived since the last redraw: redraw when the screen shows again

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="debate-main"):
            with Vertical(id="debate-side", classes="sidebar"):
                yield Label("Round", classes="section-title")
                yield Select([], prompt="latest round", id="round-select")
                yield Label("Agents", classes="section-title")
                yield OptionList(id="agent-list")
            with Vertical(id="debate-body"):
                yield Label("No run yet: start one on the Run screen (F2).", id="debate-title", classes="section-title")
                yield TranscriptView(id="debate-transcript")
                yield Static("", id="decision-panel")
        yield KeyFooter()

    @property
    def session(self) -> RunSession:
        return self.app.session  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self.app.run_events.subscribe(self, self.on_run_event, immediate=True)  # type: ignore[attr-defined]
        self.redraw()

    def on_screen_resume(self) -> None:
        # Events are followed live even while hidden; a full redraw is only needed if one came since the last.
        if self.stale:
            self.redraw()

    def shown_round(self) -> RoundState | None:
        if not self.session.rounds:
            return None
        if self.round_index is None:
            return self.session.current
        return self.session.round(self.round_index)

    # ---- drawing --------------------------------------------------------------------------------

    def redraw(self) -> None:
        self.stale = False
        self._fill_rounds()
        self._fill_agents()
        self._show_agent()

    def _fill_rounds(self) -> None:
        select = self.query_one("#round-select", Select)
        options = [(f"round {r.index}", r.index) for r in self.session.rounds]
        with self.prevent(Select.Changed):
            select.set_options(options)
            if self.round_index is not None and any(v == self.round_index for _, v in options):
                select.value = self.round_index

    def _fill_agents(self) -> None:
        state = self.shown_round()
        options = self.query_one("#agent-list", OptionList)
        highlighted = self.agent_id
        options.clear_options()
        if state is None:
            return
        for agent_id in state.archetypes:
            options.add_option(Option(agent_label(agent_id, state), id=agent_id))
        if highlighted is not None:
            try:
                with self.prevent(OptionList.OptionHighlighted):
                    options.highlighted = options.get_option_index(highlighted)
            except OptionDoesNotExist:
                pass

    def _show_agent(self) -> None:
        state = self.shown_round()
        view = self.query_one("#debate-transcript", TranscriptView)
        title = self.query_one("#debate-title", Label)
        panel = self.query_one("#decision-panel", Static)
        if state is None:
            view.show([], "No transcript yet.")
            panel.update("")
            return
        if self.agent_id is None and state.archetypes:
            self.agent_id = next(iter(state.archetypes))
        agent = self.agent_id
        turns = state.transcripts.get(agent or "", [])
        follow = "  [dim](following)[/]" if self.follow else "  [dim](pinned; f to follow)[/]"
        title.update(f"{agent or '-'}  round {state.index}{follow}")
        view.show(turns, "No turns yet for this agent.")
        row = state.archetypes.get(agent or "")
        panel.update(outcome_text(row.outcome if row else None))

    def _refresh_agent_label(self, state: RoundState, agent_id: str) -> None:
        options = self.query_one("#agent-list", OptionList)
        try:
            options.replace_option_prompt(agent_id, agent_label(agent_id, state))
        except OptionDoesNotExist:
            options.add_option(Option(agent_label(agent_id, state), id=agent_id))

    # ---- live events ----------------------------------------------------------------------------

    def on_run_event(self, message: Message) -> None:
        self.stale = not self.is_current
        if isinstance(message, msg.RunStarted) and message.run_id is None:
            self.round_index, self.agent_id, self.follow = None, None, True
            self.redraw()
        elif isinstance(message, msg.RoundStarted):
            if self.round_index is None:
                self.agent_id = None
            self.redraw()
        elif isinstance(message, msg.TurnStreamed):
            self._turn(message)
        elif isinstance(message, msg.DecisionFinished):
            state = self.session.round(message.round_index)
            if self._showing(state):
                self._refresh_agent_label(state, message.outcome.agent_id)
                if message.outcome.agent_id == self.agent_id:
                    self._show_agent()

    def _current_is_done(self, state: RoundState) -> bool:
        """Follow mode stays on one agent until its decision lands (agents speak in parallel)."""
        row = state.archetypes.get(self.agent_id or "")
        return row is None or row.outcome is not None

    def _showing(self, state: RoundState) -> bool:
        shown = self.shown_round()
        return shown is not None and shown.index == state.index

    def _turn(self, message: msg.TurnStreamed) -> None:
        state = self.session.round(message.round_index)
        if not self._showing(state):
            return
        agent = message.turn.agent_id
        self._refresh_agent_label(state, agent)
        if self.follow and agent != self.agent_id and self._current_is_done(state):
            self.agent_id = agent
            self._show_agent()
            with self.prevent(OptionList.OptionHighlighted):
                try:
                    options = self.query_one("#agent-list", OptionList)
                    options.highlighted = options.get_option_index(agent)
                except OptionDoesNotExist:
                    pass
        elif agent == self.agent_id:
            self.query_one("#debate-transcript", TranscriptView).add_turn(message.turn)

    # ---- user choices ---------------------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#agent-list")
    @on(OptionList.OptionSelected, "#agent-list")
    def _agent_picked(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        # Only the user's moves pin the view: highlights made while redrawing the list do not.
        by_user = isinstance(event, OptionList.OptionSelected) or event.option_list.has_focus
        if by_user and event.option.id and event.option.id != self.agent_id:
            self.agent_id = event.option.id
            self.follow = False
            self._show_agent()

    @on(Select.Changed, "#round-select")
    def _round_picked(self, event: Select.Changed) -> None:
        value = event.value
        self.round_index = None if value is Select.BLANK else int(value)  # type: ignore[arg-type]
        self.agent_id = None
        self._fill_agents()
        self._show_agent()

    def action_step(self, delta: int) -> None:
        state = self.shown_round()
        if state is None or not state.archetypes:
            return
        agents = list(state.archetypes)
        index = agents.index(self.agent_id) if self.agent_id in agents else -1
        self.agent_id = agents[(index + delta) % len(agents)]
        self.follow = False
        options = self.query_one("#agent-list", OptionList)
        with self.prevent(OptionList.OptionHighlighted):
            options.highlighted = agents.index(self.agent_id)
        self._show_agent()

    def action_follow(self) -> None:
        self.follow = True
        self.round_index = None
        self.redraw()
        self.notify("Following the agent that is speaking.")
