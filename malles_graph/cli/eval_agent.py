"""`malles eval run -b agent`: the decision graph with computed roles, fitted and scored on cases.

The front door wires the parts together (so it imports graphs and retrieval, lazily):

* a Chroma transaction memory built from the purchase lines of the case files' recent baskets
  (never a case's truth, see ``roles/memory.py``), cached on disk by content, MiniLM embeddings;
* the computed agent (``malles_graph.roles.agent.ComputedAgent``), fitted on ``--train`` with
  the evidence the graph itself gathers (its ``retrieve`` and ``reconstruct_hidden`` nodes), or
  loaded from ``--model``;
* the decision graph run on every case with backend ``choice-model`` holding the agent: retrieval,
  Z, the three roles, decide (stacking + market signal + calibration), stabilise; with the
  ``vote`` switch, a vote over five stacker replicas. ``--ablation`` switches one mechanism.
"""

from __future__ import annotations

import atexit
import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from malles_graph.cli.progress import Stage
from malles_graph.evaluation.cases import ChoiceCase, EvaluationError, Prediction
from malles_graph.models import ChoiceSituation

# mechanism -> (decision-context overrides, agent switches); "none" is the default agent. Every entry
# switches one mechanism off, except "vote": the 5-sample vote is off by default (on the Feb-2001
# cases it changed hit@1 by -0.001 [-0.002, +0.000] at twice the CPU, see docs/evaluation.md), so
# its entry switches it on.
AGENT_ABLATIONS: dict[str, tuple[dict[str, Any], dict[str, bool]]] = {
    "none": ({}, {}),
    "no-retrieval": ({"retrieval": False}, {}),
    "no-z": ({"hidden_factors": False}, {}),
    "no-product-specialist": ({"roles": ("price_analyst", "persona")}, {}),
    "no-price-analyst": ({"roles": ("product_specialist", "persona")}, {}),
    "no-persona": ({"roles": ("product_specialist", "price_analyst")}, {}),
    "no-market": ({}, {"market": False}),
    "no-calibration": ({}, {"calibration": False}),
    "vote": ({"samples": 5}, {}),
    "no-ranker": ({}, {"ranker": False}),  # decide by the pooled logistic stacker instead
    "no-pooling": ({}, {"ranker": False, "pooling": False}),  # that stacker without pooling (vs no-ranker)
}
DEFAULTS: dict[str, Any] = {
    "backend": {"name": "choice-model"},
    "debate_rounds": 1,
    "samples": 1,
    "retrieval": True,
    "hidden_factors": True,
    "neighbours": 8,
}


def memory_folder() -> Path:
    from malles_graph.paths import home

    return home() / "cache" / "agent-memory"


