"""Each MALLES mechanism reaches the LLM path: market signal, prices and evidence, the vote, calibration.

Scripted chat models record every prompt, so each test reads what a role really saw.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from malles_graph.graphs.decision import DecisionContext, decide_situation

from malles_graph.alignment.calibration import Calibration, ProbabilityMap
from malles_graph.alignment.errors import AlignmentError
from malles_graph.models import MarketSignal, Product
from malles_graph.paths import prompts_dir
from malles_graph.prompts import PromptError, parse_prompt
from malles_graph.scenario import BackendConfig, DecisionOptions
from tests.graphs.decision_fixtures import IDS, answer, client, is_decide, memory, responder, situation

REPO = Path(__file__).resolve().parents[2]


def prompts_of(model, start: str) -> list[str]:
    return [str(call[0].content) for call in model.calls if start in str(call[0].content)]


def test_market_signal_reaches_every_role_renormalised_over_the_offered_products():
    # "gone" sold out and left the shelf: A and B share the demand of what is still offered
    market = MarketSignal(popularity={IDS[0]: 0.3, IDS[1]: 0.1, "gone": 0.6}, scarcity={IDS[1]: 0.5, "gone": 1.0})
    model = responder([answer("A", 2)])
    result = decide_situation(situation(market=market), DecisionContext(debate_rounds=1), client(model))
    assert result.ok
    expected = "Market now: A 75% of demand; B 25% of demand, 50% scarce"
    for start in ("You are a product specialist", "You are a price analyst", "You are this shopper", "Decide for"):
        seen = prompts_of(model, start)
        assert seen and expected in seen[0], start


def test_decide_sees_prices_discounts_evidence_and_attributes():
    with_attrs = situation()
    first = with_attrs.candidates[0].model_copy(update={"attributes": {"brand": "Acme", "display": 1.0}})
    with_attrs = with_attrs.model_copy(update={"candidates": [first, *with_attrs.candidates[1:]]})
    model = responder([answer("B", 1)])
    result = decide_situation(with_attrs, DecisionContext(debate_rounds=1), client(model), retriever=memory())
    assert result.ok and result.outcome.details["neighbours"] == 3  # c1's own, c2, c3; never c4 (decision day)
    decide = prompts_of(model, "Decide for")[0]
    # the shared block: evidence and attributes in the product cards, prices and discounts in the price table
    assert "A: 40.0% of subclass units, usually 2 unit(s) per purchase, in 2 of 3 similar baskets; brand Acme" in decide
    assert "B: 20.0% of subclass units, usually 1 unit(s) per purchase, in 1 of 3 similar baskets" in decide
    assert "C: 10.0% of subclass units, usually 1 unit(s) per purchase, in 0 of 3 similar baskets" in decide
    assert "A: 45 now, regular 50 (10% off), perceived +3" in decide
    assert "C: 80 now, regular 70 (14% above), perceived -27" in decide
    assert "Similar past purchases: 3 episodes (1 yours)" in decide
    # the menu next to the answer: price now and discount
    assert "The choices:\nA: 45 now (10% off)\nB: 30 now (regular)\nC: 80 now (14% above)\n" in decide
    assert "brand Acme, display 1" in prompts_of(model, "You are a product specialist")[0]


def first_listed(messages) -> str:
    """A position-biased model: always the first candidate of the decide prompt's menu (its choices)."""
    menu = str(messages[0].content).split("The choices:\n", 1)[1]
    return answer(re.match(r"([A-Z]): ", menu).group(1), 1)


