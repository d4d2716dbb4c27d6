"""The computed agent's count model: how many units, given the product and the customer.

Quantity is scored by absolute error, which the conditional *median* minimises (not the mean), so
the count model is fitted for the median (LightGBM ``l1``) or as a Poisson mean, whichever has the
lower cross-validated MAE on the training cases, and rounded to whole units. Its features: the
customer's usual units (mean, median over recent lines, in the subclass, last time for this
product, their own total and times for it, share of lines with several units), the product's
median units and how its buyers in the population memory bought it (lines, share bought several
at a time, mean log units: pack effects), price and discount, Z's usual quantity and stock-up
intent, numeric product attributes (pack size...).

The decision is uncertain about *which* product, and the units are scored against the product
really bought, so the answer is the choice-probability-weighted median of the candidates' units
(with a confident choice that is the chosen product's units).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from malles_graph.evaluation.features import quantity_features, recent_median_quantity
from malles_graph.models import ChoiceSituation, HiddenFactors
from malles_graph.roles.memory import PopulationMemory
from malles_graph.roles.slices import AttributeSchema

OBJECTIVES = ("poisson", "l1")


def quantity_row(
    s: ChoiceSituation,
    product_id: str,
    hidden: HiddenFactors | None,
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
        hidden.usual_quantity if hidden else math.nan,
        hidden.stock_up_intent.value if hidden else math.nan,
        *nums,
    ]


def units(pred: np.ndarray) -> np.ndarray:
    """Whole units, at least one."""
    return np.maximum(1, np.floor(pred + 0.5)).astype(int)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> int:
    """The smallest value whose cumulative weight reaches half (the MAE-optimal answer under the weights)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return int(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def mixture_units(model: Any, rows: np.ndarray, probs: np.ndarray) -> int:
    """Units minimising the expected absolute error when the product bought is candidate j with probability p_j."""
    return weighted_median(units(model.booster_.predict(rows, num_threads=1)), probs)


def fit_count_model(Q: np.ndarray, q: np.ndarray, seed: int, folds: int, make: Any) -> tuple[Any, str]:
    """The count model with the objective of lower cross-validated MAE (``make(seed, objective)`` builds one)."""
    from sklearn.model_selection import KFold

    best, best_mae = OBJECTIVES[0], math.inf
    for objective in OBJECTIVES:
        errors = []
        for tr, te in KFold(n_splits=folds, shuffle=True, random_state=seed).split(Q):
            pred = units(make(seed, objective).fit(Q[tr], q[tr]).predict(Q[te]))
            errors.append(np.abs(pred - q[te]).mean())
        if float(np.mean(errors)) < best_mae:
            best, best_mae = objective, float(np.mean(errors))
    return make(seed, best).fit(Q, q), best


def quantity_matrix(
    situations: Sequence[ChoiceSituation],
    products: Sequence[str],
    hidden: Sequence[HiddenFactors | None],
    memory: PopulationMemory | None,
    attributes: AttributeSchema,
) -> np.ndarray:
    return np.asarray(
        [quantity_row(s, p, z, memory, attributes) for s, p, z in zip(situations, products, hidden, strict=True)],
        dtype=float,
    )
