"""Run a purchasing policy over held-out periods of real demand.

Each period, per item: (1) the order placed ``lead_time`` periods ago arrives; (2) the policy sees
the state (the formula variables) and orders; the order is rounded to whole units and raised
to the manufacturer's minimum order when it is positive but smaller; with zero lead time it
arrives at once; (3) real Ta Feng demand is served from stock, the rest is lost; (4) what is
left carries over and pays the holding cost. At the start, one forecast of stock is on hand
and one forecast per lead-time period is in transit (bought before the window). At the end,
stock on hand and in transit is valued at the salvage value. Demand is observed in full (also
the lost part), as the data gives it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from malles_graph.wholesale.demand import ItemDemand
from malles_graph.wholesale.economics import Economics, resolve_economics
from malles_graph.wholesale.formula import FormulaError
from malles_graph.wholesale.options import WholesaleOptions


class Policy(Protocol):
    name: str

    def describe(self) -> str: ...

    def order(self, state: Mapping[str, float], item: ItemDemand, economics: Economics) -> float: ...


def state_variables(
    observed: Iterable[float], inventory: float, on_order: float, period: int, economics: Economics, window: int
) -> dict[str, float]:
    """The values of the formula variables (see formula.VARIABLES) for one decision."""
    demand = np.asarray(list(observed), dtype=float)
    recent = demand[-window:]
    first_tier = economics.tiers[0] if economics.tiers else (0, 0.0)
    return {
        "forecast": float(recent.mean()) if len(recent) else 0.0,
        "demand_sd": float(recent.std(ddof=1)) if len(recent) > 1 else 0.0,
        "last_demand": float(demand[-1]) if len(demand) else 0.0,
        "inventory": float(inventory),
        "on_order": float(on_order),
        "lead_time": float(economics.lead_time),
        "price": economics.price,
        "cost": economics.cost,
        "discount": float(first_tier[1]),
        "discount_qty": float(first_tier[0]),
        "min_order": float(economics.min_order),
        "holding_cost": economics.holding_cost,
        "critical_ratio": economics.critical_ratio,
        "period": float(period),
    }


@dataclass
class PeriodRecord:
    policy: str
    item: str
    period: str  # ISO date of the period start
    index: int  # 1-based position in the held-out window
    demand: float
    arrivals: float
    order: float  # units ordered (after rounding and the minimum order)
    proposed: float  # what the policy asked for, before rounding (NaN when it failed)
    unit_price: float
    sales: float
    lost: float
    leftover: float  # on hand at the end of the period
    revenue: float
    purchase: float
    holding: float
    penalty: float
    profit: float
    error: str | None
    state: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        data = asdict(self)
        state = data.pop("state")
        return {**data, **{f"x_{k}": v for k, v in state.items()}}


@dataclass
class SimulationResult:
    policy: str
    rule: str
    records: list[PeriodRecord]
    salvage: float
    leftover_units: float
    in_transit_units: float

    @property
    def summary(self) -> dict[str, float | int | str]:
        demand = sum(r.demand for r in self.records)
        sales = sum(r.sales for r in self.records)
        figures = {
            "profit": sum(r.profit for r in self.records) + self.salvage,
            "revenue": sum(r.revenue for r in self.records),
            "purchase_cost": sum(r.purchase for r in self.records),
            "holding_cost": sum(r.holding for r in self.records),
            "fill_rate": sales / demand if demand > 0 else 1.0,
            "stockouts": sum(1 for r in self.records if r.lost > 0),
            "lost_units": sum(r.lost for r in self.records),
            "leftover_units": self.leftover_units,
            "in_transit_units": self.in_transit_units,
            "units_ordered": sum(r.order for r in self.records),
            "orders_placed": sum(1 for r in self.records if r.order > 0),
            "invalid_orders": sum(1 for r in self.records if r.error),
            "periods": len({r.index for r in self.records}),
        }
        return {"policy": self.policy, "rule": self.rule, **{k: float(v) for k, v in figures.items()}}


def simulate(policy: Policy, items: list[ItemDemand], options: WholesaleOptions) -> SimulationResult:
    records: list[PeriodRecord] = []
    salvage = leftover_total = transit_total = 0.0
    for item in items:
        economics = resolve_economics(options, item)
        observed = list(item.history)
        start = state_variables(observed, 0, 0, 0, economics, options.forecast_window)["forecast"]
        inventory = float(options.initial_inventory) if options.initial_inventory is not None else float(round(start))
        pipeline: deque[float] = deque([float(round(start))] * economics.lead_time)
        for index, (day, demand) in enumerate(zip(item.holdout_periods, item.holdout, strict=True), start=1):
            arrivals = pipeline.popleft() if economics.lead_time else 0.0
            inventory += arrivals
            state = state_variables(observed, inventory, sum(pipeline), index, economics, options.forecast_window)
            proposed, error = _ask(policy, state, item, economics)
            quantity = 0.0 if error else float(round(proposed))
            if 0 < quantity < economics.min_order:
                quantity = float(economics.min_order)
            if economics.lead_time:
                pipeline.append(quantity)
            else:
                inventory += quantity
            sales = min(inventory, demand)
            lost = demand - sales
            inventory -= sales
            purchase = economics.purchase_cost(quantity)
            revenue = sales * economics.price
            holding = inventory * economics.holding_cost
            penalty = lost * economics.stockout_penalty
            records.append(
                PeriodRecord(
                    policy=policy.name,
                    item=item.item_id,
                    period=day.isoformat(),
                    index=index,
                    demand=float(demand),
                    arrivals=arrivals,
                    order=quantity,
                    proposed=proposed,
                    unit_price=economics.unit_price(quantity) if quantity else 0.0,
                    sales=sales,
                    lost=lost,
                    leftover=inventory,
                    revenue=revenue,
                    purchase=purchase,
                    holding=holding,
                    penalty=penalty,
                    profit=revenue - purchase - holding - penalty,
                    error=error,
                    state=state,
                )
            )
            observed.append(float(demand))
        in_transit = float(sum(pipeline))
        salvage += (inventory + in_transit) * economics.salvage_value
        leftover_total += inventory
        transit_total += in_transit
    return SimulationResult(policy.name, policy.describe(), records, salvage, leftover_total, transit_total)


def _ask(policy: Policy, state: Mapping[str, float], item: ItemDemand, economics: Economics) -> tuple[float, str | None]:
    """The policy's order, or NaN and the reason when it gives no valid quantity (recorded, ordered as 0)."""
    try:
        proposed = float(policy.order(state, item, economics))
    except FormulaError as exc:
        return math.nan, str(exc)
    if not math.isfinite(proposed):
        return math.nan, f"non-finite order {proposed}"
    if proposed < 0:
        return proposed, f"negative order {proposed:.2f}"
    return proposed, None


def validation_states(items: list[ItemDemand], options: WholesaleOptions) -> list[dict[str, float]]:
    """Representative decision states from the history: empty, normal and overfull stock, with and without
    stock in transit. A rule must give a finite, non-negative order in all of them."""
    states = []
    for item in items:
        economics = resolve_economics(options, item)
        for end in range(max(1, item.history_len - 3), item.history_len + 1):
            observed = item.history[:end]
            forecast = float(np.mean(observed[-options.forecast_window :]))
            for inventory in (0.0, forecast, 4 * forecast + 10):
                for on_order in (0.0, forecast * economics.lead_time):
                    states.append(
                        state_variables(observed, inventory, on_order, 1, economics, options.forecast_window)
                    )
    # a state with no demand at all, where rules dividing by demand fail
    if items:
        economics = resolve_economics(options, items[0])
        states.append(state_variables([0.0, 0.0], 0.0, 0.0, 1, economics, options.forecast_window))
    return states
