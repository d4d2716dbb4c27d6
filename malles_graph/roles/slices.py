"""What each computed role sees: one feature slice per role, one row per candidate.

The roles split the evidence the way the MALLES debate does, so each fitted role model is an
opinion from its own slice only:

* product specialist: fit-period popularity and its trend, co-purchase affinity with the
  customer's recent baskets, the choices of retrieved similar customers, the product attributes;
* price analyst: current vs regular price, price rank among the candidates, the customer's own
  price level and discount sensitivity rho;
* persona: the customer's own past (repeat purchase, recency, Guadagni-Little loyalty) and Z.

The market signal (the population's current demand, renormalised over the offered candidates)
is a separate input of ``decide``. Missing evidence is NaN (LightGBM routes it), never a made-up
number. Attributes: numbers are numeric features (raw and relative to the candidates' mean),
text values one-hot over the values seen when fitting; keys the model never saw are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

from malles_graph.evaluation.features import AttributeSchema, customer_price_level
from malles_graph.models import ChoiceSituation, HiddenFactors
from malles_graph.retail.retrieval_api import RetrievedRecord
from malles_graph.roles.memory import PopulationMemory

NAN = float("nan")
POPULARITY_FLOOR = 1e-4
TREND_WINDOW_DAYS = 56
MARKET_WINDOW_DAYS = 14
GL_SMOOTHING = 0.75  # Guadagni-Little carry-over of loyalty from one purchase occasion to the next

SPECIALIST = (
    "log_popularity",
    "popularity_rel",
    "popularity_rank",
    "popularity_share",
    "trend",
    "copurchase",
    "neighbour_share",
    "neighbour_count",
)
PRICE = (
    "log_price_rel",
    "discount",
    "price_rank",
    "log_price_over_regular",
    "log_price_over_level",
    "price_gap",
    "rho",
    "rho_x_discount",
    "log_price",
    "log_price_over_min",
)
PERSONA = (
    "own_count",
    "own_recency",
    "own_days",
    "recent_basket_count",
    "gl_loyalty",
    "own_share",
    "own_units_share",
    "last_choice",
    "own_retrieved_share",
    "z_budget_x_price",
    "z_stock_up",
    "z_brand_x_own",
    "z_days_since_subclass",
    "z_price_level",
)
ROLE_FEATURES: dict[str, tuple[str, ...]] = {
    "product_specialist": SPECIALIST,
    "price_analyst": PRICE,
    "persona": PERSONA,
}


def _rel(values: list[float]) -> list[float]:
    mean = sum(values) / len(values)
    return [v - mean for v in values]


def specialist_rows(
    s: ChoiceSituation, memory: PopulationMemory | None, neighbours: Sequence[RetrievedRecord], attrs: AttributeSchema
) -> list[list[float]]:
    n = len(s.candidates)
    logpop = [math.log(p.popularity + POPULARITY_FLOOR) for p in s.candidates]
    rank = (rankdata([-p.popularity for p in s.candidates]) / n).tolist()
    total_pop = sum(p.popularity for p in s.candidates)
    pop_share = [p.popularity / total_pop if total_pop > 0 else 1.0 / n for p in s.candidates]
    if memory is not None and memory.subclass_lines(s, TREND_WINDOW_DAYS) > 0:
        recent = memory.demand_share(s, TREND_WINDOW_DAYS)
        trend = [math.log(recent[p.product_id]) - math.log(p.popularity + POPULARITY_FLOOR) for p in s.candidates]
        co = memory.copurchase(s)
        copurchase = [math.log1p(20 * co[p.product_id]) for p in s.candidates]
    else:
        trend, copurchase = [NAN] * n, [NAN] * n
    others = [r for r in neighbours if r.customer_id != s.customer.customer_id]
    if others:
        weight = sum(max(r.similarity, 0.0) + 1e-3 for r in others)
        share = [
            sum(max(r.similarity, 0.0) + 1e-3 for r in others if p.product_id in r.product_ids) / weight
            for p in s.candidates
        ]
        count = [float(sum(p.product_id in r.product_ids for r in others)) for p in s.candidates]
    else:
        share, count = [NAN] * n, [NAN] * n
    base = [list(r) for r in zip(logpop, _rel(logpop), rank, pop_share, trend, copurchase, share, count, strict=True)]
    return [b + a for b, a in zip(base, attrs.rows(s), strict=True)]


def estimated_rho(s: ChoiceSituation) -> float:
    """rho's discount sensitivity: the situation's style when given, else from what the customer paid vs regular."""
    if s.style is not None:
        return s.style.discount_sensitivity
    paid = [
        (h.times_bought, h.mean_price_paid / c.regular_price)
        for c in s.candidates
        if (h := s.own_history.get(c.product_id)) and h.mean_price_paid and c.regular_price > 0
    ]
    if not paid:
        return NAN
    ratio = sum(n * r for n, r in paid) / sum(n for n, _ in paid)
    return max(0.0, min(1.0, 0.5 + 2.5 * (1.0 - ratio)))


def price_rows(s: ChoiceSituation) -> list[list[float]]:
    n = len(s.candidates)
    logp = [math.log(max(p.price, 0.01)) for p in s.candidates]
    mean, low = sum(logp) / n, min(logp)
    rank = (rankdata([p.price for p in s.candidates]) / n).tolist()
    level = customer_price_level(s)
    rho = estimated_rho(s)
    rows = []
    for p, lp, rk in zip(s.candidates, logp, rank, strict=True):
        discount = 0.0 if p.regular_price <= 0 else max(-1.0, min(1.0, 1.0 - p.price / p.regular_price))
        over_regular = lp - math.log(max(p.regular_price, 0.01)) if p.regular_price > 0 else NAN
        over_level = lp - math.log(level) if level else NAN
        rows.append(
            [lp - mean, discount, rk, over_regular, over_level, abs(over_level), rho, rho * discount, lp, lp - low]
        )
    return rows


def gl_loyalty(s: ChoiceSituation) -> dict[str, float]:
    """Guadagni-Little loyalty: exponential smoothing of 'bought it' over the customer's purchase
    occasions in the subclass (oldest first), started from the customer's own-history shares."""
    counts = {p.product_id: (h.times_bought if (h := s.own_history.get(p.product_id)) else 0) for p in s.candidates}
    total = sum(counts.values())
    loyalty = {p: (c / total if total else 1.0 / len(counts)) for p, c in counts.items()}
    for basket in reversed(s.recent_baskets):  # recent_baskets are most recent first
        bought = {i.product_id for i in basket.items if i.subclass == s.subclass}
        if bought:
            for p in loyalty:
                loyalty[p] = GL_SMOOTHING * loyalty[p] + (1 - GL_SMOOTHING) * float(p in bought)
    return loyalty


