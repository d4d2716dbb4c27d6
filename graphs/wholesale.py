"""The wholesale dialogue (MALLES): marketing, manufacturer and the store's buyer agree a purchasing rule.

Shape::

    prepare -> (marketing -> manufacturer -> wholesaler) x dialogue_rounds -> propose_rule
    propose_rule -> evaluate            (a valid rule)
                 -> propose_rule        (invalid: the reason is fed back; at most max_repairs times)
                 -> failed              (still invalid after the repairs: recorded, no rule is made up)
    evaluate -> END, failed -> END

``prepare`` loads real Ta Feng demand (or takes ``items`` from the input); ``evaluate`` runs the
rule, the optional reference rule and the baselines (newsvendor, order-up-to, last-period demand)
over the held-out periods. Every utterance is streamed live as a custom event
``{"event": "turn", "turn": TranscriptTurn}``; stage changes as ``{"event": "stage", "stage": name}``.

``run_wholesale(scenario)`` runs the graph for a scenario and persists the run folder.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict

from malles_graph.agents import TranscriptTurn
from malles_graph.backends import LLMClient, build_client
from malles_graph.prompts import load_prompt
from malles_graph.scenario import BackendConfig, Scenario
from malles_graph.wholesale import brief
from malles_graph.wholesale.compare import compare
from malles_graph.wholesale.demand import ItemDemand, load_demand
from malles_graph.wholesale.formula import FormulaError, parse_formula, validate_formula
from malles_graph.wholesale.options import WholesaleOptions
from malles_graph.wholesale.simulator import validation_states

ROLES = ("marketing", "manufacturer", "wholesaler")
TURN_CHARS = 600  # each earlier turn is cut to this many characters in later prompts
TRANSCRIPT_TURNS = 6  # and only the latest turns are shown (the local model has a 4k context)


# --- configuration -------------------------------------------------------------------------------


@dataclass(kw_only=True)
class WholesaleContext:
    """Runtime configuration of the wholesale graph (LangGraph ``context_schema``).

    ``chat_model`` is an object set in code (tests), so it is left out of the JSON schema.
    """

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    options: WholesaleOptions = field(
        default_factory=WholesaleOptions, metadata={"description": "the scenario's wholesale: section"}
    )
    backend: BackendConfig = field(
        default_factory=BackendConfig, metadata={"description": "which LLM speaks for the three roles"}
    )
    seed: int = field(default=0, metadata={"description": "base seed of the LLM calls"})
    chat_model: SkipJsonSchema[BaseChatModel | None] = field(
        default=None,
        repr=False,
        compare=False,
        metadata={"description": "a chat model replacing the backend's (tests: scripted fakes)"},
    )

    def __post_init__(self) -> None:
        # contexts given as JSON (langgraph dev, a dict): coerce the nested sections
        if isinstance(self.options, dict):
            self.options = WholesaleOptions.model_validate(self.options)
        if isinstance(self.backend, dict):
            self.backend = BackendConfig.model_validate(self.backend)


# --- structured answer ---------------------------------------------------------------------------


class RuleProposal(BaseModel):
    """The buyer's final answer: the purchasing formula and this period's orders."""

    formula: str = Field(min_length=1, max_length=400, description="order quantity formula over the variables")
    orders: dict[str, float] = Field(description="units to order now, keyed by item id (every item once)")
    rationale: str = Field(default="", max_length=240, description="one sentence (bounded: the answer has a token limit)")


def rule_json_schema(item_ids: list[str]) -> dict[str, Any]:
    """RuleProposal's JSON schema narrowed for grammar-constrained decoding (llama.cpp, Ollama): ``orders``
    has exactly one non-negative number per item id, the formula only the characters the parser accepts.
    Validation still runs on the answer (other backends may ignore the schema)."""
    schema = RuleProposal.model_json_schema()
    schema["properties"]["formula"]["pattern"] = r"^[A-Za-z0-9_+*/^()., -]+$"
    schema["properties"]["orders"] = {
        "type": "object",
        "description": "units to order now, keyed by item id",
        "properties": {item: {"type": "number", "minimum": 0} for item in item_ids},
        "required": list(item_ids),
        "additionalProperties": False,
    }
    return schema


class RuleAttempt(BaseModel):
    attempt: int
    text: str
    ok: bool
    error: str | None = None


# --- state ---------------------------------------------------------------------------------------


class WholesaleInput(TypedDict, total=False):
    items: list[dict[str, Any]]  # ItemDemand.to_dict() rows; loaded from Ta Feng when absent


class WholesaleState(TypedDict, total=False):
    items: list[dict[str, Any]]
    round: int
    transcript: Annotated[list[TranscriptTurn], operator.add]
    attempts: Annotated[list[RuleAttempt], operator.add]
    rule: dict[str, Any] | None
    orders: dict[str, float]
    ok: bool
    error: str | None
    table: Annotated[list[dict[str, Any]], operator.add]
    records: Annotated[list[dict[str, Any]], operator.add]
    llm_calls: Annotated[int, operator.add]


class WholesaleOutput(TypedDict, total=False):
    items: list[dict[str, Any]]
    transcript: list[TranscriptTurn]
    attempts: list[RuleAttempt]
    rule: dict[str, Any] | None
    orders: dict[str, float]
    ok: bool
    error: str | None
    table: list[dict[str, Any]]
    records: list[dict[str, Any]]
    llm_calls: int


# --- helpers -------------------------------------------------------------------------------------


def _writer() -> Callable[[Any], None]:
    try:
        return get_stream_writer()
    except RuntimeError:  # a node called on its own, outside a graph run
        return lambda _event: None


def _emit(turn: TranscriptTurn) -> None:
    _writer()({"event": "turn", "turn": turn})


def _client(context: WholesaleContext) -> LLMClient:
    return build_client(context.backend, chat_model=context.chat_model)


def _items(state: WholesaleState) -> list[ItemDemand]:
    return [ItemDemand.from_dict(d) for d in state["items"]]


def transcript_text(turns: list[TranscriptTurn]) -> str:
    spoken = [t for t in turns if t.kind == "turn"][-TRANSCRIPT_TURNS:]
    if not spoken:
        return "(nothing said yet)"
    return "\n".join(f"{t.role} (round {t.round}): {t.text.strip()[:TURN_CHARS]}" for t in spoken)


def prompt_values(items: list[ItemDemand], options: WholesaleOptions, turns: list[TranscriptTurn]) -> dict[str, str]:
    return {
        "market": brief.market(items, options),
        "demand_outlook": brief.demand_outlook(items, options),
        "terms": brief.terms(items, options),
        "economics": brief.economics(items, options),
        "variables": brief.variables_text(),
        "functions": brief.functions_text(),
        "items": ", ".join(i.item_id for i in items),
        "transcript": transcript_text(turns),
    }


def proposal_validator(items: list[ItemDemand], options: WholesaleOptions) -> Callable[[RuleProposal], list[str]]:
    """Checks beyond the JSON schema: a parseable, finite, non-negative formula and one order per item."""
    states = validation_states(items, options)
    ids = [i.item_id for i in items]

    def check(proposal: RuleProposal) -> list[str]:
        problems = []
        _, reason = validate_formula(proposal.formula, states)
        if reason:
            problems.append(f"formula: {reason}")
        unknown = sorted(set(proposal.orders) - set(ids))
        missing = [i for i in ids if i not in proposal.orders]
        negative = sorted(item for item, quantity in proposal.orders.items() if not quantity >= 0)
        if unknown:
            problems.append(f"orders: unknown item(s) {unknown}; the items are {ids}")
        if missing:
            problems.append(f"orders: no quantity for item(s) {missing}")
        if negative:
            problems.append(f"orders: quantities must be >= 0 (items {negative})")
        return problems

    return check


# --- nodes ---------------------------------------------------------------------------------------


def prepare(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    _writer()({"event": "stage", "stage": "prepare"})
    if state.get("items"):
        return {"round": 1}
    items = load_demand(runtime.context.options)
    return {"items": [i.to_dict() for i in items], "round": 1}


def _speak(role: str, state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    context = runtime.context
    items = _items(state)
    values = prompt_values(items, context.options, state.get("transcript", []))
    text = load_prompt(role).render(round=state["round"], **values)
    call = len(state.get("transcript", []))
    reply = _client(context).chat(
        [HumanMessage(content=text)], seed=context.seed + call, max_tokens=context.options.turn_max_tokens
    )
    turn = TranscriptTurn(
        role=role,
        round=state["round"],
        text=reply.text.strip(),
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        latency_s=reply.latency_s,
        cached=reply.cached,
    )
    _emit(turn)
    return {"transcript": [turn], "llm_calls": 1}


def marketing(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    return _speak("marketing", state, runtime)


def manufacturer(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    return _speak("manufacturer", state, runtime)


def wholesaler(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    update = _speak("wholesaler", state, runtime)
    return {**update, "round": state["round"] + 1}


def propose_rule(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    """Ask for the structured rule; earlier invalid answers and their reasons are in the conversation."""
    context = runtime.context
    options = context.options
    items = _items(state)
    attempts = state.get("attempts", [])
    _writer()({"event": "stage", "stage": "propose_rule" if not attempts else f"repair {len(attempts)}"})
    values = prompt_values(items, options, state.get("transcript", []))
    messages: list[BaseMessage] = [HumanMessage(content=load_prompt("purchasing_rule").render(**values))]
    for earlier in attempts:
        messages += [
            AIMessage(content=earlier.text),
            HumanMessage(content=f"Your answer was invalid: {earlier.error}\nAnswer again with only the corrected JSON."),
        ]
    result = _client(context).structured(
        messages,
        RuleProposal,
        validator=proposal_validator(items, options),
        json_schema=rule_json_schema([i.item_id for i in items]),
        max_retries=0,  # repairs are graph steps, so each one is streamed and bounded by max_repairs
        seed=context.seed + 1000 + len(attempts),
        max_tokens=options.rule_max_tokens,
    )
    answer = result.attempts[-1]
    number = len(attempts) + 1
    attempt = RuleAttempt(attempt=number, text=answer.text, ok=result.ok, error=result.error)
    turn = TranscriptTurn(
        role="wholesaler",
        round=state.get("round", 1),
        text=answer.text if result.ok else f"invalid rule (attempt {number}): {result.error}\n{answer.text}",
        kind="decision" if result.ok else "retry",
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
    )
    _emit(turn)
    update: dict[str, Any] = {"attempts": [attempt], "transcript": [turn], "llm_calls": 1}
    if result.ok:
        proposal = result.value
        formula = parse_formula(proposal.formula)
        update["rule"] = {
            "formula": formula.text,
            "expression": str(formula.expr),
            "simplified": formula.simplified,
            "variables": formula.variables,
            "rationale": proposal.rationale,
        }
        update["orders"] = {item: float(quantity) for item, quantity in proposal.orders.items()}
    return update


def route_rule(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> Literal["evaluate", "propose_rule", "failed"]:
    if state.get("rule"):
        return "evaluate"
    if len(state.get("attempts", [])) <= runtime.context.options.max_repairs:
        return "propose_rule"
    return "failed"


def route_round(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> Literal["marketing", "propose_rule"]:
    return "marketing" if state["round"] <= runtime.context.options.dialogue_rounds else "propose_rule"


def failed(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    attempts = state.get("attempts", [])
    reason = attempts[-1].error if attempts else "no rule was proposed"
    turn = TranscriptTurn(
        role="wholesaler",
        round=state.get("round", 1),
        text=f"no valid purchasing rule after {len(attempts)} attempt(s): {reason}",
        kind="failure",
    )
    _emit(turn)
    update = evaluate(state, runtime)  # the baselines still run, so the table is there for comparison
    return {**update, "ok": False, "error": turn.text, "transcript": [turn]}


def evaluate(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    _writer()({"event": "stage", "stage": "evaluate"})
    options = runtime.context.options
    items = _items(state)
    rule = parse_formula(state["rule"]["formula"]) if state.get("rule") else None
    reference = None
    if options.reference_rule:
        try:
            reference = parse_formula(options.reference_rule)
        except FormulaError as exc:
            raise FormulaError(f"wholesale.reference_rule: {exc}") from None
    results = compare(items, options, rule, reference)
    return {
        "ok": rule is not None,
        "error": None,
        "table": [r.summary for r in results],
        "records": [record.row() for r in results for record in r.records],
    }


# --- graph ---------------------------------------------------------------------------------------


def build_wholesale_graph(name: str = "wholesale"):
    builder = StateGraph(
        WholesaleState, context_schema=WholesaleContext, input_schema=WholesaleInput, output_schema=WholesaleOutput
    )
    builder.add_node("prepare", prepare)
    builder.add_node("marketing", marketing)
    builder.add_node("manufacturer", manufacturer)
    builder.add_node("wholesaler", wholesaler)
    builder.add_node("propose_rule", propose_rule)
    builder.add_node("evaluate", evaluate)
    builder.add_node("failed", failed)
    builder.add_edge(START, "prepare")
    builder.add_conditional_edges("prepare", route_round)
    builder.add_edge("marketing", "manufacturer")
    builder.add_edge("manufacturer", "wholesaler")
    builder.add_conditional_edges("wholesaler", route_round)
    builder.add_conditional_edges("propose_rule", route_rule)
    builder.add_edge("evaluate", END)
    builder.add_edge("failed", END)
    return builder.compile(name=name)


graph = build_wholesale_graph()


# --- runner --------------------------------------------------------------------------------------

Progress = Callable[[dict[str, Any]], None]


def run_wholesale(
    scenario: Scenario,
    progress: Progress | None = None,
    *,
    chat_model: BaseChatModel | None = None,
    items: list[ItemDemand] | None = None,
    run_id: str | None = None,
):
    """Run the wholesale dialogue for ``scenario`` and persist the run folder; returns a WholesaleRun.

    ``progress`` receives every custom stream event (turns and stages) as it happens.
    """
    from malles_graph.errors import ScenarioError
    from malles_graph.wholesale.runs import save_run

    if scenario.wholesale is None:
        raise ScenarioError(f"scenario {scenario.name!r} has no 'wholesale:' section")
    context = WholesaleContext(
        options=scenario.wholesale, backend=scenario.backend, seed=scenario.seed, chat_model=chat_model
    )
    inputs: WholesaleInput = {"items": [i.to_dict() for i in items]} if items else {}
    final: dict[str, Any] = {}
    for mode, chunk in graph.stream(inputs, context=context, stream_mode=["custom", "values"]):
        if mode == "custom" and progress is not None:
            progress(chunk)
        elif mode == "values":
            final = chunk
    return save_run(scenario, final, run_id=run_id)
