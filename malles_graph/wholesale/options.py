"""Scenario section ``wholesale:`` (see scenarios/wholesale-*.yaml).

Every field has a description and a default. Prices left empty are read from the Ta Feng data
(the item's mean retail price over the history periods); the manufacturer's list price then
follows from ``target_margin``. docs/wholesale.md explains each default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DiscountTier(BaseModel):
    """All-units volume discount: an order of at least ``min_quantity`` pays ``(1 - discount)`` per unit."""

    model_config = ConfigDict(extra="forbid")

    min_quantity: int = Field(ge=1, description="order size (units) from which the discount applies")
    discount: float = Field(gt=0, lt=1, description="fraction taken off the list price of every unit")


def default_tiers() -> list[DiscountTier]:
    return [DiscountTier(min_quantity=200, discount=0.03), DiscountTier(min_quantity=500, discount=0.06)]


class WholesaleOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # demand: Ta Feng sales aggregated to the store
    level: Literal["subclass", "product"] = Field(
        default="subclass", description="what one stocked item is: a product subclass or a single product"
    )
    items: list[str] | None = Field(
        default=None, description="subclass or product ids to stock; the busiest n_items (by units sold) when empty"
    )
    n_items: int = Field(default=3, ge=1, le=50, description="number of busiest items stocked when items is empty")
    period: Literal["week", "day"] = Field(default="week", description="length of one ordering period")
    periods: int = Field(default=8, ge=1, description="held-out periods simulated (the last complete periods)")
    history_periods: int | None = Field(
        default=None,
        ge=2,
        description="periods before the held-out window used as history (forecasts, newsvendor distribution); "
        "all earlier complete periods when empty",
    )
    forecast_window: int = Field(
        default=4, ge=1, description="periods averaged into the moving-average `forecast` and `demand_sd`"
    )
    # economics (per unit, in the data's currency, New Taiwan dollars)
    retail_price: float | None = Field(
        default=None, gt=0, description="shelf price per unit; the item's mean Ta Feng unit price when empty"
    )
    wholesale_price: float | None = Field(
        default=None,
        gt=0,
        description="manufacturer's list price per unit; retail_price * (1 - target_margin) when empty",
    )
    target_margin: float = Field(
        default=0.25, gt=0, lt=1, description="gross margin used to derive the list price when it is empty"
    )
    discount_tiers: list[DiscountTier] = Field(
        default_factory=default_tiers, description="the manufacturer's all-units volume discounts"
    )
    min_order: int = Field(default=20, ge=0, description="smallest non-zero order the manufacturer accepts (units)")
    order_cost: float = Field(default=0.0, ge=0, description="fixed cost of placing a non-zero order")
    lead_time: int = Field(default=1, ge=0, le=8, description="periods between placing an order and its arrival")
    holding_cost_rate: float = Field(
        default=0.02,
        ge=0,
        description="holding cost per unit per WEEK as a fraction of the list price (scaled by 1/7 for days)",
    )
    stockout_penalty: float = Field(
        default=0.0, ge=0, description="goodwill cost per unit of unmet demand, on top of the lost margin"
    )
    salvage_fraction: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="value of stock left at the end of the window, as a fraction of the list price "
        "(1 = valued at cost, as in accounting)",
    )
    initial_inventory: float | None = Field(
        default=None, ge=0, description="units on hand before the first held-out period; one forecast when empty"
    )
    # baselines
    service_level: float = Field(
        default=0.95, gt=0, lt=1, description="target cycle service level of the order-up-to baseline"
    )
    demand_distribution: Literal["empirical", "normal"] = Field(
        default="empirical", description="distribution of history demand used by the newsvendor baseline"
    )
    # dialogue
    dialogue_rounds: int = Field(default=1, ge=0, le=10, description="rounds of marketing, manufacturer, wholesaler")
    max_repairs: int = Field(default=2, ge=0, le=10, description="bounded repairs of an invalid purchasing rule")
    turn_max_tokens: int | None = Field(
        default=None, ge=8, description="token limit of one dialogue turn; backend.max_tokens when empty"
    )
    rule_max_tokens: int | None = Field(
        default=None, ge=16, description="token limit of the structured rule answer; backend.max_tokens when empty"
    )
    reference_rule: str | None = Field(
        default=None, description="a hand-written purchasing formula shown next to the dialogue's rule"
    )
    # symbolic regression
    sr_population: int = Field(default=400, ge=10, description="gplearn population size")
    sr_generations: int = Field(default=15, ge=1, description="gplearn generations")

    @model_validator(mode="after")
    def _checks(self) -> WholesaleOptions:
        quantities = [t.min_quantity for t in self.discount_tiers]
        if quantities != sorted(set(quantities)):
            raise ValueError(f"discount_tiers must have increasing min_quantity, got {quantities}")
        discounts = [t.discount for t in self.discount_tiers]
        if discounts != sorted(discounts):
            raise ValueError(f"discount_tiers must have non-decreasing discounts, got {discounts}")
        if self.items is not None and not self.items:
            raise ValueError("items must not be an empty list (leave it out to pick the busiest items)")
        return self
