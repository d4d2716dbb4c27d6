"""Predictors of the alignment models for `malles eval run` (registered in the evaluation registry).

============================  =====================================================================
backend name                  what answers
============================  =====================================================================
likelihood:local              candidate log-probabilities from llama.cpp (bundled GGUF, or --model)
likelihood:local:calibrated   the same, mapped by ``calibration.json`` of the --model folder
generate:local                a generated JSON answer (temperature 0) on the same prompt
============================  =====================================================================

``--model`` may be a GGUF file (another base model) or an aligned-model folder written by
`malles align serve` (``aligned.json`` names the base GGUF, the LoRA adapter GGUF and the prompt
format the adapter was trained on, which scoring and generation then render). A plain GGUF uses
the ``compact`` format unless the predictor options' ``extra["prompt_format"]`` names another.
The ``graph`` format is rendered by the decision graph's code, registered by the `malles` CLI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from malles_graph.alignment.errors import AlignmentError
from malles_graph.evaluation.cases import Prediction
from malles_graph.evaluation.predictors import PredictorOptions, register
from malles_graph.models import ChoiceSituation

ALIGNED_MANIFEST = "aligned.json"


@dataclass(frozen=True)
class ServedModel:
    """What llama.cpp loads: a base GGUF, optionally a LoRA adapter GGUF, and the prompt format."""

    model: str | None = None
    lora: str | None = None
    prompt_format: str = "compact"
    folder: Path | None = None

    @classmethod
    def resolve(cls, path: str | Path | None, prompt_format: str | None = None) -> ServedModel:
        """The model at ``path``; ``prompt_format`` overrides the recorded (or default) format."""
        served = cls._resolve(path)
        if prompt_format and prompt_format != served.prompt_format:
            return cls(served.model, served.lora, prompt_format, served.folder)
        return served

    @classmethod
    def _resolve(cls, path: str | Path | None) -> ServedModel:
        if path is None:
            return cls()
        path = Path(path)
        if path.is_dir():
            manifest = path / ALIGNED_MANIFEST
            if not manifest.exists():
                raise AlignmentError(f"{path}: no {ALIGNED_MANIFEST} (write it with `malles align serve`)")
            data = json.loads(manifest.read_text(encoding="utf-8"))
            lora = data.get("lora")
            model = data.get("model")
            return cls(
                model=str(path / model) if model and not Path(model).is_absolute() else model,
                lora=str(path / lora) if lora and not Path(lora).is_absolute() else lora,
                prompt_format=data.get("prompt_format", "compact"),
                folder=path,
            )
        if path.suffix != ".gguf" or not path.exists():
            raise AlignmentError(f"{path}: expected a GGUF model file or an aligned-model folder")
        return cls(model=str(path))


class LikelihoodPredictor:
    """Scores every candidate's answer log-probability; optional calibration f on top."""

    def __init__(self, name: str, served: ServedModel, calibration=None, choice_model=None) -> None:
        from malles_graph.alignment.scoring import LlamaCppScorer

        self.name = name
        self.served = served
        self.scorer = LlamaCppScorer.local(served.model, served.lora, prompt_format=served.prompt_format)
        self.calibration = calibration
        self.choice_model = choice_model

    def predict(self, situations: Sequence[ChoiceSituation]) -> list[Prediction]:
        from malles_graph.errors import MallesError

        out = []
        for s in situations:
            start = time.perf_counter()
            try:
                scored = self.scorer.score(s)
            except MallesError as exc:
                out.append(Prediction(case_id=s.situation_id, error=str(exc)))
                continue
            probs = dict(zip(s.candidate_ids, scored.probs.tolist(), strict=True))
            error = None if scored.quantity else f"quantity not readable from {scored.quantity_text!r}"
            out.append(
                Prediction(
                    case_id=s.situation_id,
                    product_id=scored.product_id if scored.quantity else None,
                    quantity=scored.quantity,
                    probs=probs,
                    error=error,
                    elapsed_s=time.perf_counter() - start,
                )
            )
        if self.calibration is not None:
            from malles_graph.alignment.apply import apply_to_predictions

            out = apply_to_predictions(situations, out, self.calibration, self.choice_model)
        return out


class GeneratePredictor:
    """Generates the answer through the backend registry (`local` backend, adapter on the base)."""

    def __init__(self, name: str, served: ServedModel, max_retries: int = 1) -> None:
        from malles_graph.backends.registry import build_client
        from malles_graph.scenario import BackendConfig

        self.name = name
        self.served = served
        self.max_retries = max_retries
        config = BackendConfig(
            name="local", model=served.model, lora=served.lora, temperature=0.0, max_tokens=48, max_concurrency=1
        )
        self.client = build_client(config)

    def predict(self, situations: Sequence[ChoiceSituation]) -> list[Prediction]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        from malles_graph.alignment.prompting import choice_prompt, parse_answer

        kinds = {"system": SystemMessage, "user": HumanMessage}
        out = []
        for s in situations:
            start = time.perf_counter()
            prompt = choice_prompt(s, self.served.prompt_format)
            messages = [kinds[role](content=text) for role, text in prompt.messages]
            error = ""
            for attempt in range(self.max_retries + 1):
                reply = self.client.chat(messages, temperature=0.0 if attempt == 0 else 0.7, seed=attempt)
                try:
                    product_id, quantity = parse_answer(reply.text, prompt)
                except AlignmentError as exc:
                    error = str(exc)
                    messages += [AIMessage(content=reply.text), HumanMessage(content=f"Invalid: {exc}. Answer again.")]
                    continue
                out.append(
                    Prediction(
                        case_id=s.situation_id,
                        product_id=product_id,
                        quantity=quantity,
                        elapsed_s=time.perf_counter() - start,
                    )
                )
                break
            else:
                out.append(Prediction(case_id=s.situation_id, error=error, elapsed_s=time.perf_counter() - start))
        return out


def _served(options: PredictorOptions) -> ServedModel:
    fmt = options.extra.get("prompt_format")
    return ServedModel.resolve(options.model_path, str(fmt) if fmt else None)


def _calibrated(options: PredictorOptions) -> LikelihoodPredictor:
    from malles_graph.alignment.calibration import Calibration

    served = _served(options)
    where = options.extra.get("calibration") or (served.folder / "calibration.json" if served.folder else None)
    if where is None:
        raise AlignmentError("likelihood:local:calibrated needs --model FOLDER holding calibration.json")
    calibration = Calibration.load(str(where))
    choice_model = None
    if calibration.probability.use_utility:
        from malles_graph.evaluation.choice_model import ChoiceModel

        cm_path = served.folder / "choice_model.json" if served.folder else None
        if cm_path is None or not cm_path.exists():
            raise AlignmentError(f"stacked calibration needs the choice model at {cm_path}")
        choice_model = ChoiceModel.load(cm_path)
    return LikelihoodPredictor("likelihood:local:calibrated", served, calibration, choice_model)


def register_all() -> None:
    register(
        "likelihood:local",
        lambda o: LikelihoodPredictor("likelihood:local", _served(o)),
        "llama.cpp candidate log-probabilities (the model's prompt format); --model GGUF or aligned folder",
    )
    register(
        "likelihood:local:calibrated",
        _calibrated,
        "likelihood:local mapped by the calibration f in --model FOLDER/calibration.json",
    )
    register(
        "generate:local",
        lambda o: GeneratePredictor("generate:local", _served(o)),
        "generated JSON answer on the model's prompt format (local backend; --model GGUF or aligned folder)",
    )


register_all()
