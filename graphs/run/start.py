"""Starting and resuming runs: the checks before any work, the run row and its owner, then a RunHandle."""

from __future__ import annotations

import os
import re
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from malles_graph.graphs.run.handle import _END, RunHandle
from malles_graph.graphs.run.table import KindRunner

from malles_graph.backends import LLMClient
from malles_graph.errors import ScenarioError
from malles_graph.events import Message, RunFinished
from malles_graph.prompts import prompt_folder
from malles_graph.scenario import Scenario
from malles_graph.store import repository as repo
from malles_graph.store.engine import StoreError, check_reachable, make_engine
from malles_graph.store.summary import RunSummary, summarise
from malles_graph.usage import price_problem


def _store_url(scenario: Scenario, store_url: str | None) -> str:
    try:
        return check_reachable(store_url or scenario.store.url)
    except StoreError:
        raise
    except Exception as exc:  # driver import errors and the like
        raise StoreError(f"cannot use the run store {store_url or scenario.store.url}: {exc}") from None


def _default_client(scenario: Scenario, client: LLMClient | None) -> LLMClient | None:
    if client is not None:
        return client
    from malles_graph.backends import build_client, is_llm_backend

    return build_client(scenario.backend) if is_llm_backend(scenario.backend.name) else None


def pin_prompts(scenario: Scenario) -> Scenario:
    """``scenario`` with its prompt folder made absolute (a relative ``prompts:`` or $MALLES_PROMPTS), so the
    stored scenario names the folder the run used and a resume in another process or directory reads it too.
    Without either, the bundled prompts stay implicit (None)."""
    if scenario.prompts is None and not os.environ.get("MALLES_PROMPTS"):
        return scenario
    folder = prompt_folder(Path(scenario.prompts) if scenario.prompts else None)
    return scenario.model_copy(update={"prompts": str(folder.resolve())})


def check(runner: KindRunner, scenario: Scenario, store_url: str | None = None) -> str:
    """The kind's checks, its prompt set's, then the store's; returns the store URL.

    Raises one error listing every problem of the scenario; a bad prompt set is one line naming the folder
    and the file, raised before any LLM call.
    """
    problems = runner.preflight(scenario)
    if (priced := price_problem(scenario)) is not None:  # every kind, before any LLM call
        problems.append(priced)
    if problems:
        raise ScenarioError(f"scenario {scenario.name!r} cannot run:\n" + "\n".join(f"  - {p}" for p in problems))
    runner.prompt_set(scenario)
    return _store_url(scenario, store_url)


def in_background(name: str, work: Any, *args: Any) -> Future[Any]:
    """``work(*args)`` in a daemon thread; its result (or exception) in the future. A daemon: a start whose checks
    fail exits without waiting for it."""
    future: Future[Any] = Future()

    def run() -> None:
        try:
            future.set_result(work(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever takes the result
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


# A chosen run id names a folder (runs/<id>/, the wholesale and economist outputs): '../x' or 'a/b' escaped it.
RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


def start(runner: KindRunner, scenario: Scenario, *, run_id: str | None = None, store_url: str | None = None,
          client: LLMClient | None = None, inputs: dict[str, Any] | None = None) -> RunHandle:
    """Check ``scenario``, create its run row (owned by this process) and start it; returns the handle.

    ``client`` replaces the backend's LLM client (tests pass a scripted one); ``inputs`` replaces
    the kind's initial state (an embedding app's own data, e.g. wholesale demand items).

    The start-up work that does not depend on the checks runs beside them (issue 18: seconds before the first
    LLM call): the LLM client (the local backend loads its model) and the kind's initial state (the retail
    population). The checks still decide: their error is raised first, and the initial state's own error is
    recorded as the run's failure, where the run thread would have met it.
    """
    from malles_graph.store.tables import RunRow

    if run_id is not None and not RUN_ID.fullmatch(run_id):
        raise ScenarioError(
            f"run id {run_id!r}: use letters, digits, '.', '_' and '-' (up to 128, no leading '.' or '-'); "
            "it names the run's folder under the runs folder"
        )
    scenario = pin_prompts(scenario)
    client_job = in_background("start-client", _default_client, scenario, client)
    initial: dict[str, Any] | Future[Any] = (
        inputs if inputs is not None else in_background("start-inputs", runner.inputs, scenario)
    )
    url = check(runner, scenario, store_url)
    client = client_job.result()
    engine = make_engine(url)
    run_id = run_id or repo.new_run_id(scenario.name)
    repo.create_run(
        engine,
        RunRow(id=run_id, name=scenario.name, kind=scenario.kind, seed=scenario.seed, backend=scenario.backend.name,
               max_rounds=runner.total_rounds(scenario), scenario_json=scenario.model_dump_json(),
               owner=repo.this_owner(), heartbeat_at=repo.utcnow(), **runner.row_fields(scenario)),
    )
    return RunHandle(runner, scenario, run_id, url, client=client, resumed=False, inputs=initial)._start()


def resume(runner: KindRunner, run_id: str, *, store_url: str | None = None, client: LLMClient | None = None,
           scenario: Scenario | None = None) -> RunHandle:
    """Resume ``run_id`` with its stored scenario; refused while another live process runs it.

    ``scenario``, when given, must be the stored run's (a guard against resuming the wrong run).
    """
    url = _store_url(scenario or Scenario(name="resume"), store_url)
    engine = make_engine(url)
    row = repo.get_run(engine, run_id)
    stored = Scenario.model_validate_json(row.scenario_json)
    if scenario is not None and stored.name != scenario.name:
        raise ScenarioError(f"run {run_id!r} belongs to scenario {stored.name!r}, not {scenario.name!r}")
    if row.kind != runner.kind:
        raise ScenarioError(f"run {run_id!r} is a {row.kind} run, not {runner.kind}")
    if row.status == "finished":
        return _FinishedHandle(runner, stored, run_id, url)
    repo.claim_run(engine, run_id)
    client = _default_client(stored, client)
    return RunHandle(runner, stored, run_id, url, client=client, resumed=True)._start()


class _FinishedHandle(RunHandle):
    """Resuming a finished run: nothing to do; the stream says so and ends."""

    def __init__(self, runner: KindRunner, scenario: Scenario, run_id: str, url: str) -> None:
        super().__init__(runner, scenario, run_id, url, client=None, resumed=True)
        self._queue.put(Message(run_id=run_id, text=f"run {run_id} is already finished"))
        self._queue.put(RunFinished(run_id=run_id, status="finished", reason="already finished"))
        self.summary = summarise(self._engine, run_id, url, resumed=True)
        self._queue.put(_END)

    def _start(self) -> RunHandle:
        return self

    def wait(self, timeout: float | None = None) -> RunSummary | None:
        return self.summary

    @property
    def alive(self) -> bool:
        return False