def test_samples_vote_and_each_sample_sees_another_candidate_first():
    model = responder(first_listed)
    ctx = DecisionContext(debate_rounds=0, samples=3)
    out = decide_situation(situation(), ctx, client(model)).outcome
    assert sum(is_decide(c) for c in model.calls) == 3
    # rotated listings: the first-listed picks split over A, B, C, so the vote shows no agreement
    assert out.details["votes"] == {IDS[0]: 1, IDS[1]: 1, IDS[2]: 1}
    assert out.agreement == pytest.approx(1 / 3)
    assert out.details["probs"] == pytest.approx({IDS[0]: 1 / 3, IDS[1]: 1 / 3, IDS[2]: 1 / 3})
    fixed = responder(first_listed)
    same = decide_situation(situation(), DecisionContext(debate_rounds=0, samples=3, shuffle=False), client(fixed))
    assert same.outcome.details["votes"] == {IDS[0]: 3} and same.outcome.agreement == 1.0


def position_calibration(tmp_path: Path, **fitted_for: str) -> Path:
    # stacked map: weak trust in the raw vote, a strong learned preference for the 2nd position (B)
    coef = [0.1, 5.0, 0, 0, 0, 0, 0, 0]
    cal = Calibration(probability=ProbabilityMap(method="stacked", coef=coef, positions=True), fitted_for=fitted_for)
    return cal.save(tmp_path / "calibration.json")


def test_calibration_from_the_scenario_changes_the_probabilities_and_the_choice(tmp_path):
    path = position_calibration(tmp_path, backend="local")
    plain = decide_situation(
        situation(), DecisionContext(debate_rounds=0, samples=2), client(responder([answer("A", 1)] * 2))
    )
    assert plain.decision.product_id == IDS[0] and plain.outcome.details["calibrated_probs"] is None
    ctx = DecisionContext.from_options(
        DecisionOptions(debate_rounds=0, samples=2, calibration=str(path)), BackendConfig()
    )
    calibrated = decide_situation(situation(), ctx, client(responder([answer("A", 1)] * 2)))
    details = calibrated.outcome.details
    assert details["probs"] == {IDS[0]: 1.0, IDS[1]: 0.0, IDS[2]: 0.0}
    assert details["calibrated_probs"][IDS[1]] > 0.5 > details["calibrated_probs"][IDS[0]]
    assert calibrated.decision.product_id == IDS[1]
    assert calibrated.decision.confidence == pytest.approx(details["calibrated_probs"][IDS[1]], abs=1e-4)


def test_calibration_for_another_model_is_refused_naming_the_file_and_field(tmp_path):
    path = position_calibration(tmp_path, backend="openai", model="gpt-4o-mini")
    with pytest.raises(AlignmentError, match=r"calibration\.json: fitted_for\.backend is 'openai'"):
        DecisionContext.from_options(DecisionOptions(calibration=str(path)), BackendConfig(name="local"))
    with pytest.raises(AlignmentError, match="calibration file not found"):
        DecisionContext.from_options(DecisionOptions(calibration=str(tmp_path / "nope.json")), BackendConfig())


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("decide", "hidden_factors"),
        ("decide", "transcript"),
        ("decide", "offers"),
        ("decide", "market"),
        ("persona", "market"),
        ("price_analyst", "market"),
        ("product_specialist", "market"),
        ("single_agent", "price_table"),
    ],
)
def test_prompt_contracts_require_what_each_role_decides_on(name, variable):
    path = prompts_dir() / f"{name}.txt"
    text = path.read_text(encoding="utf-8")
    assert "{" + variable + "}" in text
    with pytest.raises(PromptError, match=f"missing required variable.*{variable}"):
        parse_prompt(name, text.replace("{" + variable + "}", ""), path)


def test_prompts_check_fails_without_hidden_factors_in_decide(tmp_path):
    folder = tmp_path / "prompts"
    shutil.copytree(prompts_dir(), folder)
    decide = folder / "decide.txt"
    decide.write_text(decide.read_text(encoding="utf-8").replace("{hidden_factors}", ""), encoding="utf-8")
    run = subprocess.run(
        [str(REPO / ".venv" / "bin" / "malles"), "prompts", "check", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0 and "hidden_factors" in run.stdout + run.stderr


def test_product_attributes_must_be_numbers_or_text():
    with pytest.raises(ValueError):
        Product(product_id="p", subclass="s", price=1, regular_price=1, attributes={"brand": ["a", "b"]})
