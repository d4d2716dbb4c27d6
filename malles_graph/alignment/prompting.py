"""The choice prompt shared by export, training, likelihood scoring and serving.

Training must see exactly what inference sees, so one function, :func:`choice_prompt`, renders
the messages for a :class:`ChoiceSituation` and every step calls it with the same format name
(recorded in the export manifest and the trained model's folder).

Two styles (:data:`PROMPT_FORMATS`):

- ``graph``: the decision graph's single-agent prompt exactly as ``graphs/decision`` sends
  it, answered in the graph's decide JSON (``{"product": "<label>", "quantity": n, ...}``), so a
  model aligned on it and served through the ``local`` backend inside the decision graph sees
  the prompt it was trained on. The core never imports ``graphs``: the front door (the CLI)
  builds a :class:`PromptStyle` from the graph's public renderer and registers it with
  :func:`register_prompt_style` (or passes it in as ``style=``).
- ``compact``: ``prompts/align_system.txt`` + ``prompts/align_choice.txt``: short candidate
  labels, one line per candidate, one line about the customer, about 120-200 tokens. Small
  models train and score several times faster on it, but the decision graph never sends it.

Either way the answer is a JSON object whose first free value is the candidate label, which is
what likelihood scoring reads.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from malles_graph.alignment.errors import AlignmentError
from malles_graph.models import ChoiceSituation
from malles_graph.prompts import PromptSpec, PromptTemplate, load_prompt

PROMPT_FORMATS: tuple[str, ...] = ("graph", "compact")
CHOICE_SPEC = PromptSpec.of("customer subclass options answer_format", "options answer_format")
SYSTEM_SPEC = PromptSpec.of("")
ANSWER_FORMAT = '{"product_id": "<letter>", "quantity": <units>}'


AnswerText = Callable[[str, int], str]  # (answer key, quantity) -> the assistant's answer text


def compact_answer(key: str, quantity: int) -> str:
    return json.dumps({"product_id": key, "quantity": int(quantity)})


@dataclass(frozen=True)
class ChoicePrompt:
    """Rendered messages plus how answers map to products."""

    messages: tuple[tuple[str, str], ...]  # (role, content): "system" / "user"
    keys: dict[str, str]  # answer key (label) -> product_id
    answer_text: AnswerText = field(default=compact_answer, compare=False)
    product_field: str = "product_id"  # the answer's JSON field naming the key

    @property
    def ids_to_keys(self) -> dict[str, str]:
        return {pid: key for key, pid in self.keys.items()}

    def answer(self, product_id: str, quantity: int) -> str:
        """The assistant's answer text for a decision (the SFT target)."""
        return self.answer_text(self.ids_to_keys[product_id], int(quantity))

    def product_prefix(self) -> str:
        """Answer text up to the product key (scoring reads the next token)."""
        key = next(iter(self.keys))
        text = self.answer_text(key, 1)
        return text[: text.index(json.dumps(key)) + 1]

    def quantity_prefix(self, product_id: str) -> str:
        """Answer text up to the quantity digits for a chosen product."""
        text = self.answer_text(self.ids_to_keys[product_id], 1)
        match = re.search(r'"quantity":\s*', text)
        if match is None:
            raise AlignmentError(f"answer format has no quantity field: {text!r}")
        return text[: match.end()]

    def chat(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True)
class PromptStyle:
    """A prompt style rendered outside the core (the decision graph's, passed in by the front door)."""

    name: str
    messages: Callable[[ChoiceSituation], list[dict[str, str]]]  # chat messages as the graph sends them
    keys: Callable[[ChoiceSituation], dict[str, str]]  # answer key (label) -> product_id
    answer_text: AnswerText
    product_field: str

    def render(self, situation: ChoiceSituation) -> ChoicePrompt:
        messages = tuple((m["role"], m["content"]) for m in self.messages(situation))
        return ChoicePrompt(messages, self.keys(situation), self.answer_text, self.product_field)


_STYLES: dict[str, PromptStyle] = {}


def register_prompt_style(style: PromptStyle) -> None:
    """Make ``style`` available by name to :func:`choice_prompt` (the front door registers ``graph``)."""
    if style.name not in PROMPT_FORMATS:
        raise AlignmentError(f"unknown prompt format {style.name!r}; choose one of {', '.join(PROMPT_FORMATS)}")
    _STYLES[style.name] = style


