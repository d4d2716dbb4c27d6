"""`malles wholesale run/discover` and `malles show --turns` on saved runs, and bad input."""

from __future__ import annotations

from pathlib import Path

from malles_graph.graphs.wholesale import run_wholesale
from typer.testing import CliRunner

from malles_graph.cli import app
from malles_graph.errors import MallesError
from malles_graph.scenario import BackendConfig, Scenario
from malles_graph.wholesale.options import WholesaleOptions
from tests.fakes import ScriptedChatModel

from .conftest import GOOD_RULE, role_of, rule_answer

runner = CliRunner()


def saved_run(items):
    ids = [i.item_id for i in items]
    model = ScriptedChatModel(
        responder=lambda m: rule_answer(GOOD_RULE, ids) if role_of(m[0].content) == "purchasing_rule" else "ok"
    )
    scenario = Scenario(
        name="cli", kind="wholesale", backend=BackendConfig(cache=False), wholesale=WholesaleOptions(periods=4)
    )
    return run_wholesale(scenario, chat_model=model, items=items)


def test_show_and_discover_a_saved_run(items) -> None:
    run = saved_run(items)
    # `malles show` is the one way to see a stored run of any kind: the rule and the held-out comparison come
    # from the wholesale kind's summary hook, the dialogue from the stored turns (--turns)
    shown = runner.invoke(app, ["show", run.run_id, "--turns"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "purchasing rule" in shown.output and run.rule["expression"] in shown.output
    assert "held out comparison" in shown.output and "order-up-to" in shown.output and "fill rate" in shown.output
    assert "marketing - round 1" in shown.output and "wholesaler - round 1 [decision]" in shown.output  # the dialogue
    assert shown.output.index("marketing - round") < shown.output.index("held out comparison")
    quiet = runner.invoke(app, ["show", run.run_id], terminal_width=200)
    assert "marketing - round" not in quiet.output and "order-up-to" in quiet.output
    for bad in (["--round", "1"], ["--turns", "--json"]):
        refused = runner.invoke(app, ["show", run.run_id, *bad])
        assert refused.exit_code == 2 and "--turns" in refused.output, refused.output
    found = runner.invoke(
        app, ["wholesale", "discover", str(run.folder), "--population", "60", "--generations", "3"], terminal_width=200
    )
    assert found.exit_code == 0, found.output
    assert "Pareto front" in found.output and "chosen:" in found.output and "dialogue's formula" in found.output
    assert (run.folder / "discovery.json").exists()


def test_unknown_run_and_wrong_kind_are_clear_errors(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["wholesale", "discover", "no-such-run"])
    assert missing.exit_code != 0
    assert isinstance(missing.exception, MallesError) and "no wholesale run 'no-such-run'" in str(missing.exception)
    retail = tmp_path / "retail.yaml"
    retail.write_text("name: shop\nkind: retail\n", encoding="utf-8")
    wrong = runner.invoke(app, ["wholesale", "run", str(retail)])
    assert isinstance(wrong.exception, MallesError) and "needs 'wholesale'" in str(wrong.exception)


def test_malles_run_prints_the_first_role_before_the_rule_is_decided(monkeypatch) -> None:
    """A scripted model that takes 1 s per call: `malles run` shows marketing's turn at once, not at the end
    (printed at the end, the gap to the decision would be ~0)."""
    import time

    from rich.console import Console

    from malles_graph import backends
    from malles_graph.cli.running import run_any
    from malles_graph.scenario import Scenario
    from tests.population.test_lifecycle import TimedWriter

    delay = 1.0

    def slow(messages) -> str:
        time.sleep(delay)
        prompt = str(messages[0].content)
        if role_of(prompt) != "purchasing_rule":
            return "Demand looks steady."
        line = next(x for x in prompt.splitlines() if x.startswith("Also give the units"))
        return rule_answer(GOOD_RULE, line.split(": ", 1)[1].rstrip(".").split(", "))

    scenario = Scenario.model_validate({
        "name": "live", "kind": "wholesale", "backend": {"name": "local", "cache": False},
        "wholesale": {"n_items": 1, "periods": 4, "dialogue_rounds": 1, "max_repairs": 0}})
    client = backends.build_client(scenario.backend, chat_model=ScriptedChatModel(responder=slow))
    monkeypatch.setattr(backends, "build_client", lambda *a, **k: client)
    out = TimedWriter()
    run_any(scenario, resume=None, store=None, console=Console(file=out, width=200))
    started = next(t for t, line in out.lines if "started run" in line)
    first = next(t for t, line in out.lines if "marketing:" in line)
    decided = next(t for t, line in out.lines if line.startswith("round 1:"))
    assert first - started < delay + 20  # one call after loading the demand
    assert decided - first >= 3 * delay - 0.5  # manufacturer, wholesaler and the rule came after it
    assert any("run finished" in line for _, line in out.lines)
