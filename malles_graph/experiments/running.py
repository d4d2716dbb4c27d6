"""Answer an experiment's cases with each variant, paired by case, writing predictions as they come.

The decision itself is a function handed in by the front end (``Decide``): the CLI and the TUI
build it from the decision graph (the core never imports the graphs). Cases run in the outer
loop and variants in the inner one, so an interrupted experiment holds paired answers for the
cases it reached, and a live table fills in case by case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from malles_graph.agents import AgentOutcome
from malles_graph.evaluation.cases import ChoiceCase, Prediction, append_line, done_case_ids
from malles_graph.evaluation.runner import drop_partial_tail, predict_batch
from malles_graph.experiments.store import Manifest, predictions_path
from malles_graph.experiments.variants import ExperimentError, Variant
from malles_graph.models import ChoiceSituation, Decision


@dataclass
class Answer:
    """What one decision produced: the outcome (transcript, node statistics), the decision and the
    labels the debate roles saw (label -> product id), so their stated preferences can be read back."""

    outcome: AgentOutcome
    decision: Decision | None
    labels: dict[str, str] = field(default_factory=dict)


Decide = Callable[[ChoiceSituation, Variant, int], Answer]  # situation, variant, seed -> answer


class VariantPredictor:
    """The eval ``Predictor`` of one variant and repeat: one decision per case, its details kept in ``meta``."""

    def __init__(self, decide: Decide, variant: Variant, seed: int) -> None:
        self.decide, self.variant, self.seed = decide, variant, seed
        self.name = variant.name

    def predict(self, situations: Sequence[ChoiceSituation]) -> list[Prediction]:
        return [self._one(s) for s in situations]

    def _one(self, situation: ChoiceSituation) -> Prediction:
        persona = self.variant.persona(situation)
        answer = self.decide(self.variant.dressed(situation), self.variant, self.seed)
        outcome, decision = answer.outcome, answer.decision
        personas = self.variant.prompts.personas
        meta = {
            "prompt_set": self.variant.prompts.digest,
            # which persona answered for the real customer, and from which persona set
            **({"persona_set": personas.digest, "persona": persona.name} if personas and persona else {}),
            "seed": self.seed,
            "llm_calls": outcome.llm_calls,
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "agreement": outcome.agreement,
            "labels": answer.labels,
            # kept whole so rescoring re-reads role usage and stated preferences without an LLM call
            "transcript": [t.model_dump(mode="json") for t in outcome.transcript],
            "nodes": (outcome.details.get("bottlenecks") or {}).get("by_node", {}),
        }
        if decision is None:
            error = outcome.error or "the decision graph returned no decision"
            return Prediction(case_id=situation.situation_id, error=str(error), meta=meta)
        probs = None
        votes = outcome.details.get("votes") or {}
        if isinstance(votes, dict) and sum(votes.values()) > 1:  # multi-sampled: vote shares are probabilities
            total = sum(votes.values())
            probs = {c: votes.get(c, 0) / total for c in situation.candidate_ids}
        return Prediction(
            case_id=situation.situation_id,
            product_id=decision.product_id,
            quantity=decision.quantity,
            probs=probs,
            meta=meta,
        )


OnAnswer = Callable[[str, int, ChoiceCase, Prediction], None]  # variant, repeat, case, prediction


def run_experiment(
    out: Path,
    manifest: Manifest,
    cases: Sequence[ChoiceCase],
    variants: Sequence[Variant],
    decide: Decide,
    *,
    on_answer: OnAnswer | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_consecutive_failures: int = 10,
    parallel: int = 1,
) -> int:
    """Answer every (repeat, case, variant) not yet on disk; returns how many were answered now.

    With ``parallel`` > 1 the variants of one case are answered at the same time (a server with
    several slots, like the local llama.cpp one, decodes them in one batch); answers are still
    written in variant order, so the files do not depend on which finished first.

    A decision that raises is recorded as a failed prediction with its error (a miss), never
    dropped. ``max_consecutive_failures`` failures in a row of one variant stop the run: a broken
    backend or prompt set, not bad luck; what was answered stays on disk for --resume.
    """
    answered = 0
    in_row = dict.fromkeys((v.name for v in variants), 0)
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="experiment") as pool:
        for k in range(manifest.repeats):
            with ExitStack() as files:
                streams, done = {}, {}
                for v in variants:
                    path = predictions_path(out, v.name, k)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    drop_partial_tail(path)
                    done[v.name] = done_case_ids(path)
                    streams[v.name] = files.enter_context(path.open("a", encoding="utf-8"))
                for case in cases:
                    todo = [v for v in variants if case.case_id not in done[v.name]]
                    if not todo:
                        continue
                    if should_stop is not None and should_stop():
                        return answered
                    predictors = [VariantPredictor(decide, v, manifest.seed + k) for v in todo]
                    batches = pool.map(predict_batch, predictors, [[case]] * len(todo))
                    for v, (pred,) in zip(todo, batches, strict=True):
                        append_line(streams[v.name], pred)
                        answered += 1
                        if on_answer is not None:
                            on_answer(v.name, k, case, pred)
                        in_row[v.name] = in_row[v.name] + 1 if pred.product_id is None else 0
                        if in_row[v.name] >= max_consecutive_failures:
                            raise ExperimentError(
                                f"variant {v.name!r}: {in_row[v.name]} cases in a row failed (last: {pred.error}); "
                                f"stopped. The answers so far are in {out}: fix it and rerun with --resume"
                            )
    return answered
