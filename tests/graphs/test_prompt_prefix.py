"""The role prompts are ordered for the server's prompt cache (llama.cpp reuses the longest common prefix).

Every prompt a decision sends opens with the same preamble (candidates and market signal, in one order
whatever rotation a sample lists the candidates in); what changes between rounds (round number,
transcript) comes after a role's fixed part; the decide samples differ only after the transcript.
"""

from __future__ import annotations

import os

from malles_graph.graphs.decision import DecisionContext, decide_situation

from malles_graph.models import MarketSignal
from malles_graph.prompts import load_prompt
from tests.graphs.decision_fixtures import IDS, answer, client, memory, responder, situation

MARKERS = {
    "product_specialist": "You are a product specialist",
    "price_analyst": "You are a price analyst",
    "persona": "You are this shopper",
    "decide": "Decide for the shopper",
}


def sent_prompts() -> dict[str, list[str]]:
    market = MarketSignal(popularity={IDS[0]: 0.3, IDS[1]: 0.1}, scarcity={IDS[1]: 0.5})
    model = responder([answer("A", 2)] * 3)
    ctx = DecisionContext(debate_rounds=2, samples=3, seed=1)
    result = decide_situation(situation(market=market), ctx, client(model), retriever=memory())
    assert result.ok
    by_role: dict[str, list[str]] = {role: [] for role in MARKERS}
    for call in model.calls:
        text = str(call[0].content)
        by_role[next(role for role, marker in MARKERS.items() if marker in text)].append(text)
    assert [len(v) for v in by_role.values()] == [2, 2, 2, 3]
    return by_role


def test_every_role_prompt_opens_with_the_same_preamble():
    prompts = sent_prompts()
    shared = os.path.commonprefix([p for texts in prompts.values() for p in texts])
    # the whole preamble, candidates in label order and the market line, and nothing role-specific
    assert "A, B, C (or none)" in shared
    assert shared.rstrip("\n").endswith("Market now: A 75% of demand; B 25% of demand, 50% scarce")
    assert not any(marker in shared for marker in MARKERS.values())


def test_round_two_repeats_round_one_up_to_the_transcript():
    prompts = sent_prompts()
    for role in ("product_specialist", "price_analyst", "persona"):
        first, second = prompts[role]
        fixed = first[: first.index("Debate round 1.")]
        assert second.startswith(fixed) and "Debate round 2." in second, role
        assert len(fixed) > 0.5 * len(first), f"{role}: most of the round-1 prompt is reusable"


def test_decide_samples_differ_only_after_the_transcript():
    decide = sent_prompts()["decide"]
    shared = os.path.commonprefix(decide)
    assert "persona (round 2): I prefer A." in shared  # the whole debate is in the shared part
    assert "Offered products" not in shared or shared.index("Offered products") > shared.index("Debate:")
    assert len({p[len(shared):].split("\n")[0] for p in decide}) == 3  # each sample lists another candidate first


def test_single_agent_prompt_opens_with_the_preamble_too():
    from malles_graph.graphs.decision import role_vars

    s = situation()
    texts = []
    for name in ("single_agent", "decide", "product_specialist"):
        template = load_prompt(name)
        texts.append(template.render(**role_vars(s, [], None, [], needed=template.fields)))
    shared = os.path.commonprefix(texts)
    assert "A, B, C (or none)" in shared and "You decide" not in shared
