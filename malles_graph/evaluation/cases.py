"""Evaluation cases and predictions: the JSON-lines formats of `malles eval`.

A :class:`ChoiceCase` IS a :class:`ChoiceSituation` (what a decision sees) plus the truth
(what the customer really bought), so every decision maker, the LLM graph included, runs on
cases directly. Pydantic is the source of truth for both formats; ``malles eval schema``
prints the JSON schema generated from these models.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from malles_graph.errors import MallesError
from malles_graph.models import ChoiceSituation
from malles_graph.paths import output_file


class EvaluationError(MallesError):
    """A case or prediction file is malformed; the message names the file and line."""


class ChoiceCase(ChoiceSituation):
    """A choice situation with the customer's real decision (the truth)."""

    case_id: str = Field(min_length=1, description="unique id of the case in its file (equals situation_id)")
    truth_product_id: str = Field(description="the product the customer really bought (one of the candidates)")
    truth_quantity: int = Field(ge=1, description="units really bought")
    sparse: bool = Field(default=False, description="the subclass had few fit-period transactions")
    subclass_fit_transactions: int = Field(
        default=0, ge=0, description="purchase lines of the subclass in the fit period"
    )

    @model_validator(mode="before")
    @classmethod
    def _ids(cls, data: Any) -> Any:
        # case_id and situation_id name the same thing; accept either and fill the other
        if isinstance(data, dict):
            data = dict(data)
            if "case_id" not in data and "situation_id" in data:
                data["case_id"] = data["situation_id"]
            if "situation_id" not in data and "case_id" in data:
                data["situation_id"] = data["case_id"]
        return data

    @model_validator(mode="after")
    def _truth_offered(self) -> ChoiceCase:
        if self.case_id != self.situation_id:
            raise ValueError(f"case_id {self.case_id!r} differs from situation_id {self.situation_id!r}")
        if self.truth_product_id not in self.candidate_ids:
            raise ValueError(
                f"truth_product_id {self.truth_product_id!r} is not among the candidates {self.candidate_ids}"
            )
        return self

    def situation(self) -> ChoiceSituation:
        """The case without the truth: what a decision maker may see."""
        return ChoiceSituation.model_validate(self.model_dump(include=set(ChoiceSituation.model_fields)))


class Prediction(BaseModel):
    """One decision maker's answer to one case."""

    model_config = ConfigDict(extra="forbid")

    case_id: str = Field(min_length=1)
    product_id: str | None = Field(default=None, description="chosen candidate id; null when the method failed")
    quantity: int | None = Field(default=None, ge=0, description="units; null when the method failed")
    probs: dict[str, float] | None = Field(default=None, description="probability per candidate id (optional)")
    error: str | None = Field(default=None, description="why the method gave no valid answer, if it failed")
    elapsed_s: float | None = Field(default=None, ge=0, description="seconds spent on this case")
    meta: dict[str, Any] | None = Field(
        default=None, description="method-specific details (LLM calls, tokens, sample agreement...)"
    )

    @model_validator(mode="after")
    def _probs_valid(self) -> Prediction:
        if self.probs is not None:
            # Probabilities: finite, in [0, 1] (a hair over 1 from float rounding), not all zero.
            bad = {k: v for k, v in self.probs.items() if not (0 <= v <= 1 + 1e-6)}  # also catches NaN and inf
            if bad:
                shown = dict(list(bad.items())[:3])
                raise ValueError(f"probs: probabilities must be numbers between 0 and 1, got {shown}")
            if self.probs and not any(v > 0 for v in self.probs.values()):
                raise ValueError("probs: probabilities are all zero: give at least one candidate a positive probability")
        return self


def _describe(exc: ValidationError, shown: int = 3) -> str:
    # a default computed from a field that failed (regular_price from price) is that field's error again
    errors = [e for e in exc.errors(include_url=False) if e["type"] != "default_factory_not_called"]
    parts = []
    for err in errors[:shown]:  # a few problems, on one line of sane length
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg'][:150]}")
    more = len(errors) - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _read_jsonl(path: Path, model: type[BaseModel], what: str) -> Iterator[tuple[int, BaseModel]]:
    if not path.exists():
        raise EvaluationError(f"{path}: {what} file not found")
    if path.is_dir():
        raise EvaluationError(f"{path}: is a folder, not a {what} file")
    with path.open(encoding="utf-8") as stream:
        lineno = 0
        try:
            for lineno, line in enumerate(stream, start=1):  # noqa: B007 - lineno names the line of a decode error
                if not line.strip():
                    continue
                data = _json_line(path, lineno, line)
                if not isinstance(data, dict):
                    raise EvaluationError(f"{path}:{lineno}: expected a JSON object, got {type(data).__name__}")
                try:
                    yield lineno, model.model_validate(data)
                except ValidationError as exc:
                    raise EvaluationError(f"{path}:{lineno}: invalid {what}: {_describe(exc)}") from None
        except UnicodeDecodeError as exc:
            raise EvaluationError(
                f"{path}:{lineno + 1}: not UTF-8 text ({exc.reason}); is it a {what} file (JSON lines)?"
            ) from None


