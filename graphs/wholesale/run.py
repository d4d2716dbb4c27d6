"""The wholesale kind's side of the run contract, and ``run_wholesale`` (a blocking run returning the typed result)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from malles_graph.graphs.wholesale.context import WholesaleContext

from malles_graph.backends import LLMClient, build_client, is_llm_backend
from malles_graph.scenario import Scenario
from malles_graph.wholesale.demand import ItemDemand
from malles_graph.wholesale.options import WholesaleOptions
from malles_graph.wholesale.runs import WholesaleRun, load_run


def run_inputs(scenario: Scenario) -> dict[str, Any]:
    """Nothing: ``prepare`` loads the demand of the scenario's items from Ta Feng (checkpointed with the state)."""
    return {}


def run_context(scenario: Scenario, client: LLMClient | None = None) -> WholesaleContext:
    assert scenario.wholesale is not None  # run_preflight refuses a scenario without the section
    return WholesaleContext(options=scenario.wholesale, backend=scenario.backend, seed=scenario.seed, client=client,
                            prompts_dir=scenario.prompts)


def run_preflight(scenario: Scenario) -> list[str]:
    problems = []
    if scenario.wholesale is None:
        problems.append("kind 'wholesale' needs a 'wholesale:' section")
    if not is_llm_backend(scenario.backend.name):
        problems.append(f"backend.name {scenario.backend.name!r} cannot speak in the dialogue; use local, openai or ollama")
    if scenario.wholesale is not None:
        problems.extend(option_problems(scenario.wholesale))
    return problems


def option_problems(options: WholesaleOptions) -> list[str]:
    """What the data and the formula parser refuse, found before the run row exists (an unknown item, more periods
    than the data holds or a reference_rule that does not parse were failed runs after the dialogue had started)."""
    from malles_graph.data import tafeng
    from malles_graph.errors import MallesError
    from malles_graph.wholesale.demand import load_demand
    from malles_graph.wholesale.formula import FormulaError, parse_formula

    problems = []
    # Without the data (an application passing its own demand as inputs) there is nothing to check it against.
    if tafeng.parquet_path().exists():
        try:
            load_demand(options)  # a fraction of a second; prepare loads it again into the checkpointed state
        except MallesError as exc:
            problems.append(str(exc))
    if options.reference_rule is not None:
        try:
            parse_formula(options.reference_rule)
        except FormulaError as exc:
            problems.append(f"wholesale.reference_rule: {exc}")
    return problems


# the held-out comparison's columns as `malles show` prints them (`malles wholesale run` prints its own tables)
TABLE_COLUMNS = ("policy", "profit", "fill_rate", "stockouts", "lost_units", "leftover_units", "invalid_orders")


def run_summary(values: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    """Everything ``malles show`` and ``malles wholesale discover`` need: the rule, orders, the comparison,
    the records, the items; the rule as a figure and the comparison as a table of the front ends."""
    rule = values.get("rule") or {}
    figure = rule.get("expression") if values.get("ok") else f"none: {values.get('error')}"
    return {
        "figures": {"purchasing rule": figure},
        "tables": {"held_out_comparison": TABLE_COLUMNS},
        "ok": bool(values.get("ok")),
        "error": values.get("error"),
        "rule": values.get("rule"),
        "orders": values.get("orders", {}),
        "llm_calls": values.get("llm_calls", 0),
        "held_out_comparison": values.get("table", []),
        "records": values.get("records", []),
        "items": values.get("items", []),
        "attempts": [a.model_dump(mode="json") for a in values.get("attempts", [])],
    }


def run_wholesale(
    scenario: Scenario,
    *,
    chat_model: BaseChatModel | None = None,
    client: LLMClient | None = None,
    items: list[ItemDemand] | None = None,
    run_id: str | None = None,
    store_url: str | None = None,
    on_event: Any = None,
) -> WholesaleRun:
    """Run the dialogue for ``scenario`` through the generic runner (recorded in the store); the typed result.

    ``chat_model`` / ``client`` replace the backend's model (tests: scripted); ``items`` replaces the
    Ta Feng demand.
    """
    from malles_graph.graphs.run import run_scenario

    if client is None and chat_model is not None:
        client = build_client(scenario.backend, chat_model=chat_model)
    inputs = {"items": [i.to_dict() for i in items]} if items else None
    summary = run_scenario(scenario, run_id=run_id, store_url=store_url, client=client, on_event=on_event,
                           inputs=inputs)
    return load_run(summary.run_id, store_url=store_url or scenario.store.url)
