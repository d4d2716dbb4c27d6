"""Run a predictor over cases, writing predictions line by line (resumable).

What produced the predictions sits next to them in ``<predictions>.meta.json`` (see :func:`meta_path`):
for an LLM backend, the prompt set's record (``{"prompt_set": {"digest", "folder", "files"}}``), so a
score can always be traced to the exact prompts; ``--resume`` refuses to mix two prompt sets in one file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from malles_graph.evaluation.cases import ChoiceCase, EvaluationError, Prediction, append_line, done_case_ids
from malles_graph.evaluation.predictors import Predictor
from malles_graph.paths import output_file


def drop_partial_tail(path: Path) -> None:
    """Cut a last line left half-written by a killed run, so appends start on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    path.write_bytes(data[: data.rfind(b"\n") + 1])


def meta_path(out: str | Path) -> Path:
    """The provenance file of a prediction file: ``p.jsonl`` -> ``p.jsonl.meta.json``."""
    out = Path(out)
    return out.with_name(out.name + ".meta.json")


def read_meta(out: str | Path) -> dict[str, Any]:
    """The provenance stored next to prediction file ``out`` ({} when there is none, e.g. a baseline's)."""
    path = meta_path(out)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise EvaluationError(f"{path}: not a readable JSON provenance file ({exc})") from None
    if not isinstance(data, dict):
        raise EvaluationError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def prompt_digest_of(out: str | Path) -> str | None:
    """The digest of the prompt set behind prediction file ``out`` (None when not recorded)."""
    prompt_set = read_meta(out).get("prompt_set") or {}
    digest = prompt_set.get("digest") if isinstance(prompt_set, dict) else None
    return str(digest) if digest else None


def write_meta(out: Path, meta: dict[str, Any], resume: bool) -> None:
    """Store ``meta`` next to ``out``; on resume the prompt set must be the one the file was started with."""
    if resume:
        before, now = prompt_digest_of(out), (meta.get("prompt_set") or {}).get("digest")
        if before and now and before != now:
            raise EvaluationError(
                f"{out} was written with prompt set {before[:12]}, this run uses {now[:12]}; "
                "write the new prompts' predictions to another file"
            )
    meta_path(out).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def run_predictions(
    cases: Sequence[ChoiceCase],
    predictor: Predictor,
    out: str | Path,
    resume: bool = False,
    batch_size: int = 256,
    on_progress: Callable[[int], None] | None = None,
    max_consecutive_failures: int = 10,
    meta: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """Predict every case not yet in ``out``; returns (written, skipped).

    Each batch is written and flushed before the next starts, so an interrupted run loses at
    most the batch in flight. A predictor exception on a batch is retried case by case, and a
    case that still fails (an LLM timeout, an invalid answer after repairs) is recorded as a
    failed prediction with its error (scored as a miss), never dropped. When
    ``max_consecutive_failures`` cases fail in a row the run stops: that is a broken backend,
    not bad luck; what was answered stays in ``out`` for ``--resume``.

    ``meta`` (e.g. ``{"prompt_set": PromptSet.record()}`` for an LLM backend) is written to
    :func:`meta_path` before the first prediction; without it a stale provenance file is removed.
    """
    out = output_file(out)
    if meta:
        write_meta(out, meta, resume)
    elif not resume:
        meta_path(out).unlink(missing_ok=True)  # a rewritten file must not keep an earlier run's provenance
    done = done_case_ids(out) if resume else set()
    if resume:
        drop_partial_tail(out)
    todo = [c for c in cases if c.case_id not in done]
    written = failed_in_row = 0
    with out.open("a" if resume else "w", encoding="utf-8") as stream:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            for pred in predict_batch(predictor, batch):
                append_line(stream, pred)
                written += 1
                failed_in_row = failed_in_row + 1 if pred.product_id is None else 0
                if failed_in_row >= max_consecutive_failures:
                    raise EvaluationError(
                        f"{failed_in_row} cases in a row failed (last: {pred.error}); stopped. "
                        f"The answers so far are in {out}: fix the backend and rerun with --resume"
                    )
            if on_progress:
                on_progress(len(batch))
    return written, len(cases) - len(todo)


def predict_batch(predictor: Predictor, batch: Sequence[ChoiceCase]) -> list[Prediction]:
    situations = [c.situation() for c in batch]
    if len(batch) > 1:
        start = time.perf_counter()
        try:
            preds = predictor.predict(situations)
            per_case = (time.perf_counter() - start) / len(batch)
            return [p.model_copy(update={"elapsed_s": p.elapsed_s or per_case}) for p in preds]
        except Exception:
            pass  # redo case by case so one bad case does not sink its batch
    out = []
    for case, situation in zip(batch, situations, strict=True):
        start = time.perf_counter()
        try:
            pred = predictor.predict([situation])[0]
        except Exception as exc:  # recorded with its error, counted as a miss by the scorer
            pred = Prediction(case_id=case.case_id, error=f"{type(exc).__name__}: {exc}"[:500])
        out.append(pred.model_copy(update={"elapsed_s": time.perf_counter() - start}))
    return out
