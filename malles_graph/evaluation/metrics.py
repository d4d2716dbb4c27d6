"""Scores of predictions against the truth: hit rates, quantity errors, log-loss, stability.

Rules (see docs/evaluation.md):

- Every case in the case file counts. A case with no prediction, or with an invalid one
  (product not among the candidates, no quantity, quantity 0), is a miss for hit@1 and hit@3.
- hit@3 uses the prediction's probabilities, or a one-hot on its product when it has none;
  ties at the cut share the remaining places (uniform probabilities over 5 give 3/5, not 1).
- log-loss uses the probabilities smoothed by 1e-6 and renormalised over the candidates; a case
  whose prediction has no probabilities gets the no-information value log(K).
  hit@3 and log-loss are reported only when at least one prediction has probabilities.
- Quantity MAE and MAPE are over cases with a valid prediction (their count is reported), and
  ``mae_hit`` over the cases where the product is right.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np
from pydantic import BaseModel

from malles_graph.evaluation.cases import ChoiceCase, EvaluationError, Prediction

EPS = 1e-6


class GroupScore(BaseModel):
    n: int
    coverage: float | None
    hit1: float | None
    hit3: float | None
    logloss: float | None
    mae: float | None
    mape: float | None
    mae_hit: float | None
    n_quantity: int
    n_invalid: int
    n_missing: int


class Score(BaseModel):
    """Scores overall and per sparse/dense split."""

    name: str
    overall: GroupScore
    sparse: GroupScore
    dense: GroupScore


def is_valid(pred: Prediction | None, case: ChoiceCase) -> bool:
    return (
        pred is not None
        and pred.product_id is not None
        and pred.product_id in case.candidate_ids
        and pred.quantity is not None
        and pred.quantity >= 1
    )


def top_k_share(probs: dict[str, float], truth: str, candidates: Sequence[str], k: int) -> float:
    """Share of the top-k places held by the truth (ties at the boundary split the places)."""
    p_truth = probs.get(truth, 0.0)
    values = [probs.get(c, 0.0) for c in candidates]
    higher = sum(v > p_truth for v in values)
    tied = sum(v == p_truth for v in values)
    return float(min(1.0, max(0.0, (k - higher) / tied)))


def case_scores(case: ChoiceCase, pred: Prediction | None) -> dict[str, float | None]:
    """Per-case figures: hit1, hit3, logloss, abs_err, ape (None where undefined)."""
    valid = is_valid(pred, case)
    k = len(case.candidates)
    hit1 = float(valid and pred.product_id == case.truth_product_id)  # type: ignore[union-attr]
    has_probs = valid and pred.probs is not None  # type: ignore[union-attr]
    if has_probs:
        raw = {c: max(0.0, float(pred.probs.get(c, 0.0))) for c in case.candidate_ids}  # type: ignore[union-attr]
        total = sum(raw.values()) + k * EPS
        probs = {c: (v + EPS) / total for c, v in raw.items()}
        hit3 = top_k_share(probs, case.truth_product_id, case.candidate_ids, 3)
        logloss = -math.log(probs[case.truth_product_id])
    else:
        hit3 = hit1
        logloss = math.log(k)
    abs_err = ape = None
    if valid:
        abs_err = float(abs(pred.quantity - case.truth_quantity))  # type: ignore[union-attr,operator]
        ape = abs_err / case.truth_quantity
    return {
        "valid": float(valid),
        "missing": float(pred is None),
        "has_probs": float(has_probs),
        "hit1": hit1,
        "hit3": hit3,
        "logloss": logloss,
        "abs_err": abs_err,
        "ape": ape,
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _group(rows: list[dict[str, float | None]], hit_flags: list[float]) -> GroupScore:
    n = len(rows)
    any_probs = any(r["has_probs"] for r in rows)
    errs = [r["abs_err"] for r in rows if r["abs_err"] is not None]
    apes = [r["ape"] for r in rows if r["ape"] is not None]
    hit_errs = [r["abs_err"] for r, h in zip(rows, hit_flags, strict=True) if h and r["abs_err"] is not None]
    return GroupScore(
        n=n,
        coverage=_mean([r["valid"] for r in rows]),
        hit1=_mean([r["hit1"] for r in rows]),
        hit3=_mean([r["hit3"] for r in rows]) if any_probs else None,
        logloss=_mean([r["logloss"] for r in rows]) if any_probs else None,
        mae=_mean(errs),
        mape=_mean(apes),
        mae_hit=_mean(hit_errs),
        n_quantity=len(errs),
        n_invalid=int(sum(1 for r in rows if not r["valid"] and not r["missing"])),
        n_missing=int(sum(r["missing"] for r in rows)),
    )


def index_predictions(cases: Sequence[ChoiceCase], preds: Sequence[Prediction], source: str = "predictions") -> dict:
    known = {c.case_id for c in cases}
    by_id: dict[str, Prediction] = {}
    for i, p in enumerate(preds, start=1):
        if p.case_id not in known:
            raise EvaluationError(f"{source}: prediction {i} is for unknown case_id {p.case_id!r}")
        if p.case_id in by_id:
            raise EvaluationError(f"{source}: duplicate prediction for case_id {p.case_id!r}")
        by_id[p.case_id] = p
    return by_id


def score(cases: Sequence[ChoiceCase], preds: Sequence[Prediction], name: str = "predictions") -> Score:
    """Score predictions against every case (missing ones count as misses)."""
    by_id = index_predictions(cases, preds, name)
    rows = [case_scores(c, by_id.get(c.case_id)) for c in cases]
    hits = [r["hit1"] for r in rows]

    def subset(flag: bool) -> GroupScore:
        idx = [i for i, c in enumerate(cases) if c.sparse == flag]
        return _group([rows[i] for i in idx], [hits[i] for i in idx])

    return Score(name=name, overall=_group(rows, hits), sparse=subset(True), dense=subset(False))


class Spread(BaseModel):
    """One figure over the runs: mean, standard deviation and range (None when no run has the figure,
    e.g. log-loss of runs without probabilities or hit@1 of an empty sparse subset)."""

    mean: float | None
    sd: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread:
        got = [v for v in values if v is not None]
        if not got:
            return cls(mean=None, sd=None, low=None, high=None)
        return cls(mean=float(np.mean(got)), sd=float(np.std(got)), low=min(got), high=max(got))


# The figures whose spread over seeds says whether a target is met by the method or by one draw of it.
SPREAD_FIGURES: dict[str, Callable[[Score], float | None]] = {
    "hit@1": lambda s: s.overall.hit1,
    "hit@1 sparse": lambda s: s.sparse.hit1,
    "log-loss": lambda s: s.overall.logloss,
    "quantity MAE": lambda s: s.overall.mae,
}


class Stability(BaseModel):
    """Agreement of repeated runs (different seeds) on the same cases, and the spread of their scores."""

    runs: list[str]
    n_cases: int
    pairwise_product_agreement: float
    pairwise_quantity_agreement: float
    modal_share: float  # mean share of runs agreeing with the most common answer per case
    spread: dict[str, Spread]  # SPREAD_FIGURES' names -> their spread over the runs


def stability(cases: Sequence[ChoiceCase], runs: dict[str, Sequence[Prediction]]) -> Stability:
    """Pairwise agreement of product (and product+quantity) across runs; invalid answers never agree."""
    if len(runs) < 2:
        raise EvaluationError("stability needs at least two prediction files (runs with different seeds)")
    indexed = {name: index_predictions(cases, preds, name) for name, preds in runs.items()}
    answers: dict[str, list[tuple[str, int] | None]] = {}
    for name, by_id in indexed.items():
        answers[name] = [
            (p.product_id, p.quantity) if is_valid(p := by_id.get(c.case_id), c) else None  # type: ignore[misc]
            for c in cases
        ]
    prod_agree, qty_agree = [], []
    for a, b in combinations(answers.values(), 2):
        for x, y in zip(a, b, strict=True):
            prod_agree.append(float(x is not None and y is not None and x[0] == y[0]))
            qty_agree.append(float(x is not None and y is not None and x == y))
    modal = []
    for i in range(len(cases)):
        picks = [ans[i][0] for ans in answers.values() if ans[i] is not None]
        modal.append(max((picks.count(p) for p in set(picks)), default=0) / len(answers))
    scores = [score(cases, list(preds), name) for name, preds in runs.items()]
    return Stability(
        runs=list(runs),
        n_cases=len(cases),
        pairwise_product_agreement=float(np.mean(prod_agree)),
        pairwise_quantity_agreement=float(np.mean(qty_agree)),
        modal_share=float(np.mean(modal)),
        spread={figure: Spread.of([get(sc) for sc in scores]) for figure, get in SPREAD_FIGURES.items()},
    )


SIZE_BUCKETS = ((0, 100, "<100"), (100, 500, "100-499"), (500, 2000, "500-1999"), (2000, 10**12, ">=2000"))


def size_bucket(n: int) -> str:
    return next(label for lo, hi, label in SIZE_BUCKETS if lo <= n < hi)


def hit_by_bucket(cases: Sequence[ChoiceCase], preds: Sequence[Prediction]) -> dict[str, tuple[float, int]]:
    """hit@1 and case count per subclass-size bucket (fit-period lines of the subclass)."""
    by_id = index_predictions(cases, preds)
    out: dict[str, list[float]] = {label: [] for *_, label in SIZE_BUCKETS}
    for c in cases:
        out[size_bucket(c.subclass_fit_transactions)].append(case_scores(c, by_id.get(c.case_id))["hit1"] or 0.0)
    return {k: (float(np.mean(v)) if v else float("nan"), len(v)) for k, v in out.items()}


def quantity_errors(cases: Sequence[ChoiceCase], preds: Sequence[Prediction]) -> list[int]:
    """Signed quantity errors (predicted - true) of valid predictions."""
    by_id = index_predictions(cases, preds)
    return [
        int(p.quantity - c.truth_quantity)  # type: ignore[operator]
        for c in cases
        if is_valid(p := by_id.get(c.case_id), c)  # type: ignore[misc]
    ]


class PairedEffect(BaseModel):
    """What a mechanism adds: the full method minus the method with the mechanism off, on paired cases.

    Signs say "the mechanism helps" when positive: hit@1 full - off; log-loss and quantity MAE
    off - full (lower is better for those). The interval is a paired bootstrap percentile 95%.
    """

    name: str
    subset: str
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


def paired_effect(
    cases: Sequence[ChoiceCase],
    full: Sequence[Prediction],
    off: Sequence[Prediction],
    name: str,
    subset: str = "all",
    n_boot: int = 2000,
    seed: int = 0,
) -> PairedEffect:
    """The paired bootstrap of :class:`PairedEffect` over ``cases`` (``subset``: all, sparse or dense)."""
    chosen = [c for c in cases if subset == "all" or c.sparse == (subset == "sparse")]
    if not chosen:
        raise EvaluationError(f"no {subset} cases to compare {name!r} on")
    a_by, b_by = index_predictions(cases, full, "reference"), index_predictions(cases, off, name)
    a = [case_scores(c, a_by.get(c.case_id)) for c in chosen]
    b = [case_scores(c, b_by.get(c.case_id)) for c in chosen]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(chosen), size=(n_boot, len(chosen)))

    def effect(x: np.ndarray, sign: float) -> tuple[float, float, float]:
        boot = sign * x[draws].mean(axis=1)
        return float(sign * x.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))

    hit = effect(np.array([ra["hit1"] - rb["hit1"] for ra, rb in zip(a, b, strict=True)]), 1.0)
    both_probs = all(ra["has_probs"] and rb["has_probs"] for ra, rb in zip(a, b, strict=True))
    ll = effect(np.array([ra["logloss"] - rb["logloss"] for ra, rb in zip(a, b, strict=True)]), -1.0)
    paired_q = [(ra["abs_err"], rb["abs_err"]) for ra, rb in zip(a, b, strict=True)
                if ra["abs_err"] is not None and rb["abs_err"] is not None]
    if paired_q:
        diffs = np.array([x - y for x, y in paired_q])
        idx = rng.integers(0, len(diffs), size=(n_boot, len(diffs)))
        boot = -diffs[idx].mean(axis=1)
        mae: tuple[float | None, ...] = (float(-diffs.mean()), float(np.percentile(boot, 2.5)),
                                         float(np.percentile(boot, 97.5)))
    else:
        mae = (None, None, None)
    lls: tuple[float | None, ...] = ll if both_probs else (None, None, None)
    return PairedEffect(name=name, subset=subset, n=len(chosen), hit1=hit[0], hit1_low=hit[1], hit1_high=hit[2],
                        logloss=lls[0], logloss_low=lls[1], logloss_high=lls[2],
                        mae=mae[0], mae_low=mae[1], mae_high=mae[2])


def clearly_better(losses: dict, default: object) -> object:
    """The key of ``losses`` (per-case losses of each setting, on the same held-out cases) to use: ``default``
    unless another setting's mean loss is lower by more than two standard errors of the paired per-case
    difference; among several such, the lowest. A setting chosen by a raw minimum follows the noise of the
    held-out cases; this moves off the default only where they say so clearly."""
    base = np.asarray(losses[default], dtype=float)
    clear = []
    for key, loss in losses.items():
        diff = np.asarray(loss, dtype=float) - base
        if key != default and len(diff) > 1 and diff.mean() < -2 * diff.std(ddof=1) / math.sqrt(len(diff)):
            clear.append(key)
    return min(clear, key=lambda k: float(np.mean(losses[k])), default=default)
