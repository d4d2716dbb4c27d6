"""Decision graph benchmark: orchestration overhead and prompt tokens per role (prints figures).

1. Orchestration overhead per decision (debate_rounds=2, one sample: 10 node runs, 7 model calls), CPU time,
   interleaved batches, the best batch of each (target <= 1.2x), for two chat models answering instantly:
   an in-process LangChain chat model, and the OpenAI-compatible path real backends use (``ChatOpenAI`` and
   the openai SDK sending real HTTP requests to an in-process transport that answers at once).

   * bare: a plain LangGraph graph with the decision graph's 8 nodes and executed path. Its debate nodes call
     the chat model the usual LangGraph way (``model.invoke``) with a fixed prompt and keep the text; its
     decide node sends a JSON schema on the OpenAI path too, and parses the JSON answer; the others only log.
   * ours: the decision graph calling the same chat model through the real LLMClient (prompts rendered from
     the situation, transcript, retries and repair, redaction, token accounting, stats, events). The client
     skips ``invoke``'s per-call callback set-up when no handler, tracer, rate limiter or LangChain cache
     would see the call (see malles_graph/backends/client.py ``generate``).
   * ours in a run: the same through the RunClient ``malles run`` wraps every client in (the run's cancel
     token checked before each request, calls counted).
   * ours, observed: the same with a callback handler attached to the chat model, so every call goes through
     ``invoke`` like bare's (what a traced run under LangSmith or ``langgraph dev`` costs).
   * duck: the decision graph with a duck-typed client and no LangChain at all (the graph's own share).

   ``--profile`` prints a cProfile of ours (in-process chat model).
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

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, StateGraph
from malles_graph.graphs.decision import DecisionContext, decide_situation, graph
from malles_graph.graphs.run.cancel import CancelToken, RunClient

from malles_graph.backends import Attempt, LLMClient, StructuredResult, build_client, parse_structured
from malles_graph.backends import ChatResult as LLMChat
from malles_graph.backends.client import openai_call_kwargs
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

    def structured(
        self,
        messages,
        schema,
        *,
        validator=None,
        max_retries=None,
        temperature=None,
        seed=None,
        max_tokens=None,
        json_schema=None,
    ) -> StructuredResult:
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
# The JSON schema bare's decide sends on the OpenAI path (ours sends the situation's answer schema).
BARE_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "Answer",
        "schema": {
            "type": "object",
            "properties": {
                "product": {"enum": ["A", "B", "C"]},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
                "rationale": {"type": "string", "maxLength": 200},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["product", "quantity", "rationale", "confidence"],
        },
    },
}


def bare_graph(model: BaseChatModel, turn_kwargs: dict, decide_kwargs: dict, rounds: int = 2):
    """The decision graph's 8 nodes and executed path, written plainly: the debate nodes call the same chat
    model (``invoke``, with the request parameters ours sends) with a fixed prompt and keep its text, decide
    parses the JSON answer, the others only log."""

    def step(name):
        def node(state):
            return {"log": [name]}

        return node

    def turn(name):
        def node(state):
            reply = model.invoke([HumanMessage(content=BARE_TURN_PROMPT)], **turn_kwargs)
            update = {"log": [str(reply.content)]}
            return {**update, "round": state.get("round", 0) + 1} if name == "persona" else update

        return node

    def decide(state):
        reply = model.invoke([HumanMessage(content=BARE_DECIDE_PROMPT)], **decide_kwargs)
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


def instant_openai_model() -> BaseChatModel:
    """``ChatOpenAI`` as the openai backend builds it (timeout, no SDK retries), its HTTP requests answered at
    once by an in-process transport with an OpenAI chat completion and a usage report."""
    import httpx
    from langchain_openai import ChatOpenAI

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        text = str(body["messages"][0]["content"])
        reply = ANSWER if "Answer with only a JSON object" in text else TURN
        usage = {
            "prompt_tokens": len(text) // 4,
            "completion_tokens": len(reply) // 4,
            "total_tokens": (len(text) + len(reply)) // 4,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        return httpx.Response(
            200,
            json={
                "id": "instant",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "usage": usage,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
            },
        )

    return ChatOpenAI(
        model="instant",
        base_url="http://instant.invalid/v1",
        api_key="instant",
        timeout=60,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(answer)),
    )


def cpu_per_call(fns: dict[str, Callable[[], object]], reps: int, batch: int = 5) -> dict[str, float]:
    """CPU seconds per call of each fn: interleaved batches of ``batch`` calls, ``reps`` calls in all, the best
    batch each (CPU time, not wall time, and many short interleaved batches: the shared machine's load drifts
    during the run and only ever adds time)."""
    for fn in fns.values():
        fn()  # warm up
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(max(1, reps // batch)):
        for name, fn in fns.items():
            start = time.process_time()
            for _ in range(batch):
                fn()
            best[name] = min(best[name], (time.process_time() - start) / batch)
    return best


def bench_overhead(situation, reps: int, profile: bool = False) -> None:
    inputs = {"agent_id": "a", "situation": situation}

    def ours(client) -> Callable[[], object]:
        ctx = DecisionContext(client=client)
        return lambda: graph.invoke(inputs, context=ctx)

    def bare(model: BaseChatModel, turn_kwargs: dict, decide_kwargs: dict) -> Callable[[], object]:
        compiled = bare_graph(model, turn_kwargs, decide_kwargs)
        return lambda: compiled.invoke({"round": 0})

    # In-process: build_client with a scripted model sends no sampling parameters, so bare sends none either.
    model, watched = InstantModel(), InstantModel(callbacks=[BaseCallbackHandler()])
    scripted = {"backend": "local", "use_cache": False}
    # OpenAI path: the client the openai backend builds (temperature, seed, max_tokens, the answer's JSON schema).
    openai = instant_openai_model()
    openai_client = LLMClient(openai, backend="openai", model_id="openai:instant", call_kwargs=openai_call_kwargs)
    turn_kwargs = openai_call_kwargs(0.7, 0, 96, None)
    decide_kwargs = openai_call_kwargs(0.7, 0, 96, BARE_SCHEMA)
    fns = {
        "bare": bare(model, {}, {}),
        "ours": ours(scripted_client(model, **scripted)),
        "bare observed": bare(watched, {}, {}),
        "ours observed": ours(scripted_client(watched, **scripted)),
        "ours run": ours(RunClient(scripted_client(model, **scripted), CancelToken())),
        "duck": ours(InstantClient()),
        "bare openai": bare(openai, turn_kwargs, decide_kwargs),
        "ours openai": ours(openai_client),
    }
    t = cpu_per_call(fns, reps)

    def ratio(name: str, versus: str = "") -> str:
        return f"{t[name] * 1e3:7.2f} ms  ({t[name] / t[versus or name.replace('ours', 'bare')]:.2f}x bare)"

    print("\n== orchestration overhead per decision (2 rounds, 1 sample: 10 node runs, 7 model calls), CPU time ==")
    print("in-process instant LangChain chat model:")
    print(f"  bare LangGraph graph, same nodes and path, model.invoke : {t['bare'] * 1e3:7.2f} ms")
    print(f"  decision graph -> LLMClient -> the same chat model      : {ratio('ours')}  target <= 1.2x")
    print(f"  the same in a run (RunClient: cancel token, counts)    : {ratio('ours run', 'bare')}")
    print(
        f"  both with a callback handler on the model (invoke path) : bare {t['bare observed'] * 1e3:.2f} ms, "
        f"ours {ratio('ours observed')}"
    )
    print(f"  decision graph, duck-typed client without LangChain     : {t['duck'] * 1e3:7.2f} ms")
    print("OpenAI-compatible path (ChatOpenAI + openai SDK + HTTP, answered in process):")
    print(f"  bare LangGraph graph, same nodes and path, model.invoke : {t['bare openai'] * 1e3:7.2f} ms")
    print(f"  decision graph -> LLMClient -> the same chat model      : {ratio('ours openai')}  target <= 1.2x")
    if profile:
        import cProfile
        import pstats

        ctx = DecisionContext(client=scripted_client(model, **scripted))
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(reps):
            graph.invoke(inputs, context=ctx)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def scripted_client(model: BaseChatModel, backend: str, use_cache: bool) -> LLMClient:
    return build_client(BackendConfig(name=backend), chat_model=model, use_cache=use_cache)


# ---------------------------------------------------------------- 2. tokens per role
def tokenizer():
    from malles_graph.backends.local_server import LocalServer, LocalServerKey
    from malles_graph.data.assets import bundled_model_path

    server = LocalServer.get(LocalServerKey(str(bundled_model_path()), 4096, 1))

    def count(text: str) -> int:
        req = urllib.request.Request(
            f"{server.base_url}/tokenize",
            data=json.dumps({"content": text}).encode(),
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
    "single_agent": "You decide what this shopper buys",
}


def role_of(prompt: str) -> str:
    return next(role for role, marker in ROLE_MARKERS.items() if marker in prompt)  # markers sit in the role's own part, after the shared block


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
            decide_situation(
                s,
                DecisionContext(client=client, single_agent=single),  # type: ignore[arg-type]
                retriever=memories[s.subclass],
            )
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
        print(
            f"{name:<38} mean {statistics.mean(values):7.1f}  median {statistics.median(values):6.0f}  "
            f"max {max(values):5d}"
        )

    for role in ("product_specialist", "price_analyst", "persona"):
        row(f"{role} (round 1)", first_round[role])
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
