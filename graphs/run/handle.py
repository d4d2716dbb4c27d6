"""The generic runner's RunHandle: a run of any kind in its own thread, as a stream of typed events.

``start(kind_runner, scenario)`` checks the scenario (the kind's preflight and the store), creates
the run row owned by this process, and starts a daemon thread that

1. compiles the kind's graph with the store's checkpointer (thread id = run id), types registered;
2. streams it with ``stream_mode="custom", subgraphs=True``, so events of nested graphs (the
   decision graph inside the population fan-out) arrive while the agent is still deciding;
3. stamps each event with the run id, writes it through the one recorder, then queues it for
   the front end (``RunHandle.events()``);
4. ends with ``RunFinished``: finished, failed (an error, a fatal backend, or every decision
   failed), cancelled or interrupted (both resumable).

The LangGraph fan-out is not bounded by the backend's ``max_concurrency`` (that bound lives in
the LLM client's slots): LangGraph also runs its stream waiter in the same thread pool, so a
small pool deadlocks (``max_concurrency: 1``) or delays every event to the end of a task.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from malles_graph.graphs.run.cancel import CancelToken, RunStopped, StopStatus, run_client
from malles_graph.graphs.run.serde import checkpoint_serde
from malles_graph.graphs.run.table import KindRunner

from malles_graph.backends import LLMClient
from malles_graph.errors import BackendFatalError, MallesError
from malles_graph.events import (
    DecisionFinished,
    Message,
    RoundStarted,
    RunEvent,
    RunFinished,
    RunStarted,
    TurnStreamed,
    as_event,
)
from malles_graph.scenario import Scenario
from malles_graph.store import repository as repo
from malles_graph.store.engine import make_engine, safe_url
from malles_graph.store.recorder import RunRecorder
from malles_graph.store.summary import RunSummary, summarise

FANOUT_THREADS = 256  # LangGraph's pool: wider than any fan-out, so the stream waiter always has a thread
HEARTBEAT_S = 5.0  # the owner's sign of life in the run row (repository.STALE_AFTER is far above)
_END = object()


class RunHandle:
    """A run going on in its own thread: iterate ``events()``, ``cancel()`` it, read ``summary`` at the end."""

    def __init__(self, runner: KindRunner, scenario: Scenario, run_id: str, url: str, *, client: LLMClient | None,
                 resumed: bool, inputs: dict[str, Any] | Future[dict[str, Any]] | None = None) -> None:
        self.runner = runner
        self.scenario = scenario
        self.run_id = run_id
        self.url = url
        self.resumed = resumed
        self.summary: RunSummary | None = None
        self.token = CancelToken()
        self._client = client
        self._inputs = inputs
        self._run_client: Any = None
        self._context: Any = None  # the kind's runtime context, built in the run thread (the summary hook reads it)
        self._engine = make_engine(url)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name=f"run-{run_id}", daemon=True)
        self._delivered: set[tuple[int, str]] = set()  # (round, agent) of the decisions already published
        self._started = time.perf_counter()

    # -- the front end's side -------------------------------------------------------------------
    def events(self, poll_s: float = 0.1) -> Iterator[RunEvent]:
        """Every event of the run as it happens, ending with RunFinished (after which ``summary`` is set)."""
        while True:
            try:
                event = self.poll(poll_s)
            except StopIteration:
                return
            if event is not None:
                yield event

    def poll(self, timeout_s: float = 0.1) -> RunEvent | None:
        """The next event within ``timeout_s`` (None if none came); StopIteration once the stream has ended."""
        if self._ended:
            raise StopIteration
        try:
            item = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if item is _END:
            self._ended = True
            raise StopIteration
        return item

    def cancel(self, status: StopStatus = "cancelled", reason: str = "cancelled by the user") -> None:
        """Ask the run to stop: calls in flight finish, no new call starts; stored as ``status`` (resumable)."""
        self.token.set(status, reason)

    def wait(self, timeout: float | None = None) -> RunSummary | None:
        """Wait for the run thread to end (``timeout`` seconds at most); the summary, if it ended."""
        self._thread.join(timeout)
        return self.summary

    def run(self, on_event: Any = None) -> RunSummary:
        """Consume the events (passing each to ``on_event``) until the end; the summary.

        Ctrl-C while waiting stops the run as ``interrupted`` and waits for the calls in flight.
        """
        try:
            for event in self.events():
                if on_event is not None:
                    on_event(event)
        except KeyboardInterrupt:
            self.cancel("interrupted", "interrupted by the user (ctrl+c)")
            self.wait()
            raise
        assert self.summary is not None
        return self.summary

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def first_call_at(self) -> float | None:
        """``time.perf_counter()`` of the run's first LLM call (None before it, or without an LLM)."""
        return getattr(self._run_client, "first_call_at", None)

    # -- the run thread -------------------------------------------------------------------------
    def _start(self) -> RunHandle:
        self._thread.start()
        return self

    def _publish(self, event: Any, recorder: RunRecorder) -> None:
        event = event.model_copy(update={"run_id": self.run_id})
        recorder.write(event)
        if isinstance(event, DecisionFinished):
            self._delivered.add((event.round, event.agent_id))
        self._queue.put(event)

    def _run(self) -> None:
        recorder = RunRecorder(self._engine, self.run_id)
        status, reason, values = "finished", "", {}
        beating = threading.Event()
        beat = threading.Thread(target=self._beat, args=(beating,), daemon=True, name=f"heartbeat-{self.run_id}")
        beat.start()
        try:
            self._publish(
                RunStarted(kind=self.runner.kind, name=self.scenario.name, seed=self.scenario.seed,
                           backend=self.scenario.backend.name, resumed=self.resumed,
                           total_rounds=self.runner.total_rounds(self.scenario), store_url=safe_url(self.url),
                           prompt_set=self.runner.prompt_set(self.scenario).record()),
                recorder,
            )
            values = self._stream(recorder)
            status, reason = self._verdict()
        except RunStopped as stop:
            status, reason = stop.status, stop.reason
        except BackendFatalError as exc:
            status, reason = "failed", str(exc)
        except MallesError as exc:
            status, reason = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - recorded as the run's failure, shown by the front end
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            beating.set()
            with contextlib.suppress(Exception):
                self._flush_calls()
        if self.token.is_set() and status in ("finished", "failed") and self.token.status != "failed":
            status, reason = self.token.status, self.token.reason  # stopped while the graph was ending
        elif self.token.is_set() and self.token.status == "failed":
            status, reason = "failed", self.token.reason
        try:
            summary = self.runner.summary(values, self._context)
            self._publish(RunFinished(status=status, reason=reason, summary=summary), recorder)
            self.summary = summarise(self._engine, self.run_id, self.url, resumed=self.resumed)
            self.summary.wall_s = time.perf_counter() - self._started
        except Exception as exc:  # noqa: BLE001 - the store went away: say so, still end the stream
            self._queue.put(Message(run_id=self.run_id, text=f"could not record the end of the run: {exc}",
                                    level="error"))
        finally:
            self._queue.put(_END)

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a missed beat is harmless; the next one follows
                repo.heartbeat(self._engine, self.run_id)
                self._flush_calls()

    def _flush_calls(self) -> None:
        """Add the run client's call counts to the run row (every beat and at the end: a kill loses a beat's worth)."""
        if self._run_client is not None:
            made, cached = self._run_client.take_counts()
            if made or cached:
                repo.add_calls(self._engine, self.run_id, made, cached)

    def _stream(self, recorder: RunRecorder) -> dict[str, Any]:
        from malles_graph.store.checkpoint import open_checkpointer

        client = self._run_client = run_client(self._client, self.token)
        ctx = self._context = self.runner.context(self.scenario, client)
        config = {
            "configurable": {"thread_id": self.run_id},
            "recursion_limit": 50 * max(1, self.runner.total_rounds(self.scenario)) + 100,
            "max_concurrency": FANOUT_THREADS,
        }
        with open_checkpointer(self.url, serde=checkpoint_serde(*self.runner.builders())) as saver:
            graph = self.runner.compile(saver)
            snapshot = graph.get_state(config)
            inputs: dict[str, Any] | None
            if snapshot.values:
                if not snapshot.next and not snapshot.tasks:
                    return dict(snapshot.values)  # the graph had ended; only the run row had not
                inputs = None
                self._publish(Message(text=f"resuming {self.run_id} from its last checkpoint"), recorder)
                self._resume_round(snapshot, recorder)
            else:
                self._publish(Message(text=f"preparing {self.scenario.name} ({self.runner.kind})"), recorder)
                inputs = self._initial_state()
            self.token.raise_if_set()
            stream = graph.stream(inputs, config, context=ctx, stream_mode="custom", subgraphs=True,
                                  durability="sync")
            try:
                for _namespace, chunk in stream:
                    event = as_event(chunk)
                    if event is not None:
                        if isinstance(event, TurnStreamed) and event.round is None:
                            event = event.model_copy(update={"round": recorder.round})
                        self._publish(event, recorder)
                    self.token.raise_if_set()
            except BaseException:
                stream.close()  # waits for the tasks in flight; they stop at their next LLM call
                self._recover(graph, config, recorder)
                raise
            return dict(graph.get_state(config).values)

    def _initial_state(self) -> dict[str, Any]:
        """The new run's initial state: given, being built since the start (a future), or built now."""
        if isinstance(self._inputs, Future):
            return self._inputs.result()
        return self._inputs if self._inputs is not None else self.runner.inputs(self.scenario)

    def _recover(self, graph: Any, config: dict[str, Any], recorder: RunRecorder) -> None:
        """Record the decisions of tasks that finished (their writes are checkpointed) but whose events the stopped
        stream never delivered; otherwise a resume would skip them and they would be lost. A decision the stream did
        deliver is not published again (the front end would count it twice)."""
        try:
            tasks = graph.get_state(config).tasks
        except Exception:  # noqa: BLE001 - nothing checkpointed yet
            return
        for task in tasks:
            result = task.result if isinstance(task.result, dict) else {}
            for event in result.get("decided") or []:
                if (event.round, event.agent_id) not in self._delivered:
                    self._publish(event, recorder)

    def _resume_round(self, snapshot: Any, recorder: RunRecorder) -> None:
        """Tell the front end where a resumed run stands (the round in progress and what is already stored)."""
        number = int(snapshot.values.get("round", 0) or 0)
        if number:
            recorder.round = number
            done = repo.decision_counts(self._engine, self.run_id).get(number, (0, 0))[0]
            tasks = snapshot.values.get("tasks") or []
            self._queue.put(RoundStarted(run_id=self.run_id, round=number, total=len(tasks), done=done))

    def _verdict(self) -> tuple[str, str]:
        """finished, unless every decision failed (then the run did not produce anything)."""
        counts = repo.decision_counts(self._engine, self.run_id)
        total = sum(n for n, _ in counts.values())
        failed = sum(f for _, f in counts.values())
        if total and failed == total:
            errors = [d.error for d in repo.load_decisions(self._engine, self.run_id) if d.error]
            first = f": {errors[0]}" if errors else ""
            return "failed", f"all {total} decisions failed{first}"
        return "finished", ""
