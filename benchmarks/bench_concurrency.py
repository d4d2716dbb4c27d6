"""Concurrency against a real OpenAI-compatible server: our path vs the server alone, side by side (prints figures).

The local backend's llama.cpp server runs with N parallel slots (``backend.max_concurrency``, each slot
``backend.n_ctx`` tokens). Three measurements, each on a fresh server (an empty prompt cache):

1. ours: K debate decisions on real Ta Feng situations, N at a time, through the product path (decision
   graph -> LLMClient with N slots -> langchain-openai -> HTTP). Every request is recorded.
2. server alone: the same requests (same messages, sampling parameters, seeds and JSON schemas) replayed
   with plain concurrent HTTP, N decisions at a time, each decision's calls in their order.
3. ours again, so the comparison is against the mean of the runs before and after the server alone.

Target: ours achieves >= 90% of the server-alone decisions/s. Completion tokens are printed for both
(the same seeds give the same answers, so both do the same work). On a shared machine the CPU share drifts
between the two measurements, so the server's own compute seconds (``/metrics``: prompt + generation
seconds of its requests) are printed for each too: wall time over them is how much of the run the slots
were not computing, and the ratio of the two is the comparison at equal CPU share.

    .venv/bin/python benchmarks/bench_concurrency.py [--slots 4] [--decisions 8] [--rounds 1]
"""

from __future__ import annotations

import argparse
import contextvars
import json
import os
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from malles_graph.graphs.decision import DecisionContext, decide_situation

from malles_graph.backends import build_client
from malles_graph.backends.local_server import LocalServer, LocalServerKey, default_threads
from malles_graph.data.assets import bundled_model_path
from malles_graph.scenario import BackendConfig

ROLES = {"human": "user", "ai": "assistant", "system": "system"}


class Recorder:
    """The HTTP body of every request the client sends, per decision, in order."""

    def __init__(self) -> None:
        self.calls: dict[int, list[dict[str, Any]]] = {}
        # a context variable, not a thread-local: LangGraph runs nodes in its own threads with the caller's context
        self.decision: contextvars.ContextVar[int] = contextvars.ContextVar("decision")
        self.lock = threading.Lock()

    def wrap(self, client) -> None:
        invoke = client._invoke

        def recorded(messages, kwargs):
            body = {
                "messages": [{"role": ROLES[m.type], "content": str(m.content)} for m in messages],
                **kwargs.get("extra_body", {}),
                **{k: v for k, v in kwargs.items() if k != "extra_body"},
            }
            with self.lock:
                self.calls.setdefault(self.decision.get(), []).append(body)
            return invoke(messages, kwargs)

        client._invoke = recorded


def post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{base_url}/v1/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=900) as resp:
        return json.loads(resp.read())


