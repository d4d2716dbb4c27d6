"""Reconstruction of the hidden factors Z (the paper's X_hid) from history and neighbours.

MALLES reconstructs latent drivers of a purchase that the observed features X_obs do not
show. Here Z is estimated by an attention-style weighting over past *episodes* (what a
customer bought in the decision's subclass on one day):

* the customer's own episodes (from ``recent_baskets``, ``own_history`` and the memory's
  own-customer hits) get a key similarity of 1.0;
* retrieved neighbours (other customers' episodes) keep their retrieval similarity;
* the attention weight of an episode is ``softmax(similarity / temperature)`` times a
  recency decay ``0.5 ** (age_days / half_life_days)``, renormalised.

From the weighted episodes:

* ``usual_quantity`` = weighted mean of units per episode;
* ``price_level`` = weighted mean of paid price / regular price (1.0 = pays regular);
* ``days_since_last`` = days since the customer's own latest episode in the subclass;
* ``budget_pressure`` = 0.5 + 2.5 x (1 - price_level), clipped to [0, 1]: a customer who
  usually pays 20% below regular (hunts discounts) gets 1.0, one paying regular 0.5;
* ``stock_up_intent`` rises with the usual quantity relative to the candidates' population
  median quantity, and with how overdue the customer is against their own rhythm (mean
  interval between own episodes);
* ``brand_attachment`` is the largest share of the customer's own purchases of one candidate,
  shrunk towards 0 when there are few purchases.

Every factor carries a provenance string naming what it was computed from.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from malles_graph.models import ChoiceSituation, Factor, HiddenFactors
from malles_graph.retail.retrieval_api import RetrievedRecord

OWN_SIMILARITY = 1.0


@dataclass(frozen=True)
class Episode:
    """One past purchase episode in the decision's subclass, as the attention sees it."""

    date: dt.date
    quantity: float
    price_ratio: float | None
    similarity: float
    own: bool
    source: str


@dataclass(frozen=True)
class Reconstruction:
    """Z plus the attention weights behind it (for inspection and tests)."""

    hidden: HiddenFactors
    episodes: list[Episode]
    weights: list[float]


def own_episodes(situation: ChoiceSituation) -> list[Episode]:
    """The customer's own episodes in the subclass, from recent baskets (prices vs candidates' regular)."""
    regular = {c.product_id: c.regular_price for c in situation.candidates}
    out = []
    for basket in situation.recent_baskets:
        items = [i for i in basket.items if i.subclass == situation.subclass]
        if not items or basket.date >= situation.date:
            continue
        qty = sum(i.quantity for i in items)
        ratios = [i.unit_price / regular[i.product_id] for i in items if regular.get(i.product_id)]
        ratio = sum(ratios) / len(ratios) if ratios else None
        out.append(Episode(basket.date, float(qty), ratio, OWN_SIMILARITY, True, "recent basket"))
    return out


def neighbour_episodes(situation: ChoiceSituation, records: Sequence[RetrievedRecord]) -> list[Episode]:
    """Retrieved records as episodes; the customer's own records count as own (similarity 1)."""
    seen = {(e.date, e.quantity) for e in own_episodes(situation)}
    out = []
    for r in records:
        if r.date >= situation.date:  # never trust a retriever with the future
            continue
        own = r.customer_id == situation.customer.customer_id
        if own and (r.date, float(r.quantity)) in seen:
            continue
        sim = OWN_SIMILARITY if own else max(0.0, float(r.similarity))
        out.append(Episode(r.date, float(r.quantity), r.price_ratio, sim, own, "memory (own)" if own else "neighbour"))
    return out


