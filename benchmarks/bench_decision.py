"""Decision graph benchmark: orchestration overhead and prompt tokens per role (prints figures).

1. Orchestration overhead per decision, through the call path real backends use: the decision graph
   (debate_rounds=2, one sample: 10 node runs, 7 model calls) calling an instant LangChain chat model
   through the real LLMClient, against a bare LangGraph graph with the same nodes and executed path whose
   debate nodes call the same chat model with a fixed prompt and whose decide node parses the JSON answer.
   CPU time per decision, interleaved batches (target <= 1.2x). ``--profile`` prints a cProfile of ours.
2. Prompt tokens per role vs the single-agent prompt on real Ta Feng situations (default 200),
   counted with the bundled SmolLM2 tokenizer (llama.cpp /tokenize). Debate turns are a fixed
   ~50-token text so the transcript grows as in a real debate.

    .venv/bin/python benchmarks/bench_decision.py [--cases 200] [--reps 200] [--skip-tokens] [--profile]
"""

from __future__ import annotations

import argparse
import json
import operator
import statistics
import time
import urllib.request
from collections.abc import Callable
from typing import Annotated, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, StateGraph
from malles_graph.graphs.decision import DecisionContext, decide_situation, graph

from malles_graph.backends import Attempt, StructuredResult, build_client, parse_structured
from malles_graph.backends import ChatResult as LLMChat
from malles_graph.models import ChoiceSituation
from malles_graph.scenario import BackendConfig

TURN = (
    "I would go for A: it is the most popular product in this subclass, similar shoppers chose it most "
    "often, and the usual pack of two units matches what this shopper tends to buy on a weekly trip."
)
ANSWER = '{"product": "A", "quantity": 2, "rationale": "popular and fairly priced", "confidence": 0.7}'


class InstantModel(BaseChatModel):
    """Answers instantly; records the prompt text of every call (no locks, no scripts)."""

    prompts: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "instant"

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs) -> ChatResult:
        text = str(messages[0].content)
        self.prompts.append(text)
        reply = ANSWER if "Answer with only a JSON object" in text else TURN
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])


