"""Candidate features computed from a ChoiceSituation alone (no truth, no outside data).

The conditional logit (``baseline:logit``, the scenario's choice model) and the LightGBM ranker
(``baseline:lgbm``) read the same features; the ranker and the agent also read the product attributes
of the case format through one :class:`AttributeSchema`, so on a file that carries them the best
classical baseline sees what the agent sees and the comparison measures the models, not the inputs.
Situations are stacked into one matrix with ``offsets`` (case i owns rows
``offsets[i]:offsets[i+1]``), so scoring thousands of situations is a few numpy calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from malles_graph.models import ChoiceSituation

# Utility features of a candidate. Names are part of the saved choice-model file.
FEATURES: tuple[str, ...] = (
    "log_price_rel",  # log price minus the mean log price of the offered candidates
    "discount",  # 1 - price / regular price, in [-1, 1] (negative: above the usual price)
    "log_popularity",  # log of the candidate's share of subclass units in the reference period
    "own_count",  # log(1 + times the customer bought this product before)
    "own_recency",  # exp(-days since the customer last bought it / 30); 0 if never
    "price_gap",  # |log(price / the customer's usual paid price in this subclass)|; 0 if unknown
)
RECENCY_DAYS = 30.0
POPULARITY_FLOOR = 1e-4
MAX_TEXT_VALUES = 30  # one-hot columns per text attribute (the most frequent values when fitting)

# Features of the quantity model (log of units), per chosen candidate.
QUANTITY_FEATURES: tuple[str, ...] = (
    "log_customer_mean_q",  # log of the customer's mean units per purchase line (X_obs)
    "log_subclass_mean_q",  # log mean units of the customer's recent lines in this subclass (or customer mean)
    "log_own_mean_q",  # log mean units of the customer's past purchases of this product (or subclass mean)
    "own_known",  # 1 if the customer bought this product before
    "log_product_median_q",  # log population median units per line of this product
    "discount",
    "log_price",
)


@dataclass(frozen=True)
class FeatureBlock:
    """Stacked candidate features of many situations."""

    X: np.ndarray  # (n_rows, len(FEATURES))
    offsets: np.ndarray  # (n_situations + 1,)
    product_ids: list[str]  # one per row

    @property
    def n_situations(self) -> int:
        return len(self.offsets) - 1

    def rows(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))


def customer_price_level(situation: ChoiceSituation) -> float | None:
    """The customer's usual paid unit price in the situation's subclass, before the date.

    Quantity-weighted mean of own-history prices of the candidates; else of subclass lines in
    the recent baskets; None when the customer never bought in this subclass as far as we see.
    """
    total = weight = 0.0
    for hist in situation.own_history.values():
        if hist.mean_price_paid is not None and hist.total_quantity > 0:
            total += hist.mean_price_paid * hist.total_quantity
            weight += hist.total_quantity
    if weight == 0:
        for basket in situation.recent_baskets:
            for item in basket.items:
                if item.subclass == situation.subclass and item.quantity > 0:
                    total += item.unit_price * item.quantity
                    weight += item.quantity
    return total / weight if weight > 0 and total > 0 else None


def candidate_rows(situation: ChoiceSituation) -> list[list[float]]:
    """Feature rows (one per candidate, in the offered order) as plain lists (fast to stack)."""
    level = customer_price_level(situation)
    log, exp = math.log, math.exp
    rows = []
    for product in situation.candidates:
        price = max(product.price, 0.01)
        regular = product.regular_price
        discount = 0.0 if regular <= 0 else max(-1.0, min(1.0, 1.0 - product.price / regular))
        hist = situation.own_history.get(product.product_id)
        count = math.log1p(hist.times_bought) if hist else 0.0
        recency = 0.0
        if hist and hist.last_date is not None:
            recency = exp(-max(0, (situation.date - hist.last_date).days) / RECENCY_DAYS)
        gap = abs(log(price / level)) if level else 0.0
        rows.append([log(price), discount, log(product.popularity + POPULARITY_FLOOR), count, recency, gap])
    mean_log_price = sum(r[0] for r in rows) / len(rows)
    for r in rows:
        r[0] -= mean_log_price
    return rows


def candidate_features(situation: ChoiceSituation) -> np.ndarray:
    """Feature matrix (one row per candidate, in the offered order)."""
    return np.asarray(candidate_rows(situation), dtype=float)


def stack(situations: Sequence[ChoiceSituation]) -> FeatureBlock:
    """Features of many situations in one matrix."""
    rows: list[list[float]] = []
    sizes = np.empty(len(situations), dtype=np.int64)
    for i, s in enumerate(situations):
        block = candidate_rows(s)
        sizes[i] = len(block)
        rows.extend(block)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    X = np.asarray(rows, dtype=float) if rows else np.zeros((0, len(FEATURES)))
    ids = [p.product_id for s in situations for p in s.candidates]
    return FeatureBlock(X=X, offsets=offsets, product_ids=ids)


def segment_softmax(utility: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Softmax of ``utility`` within each segment (case) given by ``offsets``."""
    if utility.size == 0:
        return utility.copy()
    starts = offsets[:-1]
    seg = np.repeat(np.arange(len(starts)), np.diff(offsets))
    top = np.maximum.reduceat(utility, starts)
    e = np.exp(utility - top[seg])
    return e / np.add.reduceat(e, starts)[seg]


