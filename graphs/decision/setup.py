"""From a scenario to what the decision graph runs with: the one place that builds a DecisionContext.

:func:`context_for_scenario` is what every front end calls (the run setup, ``malles decide``,
``malles eval run``, the TUI's "try it"): the LLM client, the transaction memory covering the
run's subclasses (built on demand), the fitted calibration and the per-backend number of samples
all come from the scenario here, and every problem is raised before any decision is made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from malles_graph.graphs.decision.api import make_context
from malles_graph.graphs.decision.context import DecisionContext

from malles_graph.backends import LLMClient, build_client, is_llm_backend
from malles_graph.prompt_sets import checked_prompt_set, scenario_personas
from malles_graph.retail.retrieval_api import Retriever
from malles_graph.scenario import MemoryConfig, Scenario

_MEMORIES: dict[tuple[str, tuple[str, ...], dt.date | None, str | None], Retriever] = {}
_LOCK = threading.Lock()


def context_for_scenario(
    scenario: Scenario,
    client: LLMClient | None = None,
    *,
    subclasses: Sequence[str] | None = None,
    before: dt.date | None = None,
    progress: Callable[[int], None] | None = None,
    retriever: Retriever | None = None,
    customers: Sequence[str] | None = None,
) -> tuple[DecisionContext, Retriever | None]:
    """The decision context of ``scenario`` and the retriever it holds (None with retrieval off).

    ``client`` replaces the LLM client built from ``scenario.backend`` (tests pass a scripted one);
    ``retriever`` replaces the scenario's memory (``malles eval`` brings one built from its cases).
    ``subclasses`` are the product subclasses the run's decisions face and ``before`` the latest
    decision day: with retrieval on, the memory is built for their episodes before that day if
    needed (``memory.build``) and checked to cover them; without subclasses the memory must
    already exist. ``customers`` limits that to the episodes of those customers (a sampled population's;
    None: every customer). ``progress(n)`` is called after each ingested batch of n episodes.

    The prompts come from ``scenario.prompts`` ($MALLES_PROMPTS, else the bundled ones): the whole set
    is checked here, before any LLM call; each decision records the set's digest (``details["prompt_set"]``).
    """
    prompt_set = checked_prompt_set(scenario.prompts, scenario_personas(scenario))
    backend = scenario.backend
    if client is None and is_llm_backend(backend.name):
        client = build_client(backend)
    if retriever is None and scenario.decision.retrieval:
        retriever = scenario_memory(scenario.memory, subclasses, before, progress, customers=customers)
    ctx = make_context(scenario.decision, backend=backend, client=client, retriever=retriever)
    # backend.max_tokens bounds a debate turn too (generation is most of a decision's model time); the
    # structured decision keeps its own budget: a JSON answer cut short is a failed sample
    ctx.turn_max_tokens = min(ctx.turn_max_tokens, backend.max_tokens)
    ctx.seed = scenario.seed
    ctx.prompts_dir = str(prompt_set.folder)
    ctx.personas_file = str(prompt_set.personas.file) if prompt_set.personas else None  # recorded per decision
    return ctx, retriever


def scenario_memory(
    memory: MemoryConfig,
    subclasses: Sequence[str] | None = None,
    before: dt.date | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    customers: Sequence[str] | None = None,
) -> Retriever:
    """The Chroma memory of a scenario (opened once per process per memory, subclasses, day and customers).

    ``customers`` limits the episodes built and checked to those customers' (None: all). They are part of
    the key, so a memory checked for a narrower population is checked again before a wider run uses it.
    """
    key = (memory.model_dump_json(), tuple(sorted(set(subclasses or ()))), before, customer_scope(customers))
    with _LOCK:
        if key not in _MEMORIES:
            if subclasses:
                from malles_graph.retrieval.scope import memory_for

                _MEMORIES[key] = memory_for(
                    memory, subclasses, before=before, build=memory.build, progress=progress, customers=customers
                )[0]
            else:
                from malles_graph.retrieval.store import ChromaRetriever

                _MEMORIES[key] = ChromaRetriever.from_config(memory)
        return _MEMORIES[key]


def customer_scope(customers: Sequence[str] | None) -> str | None:
    """A short key for a set of customers (None: every customer)."""
    if customers is None:
        return None
    return hashlib.sha256("\n".join(sorted(set(customers))).encode()).hexdigest()


def run_context(scenario: Scenario, client: LLMClient | None = None, **kw: Any) -> DecisionContext:
    """The run contract's ``run_context``: :func:`context_for_scenario` without the retriever."""
    return context_for_scenario(scenario, client, **kw)[0]
