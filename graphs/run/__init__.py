"""The generic runner: one table of scenario kinds, one event stream, one recorder.

    from malles_graph.graphs.run import start_run

    handle = start_run(scenario)            # checks, creates the run row, starts a thread
    for event in handle.events():           # malles_graph.events models, as they happen
        ...                                 # the same for retail, economist and wholesale
    summary = handle.summary                # read back from the store

``resume_run(run_id)`` continues a stored run from its checkpoint (refused while another live
process runs it); ``handle.cancel()`` stops it within one LLM call, resumable;
``run_scenario`` / ``run_seeds`` are the blocking forms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from malles_graph.graphs.run.cancel import CancelToken, RunStopped
from malles_graph.graphs.run.handle import RunHandle
from malles_graph.graphs.run.start import check
from malles_graph.graphs.run.table import RUNNERS, KindRunner, runner_for

from malles_graph.backends import LLMClient
from malles_graph.events import RunEvent
from malles_graph.retail.seeds import SeedSpread, seed_spread
from malles_graph.scenario import Scenario
from malles_graph.store.engine import make_engine
from malles_graph.store.repository import get_run
from malles_graph.store.summary import RunSummary, summarise

EventSink = Callable[[RunEvent], None]


def preflight(scenario: Scenario, store_url: str | None = None) -> str:
    """Everything checked before a run of ``scenario`` starts; the store URL. Raises one MallesError listing the problems."""
    return check(runner_for(scenario.kind), scenario, store_url)


def start_run(scenario: Scenario, *, run_id: str | None = None, store_url: str | None = None,
              client: LLMClient | None = None, inputs: dict[str, Any] | None = None) -> RunHandle:
    """Start a run of ``scenario`` (any kind) in its own thread; raises MallesError before any work if it cannot."""
    return runner_for(scenario.kind).start(scenario, run_id=run_id, store_url=store_url, client=client, inputs=inputs)


def resume_run(run_id: str, *, store_url: str | None = None, client: LLMClient | None = None,
               scenario: Scenario | None = None) -> RunHandle:
    """Resume the stored run ``run_id`` (its kind and scenario are read from the store)."""
    from malles_graph.store.engine import check_reachable

    url = check_reachable(store_url or (scenario.store.url if scenario else None))
    kind = get_run(make_engine(url), run_id).kind
    return runner_for(kind).resume(run_id, store_url=url, client=client, scenario=scenario)


def run_scenario(scenario: Scenario, *, run_id: str | None = None, resume: bool = False,
                 store_url: str | None = None, client: LLMClient | None = None,
                 on_event: EventSink | None = None, inputs: dict[str, Any] | None = None) -> RunSummary:
    """Start (or, with ``resume``, continue ``run_id``) and wait for the end; the summary from the store."""
    if resume:
        if not run_id:
            from malles_graph.errors import ScenarioError

            raise ScenarioError("--resume needs a run id (see `malles runs`)")
        handle = resume_run(run_id, store_url=store_url or scenario.store.url, client=client, scenario=scenario)
    else:
        handle = start_run(scenario, run_id=run_id, store_url=store_url, client=client, inputs=inputs)
    return handle.run(on_event)


def run_seeds(scenario: Scenario, seeds: Sequence[int], **options: Any) -> tuple[list[RunSummary], SeedSpread]:
    """Run the scenario once per seed (separate runs) and report the spread of final outcomes."""
    from malles_graph.errors import ScenarioError
    from malles_graph.scenario import MAX_SEED

    # model_copy does not validate: checked here, before the first run, not when a late seed reaches a backend.
    if bad := [s for s in seeds if not 0 <= s <= MAX_SEED]:
        raise ScenarioError(f"seed {bad[0]}: the seeds run must lie in 0..{MAX_SEED} (seeds {seeds[0]}..{seeds[-1]})")
    summaries = [run_scenario(scenario.model_copy(update={"seed": s}), **options) for s in seeds]
    return summaries, seed_spread(summaries)


__all__ = [
    "RUNNERS",
    "CancelToken",
    "KindRunner",
    "RunHandle",
    "RunStopped",
    "RunSummary",
    "SeedSpread",
    "preflight",
    "resume_run",
    "run_scenario",
    "run_seeds",
    "runner_for",
    "seed_spread",
    "start_run",
    "summarise",
]
