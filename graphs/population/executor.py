"""Where the population's agent graphs run: in this process (``local``) or as Ray tasks (``ray``).

The supervisor's ``run_agent`` node hands each representative's task to the run's executor and
emits the same ``DecisionFinished`` event either way, so the recorder, the store, the CLI and the
TUI do not know where a decision was made.

Ray (``executor.kind: ray``):

- The driver connects once per process (:func:`connect`): to ``executor.address`` (``ray://host:10001``,
  ``host:6379`` or ``auto``), or, with no address, to a local cluster it starts (``num_cpus`` >= 2) and
  shuts down at the end of the command (:func:`shutdown`). A Ray session the embedding app opened
  itself is used as it is and never shut down here. A task pinned to each alive node then checks that
  its workers import this package at the driver's version (:func:`check_workers`).
- A task carries only serialisable values: the scenario (JSON, put in the object store once per run),
  the :class:`WorkerSpec` naming the agent graph and the builder of its context, and the agent's task.
  The worker builds the agent context (LLM client, retriever, choice model) from the scenario on its
  first task and keeps it for the life of the worker process (:func:`run_in_worker`).
- The agent graph's own events (debate turns) are collected in the worker and emitted by the driver,
  in order, before the decision's ``DecisionFinished`` (they arrive when the decision ends, not live).
- Tasks are spread over the cluster's nodes (Ray's ``SPREAD``: a round's decisions are independent and
  alike, so every node takes its share from the first round rather than the driver's node filling
  first), and each outcome records the node that made it (``details["ray_node"]``, in the store).
- At most ``executor.max_in_flight`` tasks per LLM endpoint are submitted at once (a semaphore per
  endpoint, shared by every run in this process). A task of an LLM backend reserves a quarter CPU
  (it mostly waits on the server), a computed decision a whole one.
- A worker process that dies, or a node lost with its tasks, is retried by Ray (``max_retries``); the
  driver receives exactly one result per task, so a retry neither loses nor duplicates a decision.
  When the retries are spent or the cluster goes away the run stops with a ``MallesError``: decisions
  already made are stored and checkpointed, and ``--resume`` redoes only the rest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from malles_graph.agents import AgentOutcome
from malles_graph.backends import is_llm_backend
from malles_graph.errors import MallesError
from malles_graph.events import RunEvent, as_event, emit
from malles_graph.population.environment import AgentTask
from malles_graph.scenario import BackendConfig, ExecutorConfig, Scenario

RAY_HINT = "pip install 'malles-graph[ray]'"
MAX_RETRIES = 3  # Ray re-runs a task whose worker process died this many times
CONNECT_CHECK_S = 5.0  # TCP reachability of a cluster address (Ray itself waits 30 s to minutes)
WORKER_CHECK_S = 180.0  # the first worker of a fresh cluster takes a while to start on a busy machine
POLL_S = 0.5  # how often a waiting node looks at the run's cancel token
LLM_TASK_CPUS = 0.25  # the CPU share Ray reserves for a decision that calls an LLM server


def as_outcome(result: Any) -> AgentOutcome:
    """The agent contract's outcome from a graph result (``{"outcome": ...}`` or the outcome itself)."""
    outcome = result["outcome"] if isinstance(result, dict) else result
    return outcome if isinstance(outcome, AgentOutcome) else AgentOutcome.model_validate(outcome)


class LocalExecutor:
    """The agent graph as a subgraph of the supervisor, in this process (LangGraph's thread pool)."""

    def decide(self, agent_graph: Any, task: AgentTask, config: Any, agent_context: Any) -> AgentOutcome:
        # the subgraph's events (live debate turns) reach the run's stream as they happen
        return as_outcome(
            agent_graph.invoke({"agent_id": task.agent_id, "situation": task.situation}, config, context=agent_context)
        )


