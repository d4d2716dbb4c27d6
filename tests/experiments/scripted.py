"""Cases and a scripted chat model whose answers depend on the prompt and persona wording (experiment tests)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from langchain_core.messages import BaseMessage

from malles_graph.backends import LLMClient, build_client
from malles_graph.evaluation.cases import ChoiceCase, write_jsonl
from malles_graph.models import Customer, Product
from malles_graph.paths import prompts_dir
from malles_graph.scenario import BackendConfig
from tests.fakes import ScriptedChatModel

WORD = "THRIFTY"  # a decide.txt holding this word makes the scripted model pick the cheapest product
# ... and so does a persona description holding it: the persona role then states this preference,
# which the decision follows (it reads the debate transcript)
CHEAPEST_TURN = "I prefer C, the cheapest."
DECIDE_MARK = "Answer with only a JSON object"


def cases(n: int = 24, cheapest_share: float = 0.75) -> list[ChoiceCase]:
    """n cases of three candidates A, B, C where C is always the cheapest; the customer bought C in
    the first ``cheapest_share`` of the cases and A in the others."""
    out = []
    for i in range(n):
        day = dt.date(2001, 2, 1) + dt.timedelta(days=i % 27)
        cid = f"c{i}_{day:%Y%m%d}_100101"
        prices = {"A": 50.0, "B": 40.0, "C": 30.0}
        candidates = [
            Product(
                product_id=f"p{i}{lab}",
                subclass="100101",
                price=p,
                regular_price=p,
                popularity=0.2,
                label=lab,
                median_quantity=1,
            )
            for lab, p in prices.items()
        ]
        truth = f"p{i}C" if i < round(cheapest_share * n) else f"p{i}A"
        out.append(
            ChoiceCase(
                case_id=cid,
                date=day,
                subclass="100101",
                candidates=candidates,
                truth_product_id=truth,
                truth_quantity=2,
                customer=Customer(
                    customer_id=f"c{i}",
                    age_group="30-34",
                    pin_code="115",
                    n_baskets=6,
                    mean_basket_value=400,
                    mean_unit_price=50,
                    mean_quantity=2,
                ),
            )
        )
    return out


def write_cases(path: Path, n: int = 24) -> Path:
    write_jsonl(cases(n), path)
    return path


def prompt_folder(path: Path, word: str | None = None) -> Path:
    """A copy of the bundled prompts; with ``word``, decide.txt asks for it in one extra sentence."""
    shutil.copytree(prompts_dir(), path)
    if word:
        decide = path / "decide.txt"
        decide.write_text(
            decide.read_text(encoding="utf-8").replace(
                DECIDE_MARK, f"Be {word}: prefer the cheapest product. {DECIDE_MARK}"
            ),
            encoding="utf-8",
        )
    return path


def respond(messages: list[BaseMessage]) -> str:
    first, last = str(messages[0].content), str(messages[-1].content)
    if DECIDE_MARK not in first:
        return CHEAPEST_TURN if WORD in first else "A good option: I prefer A."
    if "GARBLE" in first and not last.startswith("Your answer was invalid"):
        return "not json at all"  # the first attempt is invalid; the repair loop fixes it
    product = "C" if WORD in first or CHEAPEST_TURN in first else "A"
    return json.dumps({"product": product, "quantity": 2, "rationale": "fits", "confidence": 0.8})


def scripted_client() -> tuple[LLMClient, ScriptedChatModel]:
    model = ScriptedChatModel(responder=respond)
    return build_client(BackendConfig(name="local", max_concurrency=1), chat_model=model, use_cache=False), model


def persona_file(path: Path, word: str | None = None) -> Path:
    """A persona file whose persona matches the cases' customers (age 30-34, area 115); with ``word``
    its description holds it. A non-matching persona comes first, so the match rule is exercised."""
    description = f"{word}: counts every coin." if word else "Likes familiar products."
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "personas:\n"
        "  - {name: elsewhere, age_group: '<25', pin_code: '221', style: bargain_hunter,"
        f" description: '{WORD} student far away.'}}\n"
        "  - {name: regular, age_group: '30-34', pin_code: '115', style: {discount_sensitivity: 0.6},"
        f" description: '{description}'}}\n",
        encoding="utf-8",
    )
    return path
