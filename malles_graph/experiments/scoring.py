"""An experiment's figures: per-variant scores and the paired difference of each variant from the first.

Scores reuse ``malles_graph.evaluation.metrics`` (the rules of ``malles eval score``) on the cases
every variant has answered (the paired set, repeat 0), so the rows are comparable even when a run
was interrupted. The difference of a variant from the reference is a paired bootstrap 95% interval
(``paired_effect``, as in ``eval report --reference``) and an exact sign test on the cases where
exactly one of the two hit (``scipy.stats.binomtest``, two-sided, p = 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel
from scipy.stats import binomtest

from malles_graph.evaluation.cases import ChoiceCase, Prediction
from malles_graph.evaluation.metrics import case_scores, paired_effect, score, stability
from malles_graph.experiments.insight import RoleInsight, flatten, repaired, role_insight
from malles_graph.experiments.store import Manifest, VariantRecord
from malles_graph.prompt_sets import SHORT


class VariantRow(BaseModel):
    name: str
    digest: str  # the prompt set's, short
    persona_digest: str = ""  # the persona set's, short ('' without a persona file)
    n: int  # paired cases scored
    hit1: float | None
    hit3: float | None
    logloss: float | None
    mae: float | None
    failure_rate: float | None
    repair_rate: float | None
    prompt_tokens: float | None  # mean per decision
    completion_tokens: float | None
    latency_s: float | None  # mean seconds per decision
    stability: float | None  # mean share of repeats agreeing with the modal product (repeats > 1)


class Difference(BaseModel):
    """variant - reference on the paired cases (hit@1: higher is better; log-loss, MAE: lower is better)."""

    name: str
    reference: str
    n: int
    hit1: float
    hit1_low: float
    hit1_high: float
    logloss: float | None
    logloss_low: float | None
    logloss_high: float | None
    mae: float | None
    mae_low: float | None
    mae_high: float | None
    wins: int  # cases the variant hit and the reference missed
    losses: int  # the reverse
    sign_p: float  # two-sided exact sign test on wins vs losses (1.0 without discordant cases)


class ExperimentResult(BaseModel):
    manifest: Manifest
    n_cases: int
    n_paired: int
    answered: dict[str, int]  # predictions on disk per variant (all repeats)
    rows: list[VariantRow]
    differences: list[Difference]
    roles: dict[str, dict[str, RoleInsight]]  # variant -> role -> insight (all repeats)


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _row(
    variant: VariantRecord, cases: list[ChoiceCase], preds: list[Prediction], repeats: Sequence[Sequence[Prediction]]
) -> VariantRow:
    name = variant.name
    overall = score(cases, preds, name).overall if cases else None
    metas = [p.meta or {} for p in preds]
    stab = None
    full_repeats = [list(r) for r in repeats if {p.case_id for p in r} >= {c.case_id for c in cases}]
    if len(full_repeats) > 1 and cases:
        ids = {c.case_id for c in cases}
        runs = {f"repeat-{k}": [p for p in r if p.case_id in ids] for k, r in enumerate(full_repeats)}
        stab = stability(cases, runs).modal_share
    return VariantRow(
        name=name,
        digest=variant.digest[:SHORT],
        n=len(cases),
        persona_digest=variant.personas.digest[:SHORT] if variant.personas else "",
        hit1=overall.hit1 if overall else None,
        hit3=overall.hit3 if overall else None,
        logloss=overall.logloss if overall else None,
        mae=overall.mae if overall else None,
        failure_rate=_mean([float(p.product_id is None) for p in preds]),
        repair_rate=_mean([float(repaired(p)) for p in preds]),
        prompt_tokens=_mean([float(m.get("prompt_tokens") or 0) for m in metas]),
        completion_tokens=_mean([float(m.get("completion_tokens") or 0) for m in metas]),
        latency_s=_mean([p.elapsed_s for p in preds if p.elapsed_s is not None]),
        stability=stab,
    )


def _flip(value: float | None) -> float | None:
    return None if value is None else -value


def _difference(
    cases: list[ChoiceCase], ref: list[Prediction], var: list[Prediction], name: str, reference: str, seed: int
) -> Difference:
    effect = paired_effect(cases, var, ref, name, seed=seed)  # hit@1 var - ref; log-loss and MAE ref - var
    ref_by, var_by = {p.case_id: p for p in ref}, {p.case_id: p for p in var}
    hits = [(case_scores(c, var_by[c.case_id])["hit1"], case_scores(c, ref_by[c.case_id])["hit1"]) for c in cases]
    wins = sum(1 for v, r in hits if v and not r)
    losses = sum(1 for v, r in hits if r and not v)
    p = float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    return Difference(
        name=name,
        reference=reference,
        n=effect.n,
        hit1=effect.hit1,
        hit1_low=effect.hit1_low,
        hit1_high=effect.hit1_high,
        logloss=_flip(effect.logloss),
        logloss_low=_flip(effect.logloss_high),
        logloss_high=_flip(effect.logloss_low),
        mae=_flip(effect.mae),
        mae_low=_flip(effect.mae_high),
        mae_high=_flip(effect.mae_low),
        wins=wins,
        losses=losses,
        sign_p=p,
    )


def score_experiment(
    manifest: Manifest, cases: Sequence[ChoiceCase], predictions: dict[str, list[list[Prediction]]]
) -> ExperimentResult:
    """Every figure of the report, from the manifest, its cases and the predictions on disk."""
    names = [v.name for v in manifest.variants]
    first = {name: {p.case_id: p for p in predictions[name][0]} for name in names}
    paired = [c for c in cases if all(c.case_id in first[name] for name in names)]
    rows = []
    for v in manifest.variants:
        preds = [first[v.name][c.case_id] for c in paired]
        rows.append(_row(v, paired, preds, predictions[v.name]))
    diffs = []
    if paired:
        ref = names[0]
        ref_preds = [first[ref][c.case_id] for c in paired]
        for name in names[1:]:
            var_preds = [first[name][c.case_id] for c in paired]
            diffs.append(_difference(paired, ref_preds, var_preds, name, ref, manifest.seed))
    return ExperimentResult(
        manifest=manifest,
        n_cases=len(cases),
        n_paired=len(paired),
        answered={name: sum(len(r) for r in predictions[name]) for name in names},
        rows=rows,
        differences=diffs,
        roles={name: role_insight(flatten(predictions[name])) for name in names},
    )
