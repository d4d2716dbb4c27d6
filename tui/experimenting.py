"""The editor's Experiment: the edited (unsaved) prompt set against the saved one, paired on N purchase cases.

Runs in a worker thread through the same code as ``malles prompts experiment`` (the core's
``malles_graph.experiments`` and the CLI's ``graph_decide``); each answer is posted as it comes,
so the editor's table fills in case by case, and a cancel flag stops it between decisions. The
experiment folder (predictions and report) is a temporary folder whose path is shown at the end.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from malles_graph.errors import MallesError
from malles_graph.scenario import Scenario

if TYPE_CHECKING:  # the experiment code (SciPy among it) is imported by the worker, not by the editor's screen
    from malles_graph.evaluation.cases import ChoiceCase, Prediction
    from malles_graph.experiments.scoring import ExperimentResult

DEFAULT_CASES = 10
SAVED, EDITED = "saved", "edited"


class ExperimentAnswered(Message):
    """One variant answered one case."""

    def __init__(self, variant: str, case: ChoiceCase, prediction: Prediction) -> None:
        super().__init__()
        self.variant = variant
        self.case = case
        self.prediction = prediction


class ExperimentFinished(Message):
    """The experiment ended: scored (possibly after a cancel, on the cases answered so far) or failed."""

    def __init__(
        self, result: ExperimentResult | None, out: Path | None, cancelled: bool = False, error: str | None = None
    ) -> None:
        super().__init__()
        self.result = result
        self.out = out
        self.cancelled = cancelled
        self.error = error


@dataclass
class ExperimentRequest:
    """Plain values read from the widgets on the UI thread; the worker touches no widget."""

    edited_texts: dict[str, str]  # prompt name -> unsaved text (only the prompts that differ may be given)
    n_cases: int
    cases_file: Path | None  # None: build N cases from Ta Feng (the test split)
    scenario: Scenario | None


def experiment_scenario(scenario: Scenario | None) -> Scenario:
    """The Run screen's scenario (its backend), else defaults; retrieval off: the cases bring no memory."""
    base = scenario or Scenario.model_validate({"name": "editor-experiment", "decision": {"debate_rounds": 1}})
    from malles_graph.backends import is_llm_backend

    if not is_llm_backend(base.backend.name):
        raise MallesError(
            f"backend {base.backend.name!r} does not use prompts; pick a scenario with an LLM backend on the Run screen"
        )
    return base.model_copy(update={"decision": base.decision.model_copy(update={"retrieval": False})})


def experiment_cases(n: int, cases_file: Path | None) -> list[ChoiceCase]:
    if n < 1:
        raise MallesError(f"cases: {n}; give a positive number")
    if cases_file is not None:
        from malles_graph.evaluation.cases import read_cases

        cases = read_cases(cases_file)
        if len(cases) < n:
            raise MallesError(f"{cases_file}: {len(cases)} cases, fewer than the {n} asked")
        return cases[:n]
    from malles_graph.evaluation.builder import TEST_SPLIT, build_cases

    return build_cases(TEST_SPLIT.model_copy(update={"n_cases": n}))[:n]


def run_editor_experiment(
    request: ExperimentRequest,
    *,
    post: Callable[[Message], None],
    cancelled: threading.Event,
    chat_model_factory: Callable[[Any], Any] | None = None,
) -> None:
    """Run saved vs edited on the request's cases; posts ExperimentAnswered per answer, then ExperimentFinished."""
    from malles_graph.backends import build_client
    from malles_graph.cli.prompt_experiment import graph_decide
    from malles_graph.experiments.running import run_experiment
    from malles_graph.experiments.scoring import score_experiment
    from malles_graph.experiments.store import Manifest, load_predictions, open_experiment
    from malles_graph.experiments.variants import Variant, check_texts
    from malles_graph.prompt_sets import load_prompt_set, set_of_texts

    saved = load_prompt_set()
    edited_set = set_of_texts(saved.folder, {**saved.texts, **request.edited_texts})
    if edited_set.digest == saved.digest:
        raise MallesError("no unsaved prompt edits: the edited set is the saved one; change a prompt first")
    check_texts(edited_set)  # the file and variable of an invalid buffer, before any call
    variants = [Variant(SAVED, saved), Variant(EDITED, edited_set)]
    scenario = experiment_scenario(request.scenario)
    cases = experiment_cases(request.n_cases, request.cases_file)
    chat_model = chat_model_factory(scenario) if chat_model_factory is not None else None
    client = build_client(scenario.backend, chat_model=chat_model, use_cache=False if chat_model else None)
    decide = graph_decide(scenario, client=client)
    out = Path(tempfile.mkdtemp(prefix="malles-editor-experiment-"))
    cases_file = request.cases_file
    if cases_file is None:  # built in memory: kept beside the predictions, so the folder can be rescored
        from malles_graph.evaluation.cases import write_jsonl

        cases_file = out / "cases.jsonl"
        write_jsonl(cases, cases_file)
    manifest = Manifest.of(cases_file, cases, scenario.backend.name, [], scenario.seed, 1, variants)
    open_experiment(out, manifest, resume=False)
    run_experiment(
        out,
        manifest,
        cases,
        variants,
        decide,
        should_stop=cancelled.is_set,
        on_answer=lambda name, _k, case, pred: post(ExperimentAnswered(name, case, pred)),
    )
    result = score_experiment(manifest, cases, load_predictions(out, manifest, cases))
    from malles_graph.experiments.report import write_report

    write_report(result, out)
    post(ExperimentFinished(result, out, cancelled=cancelled.is_set()))
