"""The role prompts are ordered for the server's prompt cache (llama.cpp reuses the longest common prefix).

Every prompt a decision sends opens with the same context block (the shopper, the product cards, the price
table, the market signal), byte-identical whatever role, round or sample sends it; then the debate so far;
then the role's own instruction. So each call repeats the previous call of its decision up to the end of
the transcript, and the decide samples differ only after the transcript.
"""

from __future__ import annotations

import os

from malles_graph.graphs.decision import DecisionContext, decide_situation, role_vars, rotated

from malles_graph.models import MarketSignal
from malles_graph.prompts import load_prompt
from tests.graphs.decision_fixtures import IDS, answer, client, memory, responder, situation

MARKERS = {
    "product_specialist": "You are a product specialist",
    "price_analyst": "You are a price analyst",
    "persona": "You are this shopper",
    "decide": "Decide for the shopper",
}
MARKET_LINE = "Market now: A 75% of demand; B 25% of demand, 50% scarce"


def sent_prompts() -> list[tuple[str, str]]:
    """(role, prompt) of every call of a 2-round debate with 3 decide samples, in the order sent."""
    market = MarketSignal(popularity={IDS[0]: 0.3, IDS[1]: 0.1}, scarcity={IDS[1]: 0.5})
    model = responder([answer("A", 2)] * 3)
    ctx = DecisionContext(debate_rounds=2, samples=3, seed=1)
    result = decide_situation(situation(market=market), ctx, client(model), retriever=memory())
    assert result.ok
    sent = []
    for call in model.calls:
        text = str(call[0].content)
        sent.append((next(role for role, marker in MARKERS.items() if marker in text), text))
    assert [role for role, _ in sent].count("decide") == 3 and len(sent) == 9
    return sent


def test_every_prompt_opens_with_the_same_context_block():
    shared = os.path.commonprefix([text for _, text in sent_prompts()])
    # the shopper, the product cards, the price table (label order) and the market line; nothing role-specific
    assert shared.startswith("A grocery shopper is choosing what to buy among the products A, B, C (or none).")
    for part in ("Shopper: age 30-34", "Drivers: budget pressure", "Similar past purchases: 3 episodes", "A: 40.0%"):
        assert part in shared, part
    assert shared.index("A: 45 now, regular 50") < shared.index("C: 80 now, regular 70") < shared.index(MARKET_LINE)
    assert shared.rstrip("\n").endswith("Debate so far:")
    assert not any(marker in shared for marker in MARKERS.values())


def test_each_call_repeats_the_previous_one_up_to_the_end_of_its_transcript():
    sent = [text for role, text in sent_prompts() if role != "decide"]
    for before, after in zip(sent, sent[1:], strict=False):
        reused = before[: before.index("\nDebate round")].removesuffix("(nothing yet)")  # the first call's
        assert after.startswith(reused), "a later call re-sends the earlier prompt unchanged"
        assert len(reused) > 0.8 * len(before), "the role's own part is short and last"


def test_decide_samples_differ_only_after_the_transcript():
    decide = [text for role, text in sent_prompts() if role == "decide"]
    shared = os.path.commonprefix(decide)
    assert "persona (round 2): I prefer A." in shared  # the whole debate is in the shared part
    menus = [p.split("The choices:\n", 1)[1] for p in decide]
    assert len({menu.split("\n")[0] for menu in menus}) == 3  # each sample lists another candidate first


def test_the_context_block_renders_the_same_for_every_prompt_and_rotation():
    """single_agent and decide samples (rotated candidates) open with the debate roles' exact block."""
    s = situation()
    texts = []
    for name, shown in (("product_specialist", s), ("single_agent", rotated(s, 1)), ("decide", rotated(s, 2))):
        template = load_prompt(name)
        texts.append(template.render(**role_vars(shown, [], None, [], needed=template.fields)))
    shared = os.path.commonprefix(texts)
    block_end = texts[0].index("Debate so far:")
    assert shared == texts[0][:block_end]