def _json_line(path: Path, lineno: int, line: str) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        what = exc.msg.removesuffix(" at").removesuffix(" starting")  # "Invalid control character at", ...
        raise EvaluationError(f"{path}:{lineno}: not valid JSON at column {exc.colno} ({what})") from None
    except RecursionError:
        raise EvaluationError(f"{path}:{lineno}: JSON nested too deeply") from None


def read_cases(path: str | Path) -> list[ChoiceCase]:
    """Read and validate a case file; errors name the file and line (duplicates included)."""
    path = Path(path)
    cases: list[ChoiceCase] = []
    seen: dict[str, int] = {}
    kinds: dict[str, tuple[str, int]] = {}  # attribute -> (number | text, first line)
    for lineno, case in _read_jsonl(path, ChoiceCase, "case"):
        assert isinstance(case, ChoiceCase)
        if case.case_id in seen:
            raise EvaluationError(
                f"{path}:{lineno}: duplicate case_id {case.case_id!r} (first at line {seen[case.case_id]})"
            )
        seen[case.case_id] = lineno
        _check_attribute_kinds(path, lineno, case, kinds)
        cases.append(case)
    if not cases:
        raise EvaluationError(f"{path}: no cases in the file")
    return cases


def _check_attribute_kinds(path: Path, lineno: int, case: ChoiceCase, kinds: dict[str, tuple[str, int]]) -> None:
    """A product attribute is a number everywhere in a file or text everywhere, never both (a model
    cannot treat one column as both)."""
    for product in case.candidates:
        for key, value in product.attributes.items():
            kind = "text" if isinstance(value, str) else "number"
            first = kinds.setdefault(key, (kind, lineno))
            if first[0] != kind:
                raise EvaluationError(
                    f"{path}:{lineno}: candidates.{product.product_id}.attributes.{key}: {kind} {value!r}, "
                    f"but a {first[0]} at line {first[1]}; an attribute must have one type in a file"
                )


def read_predictions(path: str | Path, cases: dict[str, ChoiceCase] | None = None) -> list[Prediction]:
    """Read a prediction file; with ``cases``, an unknown case_id is an error with its line."""
    path = Path(path)
    preds: list[Prediction] = []
    seen: dict[str, int] = {}
    for lineno, pred in _read_jsonl(path, Prediction, "prediction"):
        assert isinstance(pred, Prediction)
        if cases is not None and pred.case_id not in cases:
            raise EvaluationError(f"{path}:{lineno}: prediction for unknown case_id {pred.case_id!r}")
        if cases is not None and pred.probs and (extra := sorted(set(pred.probs) - set(cases[pred.case_id].candidate_ids))):
            raise EvaluationError(
                f"{path}:{lineno}: probs: unknown candidate id(s) {extra[:5]} for case {pred.case_id!r}"
            )
        if pred.case_id in seen:
            raise EvaluationError(
                f"{path}:{lineno}: duplicate prediction for case_id {pred.case_id!r} (first at line {seen[pred.case_id]})"
            )
        seen[pred.case_id] = lineno
        preds.append(pred)
    if not preds:  # scoring nothing would print hit@1 0.000 as if it were a result
        raise EvaluationError(f"{path}: no predictions in the file")
    return preds


def done_case_ids(path: str | Path) -> set[str]:
    """Case ids already answered in a (possibly interrupted) prediction file, for --resume.

    A truncated last line (the run was killed mid-write) is ignored and will be redone.
    """
    path = Path(path)
    ids: set[str] = set()
    if not path.exists():
        return ids
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            try:
                ids.add(Prediction.model_validate_json(line).case_id)
            except ValidationError:
                continue
    return ids


def require_choices(cases: Sequence[ChoiceSituation], what: str, minimum: int = 1) -> None:
    """Refuse training cases with fewer than ``minimum`` choices: a case that offers one candidate teaches a choice
    model nothing (fitted on none, the logit saved zero coefficients and the agent raised a traceback)."""
    n = sum(len(c.candidates) > 1 for c in cases)
    if n < minimum:
        need = "a training case" if minimum == 1 else f"at least {minimum} training cases"
        of = f" (of {len(cases)} cases)" if n < len(cases) else ""
        raise EvaluationError(f"{what} needs {need} with two or more candidates, got {n}{of}")


def write_jsonl(items: Iterable[BaseModel], path: str | Path) -> int:
    """Write models as JSON lines; returns the count."""
    path = output_file(path)
    n = 0
    with path.open("w", encoding="utf-8") as stream:
        for item in items:
            stream.write(item.model_dump_json(exclude_none=False) + "\n")
            n += 1
    return n


def append_line(stream: IO[str], item: BaseModel) -> None:
    """Append one model and flush, so an interrupted run loses nothing already answered."""
    stream.write(item.model_dump_json() + "\n")
    stream.flush()


def schema(model: str = "case") -> dict[str, Any]:
    """The JSON schema of the case or prediction format, generated from the pydantic models."""
    models: dict[str, type[BaseModel]] = {"case": ChoiceCase, "prediction": Prediction}
    if model not in models:
        raise EvaluationError(f"unknown schema {model!r}; choose case or prediction")
    return models[model].model_json_schema()