def segment_ids(offsets: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def _log(x: float | None, floor: float = 1.0) -> float:
    return math.log(max(x if x is not None else floor, 0.5))


def subclass_mean_quantity(situation: ChoiceSituation) -> float | None:
    qty = [i.quantity for b in situation.recent_baskets for i in b.items if i.subclass == situation.subclass]
    return sum(qty) / len(qty) if qty else None


def recent_median_quantity(situation: ChoiceSituation) -> float | None:
    """Median units per line over the customer's recent baskets (all subclasses)."""
    qty = sorted(i.quantity for b in situation.recent_baskets for i in b.items if i.quantity > 0)
    if not qty:
        return None
    mid = len(qty) // 2
    return float(qty[mid]) if len(qty) % 2 else (qty[mid - 1] + qty[mid]) / 2


def quantity_features(situation: ChoiceSituation, product_id: str) -> np.ndarray:
    """Quantity-model features for buying ``product_id`` in ``situation``."""
    product = next((p for p in situation.candidates if p.product_id == product_id), None)
    if product is None:
        raise KeyError(f"{product_id!r} is not a candidate of situation {situation.situation_id!r}")
    cust_mean = situation.customer.mean_quantity or 1.0
    sub_mean = subclass_mean_quantity(situation) or cust_mean
    hist = situation.own_history.get(product_id)
    known = bool(hist and hist.times_bought > 0)
    own_mean = hist.total_quantity / hist.times_bought if known and hist else sub_mean
    regular = product.regular_price
    discount = 0.0 if regular <= 0 else max(-1.0, min(1.0, 1.0 - product.price / regular))
    return np.array(
        [
            _log(cust_mean),
            _log(sub_mean),
            _log(own_mean),
            float(known),
            _log(product.median_quantity),
            discount,
            math.log(max(product.price, 0.01)),
        ]
    )


_KIND_WORDS = {"number": "a number", "text": "text"}


@dataclass
class AttributeSchema:
    """The product attributes a model was fitted with: key -> 'number' | 'text' (and the text values)."""

    kinds: dict[str, str] = field(default_factory=dict)
    values: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, situations: Sequence[ChoiceSituation]) -> AttributeSchema:
        kinds: dict[str, str] = {}
        counts: dict[str, dict[str, int]] = {}
        for s in situations:
            for product in s.candidates:
                for key, value in product.attributes.items():
                    kinds.setdefault(key, "text" if isinstance(value, str) else "number")
                    if isinstance(value, str):
                        row = counts.setdefault(key, {})
                        row[value] = row.get(value, 0) + 1
        values = {k: sorted(v, key=lambda x: (-v[x], x))[:MAX_TEXT_VALUES] for k, v in counts.items()}
        return cls(kinds=dict(sorted(kinds.items())), values=values)

    def names(self) -> list[str]:
        out = []
        for key, kind in self.kinds.items():
            if kind == "number":
                out += [f"attr:{key}", f"attr:{key}:rel"]
            else:
                out += [f"attr:{key}={v}" for v in self.values.get(key, [])]
        return out

    def rows(self, situation: ChoiceSituation) -> list[list[float]]:
        cols: list[list[float]] = []
        for key, kind in self.kinds.items():
            raw = [p.attributes.get(key) for p in situation.candidates]
            if kind == "number":
                nums = [float(v) if isinstance(v, (int, float)) else math.nan for v in raw]
                known = [v for v in nums if not math.isnan(v)]
                mean = sum(known) / len(known) if known else math.nan
                cols += [nums, [v - mean for v in nums]]
            else:
                for value in self.values.get(key, []):
                    cols.append([math.nan if v is None else float(v == value) for v in raw])
        return [list(r) for r in zip(*cols, strict=True)] if cols else [[] for _ in situation.candidates]

    def mismatch(self, situations: Sequence[ChoiceSituation], fitted_on: str) -> str | None:
        """Why a model fitted with these attributes (on ``fitted_on``) cannot read ``situations``, or None: an
        attribute of the other type (a number fitted, text scored), or none of the fitted attributes at all
        (cases of another kind of data). Either would reach the model as missing values, silently."""
        seen = AttributeSchema.fit(situations).kinds
        for key, kind in seen.items():
            fitted = self.kinds.get(key)
            if fitted is not None and fitted != kind:
                return f"attribute {key!r} is {_KIND_WORDS[kind]} in the cases but {_KIND_WORDS[fitted]} in {fitted_on}"
        if self.kinds and not set(seen) & set(self.kinds):
            return (
                f"the cases carry none of the product attributes of {fitted_on} ({', '.join(self.kinds)}): "
                "they are another kind of data"
            )
        return None

    def to_json(self) -> dict[str, object]:
        return {"kinds": self.kinds, "values": self.values}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> AttributeSchema:
        return cls(kinds=dict(data["kinds"]), values={k: list(v) for k, v in dict(data["values"]).items()})