def server_seconds(base_url: str) -> float:
    """The server's own prompt + generation seconds so far (/metrics; summed over its requests)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=60) as resp:
        lines = resp.read().decode().splitlines()
    values = dict(line.split() for line in lines if line.startswith("llamacpp:") and len(line.split()) == 2)
    return sum(float(values[f"llamacpp:{k}"]) for k in ("prompt_seconds_total", "tokens_predicted_seconds_total"))


# One thread count for every server of the run (chosen once by the load at the start, as the product does
# per server): runs with different counts compute different numbers and are not comparable.
THREADS = default_threads()


def fresh_server(config: BackendConfig) -> LocalServer:
    """A new server (empty prompt cache), registered as the one the local backend uses for this key."""
    key = LocalServerKey(str(bundled_model_path()), config.n_ctx, config.max_concurrency)
    LocalServer.stop_all()
    return LocalServer.get(key, threads=THREADS)


def run_ours(cases, config: BackendConfig, args) -> tuple[float, Recorder, int, float]:
    server = fresh_server(config)
    client = build_client(config, use_cache=False)
    recorder = Recorder()
    recorder.wrap(client)
    completion: list[int] = []
    failed: list[int] = []

    def decide(i: int) -> None:
        recorder.decision.set(i)
        ctx = DecisionContext(
            backend=config,
            client=client,
            debate_rounds=args.rounds,
            samples=1,
            retrieval=False,
            seed=i,
            turn_max_tokens=args.turn_tokens,
            decide_max_tokens=args.decide_tokens,
        )
        result = decide_situation(cases[i], ctx)
        completion.append(sum(t.completion_tokens for t in result.transcript))
        failed.append(sum(t.kind == "failure" for t in result.transcript))

    start = time.perf_counter()
    with ThreadPoolExecutor(config.max_concurrency) as pool:
        list(pool.map(decide, range(len(cases))))
    wall = time.perf_counter() - start
    if sum(failed):
        print(f"warning: {sum(failed)} failed call(s) in our run: the comparison is not like for like")
    return wall, recorder, sum(completion), server_seconds(server.base_url)


def run_alone(recorder: Recorder, config: BackendConfig) -> tuple[float, int, float]:
    server = fresh_server(config)
    completion = []

    def replay(i: int) -> None:
        for body in recorder.calls[i]:
            completion.append(post(server.base_url, body)["usage"]["completion_tokens"])

    start = time.perf_counter()
    with ThreadPoolExecutor(config.max_concurrency) as pool:
        list(pool.map(replay, sorted(recorder.calls)))
    return time.perf_counter() - start, sum(completion), server_seconds(server.base_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=4, help="parallel slots = backend.max_concurrency (default 4)")
    parser.add_argument("--decisions", type=int, default=8, help="decisions per measurement (default 8)")
    parser.add_argument("--rounds", type=int, default=1, help="debate rounds per decision (default 1)")
    parser.add_argument("--n-ctx", type=int, default=2048, help="context tokens per slot (default 2048)")
    parser.add_argument("--turn-tokens", type=int, default=96, help="max tokens of a debate turn (default 96)")
    parser.add_argument("--decide-tokens", type=int, default=96, help="max tokens of a decision (default 96)")
    args = parser.parse_args()

    from malles_graph.retail.situations import SituationBuilder

    cases = [b.situation for b in SituationBuilder().sample(args.decisions, seed=0)]
    config = BackendConfig(
        name="local", cache=False, max_concurrency=args.slots, n_ctx=args.n_ctx, max_tokens=64, timeout_s=1800
    )  # a shared machine: a call may wait minutes for CPU; never a failure here
    # ours, the server alone, ours again: the mean of our two runs cancels a load that drifts steadily
    wall_1, recorder, tokens_ours, compute_1 = run_ours(cases, config, args)
    calls = sum(len(v) for v in recorder.calls.values())
    print(ours_line("ours        ", len(cases), calls, tokens_ours, wall_1, compute_1), flush=True)
    wall_alone, tokens_alone, compute_alone = run_alone(recorder, config)
    print(
        f"server alone: the same {calls} requests ({tokens_alone} completion tokens) in {wall_alone:.1f} s "
        f"= {len(cases) / wall_alone:.3f} decisions/s; server compute {compute_alone:.1f} s "
        f"(load {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    wall_2, again, tokens_again, compute_2 = run_ours(cases, config, args)
    calls_again = sum(len(v) for v in again.calls.values())
    print(ours_line("ours again  ", len(cases), calls_again, tokens_again, wall_2, compute_2))
    wall_ours, compute_ours = (wall_1 + wall_2) / 2, (compute_1 + compute_2) / 2
    print(
        f"\n== {args.slots} slots x {args.n_ctx} tokens, {THREADS} thread(s): ours (mean of 2) / server alone = "
        f"{wall_alone / wall_ours:.0%} of the server's decisions/s (target >= 90%) =="
    )
    at_equal_share = (wall_alone / compute_alone) / (wall_ours / compute_ours)
    print(f"   at equal CPU share (wall over the server's compute seconds): {at_equal_share:.0%}")


def ours_line(name: str, decisions: int, calls: int, tokens: int, wall: float, compute: float) -> str:
    return (
        f"{name}: {decisions} decisions ({calls} calls, {tokens} completion tokens) in {wall:.1f} s "
        f"= {decisions / wall:.3f} decisions/s; server compute {compute:.1f} s (load {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
