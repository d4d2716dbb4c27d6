"""Screenshot tests: every screen at 80x24 and at 160x45, compared as text with tests/tui/snapshots/*.txt.

Deterministic by construction: the scenario list is a tmp folder with fixed files, the run store is a
relative SQLite path (the tmp folder is the working directory) holding one run with a fixed date, the
Population and Live debate screens draw a session filled with fixed figures and turns, and the editor
uses the built-in sample customer. Regenerate after an intended layout change with
``MALLES_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/tui/test_snapshots.py`` and review the diff.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from malles_graph.tui import editing
from malles_graph.tui.app import MallesApp
from malles_graph.tui.session import RoundState
from textual.screen import ModalScreen
from textual.widgets import DataTable
from textual.widgets._footer import FooterKey

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.store import make_engine
from malles_graph.store.repository import create_run
from malles_graph.store.tables import RunRow
from tests.tui.conftest import TINY_SCENARIO, wait_for
from tests.tui.screen_text import assert_snapshot

pytestmark = pytest.mark.anyio

FIXED_STYLES = """\
styles:
  neutral: {discount_sensitivity: 0.5, loss_aversion: 2.0, reference_anchoring: 0.5, brand_loyalty: 0.5}
  bargain_hunter: {discount_sensitivity: 0.9, loss_aversion: 3.0, brand_loyalty: 0.2}
"""


@pytest.fixture
def fixed_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two scenario files, a store with one run, the tmp folder as working directory; returns tiny.yaml."""
    import malles_graph.tui.screens.run as run_screen

    folder = tmp_path / "scenarios"
    folder.mkdir()
    for name in ("tiny", "tiny-economist-best-response"):
        (folder / f"{name}.yaml").write_text(TINY_SCENARIO.format(rounds=2), encoding="utf-8")
    monkeypatch.setattr(run_screen, "scenarios_dir", lambda: folder)
    # The editor lists one fixed style file (the code's prompt list grows as prompts are added).
    styles = tmp_path / "fixed-personas" / "styles.yaml"
    styles.parent.mkdir()
    styles.write_text(FIXED_STYLES, encoding="utf-8")
    monkeypatch.setattr(editing, "editable_files", lambda: [editing.EditableFile("styles", "styles", styles)])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MALLES_RUNS", str(tmp_path / "runs"))
    engine = make_engine("sqlite:///store.sqlite")
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    create_run(
        engine,
        RunRow(
            id="tiny-20260102-030400-ab12", name="tiny", status="finished", backend="choice-model", seed=0,
            n_customers=2000, archetypes=3, max_rounds=2, rounds_done=2, converged=True, created_at=when,
            updated_at=when,
        ),
    )  # fmt: skip
    engine.dispose()
    return folder / "tiny.yaml"


def fill_session(app: MallesApp) -> None:
    """A finished two-round run with three archetypes, as the app would have folded it from run events."""
    session = app.session
    session.reset("tiny", "retail")
    session.run_id = "tiny-20260102-030400-ab12"
    session.status = "finished"
    for index, distance in ((1, 0.3320), (2, 0.0412)):
        state = RoundState(index=index, total=3, done=3, finished=True)
        session.rounds.append(state)
        for n, agent in enumerate(("archetype-0", "archetype-1", "archetype-2")):
            for role, text in (
                ("product_specialist", "Product 4710085120703 is the house brand rice; the 2 kg bag suits a family."),
                ("price_analyst", "At 129 it is 8% under the category mean; no promotion this week."),
                ("persona", "We buy rice every second trip and the price is fair."),
            ):
                session.add_turn(TranscriptTurn(agent_id=agent, role=role, round=index, text=text), index)
            outcome = AgentOutcome(
                agent_id=agent, ok=n != 2, choice="4710085120703" if n != 2 else None, quantity=float(n + 1),
                error=None if n != 2 else "no valid JSON after 1 repair", agreement=1.0 if n != 2 else None,
                llm_calls=4, prompt_tokens=812, completion_tokens=64,
            )  # fmt: skip
            session.finish_decision(index, n + 1, 3, outcome, mass=round(0.5 - 0.15 * n, 2))
        session.finish_round(
            index,
            {"demand": {"4710085120703": 2.0 * index, "4710018004605": 1.0, "none": 0.5}, "distance": distance,
             "failure_share": 1 / 3},
        )  # fmt: skip


@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=["80x24", "160x45"])
async def test_every_screen_matches_its_snapshot(size: tuple[int, int], fixed_world: Path):
    app = MallesApp(scenario_path=fixed_world, store_url="sqlite:///store.sqlite", real_sample=False)
    name = f"{size[0]}x{size[1]}"
    failures: list[str] = []

    async def check(screen: str) -> None:
        # The footer is composed after the screen shows: wait for it (any modal has none), then for idle.
        if not isinstance(app.screen, ModalScreen):
            await wait_for(pilot, lambda: bool(app.screen.query(FooterKey)), timeout=10)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.2)
        try:
            assert_snapshot(app, f"{screen}-{name}")
        except AssertionError as exc:
            failures.append(str(exc))

    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.3)
        await check("run")
        fill_session(app)
        await pilot.press("f3")
        await pilot.pause(0.3)
        await check("debate")
        await pilot.press("f4")
        await pilot.pause(0.3)
        await check("population")
        await pilot.press("f5")
        runs = app.screen.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: runs.row_count == 1, timeout=30)
        await pilot.pause(0.3)
        await check("history")
        await pilot.press("f6")
        await pilot.pause(0.5)  # the validation runs after a short delay
        await check("editor")
        await pilot.press("f1")
        await pilot.pause(0.3)
        await check("help")
    assert not failures, "\n\n".join(failures)
