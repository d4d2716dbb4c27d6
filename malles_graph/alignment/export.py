"""Export supervised (SFT) examples and preference pairs (DPO) from fit-period transactions.

Examples are choice situations cut by the evaluation case builder from a window that ends
before the evaluation's test period (default: history and reference figures from Nov-Dec 2000,
decisions in Jan 2001; the evaluation tests on Feb 2001), across all subclasses:

- prompt = :func:`malles_graph.alignment.prompting.choice_prompt` in ``prompt_format`` (``graph``:
  the decision graph's single-agent prompt, rendered by the graph's own code passed in as a
  ``PromptStyle``; ``compact``: the short alignment prompt); scoring and serving render the same
  format, read from the manifest, so training matches inference;
- answer = the true product's key and the true quantity, as the JSON the prompt asks for;
- preference pairs: chosen = the true answer, rejected = the same answer naming another
  candidate (``pairs_per_example`` of them, drawn with the seed).

Options hold out subclasses (their examples are dropped, and the held-out list is written to
the manifest so the evaluation can report hit@1 on them) and cap examples per customer (so a
few heavy shoppers do not dominate). ``manifest.json`` records the split, the counts and the
prompt format; :func:`check_no_leakage` is the guard that every example's decision date is
before the evaluation's test start.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from malles_graph.alignment.errors import AlignmentError
from malles_graph.alignment.prompting import PromptStyle, choice_prompt, resolve_style
from malles_graph.evaluation.builder import TEST_SPLIT, TRAIN_SPLIT, SplitConfig
from malles_graph.evaluation.cases import ChoiceCase
from malles_graph.paths import output_folder

M = TypeVar("M", bound=BaseModel)

SFT_FILE = "sft.jsonl"
DPO_FILE = "dpo.jsonl"
MANIFEST = "manifest.json"


class ExportConfig(BaseModel):
    """What `malles align export` writes."""

    model_config = ConfigDict(extra="forbid")

    split: SplitConfig = Field(default_factory=lambda: TRAIN_SPLIT.model_copy(update={"n_cases": 500}))
    eval_test_start: dt.date = Field(
        default=TEST_SPLIT.test_start, description="first day of the evaluation's test period (nothing on or after)"
    )
    n_examples: int = Field(default=400, ge=1, description="examples kept after hold-out and per-customer caps")
    max_per_customer: int | None = Field(default=5, ge=1, description="cap of examples per customer")
    holdout_subclasses: list[str] = Field(default_factory=list, description="subclasses kept out of training")
    holdout_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="also hold out this share of subclasses (seeded draw)"
    )
    pairs_per_example: int = Field(default=1, ge=0, le=25, description="DPO pairs per example")
    prompt_format: str = Field(
        default="compact",
        description="graph (the decision graph's single-agent prompt; needs its PromptStyle) or compact",
    )
    seed: int = 0


class Example(BaseModel):
    """One SFT example (chat messages ending with the assistant's answer)."""

    id: str
    messages: list[dict[str, str]]
    customer_id: str
    date: dt.date
    subclass: str
    product_id: str
    quantity: int


class PreferencePair(BaseModel):
    id: str
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    subclass: str


def pick_holdout(subclasses: list[str], fraction: float, seed: int) -> list[str]:
    if fraction <= 0 or not subclasses:
        return []
    rng = np.random.default_rng(seed + 104729)
    n = max(1, round(fraction * len(subclasses)))
    return sorted(rng.choice(sorted(subclasses), size=n, replace=False).tolist())


def select_cases(cases: list[ChoiceCase], cfg: ExportConfig) -> tuple[list[ChoiceCase], list[str], dict[str, int]]:
    """Drop held-out subclasses, cap per customer, keep ``n_examples`` (seeded order)."""
    holdout = sorted(set(cfg.holdout_subclasses) | set(pick_holdout(sorted({c.subclass for c in cases}),
                                                                    cfg.holdout_fraction, cfg.seed)))
    dropped = Counter()
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(cases))
    per_customer: Counter = Counter()
    kept: list[ChoiceCase] = []
    for i in order:
        c = cases[int(i)]
        if c.subclass in holdout:
            dropped["holdout"] += 1
            continue
        if cfg.max_per_customer is not None and per_customer[c.customer.customer_id] >= cfg.max_per_customer:
            dropped["customer_cap"] += 1
            continue
        if len(kept) >= cfg.n_examples:
            dropped["over_n_examples"] += 1
            continue
        per_customer[c.customer.customer_id] += 1
        kept.append(c)
    return kept, holdout, dict(dropped)


def check_no_leakage(cases: list[ChoiceCase], cfg: ExportConfig) -> None:
    """Every decision (and all history behind it) lies before the evaluation's test period."""
    late = [c.case_id for c in cases if c.date >= cfg.eval_test_start]
    if late:
        raise AlignmentError(
            f"{len(late)} training examples are on or after the evaluation test start {cfg.eval_test_start} "
            f"(e.g. {late[0]}): move the export window earlier"
        )
    if cfg.split.test_end >= cfg.eval_test_start:
        raise AlignmentError(f"export split ends {cfg.split.test_end}, not before {cfg.eval_test_start}")