LOCAL = LocalExecutor()


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker imports to decide: ``module:attribute`` of the agent graph and of ``f(scenario) -> context``."""

    graph: str = "malles_graph.graphs.decision:graph"
    context: str = "malles_graph.graphs.population.run:decision_context"


def executor_for(scenario: Scenario, spec: WorkerSpec | None = None) -> LocalExecutor | RayExecutor:
    """The executor ``scenario.executor`` asks for."""
    if scenario.executor.kind == "ray":
        return RayExecutor(scenario, spec or WorkerSpec())
    return LOCAL


# -- the driver's side ------------------------------------------------------------------------------


class RayExecutor:
    """Each decision as one Ray task; see the module docstring."""

    def __init__(self, scenario: Scenario, spec: WorkerSpec, max_retries: int = MAX_RETRIES) -> None:
        self.config = scenario.executor
        self.spec = spec
        self.max_retries = max_retries
        self._scenario_json = scenario.model_dump_json()
        self._scenario_ref: Any = None
        self._lock = threading.Lock()
        self._slots = endpoint_slots(scenario.backend, self.config.max_in_flight)
        # a debate mostly waits on the LLM server: 4 such tasks share a CPU; a computed decision takes one
        self.num_cpus = LLM_TASK_CPUS if is_llm_backend(scenario.backend.name) else 1.0

    def _shared_scenario(self) -> Any:
        ray = import_ray()
        with self._lock:
            if self._scenario_ref is None:
                connect(self.config)
                self._scenario_ref = ray.put(self._scenario_json)
            return self._scenario_ref

    def decide(self, agent_graph: Any, task: AgentTask, config: Any, agent_context: Any) -> AgentOutcome:
        ray = import_ray()
        scenario_ref = self._shared_scenario()
        client = getattr(agent_context, "client", None)
        token = getattr(client, "token", None)  # the run's CancelToken (graphs/run/cancel.py) when it has an LLM
        with self._slots:
            if token is not None:
                token.raise_if_set()
            ref = (
                remote_decide()
                .options(
                    max_retries=self.max_retries,
                    retry_exceptions=False,
                    num_cpus=self.num_cpus,
                    scheduling_strategy="SPREAD",
                )
                .remote(scenario_ref, self.spec, task.agent_id, task.situation)
            )
            outcome, events = self._wait(ray, ref, task, token)
        for event in events:
            emit(event)
        count_calls(client, outcome)
        return outcome

    def _wait(self, ray: Any, ref: Any, task: AgentTask, token: Any) -> tuple[AgentOutcome, list[RunEvent]]:
        from ray import exceptions as rex

        while not ray.wait([ref], timeout=POLL_S)[0]:
            if token is not None and token.is_set():
                ray.cancel(ref)
                token.raise_if_set()
        try:
            return ray.get(ref)
        except rex.RayTaskError as exc:  # the agent graph raised in the worker: the same error as locally
            cause = exc.cause if isinstance(exc.cause, BaseException) else None
            raise (cause or MallesError(f"agent {task.agent_id}: {str(exc).splitlines()[0]}")) from None
        except rex.RayError as exc:  # worker deaths beyond the retries, a lost node or object, the cluster gone
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MallesError(
                f"Ray could not run the decision of agent {task.agent_id} ({type(exc).__name__}, "
                f"{self.max_retries} retries): {first}; the decisions made so far are stored, continue with --resume"
            ) from None


_SLOTS: dict[tuple[Any, ...], threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def endpoint_slots(backend: BackendConfig, max_in_flight: int) -> threading.BoundedSemaphore:
    """The in-flight bound of one LLM endpoint (backend, server URL, model), shared by the runs of this process."""
    key = (backend.name, backend.base_url, backend.model, max_in_flight)
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(key, threading.BoundedSemaphore(max_in_flight))


def count_calls(client: Any, outcome: AgentOutcome) -> None:
    """Add a remote decision's calls to the run client's counts (the run row's ``llm_calls``), as a local call does."""
    from malles_graph.graphs.run.cancel import RunClient

    if not isinstance(client, RunClient):
        return
    cached = sum(1 for t in outcome.transcript if t.cached)
    client.add_counts(max(0, outcome.llm_calls - cached), cached)


# -- connecting and the cluster's life --------------------------------------------------------------

_CONNECT_LOCK = threading.Lock()
_OPENED_HERE = False  # this module called ray.init (so it also calls ray.shutdown)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MallesError(f"executor 'ray' needs the ray package, which is not installed: {RAY_HINT}") from None
    return ray


def connect(config: ExecutorConfig) -> None:
    """Connect this process to the cluster of ``config`` (start a local one with no address); check its workers.

    A session already open in this process (the embedding app's, or an earlier run's) is used as it is.
    """
    global _OPENED_HERE
    ray = import_ray()
    with _CONNECT_LOCK:
        if ray.is_initialized():
            return
        address = config.address
        try:
            if address:
                check_reachable(address)
                join(ray, address)
            else:
                ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False, logging_level=logging.WARNING)
        except MallesError:
            raise
        except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, version mismatch: one line
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise MallesError(f"executor 'ray': cannot connect to {where}: {text}{auth_hint(exc)}") from None
        _OPENED_HERE = True
        try:
            check_workers()
        except MallesError:
            ray.shutdown()
            _OPENED_HERE = False
            raise


