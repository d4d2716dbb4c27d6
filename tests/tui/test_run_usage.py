"""The Run screen's tokens and cost: summed live as decisions finish, equal to the stored figures at the end."""

from __future__ import annotations

import pytest
from malles_graph.tui import messages as msg
from malles_graph.tui.app import MallesApp
from malles_graph.tui.screens.run import LiveUsage, RunScreen, usage_line
from textual.widgets import Static

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.scenario import BackendConfig, ModelPrice, Scenario
from malles_graph.store.engine import make_engine
from malles_graph.store.summary import summarise
from malles_graph.usage import DEFAULT_MODELS
from tests.tui.conftest import TINY_SCENARIO, Recorder, scripted, wait_for

SIZE = (150, 45)
PRICED = TINY_SCENARIO + "prices:\n  {model}: {{prompt_per_1m: 1.0, cached_per_1m: 0.1, completion_per_1m: 2.0}}\n"


def t(agent: str, prompt: int, cached: int = 0, role: str = "persona") -> TranscriptTurn:
    return TranscriptTurn(agent_id=agent, role=role, text="x", prompt_tokens=prompt, cached_prompt_tokens=cached,
                          completion_tokens=1)


def test_live_usage_counts_each_turn_once_as_the_store_does() -> None:
    price = ModelPrice(prompt_per_1m=1.0, completion_per_1m=1.0)
    live = LiveUsage(Scenario(name="s", backend=BackendConfig(name="openai", model="m"), prices={"m": price}))
    assert live.add_turn(1, None, t("a", 999)) is False  # a live preview: its decision brings it
    assert live.add_turn(1, 0, t("a", 100)) and live.add_turn(1, 1, t("a", 200, 150))
    live.add_turn(1, 1, t("a", 200, 150))  # the same stored turn again (a replay) replaces itself
    assert live.report().total.prompt_tokens == 300 and live.report().total.cached_prompt_tokens == 150
    # the decision's transcript replaces the turns stored for (round 1, agent a)
    live.add_decision(1, AgentOutcome(agent_id="a", ok=True, transcript=[t("a", 100), t("a", 200, 150), t("a", 50)]))
    live.add_decision(2, AgentOutcome(agent_id="a", ok=True, transcript=[t("a", 10)]))
    report = live.report()
    assert report.total.calls == 4 and report.total.prompt_tokens == 360
    assert report.cost_usd == pytest.approx((360 - 150 + 150 + 4) / 1e6)
    line = usage_line(report)
    assert "360 prompt (42% from the server's cache)" in line and "4 calls" in line and "$0.0004" in line
    assert usage_line(LiveUsage().report()).endswith("cost -")


@pytest.mark.anyio
async def test_run_screen_shows_tokens_and_cost_live_and_the_stored_figures_at_the_end(scenario_file, store_url):
    seen = Recorder()
    path = scenario_file(text=PRICED.format(rounds=1, model=DEFAULT_MODELS["local"]))
    app = MallesApp(scenario_path=path, store_url=store_url, chat_model_factory=scripted(), real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session.status not in ("running", "cancelling"))
        assert app.session.status == "finished", app.session.error
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunScreen)
        live = screen.usage.report()
        assert live.total.calls > 0 and live.cost_usd is not None and live.cost_usd > 0
        run_id = seen.of(msg.RunFinished)[0].run_id
        stored = summarise(make_engine(store_url), run_id, store_url).usage
        assert stored.total == live.total and stored.cost_usd == pytest.approx(live.cost_usd)
        shown = str(screen.query_one("#run-usage", Static).render())
        assert f"tokens {stored.total.prompt_tokens:,} prompt" in shown and f"${stored.cost_usd:.4f}" in shown
        log_text = "\n".join(line.text for line in screen.query_one("#run-log").lines)
        assert f"{stored.total.calls:,} calls; cost ${stored.cost_usd:.4f}" in log_text