def to_example(case: ChoiceCase, fmt: str, style: PromptStyle | None = None) -> Example:
    prompt = choice_prompt(case.situation(), fmt, style=style)
    return Example(
        id=case.case_id,
        messages=[*prompt.chat(), {"role": "assistant", "content": prompt.answer(case.truth_product_id,
                                                                                 case.truth_quantity)}],
        customer_id=case.customer.customer_id,
        date=case.date,
        subclass=case.subclass,
        product_id=case.truth_product_id,
        quantity=case.truth_quantity,
    )


def to_pairs(
    case: ChoiceCase, fmt: str, n: int, rng: np.random.Generator, style: PromptStyle | None = None
) -> list[PreferencePair]:
    prompt = choice_prompt(case.situation(), fmt, style=style)
    others = [p for p in case.candidate_ids if p != case.truth_product_id]
    picks = rng.choice(len(others), size=min(n, len(others)), replace=False) if others and n else []
    chosen = prompt.answer(case.truth_product_id, case.truth_quantity)
    return [
        PreferencePair(
            id=f"{case.case_id}#{j}",
            prompt=prompt.chat(),
            chosen=chosen,
            rejected=prompt.answer(others[int(k)], case.truth_quantity),
            subclass=case.subclass,
        )
        for j, k in enumerate(picks)
    ]


def export(
    cfg: ExportConfig,
    out_dir: str | Path,
    cases: list[ChoiceCase] | None = None,
    progress=None,
    style: PromptStyle | None = None,
) -> dict:
    """Build (or take) the fit-window cases and write sft.jsonl, dpo.jsonl and manifest.json.

    ``style`` renders ``cfg.prompt_format`` when it is not ``compact`` (the front door passes the
    decision graph's); it is checked on one case before the (slow) case building.
    """
    if cfg.prompt_format != "compact":
        style = resolve_style(cfg.prompt_format, style)  # fail before the slow case building
    out = output_folder(out_dir)
    if cases is None:
        from malles_graph.evaluation.builder import build_cases

        cases = build_cases(cfg.split, progress=progress)
    check_no_leakage(cases, cfg)
    kept, holdout, dropped = select_cases(cases, cfg)
    if not kept:
        raise AlignmentError("no examples left after hold-out and per-customer caps")
    rng = np.random.default_rng(cfg.seed + 1)
    n_pairs = 0
    with (out / SFT_FILE).open("w", encoding="utf-8") as sft, (out / DPO_FILE).open("w", encoding="utf-8") as dpo:
        for case in kept:
            sft.write(to_example(case, cfg.prompt_format, style).model_dump_json() + "\n")
            for pair in to_pairs(case, cfg.prompt_format, cfg.pairs_per_example, rng, style):
                dpo.write(pair.model_dump_json() + "\n")
                n_pairs += 1
    manifest = {
        "format": "malles-align-export/1",
        "config": json.loads(cfg.model_dump_json()),
        "prompt_format": cfg.prompt_format,
        "n_examples": len(kept),
        "n_pairs": n_pairs,
        "n_candidates_built": len(cases),
        "dropped": dropped,
        "holdout_subclasses": holdout,
        "first_date": str(min(c.date for c in kept)),
        "last_date": str(max(c.date for c in kept)),
        "subclasses": len({c.subclass for c in kept}),
        "customers": len({c.customer.customer_id for c in kept}),
        "quantity_one_share": float(np.mean([c.truth_quantity == 1 for c in kept])),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def export_prompt_format(path: str | Path) -> str:
    """The prompt format an export folder (or its sft.jsonl) was written in; ``compact`` for old exports."""
    path = Path(path)
    manifest = (path if path.is_dir() else path.parent) / MANIFEST
    if not manifest.exists():
        return "compact"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    return data.get("prompt_format") or data.get("config", {}).get("prompt_format") or "compact"


def read_examples(path: str | Path) -> list[Example]:
    path = Path(path)
    if path.is_dir():
        path = path / SFT_FILE
    if not path.exists():
        raise AlignmentError(f"{path}: example file not found (write it with `malles align export`)")
    out = _records(path, Example, "an SFT example file", "an SFT example")
    if not out:
        raise AlignmentError(f"{path}: no examples")
    return out


def read_pairs(path: str | Path) -> list[PreferencePair]:
    path = Path(path)
    if path.is_dir():
        path = path / DPO_FILE
    if not path.exists():
        raise AlignmentError(f"{path}: preference file not found")
    return _records(path, PreferencePair, "a preference pair file", "a preference pair")


def _records(path: Path, model: type[M], file_kind: str, record_kind: str) -> list[M]:
    """Each line of a JSON-lines file read as ``model``; a line that is not one is an error naming it."""
    out = []
    for lineno, line in _lines(path, file_kind):
        try:
            out.append(model.model_validate_json(line))
        except ValueError as exc:
            raise AlignmentError(f"{path}:{lineno}: not {record_kind} ({str(exc)[:200]})") from None
    return out


def _lines(path: Path, what: str) -> list[tuple[int, str]]:
    """The non-blank lines of a JSON-lines file with their numbers; a file that is not text is one error naming it
    (a binary file was a UnicodeDecodeError traceback, after the base model had loaded)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AlignmentError(f"{path}: not UTF-8 text ({exc.reason}); is it {what} (JSON lines)?") from None
    except OSError as exc:
        raise AlignmentError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