# Ray Client's server process for a new client sometimes dies as the proxy forks it (a gRPC fork race in Ray,
# ray-project/ray#63202; 1 connection in 3-5 on this 2-core machine): retried. The proxy says so in one of two
# ways: "Starting Ray client server failed", or, when the process dies while the proxy reads its command line,
# the proxy's own traceback from start_specific_server (psutil.ZombieProcess).
CLIENT_SERVER_DIED = ("Starting Ray client server failed", "in start_specific_server")
JOIN_ATTEMPTS = 3


def join(ray: Any, address: str) -> None:
    """``ray.init`` to a running cluster; a Ray Client connection whose server died at start is tried again."""
    for attempt in range(1, JOIN_ATTEMPTS + 1):
        try:
            with held_stderr():
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
            return
        except ConnectionError as exc:
            if not any(sign in str(exc) for sign in CLIENT_SERVER_DIED) or attempt == JOIN_ATTEMPTS:
                raise
            ray.shutdown()


# Ray's warning when ray.init runs off the main thread (the CLI connects in its run thread): nothing to act on
NOISE = (b"SIGTERM handler is not set",)


@contextmanager
def held_stderr() -> Iterator[None]:
    """Hold back what is written to file descriptor 2 meanwhile; replay it (but :data:`NOISE`) unless it raised.

    Ray's C++ core writes each retry of a failed connection straight to fd 2 (20 lines in 20 s for a
    refused auth token): the one-line error says it instead. Only around connecting to a running
    cluster, which starts no process (a child would inherit the held descriptor).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            raise
        else:
            sys.stderr.flush()
            os.dup2(saved, 2)
            held.seek(0)
            os.write(2, b"".join(line for line in held if not any(noise in line for noise in NOISE)))
        finally:
            os.close(saved)


def auth_hint(exc: BaseException) -> str:
    """What to do when the cluster refused this process's Ray auth token (Ray >= 2.5x enables token auth).

    Ray reports it as a generic ``ConnectionError`` after ~20 s, the ``AuthenticationError`` in its causes;
    through the Ray Client it is only a timeout (~30 s), so there the hint is conditional.
    """
    todo = (
        "set RAY_AUTH_MODE=token and give this process the cluster's token in RAY_AUTH_TOKEN or the file "
        "~/.ray/auth_token, as on its nodes"
    )
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(seen):
            return f"; the cluster wants its Ray auth token ({todo})"
        seen = seen.__cause__ or seen.__context__
    if "ray client connection timeout" in str(exc) and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return f"; if the cluster uses Ray's token auth, {todo}"
    return ""


def check_reachable(address: str, timeout_s: float = CONNECT_CHECK_S) -> None:
    """Fail fast, in one line, when nothing listens at a ``ray://host:port`` or ``host:port`` address."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise MallesError(f"executor.address {address!r}: expected ray://host:port, host:port or auto")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MallesError(f"executor 'ray': cannot reach the Ray cluster at {address}: {reason}") from None


