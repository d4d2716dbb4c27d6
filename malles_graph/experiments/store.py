"""An experiment folder: what was run (``experiment.json``) and each variant's predictions per repeat.

Layout::

    OUT/experiment.json            the manifest: cases, backend, overrides, seed, repeats, variants
                                   (each with its prompt set's record and its persona set's, if any)
    OUT/<variant>/repeat-<k>.jsonl predictions (the eval format), one line per case, flushed as written

Each prediction line keeps the decision's transcript and node statistics in ``meta``, so the report
can be recomputed from disk (``rescore``) without any LLM call, and ``--resume`` continues a run
where it stopped. A manifest that differs from the requested run is refused, naming what differs,
so predictions of two different set-ups are never mixed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from malles_graph.evaluation.cases import ChoiceCase, Prediction, read_cases, read_predictions
from malles_graph.experiments.variants import ExperimentError, Variant
from malles_graph.paths import output_folder

MANIFEST = "experiment.json"


class PersonaRecord(BaseModel):
    """A variant's persona set (``PersonaSet.record()``): the persona file, its set's digest, per-file digests."""

    model_config = ConfigDict(extra="forbid")

    file: str
    digest: str
    files: dict[str, str]


class VariantRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    folder: str
    digest: str
    files: dict[str, str]
    personas: PersonaRecord | None = None  # None: the cases' customers as they are

    @classmethod
    def of(cls, variant: Variant) -> VariantRecord:
        record = variant.prompts.record()
        personas = record.pop("personas", None)
        return cls(name=variant.name, **record, personas=PersonaRecord.model_validate(personas) if personas else None)


class Manifest(BaseModel):
    """What an experiment ran; compared field by field on --resume."""

    model_config = ConfigDict(extra="forbid")

    cases: str = Field(description="case file")
    case_ids: list[str] = Field(description="the cases, in order (after --limit)")
    backend: str
    sets: list[str] = Field(default_factory=list, description="scenario overrides key=value")
    seed: int = 0
    repeats: int = Field(default=1, ge=1, description="times each case is answered (seed + k), for stability")
    variants: list[VariantRecord]

    @classmethod
    def of(
        cls,
        cases_file: Path,
        cases: list[ChoiceCase],
        backend: str,
        sets: list[str],
        seed: int,
        repeats: int,
        variants: list[Variant],
    ) -> Manifest:
        return cls(
            cases=str(cases_file),
            case_ids=[c.case_id for c in cases],
            backend=backend,
            sets=list(sets),
            seed=seed,
            repeats=repeats,
            variants=[VariantRecord.of(v) for v in variants],
        )


def predictions_path(out: Path, variant: str, repeat: int) -> Path:
    return out / variant / f"repeat-{repeat}.jsonl"


def read_manifest(out: Path) -> Manifest:
    path = out / MANIFEST
    if not path.is_file():
        raise ExperimentError(f"{path}: no experiment here (run `malles prompts experiment ... --out {out}` first)")
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ExperimentError(f"{path}: not an experiment manifest ({str(exc).splitlines()[0]})") from None


def open_experiment(out: Path, manifest: Manifest, resume: bool) -> None:
    """Write the manifest of a new experiment, or check that a resumed one ran the same set-up."""
    path = out / MANIFEST
    if path.exists():
        if not resume:
            raise ExperimentError(
                f"{out}: an experiment is already there; pass --resume to continue it or another --out"
            )
        old = read_manifest(out)
        mine, theirs = manifest.model_dump(), old.model_dump()
        for key in mine:
            if key == "cases":
                continue  # the same cases may be read from a moved file
            if mine[key] != theirs[key]:
                raise ExperimentError(
                    f"{path}: {key} differs from this run ({_short(theirs[key])} there, {_short(mine[key])} now); "
                    "use another --out"
                )
        return
    output_folder(out)
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def load_predictions(out: Path, manifest: Manifest, cases: list[ChoiceCase]) -> dict[str, list[list[Prediction]]]:
    """Each variant's predictions per repeat (missing files are empty: an interrupted run)."""
    by_id = {c.case_id: c for c in cases}
    found: dict[str, list[list[Prediction]]] = {}
    for variant in manifest.variants:
        repeats = []
        for k in range(manifest.repeats):
            path = predictions_path(out, variant.name, k)
            preds = read_predictions(path, by_id) if path.exists() and path.stat().st_size else []
            repeats.append(preds)
        found[variant.name] = repeats
    return found


def load_cases(manifest: Manifest, cases_file: Path | None = None) -> list[ChoiceCase]:
    """The manifest's cases, in its order, read from its case file (or ``cases_file`` if it moved)."""
    path = Path(cases_file or manifest.cases)
    by_id = {c.case_id: c for c in read_cases(path)}
    missing = [cid for cid in manifest.case_ids if cid not in by_id]
    if missing:
        raise ExperimentError(
            f"{path}: {len(missing)} case(s) of the experiment are not in this file, e.g. {missing[0]!r}"
        )
    return [by_id[cid] for cid in manifest.case_ids]