def resolve_style(fmt: str, style: PromptStyle | None = None) -> PromptStyle:
    """The style rendering ``fmt`` (not ``compact``): ``style`` when it is that format, else the registered one."""
    if fmt not in PROMPT_FORMATS:
        raise AlignmentError(f"unknown prompt format {fmt!r}; choose one of {', '.join(PROMPT_FORMATS)}")
    found = style if style is not None and style.name == fmt else _STYLES.get(fmt)
    if found is None:
        raise AlignmentError(
            f"prompt format {fmt!r} is rendered by the decision graph: run through the `malles` command "
            "(which registers it) or pass its PromptStyle"
        )
    return found


def _labels(situation: ChoiceSituation) -> list[str]:
    labels = [c.label or "" for c in situation.candidates]
    if all(labels) and len(set(labels)) == len(labels):
        return labels
    return list(string.ascii_uppercase[: len(situation.candidates)])


def _customer_text(s: ChoiceSituation) -> str:
    from malles_graph.alignment.apply import usual_quantity

    c = s.customer
    usual = usual_quantity(s)
    parts = [f"Age group {c.age_group}."]
    if c.n_baskets:
        parts.append(f"{c.n_baskets} earlier trips, about ${c.mean_basket_value:.0f} per trip.")
    parts.append(f"You usually buy {usual:.0f} unit{'s' if round(usual) != 1 else ''} of an item.")
    return " ".join(parts)


def _option_line(s: ChoiceSituation, label: str, i: int) -> str:
    p = s.candidates[i]
    line = f"{label}: ${p.price:.0f}"
    if p.regular_price > 0 and p.discount >= 0.05:
        line += f" ({p.discount * 100:.0f}% off ${p.regular_price:.0f})"
    elif p.regular_price > 0 and p.price > p.regular_price * 1.05:
        line += f" (usually ${p.regular_price:.0f})"
    line += f", {p.popularity * 100:.0f}% of category sales"
    hist = s.own_history.get(p.product_id)
    if hist and hist.times_bought:
        ago = f", last {(s.date - hist.last_date).days} days ago" if hist.last_date else ""
        line += f"; you bought it {hist.times_bought}x ({hist.total_quantity} units{ago})"
    return line


def _load(name: str, spec: PromptSpec, directory: Path | None) -> PromptTemplate:
    return load_prompt(name, directory, spec=spec)


def choice_prompt(
    situation: ChoiceSituation,
    fmt: str = "compact",
    prompts: Path | None = None,
    style: PromptStyle | None = None,
) -> ChoicePrompt:
    """The messages for ``situation`` in prompt format ``fmt`` (see :data:`PROMPT_FORMATS`).

    ``style`` renders any format but ``compact`` (else the one registered under ``fmt``).
    """
    if fmt not in PROMPT_FORMATS:
        raise AlignmentError(f"unknown prompt format {fmt!r}; choose one of {', '.join(PROMPT_FORMATS)}")
    if fmt != "compact":
        return resolve_style(fmt, style).render(situation)
    labels = _labels(situation)
    system = _load("align_system", SYSTEM_SPEC, prompts).render()
    user = _load("align_choice", CHOICE_SPEC, prompts).render(
        customer=_customer_text(situation),
        subclass=situation.subclass,
        options="\n".join(_option_line(situation, label, i) for i, label in enumerate(labels)),
        answer_format=ANSWER_FORMAT,
    )
    keys = {label: c.product_id for label, c in zip(labels, situation.candidates, strict=True)}
    return ChoicePrompt(messages=(("system", system.strip()), ("user", user.strip())), keys=keys,
                        answer_text=compact_answer, product_field="product_id")


def parse_answer(text: str, prompt: ChoicePrompt) -> tuple[str, int]:
    """(product_id, quantity) of a generated answer; AlignmentError naming the problem otherwise."""
    from malles_graph.backends.client import extract_json

    payload = extract_json(text)
    if payload is None:
        raise AlignmentError(f"answer is not a JSON object: {text[:120]!r}")
    key = str(payload.get(prompt.product_field, "")).strip()
    if key not in prompt.keys:
        if key in prompt.keys.values():
            key = prompt.ids_to_keys[key]
        else:
            raise AlignmentError(f"answer names {key!r}, not one of {sorted(prompt.keys)}")
    try:
        quantity = int(payload.get("quantity"))
    except (TypeError, ValueError):
        raise AlignmentError(f"answer quantity {payload.get('quantity')!r} is not an integer") from None
    if quantity < 1:
        raise AlignmentError(f"answer quantity {quantity} is below 1")
    return prompt.keys[key], quantity