def persona_rows(
    s: ChoiceSituation, neighbours: Sequence[RetrievedRecord], hidden: HiddenFactors | None
) -> list[list[float]]:
    loyalty = gl_loyalty(s)
    total = sum(h.times_bought for h in s.own_history.values())
    total_units = sum(h.total_quantity for h in s.own_history.values())
    # the candidate the customer bought most recently (repeat of the last choice); None without history
    dated = [(h.last_date, pid) for pid, h in s.own_history.items() if h.last_date and pid in s.candidate_ids]
    last_day = max(dated)[0] if dated else None
    own = [r for r in neighbours if r.customer_id == s.customer.customer_id]
    logp = [math.log(max(p.price, 0.01)) for p in s.candidates]
    mean_logp = sum(logp) / len(logp)
    rows = []
    for p, lp in zip(s.candidates, logp, strict=True):
        h = s.own_history.get(p.product_id)
        times = h.times_bought if h else 0
        days = (s.date - h.last_date).days if h and h.last_date else None
        in_recent = sum(i.product_id == p.product_id for b in s.recent_baskets for i in b.items)
        retrieved = sum(p.product_id in r.product_ids for r in own) / len(own) if own else NAN
        if hidden is not None:
            z = [
                hidden.budget_pressure.value * (lp - mean_logp),
                hidden.stock_up_intent.value,
                hidden.brand_attachment.value * math.log1p(times),
                NAN if hidden.days_since_last is None else hidden.days_since_last,
                hidden.price_level,
            ]
        else:
            z = [NAN] * 5
        rows.append(
            [
                math.log1p(times),
                math.exp(-days / 30.0) if days is not None else 0.0,
                float(days) if days is not None else NAN,
                float(in_recent),
                loyalty[p.product_id],
                times / total if total else 0.0,
                (h.total_quantity / total_units) if h and total_units else 0.0,
                NAN if last_day is None else float(bool(h and h.last_date == last_day)),
                retrieved,
                *z,
            ]
        )
    return rows


def market_shares(s: ChoiceSituation, memory: PopulationMemory | None) -> list[float] | None:
    """The market signal renormalised over the offered candidates: the situation's own mean-field
    signal (popularity discounted by scarcity) when it carries one, else the population's demand
    over the last two weeks from the memory; None when there is neither."""
    if s.market is not None and s.market.popularity:
        raw = [
            s.market.popularity.get(p.product_id, 0.0) * (1.0 - s.market.scarcity.get(p.product_id, 0.0))
            for p in s.candidates
        ]
        total = sum(raw)
        if total > 0:
            return [(r + 1e-3) / (total + 1e-3 * len(raw)) for r in raw]
    if memory is not None and memory.subclass_lines(s, MARKET_WINDOW_DAYS) > 0:
        share = memory.demand_share(s, MARKET_WINDOW_DAYS)
        total = sum(share.values())
        return [share[p.product_id] / total for p in s.candidates]
    return None


def role_matrix(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=float)