def prewarmed_embedder() -> Any:
    """MiniLM that embeds many texts in one batch up front and answers single queries from that cache.

    The retrieve node embeds one query per case; a batch of all the run's distinct queries costs a
    fraction of embedding them one by one. Same model and name, so the vectors are the memory's.
    """
    import numpy as np

    from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction

    class PrewarmedMiniLM(MiniLMEmbeddingFunction):
        def __init__(self) -> None:
            super().__init__()
            self.known: dict[str, np.ndarray] = {}

        def embed(self, texts: list[str]) -> np.ndarray:
            missing = list(dict.fromkeys(t for t in texts if t not in self.known))
            if missing:
                self.known.update(zip(missing, super().embed(missing), strict=True))
            return np.stack([self.known[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)

    return PrewarmedMiniLM()


# Memories built by this process whose Chroma collection another process is still writing: the writer
# and the lock this process holds on the memory meanwhile.
_WRITERS: dict[Path, tuple[Any, Any]] = {}


def claim(folder: Path, say: Callable[[str], None]) -> Any:
    """An exclusive lock on building the memory ``folder`` (a file beside it: the folder itself is removed
    and built again), waited for while another process holds it. Two runs started at once on the same
    new case file would otherwise both build it, one removing what the other was writing and searching.
    The kernel releases it when its holder exits, however it exits."""
    import fcntl

    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = open(folder.with_name(folder.name + ".lock"), "a+")  # noqa: SIM115 - held until the memory is complete
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say(f"waiting for another process that is building the case memory {folder}")
        fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def build_memory(lines: Sequence[Any], ef: Any, say: Callable[[str], None] = lambda _m: None) -> Any:
    """A Chroma memory of the episodes in ``lines`` (cached by content), opened as a retriever.

    A new memory's side index is written first and searched at once, while a second process writes
    its Chroma collection (``retrieval/fill.py``: Chroma's ``add`` holds the GIL, so only another
    process can run beside it); :func:`finish_memories` waits for that and marks the memory complete.
    """
    import shutil

    from malles_graph.retrieval import ChromaRetriever, HnswParams
    from malles_graph.retrieval.fill import CollectionWriter
    from malles_graph.retrieval.side_index import index_dir

    digest = hashlib.sha1()
    for ln in lines:
        digest.update(f"{ln.customer_id}|{ln.day}|{ln.product_id}|{ln.quantity}|{ln.unit_price}\n".encode())
    folder = memory_folder() / digest.hexdigest()[:16]
    collection = "case_memory"
    index = index_dir(folder, collection)
    if folder in _WRITERS:  # built earlier in this process; its collection is still being written
        return ChromaRetriever.on_side_index(index, f"case memory {folder}", ef)
    lock = claim(folder, say)
    if (folder / "complete").exists():  # built before, or by another process while this one waited
        lock.close()
        return ChromaRetriever.open(path=folder, collection=collection, embedding_function=ef)
    try:
        shutil.rmtree(folder, ignore_errors=True)  # what an interrupted build left is redone whole
        say(f"building the case memory ({len(lines)} purchase lines) in {folder}")
        write_side_index(index, collection, lines, ef, say)
        # The agent's searches are exact, in the side index, so Chroma's HNSW graph is never walked here:
        # a sparse one halves the write time.
        writer = CollectionWriter(folder, collection, HnswParams(max_neighbors=8, ef_construction=20))
    except BaseException:
        lock.close()
        raise
    _WRITERS[folder] = (writer, lock)
    return ChromaRetriever.on_side_index(index, f"case memory {folder}", ef)


def write_side_index(index: Path, collection: str, lines: Sequence[Any], ef: Any, say: Callable[[str], None]) -> None:
    """Embed the episodes of ``lines`` (the texts no complete memory holds) and write them as a side index."""
    import datetime as dt

    import numpy as np
    import polars as pl

    from malles_graph.retrieval import build_episodes
    from malles_graph.retrieval.side_index import write_index

    frame = pl.DataFrame(
        {
            "customer_id": [ln.customer_id for ln in lines],
            "date": [dt.date.fromordinal(ln.day) for ln in lines],
            "subclass": [ln.subclass for ln in lines],
            "product_id": [ln.product_id for ln in lines],
            "quantity": [ln.quantity for ln in lines],
            "unit_price": [ln.unit_price for ln in lines],
            "sales": [ln.unit_price * ln.quantity for ln in lines],
            "age_group": [ln.age_group for ln in lines],
            "pin_code": [ln.pin_code for ln in lines],
        }
    )
    episodes = build_episodes(frame)
    texts = episodes["text"].unique(maintain_order=True).to_list()  # texts leave ids out: far fewer
    vectors = embedded_before(texts)
    todo = [t for t in texts if t not in vectors]
    # a count inside the stage: minutes on a large case file, said at each tenth off a terminal
    advance = say.count("case memory texts embedded", len(todo)) if isinstance(say, Stage) and todo else None
    for start in range(0, len(todo), 2048):  # the same vectors as one call: a text's does not depend on its batch
        chunk = todo[start : start + 2048]
        vectors.update(zip(chunk, ef.embed(chunk), strict=True))
        if advance:
            advance(len(chunk))
    write_index(index, collection, episodes, texts, np.stack([vectors[t] for t in texts]))


def embedded_before(texts: Sequence[str]) -> dict[str, Any]:
    """The vectors of ``texts`` that complete case memories already hold (their side indexes), so a
    new memory embeds only texts new to this ``MALLES_HOME``: a text's vector does not depend on the
    other texts it was embedded with, and embedding is most of a memory's CPU (4,010 texts of the
    January training cases: 17 s on two cores). ``eval fit`` then ``eval run`` on the next month's
    cases embeds only what the later month adds."""
    import numpy as np
    import polars as pl

    wanted, found = set(texts), {}
    for index in sorted(memory_folder().glob("*/malles-index/case_memory")):
        if len(found) == len(wanted):
            break
        if not (index.parent.parent / "complete").exists():
            continue
        known = pl.read_parquet(index / "texts.parquet").filter(pl.col("text").is_in(list(wanted - set(found))))
        if known.height:
            matrix = np.load(index / "vectors.npy", mmap_mode="r")
            found.update(zip(known["text"].to_list(), np.asarray(matrix[known["text_no"].to_numpy()]), strict=True))
    return found


def pending_memories() -> bool:
    """Whether a memory built by this process still has its Chroma collection being written."""
    return bool(_WRITERS)


def finish_memories() -> None:
    """Wait for the Chroma collections being written for this process's new memories and mark each
    memory complete (the next run opens it from disk); a failed write leaves it to be built again."""
    while _WRITERS:
        folder, (writer, lock) = _WRITERS.popitem()
        try:
            writer.wait()
            (folder / "complete").write_text("complete\n", encoding="utf-8")
        finally:
            lock.close()  # releases the claim: a waiting process finds the memory complete, or builds it


@atexit.register
def _finish_at_exit() -> None:
    """A caller that never called finish_memories (a library user, a benchmark) still gets complete
    memories; a failure is one line on stderr, not a traceback after the program's own output."""
    from malles_graph.retail.retrieval_api import RetrievalError

    try:
        finish_memories()
    except RetrievalError as exc:
        print(f"warning: {exc}", file=sys.stderr)


def graph_evidence(ctx: Any) -> Callable[[ChoiceSituation], tuple[list[Any], Any]]:
    """The evidence the graph's own retrieve and reconstruct_hidden nodes gather (for fitting)."""
    from langgraph.runtime import Runtime

    from malles_graph.graphs.decision import reconstruct_hidden, retrieve

    runtime = Runtime(context=ctx)

    def evidence(situation: ChoiceSituation) -> tuple[list[Any], Any]:
        state: dict[str, Any] = retrieve({"agent_id": situation.customer.customer_id, "situation": situation}, runtime)
        hidden = reconstruct_hidden(state, runtime)["hidden"]  # type: ignore[arg-type]
        return state["neighbours"], hidden

    return evidence


def in_subclasses(lines: Sequence[Any], cases: Sequence[ChoiceCase]) -> list[Any]:
    """The lines of the cases' subclasses: all a run of a saved agent can retrieve, since the retrieve node
    filters every search to its case's subclass (20 Feb-2001 cases of a saved agent/6 ran in 15 s instead of
    45 s, which wrote all 63,000 fitted lines; the 2,000 Feb cases write a sixth fewer episodes).

    Only for prediction: a fit reads its memory through float32 similarities whose last bits depend on
    which texts the memory holds, and a refit on a smaller memory is another draw of the fit
    (docs/evaluation.md), so fits keep every line and stay as they were."""
    wanted = {c.subclass for c in cases}
    return [ln for ln in lines if ln.subclass in wanted]


def case_memory(lines: Sequence[Any], situations: Sequence[ChoiceSituation], say: Callable[[str], None]) -> Any:
    """The retriever over a Chroma memory of ``lines``, with the situations' queries embedded up front
    (None when the cases carry no purchase lines: the graph's retrieve node then finds nothing)."""
    from malles_graph.graphs.decision.nodes import situation_query

    if not lines:
        say("no purchase lines in the cases' subclasses: no memory to retrieve from")
        return None
    ef = prewarmed_embedder()
    say("embedding the retrieval queries")
    ef.embed([situation_query(s) for s in situations])  # the retrieve node's queries
    return build_memory(lines, ef, say)


def fit_agent(
    train: Sequence[ChoiceCase],
    retriever: Any,
    seed: int = 0,
    say: Callable[[str], None] = lambda _m: None,
    extra_lines: Sequence[Any] = (),
) -> Any:
    """Fit the computed agent on training cases with the evidence the graph gathers from ``retriever``
    (``extra_lines``: further purchase lines its population memory holds)."""
    from malles_graph.graphs.decision import make_context
    from malles_graph.roles.agent import ComputedAgent

    ctx = make_context({**DEFAULTS, "seed": seed}, retriever=retriever)
    return ComputedAgent.fit(
        list(train), evidence=graph_evidence(ctx), seed=seed, progress=say, extra_lines=extra_lines
    )


def fit_standalone(train: Sequence[ChoiceCase], seed: int = 0, say: Callable[[str], None] = lambda _m: None) -> Any:
    """`malles eval fit`: the agent fitted on ``train`` with a memory of the training cases alone."""
    from malles_graph.roles.memory import PopulationMemory

    retriever = case_memory(PopulationMemory.case_lines(train), train, say)
    agent = fit_agent(train, retriever, seed, say)
    if pending_memories():
        say("writing the case memory's Chroma collection")
        finish_memories()
    return agent


class AgentPredictor:
    """Runs the decision graph with the computed agent on every case (predictions carry the vote's probabilities)."""

    def __init__(
        self,
        train: list[ChoiceCase] | None,
        model_path: str | None,
        cases: Sequence[ChoiceCase],
        cases_source: str,
        seed: int = 0,
        ablation: str = "none",
        save_to: str | None = None,
        say: Callable[[str], None] = lambda _m: None,
    ) -> None:
        from malles_graph.graphs.decision import make_context
        from malles_graph.roles.agent import ComputedAgent
        from malles_graph.roles.memory import PopulationMemory, merge_lines

        if ablation not in AGENT_ABLATIONS:
            raise EvaluationError(f"unknown agent ablation {ablation!r}; choose from {', '.join(AGENT_ABLATIONS)}")
        if (train is None) == (model_path is None):
            raise EvaluationError("backend agent is fitted: pass --train FILE.jsonl or --model FILE (not both)")
        overrides, switches = AGENT_ABLATIONS[ablation]
        self.name = "agent" if ablation == "none" else f"agent:{ablation}"
        agent = ComputedAgent.load(model_path) if model_path else None
        if agent is not None:
            agent.check_cases(cases, cases_source)  # before any work: a model of another kind of data is refused
        known = agent.memory_lines if agent is not None else PopulationMemory.case_lines(train or [])
        lines = merge_lines(known, PopulationMemory.case_lines(cases))
        if agent is not None:
            lines = in_subclasses(lines, cases)
        # one memory for fitting and predicting: every query is cut before its case's date anyway
        retriever = case_memory(lines, [*cases, *(train or [])], say)
        if agent is None:
            assert train is not None
            agent = fit_agent(train, retriever, seed, say)
            if save_to:
                agent.save(save_to)
        self.agent = agent.with_memory(cases).with_mechanisms(**switches)
        self.ctx = make_context({**DEFAULTS, "seed": seed, **overrides}, retriever=retriever)
        self.ctx.choice_model = self.agent

    def predict(self, situations: Sequence[ChoiceSituation]) -> list[Prediction]:
        from malles_graph.graphs.decision import decide_situation

        out = []
        for s in situations:
            start = time.perf_counter()
            result = decide_situation(s, self.ctx)
            details = result.outcome.details
            if result.decision is None:
                out.append(Prediction(case_id=s.situation_id, error=result.outcome.error or "no decision"))
                continue
            out.append(
                Prediction(
                    case_id=s.situation_id,
                    product_id=result.decision.product_id,
                    quantity=result.decision.quantity,
                    probs=details.get("probs"),
                    elapsed_s=time.perf_counter() - start,
                    meta={
                        "agreement": result.outcome.agreement,
                        "neighbours": details.get("neighbours"),
                        "votes": details.get("votes"),
                    },
                )
            )
        return out
