"""The store's economics for one item, resolved from the scenario and the data."""

from __future__ import annotations

from dataclasses import dataclass

from malles_graph.wholesale.demand import ItemDemand
from malles_graph.wholesale.options import WholesaleOptions


@dataclass(frozen=True)
class Economics:
    price: float  # retail price per unit
    cost: float  # manufacturer's list price per unit
    tiers: tuple[tuple[int, float], ...]  # (min_quantity, discount) all-units tiers, increasing
    min_order: int
    order_cost: float
    lead_time: int
    holding_cost: float  # per unit per period
    stockout_penalty: float  # per unit of unmet demand
    salvage_value: float  # per unit left at the end of the window

    def discount_for(self, quantity: float) -> float:
        discount = 0.0
        for min_quantity, tier_discount in self.tiers:
            if quantity >= min_quantity:
                discount = tier_discount
        return discount

    def unit_price(self, quantity: float) -> float:
        return self.cost * (1.0 - self.discount_for(quantity))

    def purchase_cost(self, quantity: float) -> float:
        if quantity <= 0:
            return 0.0
        return quantity * self.unit_price(quantity) + self.order_cost

    @property
    def underage(self) -> float:
        """Cost of one unit too few: the lost margin plus the goodwill penalty."""
        return self.price - self.cost + self.stockout_penalty

    @property
    def overage(self) -> float:
        """Cost of one unit too many: it is held one more period (its value is kept, it carries over)."""
        return self.holding_cost

    @property
    def critical_ratio(self) -> float:
        under, over = max(self.underage, 0.0), self.overage
        if under + over <= 0:
            return 0.0
        return under / (under + over)


def resolve_economics(options: WholesaleOptions, item: ItemDemand) -> Economics:
    price = options.retail_price or item.mean_price
    cost = options.wholesale_price or price * (1.0 - options.target_margin)
    weeks_per_period = 1.0 if options.period == "week" else 1.0 / 7.0
    return Economics(
        price=price,
        cost=cost,
        tiers=tuple((t.min_quantity, t.discount) for t in options.discount_tiers),
        min_order=options.min_order,
        order_cost=options.order_cost,
        lead_time=options.lead_time,
        holding_cost=options.holding_cost_rate * cost * weeks_per_period,
        stockout_penalty=options.stockout_penalty,
        salvage_value=options.salvage_fraction * cost,
    )