class InstantClient:
    """Duck-typed LLMClient answering instantly without LangChain: isolates the orchestration."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def chat(self, messages, *, temperature=None, seed=None, max_tokens=None, response_format=None) -> LLMChat:
        text = str(messages[0].content)
        self.prompts.append(text)
        reply = ANSWER if "Answer with only a JSON object" in text else TURN
        return LLMChat(reply, len(text) // 4, len(reply) // 4)

    def structured(self, messages, schema, *, validator=None, max_retries=None, temperature=None, seed=None,
                   max_tokens=None, json_schema=None) -> StructuredResult:
        reply = self.chat(messages)
        value, error = parse_structured(reply.text, schema, validator)
        attempt = Attempt(reply.text, error, reply.prompt_tokens, reply.completion_tokens)
        return StructuredResult(value=value, attempts=[attempt], error=error)


# ---------------------------------------------------------------- 1. overhead
def small_situation() -> ChoiceSituation:
    """The package's built-in sample situation (three candidates, one recent basket, one bought before): the
    shape of a real Ta Feng situation without the data or the test packages."""
    from malles_graph.tui.samples import builtin_situation

    return builtin_situation()


class Bare(TypedDict, total=False):
    round: int
    log: Annotated[list[str], operator.add]


# What the bare graph's nodes send: prompts of the decision graph's sizes, written once (no rendering).
BARE_TURN_PROMPT = "You are a debate role. " + "A: 45 now, regular 50 (10% off); popular. " * 30
BARE_DECIDE_PROMPT = BARE_TURN_PROMPT + "Answer with only a JSON object."


def bare_graph(model: BaseChatModel, rounds: int = 2):
    """The decision graph's 8 nodes and executed path, written plainly: the debate nodes call the same chat
    model with a fixed prompt and keep its text, decide parses the JSON answer, the others only log."""

    def step(name):
        def node(state):
            return {"log": [name]}

        return node

    def turn(name):
        def node(state):
            reply = model.invoke([HumanMessage(content=BARE_TURN_PROMPT)])
            update = {"log": [str(reply.content)]}
            return {**update, "round": state.get("round", 0) + 1} if name == "persona" else update

        return node

    def decide(state):
        reply = model.invoke([HumanMessage(content=BARE_DECIDE_PROMPT)])
        answer = json.loads(str(reply.content))
        return {"log": [answer["product"]]}

    def after_persona(state):
        return "product_specialist" if state["round"] < rounds else "decide"

    b = StateGraph(Bare)
    for name in ("retrieve", "reconstruct_hidden", "single_agent", "stabilise"):
        b.add_node(name, step(name))
    for name in ("product_specialist", "price_analyst", "persona"):
        b.add_node(name, turn(name))
    b.add_node("decide", decide)
    b.add_edge(START, "retrieve")
    b.add_edge("retrieve", "reconstruct_hidden")
    b.add_edge("reconstruct_hidden", "product_specialist")
    b.add_edge("product_specialist", "price_analyst")
    b.add_edge("price_analyst", "persona")
    b.add_conditional_edges("persona", after_persona, ["product_specialist", "decide"])
    b.add_edge("decide", "stabilise")
    b.add_edge("single_agent", "stabilise")
    b.add_edge("stabilise", END)
    return b.compile()


def cpu_per_call(fns: dict[str, Callable[[], object]], reps: int, rounds: int = 5) -> dict[str, float]:
    """CPU seconds per call of each fn: ``rounds`` interleaved batches of ``reps`` calls, the best batch each
    (CPU time, not wall time, and interleaved: the shared machine's load drifts during the run)."""
    for fn in fns.values():
        fn()  # warm up
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            for _ in range(max(1, reps // rounds)):
                fn()
            best[name] = min(best[name], (time.process_time() - start) / max(1, reps // rounds))
    return best


def bench_overhead(situation, reps: int, profile: bool = False) -> None:
    model = InstantModel()
    bare = bare_graph(model)
    ours = DecisionContext(client=build_client(BackendConfig(name="local"), chat_model=model, use_cache=False))
    duck = DecisionContext(client=InstantClient())  # type: ignore[arg-type]
    inputs = {"agent_id": "a", "situation": situation}
    t = cpu_per_call({
        "bare": lambda: bare.invoke({"round": 0}),
        "ours": lambda: graph.invoke(inputs, context=ours),
        "duck": lambda: graph.invoke(inputs, context=duck),
    }, reps)
    print("\n== orchestration overhead per decision (2 rounds, 1 sample: 10 node runs, 7 model calls), CPU time ==")
    print(f"bare LangGraph graph, same nodes and path, same chat model : {t['bare'] * 1e3:7.2f} ms")
    print(f"decision graph -> LLMClient -> the same chat model        : {t['ours'] * 1e3:7.2f} ms  "
          f"({t['ours'] / t['bare']:.2f}x bare; target <= 1.2x)")
    print(f"decision graph, duck-typed client without LangChain       : {t['duck'] * 1e3:7.2f} ms")
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(reps):
            graph.invoke(inputs, context=ours)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


# ---------------------------------------------------------------- 2. tokens per role
def tokenizer():
    from malles_graph.backends.local_server import LocalServer, LocalServerKey
    from malles_graph.data.assets import bundled_model_path

    server = LocalServer.get(LocalServerKey(str(bundled_model_path()), 4096, 1))

    def count(text: str) -> int:
        req = urllib.request.Request(
            f"{server.base_url}/tokenize", data=json.dumps({"content": text}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            return len(json.loads(resp.read())["tokens"])

    return count


ROLE_MARKERS = {
    "product_specialist": "You are a product specialist",
    "price_analyst": "You are a price analyst",
    "persona": "You are this shopper",
    "decide": "Decide for the shopper",
    "single_agent": "You decide what a grocery shopper buys",
}


def role_of(prompt: str) -> str:
    return next(role for role, marker in ROLE_MARKERS.items() if prompt.startswith(marker))


def bench_tokens(n_cases: int) -> None:
    from malles_graph.retail.retrieval_api import InMemoryRetriever
    from malles_graph.retail.situations import SituationBuilder

    t0 = time.perf_counter()
    builder = SituationBuilder()
    built = builder.sample(n_cases, seed=0)
    print(f"\n== prompt tokens per role vs single agent on {len(built)} Ta Feng situations ==")
    print(f"(built in {time.perf_counter() - t0:.1f} s)")
    from malles_graph.retrieval.scope import subclass_episodes
    from malles_graph.retrieval.store import to_record

    count = tokenizer()
    memories: dict[str, InMemoryRetriever] = {}
    last_day = max(x.situation.date for x in built)
    per_call: dict[str, list[int]] = {r: [] for r in ROLE_MARKERS}
    first_round: dict[str, list[int]] = {r: [] for r in ("product_specialist", "price_analyst", "persona")}
    debate_total, single_total, largest_debate_call = [], [], []
    for i, b in enumerate(built):
        if i % 50 == 0:
            print(f"  case {i}/{len(built)} ({time.perf_counter() - t0:.0f} s)", flush=True)
        s = b.situation
        if s.subclass not in memories:
            # the subclass's 1000 most recent episodes (the memory's records) for an in-process exact search:
            # only the number of neighbours shown matters for the token counts
            recent = subclass_episodes([s.subclass], last_day).tail(1000)
            memories[s.subclass] = InMemoryRetriever([to_record(r["id"], r, 0.0) for r in recent.to_dicts()])
        totals = {}
        for single in (False, True):
            client = InstantClient()
            decide_situation(s, DecisionContext(client=client, single_agent=single),  # type: ignore[arg-type]
                             retriever=memories[s.subclass])
            tokens = [(role_of(p), count(p)) for p in client.prompts]
            seen: set[str] = set()
            for role, n in tokens:
                per_call[role].append(n)
                if role in first_round and role not in seen:
                    first_round[role].append(n)
                    seen.add(role)
            totals[single] = sum(n for _, n in tokens)
            if not single:
                largest_debate_call.append(max(n for _, n in tokens))
        debate_total.append(totals[False])
        single_total.append(totals[True])

    def row(name: str, values: list[int]) -> None:
        print(f"{name:<38} mean {statistics.mean(values):7.1f}  median {statistics.median(values):6.0f}  "
              f"max {max(values):5d}")

    for role in ("product_specialist", "price_analyst", "persona"):
        row(f"{role} (round 1, own slice)", first_round[role])
    for role in ("product_specialist", "price_analyst", "persona", "decide"):
        row(f"{role} (every call)", per_call[role])
    row("single_agent prompt (everything)", per_call["single_agent"])
    row("largest debate call per decision", largest_debate_call)
    row("debate total per decision (2 rounds)", debate_total)
    row("single-agent total per decision", single_total)
    sa = statistics.mean(per_call["single_agent"])
    for role in ("product_specialist", "price_analyst", "persona"):
        print(f"  {role} round-1 prompt / single-agent prompt: {statistics.mean(first_round[role]) / sa:.2f}")
    print(f"  debate total / single-agent total: {statistics.mean(debate_total) / statistics.mean(single_total):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--skip-tokens", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the decision graph's runs (top 40)")
    args = parser.parse_args()
    bench_overhead(small_situation(), args.reps, args.profile)
    if not args.skip_tokens:
        bench_tokens(args.cases)


if __name__ == "__main__":
    main()
