"""Purchasing policies: a parsed formula, and the three baselines.

- newsvendor: the critical-ratio quantile of demand over the protection interval (lead time + 1
  periods), taken from the history distribution; the store orders up to it. With stock carrying
  over, the overage cost of a unit is one period of holding and the underage cost is the lost
  margin, so this is the optimal stationary base-stock level for the history distribution.
- order-up-to (base stock): a rolling target forecast * (L+1) + z * demand_sd * sqrt(L+1) at the
  scenario's service level, re-estimated every period from the moving window.
- last-period demand: order what was demanded last period (lot-for-lot chasing).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.stats import norm

from malles_graph.wholesale.demand import ItemDemand
from malles_graph.wholesale.economics import Economics
from malles_graph.wholesale.formula import FormulaError, PurchasingFormula


def newsvendor_quantity(samples: np.ndarray, critical_ratio: float, distribution: str = "empirical") -> float:
    """The critical-ratio quantile of the demand distribution behind ``samples``.

    empirical: the smallest sample value q with F(q) >= critical_ratio (inverted CDF);
    normal: mean + sd * Phi^-1(critical_ratio).
    """
    samples = np.asarray(samples, dtype=float)
    if samples.size == 0:
        raise ValueError("newsvendor_quantity needs at least one demand sample")
    ratio = min(max(critical_ratio, 0.0), 1.0)
    if distribution == "normal":
        sd = float(samples.std(ddof=1)) if samples.size > 1 else 0.0
        if ratio in (0.0, 1.0):
            return float(samples.mean()) if sd == 0 else (0.0 if ratio == 0 else float(samples.max()))
        return max(0.0, float(samples.mean() + sd * norm.ppf(ratio)))
    if distribution == "empirical":
        return float(np.quantile(samples, ratio, method="inverted_cdf"))
    raise ValueError(f"unknown demand distribution {distribution!r}; use 'empirical' or 'normal'")


def protection_demand(history: np.ndarray, lead_time: int) -> np.ndarray:
    """Demand summed over every run of lead_time + 1 consecutive history periods."""
    span = lead_time + 1
    history = np.asarray(history, dtype=float)
    if len(history) < span:
        return np.array([history.sum() * span / max(len(history), 1)])
    return np.convolve(history, np.ones(span), mode="valid")


def _position(state: Mapping[str, float]) -> float:
    return state["inventory"] + state["on_order"]


class FormulaPolicy:
    def __init__(self, name: str, formula: PurchasingFormula) -> None:
        self.name = name
        self.formula = formula

    def describe(self) -> str:
        return str(self.formula.expr)

    def order(self, state: Mapping[str, float], item: ItemDemand, economics: Economics) -> float:
        quantity = self.formula.evaluate(state)
        if quantity < 0:
            raise FormulaError(f"the formula orders a negative quantity ({quantity:.2f})")
        return quantity


class NewsvendorPolicy:
    name = "newsvendor"

    def __init__(self, distribution: str = "empirical") -> None:
        self.distribution = distribution
        self._levels: dict[str, float] = {}

    def describe(self) -> str:
        return f"up to F^-1(critical ratio), {self.distribution} history demand over L+1 periods"

    def level(self, item: ItemDemand, economics: Economics) -> float:
        if item.item_id not in self._levels:
            samples = protection_demand(item.history, economics.lead_time)
            self._levels[item.item_id] = newsvendor_quantity(samples, economics.critical_ratio, self.distribution)
        return self._levels[item.item_id]

    def order(self, state: Mapping[str, float], item: ItemDemand, economics: Economics) -> float:
        return max(0.0, self.level(item, economics) - _position(state))


class BaseStockPolicy:
    name = "order-up-to"

    def __init__(self, service_level: float = 0.95) -> None:
        self.service_level = service_level
        self.z = float(norm.ppf(service_level))

    def describe(self) -> str:
        return f"Max(0, forecast*(L+1) + {self.z:.2f}*demand_sd*sqrt(L+1) - inventory - on_order)"

    def order(self, state: Mapping[str, float], item: ItemDemand, economics: Economics) -> float:
        span = state["lead_time"] + 1
        target = state["forecast"] * span + self.z * state["demand_sd"] * np.sqrt(span)
        return max(0.0, target - _position(state))


class LastDemandPolicy:
    name = "last-period demand"

    def describe(self) -> str:
        return "last_demand"

    def order(self, state: Mapping[str, float], item: ItemDemand, economics: Economics) -> float:
        return state["last_demand"]


def baselines(service_level: float = 0.95, distribution: str = "empirical") -> list:
    return [NewsvendorPolicy(distribution), BaseStockPolicy(service_level), LastDemandPolicy()]