def check_workers(module: str = __name__, timeout_s: float = WORKER_CHECK_S) -> str:
    """Run a task that imports ``module`` on a worker of every node; the workers' malles-graph version, or one line.

    Every alive node with a CPU is probed (a task pinned to it), so a node set up differently from the
    others is refused before the run rather than failing its share of the decisions mid-run. The probe
    is a closure, so Ray ships it by value: it runs even on a worker that lacks the package.
    """
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from malles_graph import __version__

    def probe(name: str) -> str:
        import importlib

        importlib.import_module(name)
        return importlib.import_module("malles_graph").__version__

    nodes = {
        n["NodeID"]: f"{n['NodeManagerAddress']} {n['NodeID'][:8]}"
        for n in ray.nodes()
        if n["Alive"] and n["Resources"].get("CPU", 0) > 0
    }
    if not nodes:
        raise MallesError("executor 'ray': the Ray cluster has no alive node with a CPU to run decisions on")
    remote = ray.remote(probe)
    refs = {
        node: remote.options(
            max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
        ).remote(module)
        for node in nodes
    }
    _, pending = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
    for ref in pending:
        ray.cancel(ref, force=True)
    late = {ref.hex() for ref in pending}
    gone = 0
    for node, ref in refs.items():
        where = f" on node {nodes[node]}" if len(nodes) > 1 else ""
        if ref.hex() in late:
            raise MallesError(
                f"executor 'ray': no Ray worker{where} ran a task within {timeout_s:.0f} s (is the cluster busy?)"
            )
        try:
            version = ray.get(ref)
        except (ray.exceptions.NodeDiedError, ray.exceptions.TaskUnschedulableError):
            # A node that died is still listed alive until the GCS misses its heartbeats; Ray will not schedule
            # decisions there, so it is no reason to refuse the run (the nodes that answered are checked).
            gone += 1
            continue
        except Exception as exc:  # noqa: BLE001 - the worker's ImportError, wrapped by Ray
            cause = getattr(exc, "cause", None) or exc
            raise MallesError(
                f"executor 'ray': the Ray workers cannot import {module}{where} ({type(cause).__name__}: "
                f"{' '.join(str(cause).split())[:200]}); install malles-graph {__version__} on every node "
                "or give the cluster a runtime_env with it"
            ) from None
        if version != __version__:
            raise MallesError(
                f"executor 'ray': the Ray workers{where} have malles-graph {version}, this process "
                f"{__version__}; install the same version on every node"
            )
    if gone == len(refs):
        raise MallesError("executor 'ray': every node of the Ray cluster went away before it answered a task")
    return __version__


def shutdown() -> None:
    """End the Ray session this module opened (a local cluster it started stops with it); others are left alone."""
    global _OPENED_HERE
    with _CONNECT_LOCK:
        if _OPENED_HERE:
            import ray

            ray.shutdown()
            _OPENED_HERE = False


# -- the worker's side ------------------------------------------------------------------------------

_WORKER: dict[str, tuple[Any, Any]] = {}  # per worker process: (agent graph, agent context) by scenario and spec
_WORKER_LOCK = threading.Lock()


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(import_module(module), attribute)


def worker_resources(scenario_json: str, spec: WorkerSpec) -> tuple[Any, Any]:
    """The agent graph and its context, built from the scenario on this worker's first task and kept."""
    key = hashlib.sha256(f"{scenario_json}|{spec.graph}|{spec.context}".encode()).hexdigest()
    with _WORKER_LOCK:
        if key not in _WORKER:
            scenario = Scenario.model_validate_json(scenario_json)
            _WORKER[key] = (_load(spec.graph), _load(spec.context)(scenario))
        return _WORKER[key]


def run_in_worker(scenario_json: str, spec: WorkerSpec, agent_id: str, situation: Any) -> tuple[AgentOutcome, list]:
    """One decision in a Ray worker: the outcome (its ``details["ray_node"]``: the node that made it) and the
    agent graph's run events, in order."""
    graph, context = worker_resources(scenario_json, spec)
    events: list[RunEvent] = []
    values: dict[str, Any] = {}
    for mode, chunk in graph.stream(
        {"agent_id": agent_id, "situation": situation}, context=context, stream_mode=["custom", "values"]
    ):
        if mode == "custom":
            event = as_event(chunk)
            if event is not None:
                events.append(event)
        else:
            values = chunk
    outcome = as_outcome(values)
    node = import_ray().get_runtime_context().get_node_id()
    return outcome.model_copy(update={"details": {**outcome.details, "ray_node": node}}), events


def _remote_body(scenario_json: str, spec: WorkerSpec, agent_id: str, situation: Any) -> tuple[AgentOutcome, list]:
    # looked up at call time, so a worker_process_setup_hook can wrap it (the fault-injection test does)
    return run_in_worker(scenario_json, spec, agent_id, situation)


_REMOTE: Any = None


def remote_decide() -> Any:
    """The Ray remote function of one decision (made on first use: ray is imported only when it runs)."""
    global _REMOTE
    if _REMOTE is None:
        _REMOTE = import_ray().remote(_remote_body)
    return _REMOTE
