"""LLM throughput on this machine: llama.cpp's prompt and generation rates for the bundled model, and a debate
decision's wall time against the model-time bound (prints figures).

1. Rates, from the server's own timings (``timings.prompt_per_second`` / ``predicted_per_second``) of one
   request: a ~800-token prompt never seen before (a nonce opens it, so nothing comes from the prompt cache)
   and 64 generated tokens after it (``ignore_eos``). 800 tokens is about the mean prompt of a debate call
   with the bundled prompts: on a CPU, generation slows as the context grows (SmolLM2-135M here: 30-50%
   slower after ~1,250 tokens than after ~50, docs/performance.md), so a rate measured after a short prompt
   would understate the model time of the calls. Measured before and after the decisions (the machine is
   shared, its load drifts); the mean of the two is used.
2. Debate decisions on real Ta Feng situations through the product path (decision graph -> LLMClient ->
   langchain-openai -> the local llama.cpp server, response cache off): wall time against the bound
   ``sum(prompt tokens not served from the prompt cache) / prompt rate + sum(completion tokens) / generation
   rate``; target: wall <= 1.3x bound. Prompt tokens served from the server's prompt cache are counted from
   its usage (``prompt_tokens_details.cached_tokens``). On a shared machine the rates swing with the CPU
   share, so the server's own compute seconds for the same calls (``/metrics``) are printed too: wall time
   over those is the bound at the rates the calls actually got.
   ``--baseline-prompts DIR`` first runs the same decisions with another prompt folder (e.g. the layout before
   the shared context block: ``git show ab630bd:prompts/decide.txt`` ..., docs/performance.md) and prints both.

    .venv/bin/python benchmarks/bench_llm.py [--decisions 3] [--rounds 2] [--samples 1] [--slots 1] [--turn-tokens 96]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from malles_graph.graphs.decision import DecisionContext, decide_situation

from malles_graph.backends import ChatResult, LLMClient, build_client
from malles_graph.backends.local_server import LocalServer, LocalServerKey
from malles_graph.data.assets import bundled_model_path
from malles_graph.scenario import BackendConfig

FILLER = (
    "A: 45 now, regular 50 (10% off); bought in 2 of 8 similar past baskets; brand 3, display 1, feature 0. "
    "B: 30 now, regular 30 (regular); bought in 1 of 8 similar past baskets; brand 7, display 0, feature 1. "
)


def post(base_url: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"{base_url}/v1/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def server_rates(base_url: str, reps: int) -> tuple[float, float]:
    """(prompt tokens/s, generated tokens/s), medians of ``reps`` requests, from the server's timings."""
    pp, tg = [], []
    for _ in range(reps):
        prompt = f"{uuid.uuid4()} " + FILLER * 8  # ~800 tokens; the nonce defeats the prompt cache
        body = {
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 64,
            "ignore_eos": True,
            "temperature": 0.7,
        }
        timings = post(base_url, body)["timings"]
        pp.append(timings["prompt_per_second"])
        tg.append(timings["predicted_per_second"])
    return statistics.median(pp), statistics.median(tg)


def server_seconds(base_url: str) -> dict[str, float]:
    """The server's own counters (/metrics): seconds spent on prompts and on generation, tokens of each."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=60) as resp:
        lines = resp.read().decode().splitlines()
    values = dict(line.split() for line in lines if line.startswith("llamacpp:") and len(line.split()) == 2)
    return {k.removeprefix("llamacpp:"): float(v) for k, v in values.items()}


@dataclass
class Recorded:
    """Every ChatResult the client returned (debate turns, decide draws and their repairs)."""

    results: list[ChatResult] = field(default_factory=list)

    def wrap(self, client: LLMClient) -> LLMClient:
        chat = client.chat

        def recorded_chat(*args, **kwargs) -> ChatResult:
            result = chat(*args, **kwargs)
            self.results.append(result)
            return result

        client.chat = recorded_chat  # type: ignore[method-assign]  # structured() calls self.chat too
        return client

    def totals(self) -> tuple[int, int, int, int]:
        """(calls, prompt tokens, of which served from the prompt cache, completion tokens)."""
        rs = self.results
        return (
            len(rs),
            sum(r.prompt_tokens for r in rs),
            sum(r.cached_prompt_tokens for r in rs),
            sum(r.completion_tokens for r in rs),
        )


def situations(n: int):
    from malles_graph.retail.situations import SituationBuilder

    return [b.situation for b in SituationBuilder().sample(n, seed=0)]


def run_decisions(cases, config: BackendConfig, args, prompts: str | None, base_url: str):
    """Each decision's wall time, recorded calls, and the seconds the server itself computed for it."""
    out = []
    for i, situation in enumerate(cases):
        recorded = Recorded()
        client = recorded.wrap(build_client(config, use_cache=False))
        ctx = DecisionContext(
            backend=config,
            client=client,
            debate_rounds=args.rounds,
            samples=args.samples,
            retrieval=False,
            seed=i,
            prompts_dir=prompts,
            turn_max_tokens=args.turn_tokens,
            decide_max_tokens=args.decide_tokens,
        )
        before = server_seconds(base_url)
        start = time.perf_counter()
        result = decide_situation(situation, ctx)
        wall = time.perf_counter() - start
        after = server_seconds(base_url)
        model_s = sum(after[k] - before[k] for k in ("prompt_seconds_total", "tokens_predicted_seconds_total"))
        calls, prompt, cached, completion = recorded.totals()
        print(
            f"  decision {i + 1}: {wall:6.1f} s, {calls} calls, {prompt} prompt tokens ({cached} from the cache), "
            f"{completion} completion tokens, server compute {model_s:.1f} s, ok={result.ok}",
            flush=True,
        )
        out.append((wall, recorded, model_s))
    return out