def attention_weights(
    episodes: Sequence[Episode], today: dt.date, temperature: float = 0.1, half_life_days: float = 30.0
) -> list[float]:
    """softmax(similarity / temperature) x recency decay, normalised to sum 1."""
    if not episodes:
        return []
    logits = [e.similarity / temperature for e in episodes]
    top = max(logits)
    raw = [
        math.exp(lg - top) * 0.5 ** (max(0, (today - e.date).days) / half_life_days)
        for lg, e in zip(logits, episodes, strict=True)
    ]
    total = sum(raw)
    return [w / total for w in raw]


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def reconstruct(
    situation: ChoiceSituation,
    neighbours: Sequence[RetrievedRecord] = (),
    temperature: float = 0.1,
    half_life_days: float = 30.0,
) -> Reconstruction:
    """Estimate Z for ``situation`` from its history and retrieved ``neighbours``."""
    episodes = own_episodes(situation) + neighbour_episodes(situation, neighbours)
    weights = attention_weights(episodes, situation.date, temperature, half_life_days)
    n_own = sum(e.own for e in episodes)
    n_nb = len(episodes) - n_own
    basis = f"{n_own} own + {n_nb} neighbour episodes"
    cands = situation.candidates
    customer = situation.customer

    # usual quantity: weighted episodes, else the customer's mean units per line, else 1
    if episodes:
        usual = sum(w * e.quantity for w, e in zip(weights, episodes, strict=True))
        usual_src = basis
    elif customer.mean_quantity > 0:
        usual, usual_src = customer.mean_quantity, "customer mean units per line (no episodes)"
    else:
        usual, usual_src = 1.0, "no history: assumed 1 unit"

    priced = [(w, e.price_ratio) for w, e in zip(weights, episodes, strict=True) if e.price_ratio is not None]
    own_paid = [
        (h.times_bought, h.mean_price_paid / c.regular_price)
        for c in cands
        if (h := situation.own_history.get(c.product_id)) and h.mean_price_paid and c.regular_price > 0
    ]
    if priced:
        total = sum(w for w, _ in priced)
        price_level = sum(w * r for w, r in priced) / total
        price_src = f"paid/regular over {len(priced)} episodes"
    elif own_paid:
        price_level = sum(n * r for n, r in own_paid) / sum(n for n, _ in own_paid)
        price_src = f"paid/regular over {len(own_paid)} own candidate histories"
    else:
        price_level, price_src = 1.0, "no price history: assumed regular"

    # days since the customer's own latest purchase in the subclass
    own_dates = [e.date for e in episodes if e.own]
    own_dates += [h.last_date for h in situation.own_history.values() if h.last_date and h.last_date < situation.date]
    days_since = float((situation.date - max(own_dates)).days) if own_dates else None
    distinct = sorted(set(own_dates))
    rhythm = (distinct[-1] - distinct[0]).days / (len(distinct) - 1) if len(distinct) >= 2 else None

    budget = _clip(0.5 + 2.5 * (1.0 - price_level))
    budget_src = f"pays {price_level:.2f}x regular, {price_src}"

    medians = [c.median_quantity for c in cands if c.median_quantity]
    ref_q = sum(medians) / len(medians) if medians else 1.0
    bulk = usual / (usual + ref_q)
    if rhythm and days_since is not None and rhythm > 0:
        due = _clip(days_since / (2 * rhythm))
        stock = _clip(0.6 * bulk + 0.4 * due)
        stock_src = f"usual {usual:.1f} vs median {ref_q:.1f} units, {days_since:.0f}d since last, rhythm {rhythm:.0f}d"
    else:
        stock = _clip(bulk)
        stock_src = f"usual {usual:.1f} vs median {ref_q:.1f} units ({usual_src})"

    counts = [h.times_bought for h in situation.own_history.values()]
    bought = sum(counts)
    if bought:
        brand = max(counts) / bought * (bought / (bought + 1))
        brand_src = f"top candidate share of {bought} own purchases"
    else:
        brand, brand_src = 0.0, "never bought any candidate"

    hidden = HiddenFactors(
        budget_pressure=Factor(value=round(budget, 4), provenance=budget_src),
        stock_up_intent=Factor(value=round(stock, 4), provenance=stock_src),
        brand_attachment=Factor(value=round(_clip(brand), 4), provenance=brand_src),
        usual_quantity=round(max(0.0, usual), 4),
        price_level=round(max(0.0, price_level), 4),
        days_since_last=days_since,
    )
    return Reconstruction(hidden=hidden, episodes=episodes, weights=weights)


def usual_quantity(situation: ChoiceSituation, hidden: HiddenFactors | None) -> float:
    """The customer's usual units per purchase: Z when estimated, else history, else 1."""
    if hidden is not None:
        return max(1.0, hidden.usual_quantity)
    own = [h.total_quantity / h.times_bought for h in situation.own_history.values() if h.times_bought]
    if own:
        return max(1.0, sum(own) / len(own))
    return max(1.0, situation.customer.mean_quantity)
