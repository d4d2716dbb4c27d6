"""The computed agent's count model: how many units, given the product and the customer.

Quantity is scored by absolute error, which the *median* minimises. The decision is uncertain
about *which* product, and the units are scored against the product really bought, so the answer
is the median of the mixture: the candidates' unit distributions weighted by the choice
probabilities. The count model therefore gives a distribution, not one number: one LightGBM
classifier per threshold k (2, 3, ...: the unit counts bought) for P(units >= k) (ordinal "at
least k" models, made non-increasing in k), for every threshold with enough rows above it (a
constant share where too few lie below). Against the former weighted median of each candidate's
own median units (an ``l1`` regression), which throws away how sure each candidate's median is,
3-fold CV within January gave quantity MAE 0.3094 -> 0.3028 and the date split 0.3388 -> 0.3333
(docs/agent-choices.md); 50 rows a leaf, more than the roles' 20, because a threshold's positives are
few (the same CV: 20 rows gave 0.3056 and 0.3364). On the Feb-2001 cases, looked at once
afterwards: 0.3595 -> 0.347.

Its features: the customer's usual units (mean, median over recent lines, in the subclass, last
time for this product, their own total and times for it, share of lines with several units), the
product's median units and how its buyers in the population memory bought it (lines, share bought
several at a time, mean log units: pack effects), price and discount, numeric product attributes
(pack size...). Not Z (agent/6): its usual quantity and stock-up intent are read from the history
the features above already hold, and without them the quantity MAE fell in all three January
checks (3-fold CV 0.3032 -> 0.3020, date split 0.3357 -> 0.3337, the protocol one month earlier
0.3064 -> 0.3046: small, intervals include zero, but consistent, and one input fewer to drift).

How many trees a threshold's classifier gets is chosen per fit (:func:`choose_trees`): how much
detail the units support depends on the data, and the customers' unit habits that carry signal on
Ta Feng are noise where the units follow the pack size alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from malles_graph.evaluation.features import AttributeSchema, quantity_features, recent_median_quantity
from malles_graph.evaluation.metrics import clearly_better
from malles_graph.models import ChoiceSituation
from malles_graph.roles.memory import PopulationMemory

MIN_ROWS = 20  # a threshold is modelled when this many rows lie above it (learned when as many lie below)
LEAF_ROWS = 50  # rows a leaf of a threshold's classifier (see the module docstring)
TREES = (25, 50, 100, 150, 300)  # the trees a threshold's classifier may get, chosen by CV (choose_trees)
DEFAULT_TREES = 150  # ... unless another count is clearly better (agent/6 had 150 always)
MAX_THRESHOLDS = 24  # beyond this many unit counts, thresholds at as many quantiles of the units (fit_units_model)


def quantity_row(
    s: ChoiceSituation,
    product_id: str,
    memory: PopulationMemory | None,
    attributes: AttributeSchema,
) -> list[float]:
    """Count-model features for buying ``product_id`` in ``s`` (missing evidence is NaN)."""
    product = next(p for p in s.candidates if p.product_id == product_id)
    nums = [
        float(v) if isinstance(v, (int, float)) else math.nan
        for k, kind in attributes.kinds.items()
        if kind == "number"
        for v in [product.attributes.get(k)]
    ]
    median = recent_median_quantity(s)
    lines = [i for b in s.recent_baskets for i in b.items]
    last = next((i.quantity for i in lines if i.product_id == product_id), math.nan)  # most recent first
    sub = sorted(i.quantity for i in lines if i.subclass == s.subclass)
    multi = sum(i.quantity > 1 for i in lines) / len(lines) if lines else math.nan
    own = s.own_history.get(product_id)
    population = memory.quantity_profile(product_id, s.date) if memory is not None else (math.nan,) * 3
    return [
        *quantity_features(s, product_id).tolist(),
        math.nan if median is None else median,
        last,
        sub[len(sub) // 2] if sub else math.nan,
        multi,
        float(own.total_quantity) if own else math.nan,
        float(own.times_bought) if own else 0.0,
        *population,
        *nums,
    ]


@dataclass
class UnitsModel:
    """P(units >= k) for each threshold k (the unit counts seen in training above the fewest): a
    fitted classifier, or a constant share where (nearly) every row lies above it; beyond the last
    threshold the probability is 0, and every answer is at least ``fewest``."""

    thresholds: list[tuple[int, Any]] = field(default_factory=list)
    fewest: int = 1  # the fewest units a training case bought

    def describe(self) -> str:
        ks = [k for k, _ in self.thresholds]
        trees = {m.n_estimators for _, m in self.thresholds if not isinstance(m, float)}
        size = f", {trees.pop()} trees" if len(trees) == 1 else ""
        if not ks:
            return f"always {self.fewest} unit{'s' * (self.fewest > 1)}"
        if len(ks) > 1 and ks == list(range(ks[0], ks[-1] + 1)):
            listed = f"{ks[0]}..{ks[-1]}"
        else:
            listed = ", ".join(map(str, ks)) if len(ks) <= 6 else f"{ks[0]}, {ks[1]}, ..., {ks[-1]} ({len(ks)} of them)"
        return f"P(units >= k), k = {listed}{size}"

    @property
    def largest(self) -> int:
        """The most units it can answer: its last threshold (or the fewest, without one)."""
        return self.thresholds[-1][0] if self.thresholds else self.fewest

    def tails(self, rows: np.ndarray, trees: int | None = None) -> np.ndarray:
        """P(units >= k) per row (candidates) and threshold, non-increasing in k (from the first
        ``trees`` trees of each classifier when given)."""
        cols = [
            np.full(len(rows), m)
            if isinstance(m, float)
            else m.booster_.predict(rows, num_iteration=trees, num_threads=1)
            for _, m in self.thresholds
        ]
        return np.minimum.accumulate(np.column_stack(cols), axis=1) if cols else np.zeros((len(rows), 0))

    def medians(self, tails: np.ndarray) -> np.ndarray:
        """The median units of each row of (mixed) tails: the largest threshold whose probability is
        above one half (a tie at exactly one half goes to the smaller answer), else the fewest. The
        tails are non-increasing, so the thresholds passed are a prefix."""
        units = np.array([self.fewest, *(k for k, _ in self.thresholds)])
        return units[(tails > 0.5).sum(axis=1)]


def fit_units_model(Q: np.ndarray, q: np.ndarray, seed: int, make: Any, trees: int = DEFAULT_TREES) -> UnitsModel:
    """One classifier per threshold (``make(seed, "binary")`` builds one; ``trees`` trees), up to the
    last threshold with ``MIN_ROWS`` rows above it. The thresholds are the unit counts bought, not
    every integer: where units come in packs (12, 24, ...) the counts between them would each fit the
    same classifier again."""
    model = UnitsModel(fewest=int(q.min()) if len(q) else 1)
    for k in thresholds(q):
        above = q >= k
        if (~above).sum() < MIN_ROWS:  # nearly everyone buys at least k: no boundary to learn
            model.thresholds.append((k, float(above.mean())))
            continue
        clf = make(seed, "binary").set_params(min_child_samples=LEAF_ROWS, n_estimators=trees)
        model.thresholds.append((k, clf.fit(Q, above.astype(int))))
    return model


def thresholds(q: np.ndarray) -> list[int]:
    """The thresholds k of P(units >= k): each unit count bought above the fewest with ``MIN_ROWS``
    rows at or above it; where there are more than ``MAX_THRESHOLDS`` (units in the hundreds), the
    counts at as many evenly spaced quantiles of those rows, so the fit's time and the answers' grid
    follow how the units spread, not their range (208 counts from 40 to 260 took 103 s of a 2-minute fit)."""
    ks = [int(k) for k in np.unique(q)[1:] if (q >= k).sum() >= MIN_ROWS]
    if len(ks) <= MAX_THRESHOLDS:
        return ks
    spread = np.clip(q[q >= ks[0]], ks[0], ks[-1])  # every value here is one of ks
    return sorted({int(v) for v in np.quantile(spread, np.linspace(0, 1, MAX_THRESHOLDS), method="inverted_cdf")})


def choose_trees(
    Q: np.ndarray,
    q: np.ndarray,
    candidates: np.ndarray,
    offsets: np.ndarray,
    probs: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
    make: Any,
) -> tuple[int, dict[int, float]]:
    """How many trees each threshold's classifier gets, and the cross-validated quantity MAE of each
    count of :data:`TREES`: the error of the answer the agent gives (the median of the mixture), each
    held case's mixture weighted by its out-of-fold choice probabilities. ``Q``/``q``: a row and the
    units per training case (the product bought); ``candidates``: a row per candidate, case ``i``'s
    from ``offsets[i]``; ``folds``: (training, held) case indices.

    :data:`DEFAULT_TREES` unless another count is better by more than two standard errors of the
    paired per-case difference: the answers move with the count by less than the CV can tell apart on
    most data (Ta Feng's months: 50, 100 and 150 trees within 0.0005 of each other, and 150 did best
    a month later), so the count moves only where the held-out cases say so clearly. On a
    brand-choice panel where the units depend on the pack size alone, 150 trees learned the
    customers' noise (the agent's MAE 9% above the regressor baseline's) and 25 were clearly better
    (docs/agent-choices.md).
    """
    errors = np.zeros((len(TREES), len(q)))
    for train, held in folds:
        model = fit_units_model(Q[train], q[train], seed, make, trees=max(TREES))
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in held])
        starts = np.concatenate([[0], np.cumsum(np.diff(offsets)[held])[:-1]])
        for j, n in enumerate(TREES):
            mixed = np.add.reduceat(probs[rows, None] * model.tails(candidates[rows], n), starts, axis=0)
            errors[j, held] = np.abs(model.medians(mixed) - q[held])
    by_count = dict(zip(TREES, errors, strict=True))
    return clearly_better(by_count, DEFAULT_TREES), {n: float(e.mean()) for n, e in by_count.items()}


def mixture_units(model: UnitsModel, rows: np.ndarray, probs: np.ndarray) -> int:
    """The median units of the mixture (the MAE-optimal answer when the product bought is candidate
    j with probability p_j)."""
    return int(model.medians((probs @ model.tails(rows))[None, :])[0])


def quantity_matrix(
    situations: Sequence[ChoiceSituation],
    products: Sequence[str],
    memory: PopulationMemory | None,
    attributes: AttributeSchema,
) -> np.ndarray:
    return np.asarray(
        [quantity_row(s, p, memory, attributes) for s, p in zip(situations, products, strict=True)],
        dtype=float,
    )