def report(name: str, runs, pp: float, tg: float) -> None:
    wall = sum(w for w, _, _ in runs)
    model_s = sum(m for _, _, m in runs)
    calls, prompt, cached, completion = (sum(r.totals()[k] for _, r, _ in runs) for k in range(4))
    bound = (prompt - cached) / pp + completion / tg
    print(f"\n== {name}: {len(runs)} decisions, {calls} LLM calls ==")
    print(f"prompt tokens        : {prompt:6d} ({prompt / len(runs):.0f} per decision)")
    print(f"  from prompt cache  : {cached:6d} ({cached / max(prompt, 1):.0%})")
    print(f"completion tokens    : {completion:6d}")
    print(
        f"model-time bound     : {bound:7.1f} s  = {prompt - cached} uncached / {pp:.0f} tok/s "
        f"+ {completion} / {tg:.1f} tok/s"
    )
    print(f"wall time            : {wall:7.1f} s  ({wall / len(runs):.1f} s per decision)")
    print(f"wall / bound         : {wall / bound:7.2f}x  (target <= 1.3x)")
    print(f"server compute       : {model_s:7.1f} s  (its own prompt + generation seconds, /metrics, same run)")
    print(f"wall / server compute: {wall / model_s:7.2f}x  (the bound at the rates the calls actually got)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=3, help="Ta Feng situations decided (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="debate rounds (default 2)")
    parser.add_argument("--samples", type=int, default=1, help="decide samples per decision (default 1)")
    parser.add_argument("--slots", type=int, default=1, help="server slots = backend.max_concurrency (default 1)")
    parser.add_argument("--reps", type=int, default=3, help="rate measurements each time (default 3)")
    parser.add_argument("--turn-tokens", type=int, default=96, help="max tokens of a debate turn (default 96)")
    parser.add_argument("--decide-tokens", type=int, default=96, help="max tokens of a decision (default 96)")
    parser.add_argument("--baseline-prompts", type=Path, help="also run with this prompt folder, first")
    args = parser.parse_args()

    config = BackendConfig(
        name="local", cache=False, max_concurrency=args.slots, max_tokens=96, timeout_s=1800
    )  # a shared machine: a call may wait minutes for CPU; never a failure here
    server = LocalServer.get(LocalServerKey(str(bundled_model_path()), config.n_ctx, config.max_concurrency))
    t0 = time.perf_counter()
    cases = situations(args.decisions)
    print(f"{len(cases)} Ta Feng situations built in {time.perf_counter() - t0:.1f} s")
    pp1, tg1 = server_rates(server.base_url, args.reps)
    print(f"rates before: prompt {pp1:.0f} tok/s, generation {tg1:.1f} tok/s", flush=True)
    runs = {}
    if args.baseline_prompts:
        print(f"baseline prompts ({args.baseline_prompts}):")
        runs["baseline prompts"] = run_decisions(cases, config, args, str(args.baseline_prompts), server.base_url)
    print("bundled prompts:")
    runs["bundled prompts"] = run_decisions(cases, config, args, None, server.base_url)
    pp2, tg2 = server_rates(server.base_url, args.reps)
    print(f"rates after : prompt {pp2:.0f} tok/s, generation {tg2:.1f} tok/s")
    pp, tg = (pp1 + pp2) / 2, (tg1 + tg2) / 2
    print(
        f"\n== llama.cpp on this machine ({bundled_model_path().name}, {args.slots} slot(s), "
        f"{server.threads} thread(s)) =="
    )
    print(f"prompt processing    : {pp:7.0f} tokens/s")
    print(f"generation           : {tg:7.1f} tokens/s (after a ~800-token prompt)")
    for name, result in runs.items():
        report(name, result, pp, tg)


if __name__ == "__main__":
    main()
