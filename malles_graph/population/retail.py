"""The retail product environment: a shelf whose prices, promotions and stock respond to demand.

The rule (one round = one market period; parameters from ``RetailEnvironmentConfig``):

1. Demand. The population's units of product j this round are
   ``D_j = N x visit_rate x u_j`` where u_j is the expected units per customer and subclass
   from the weighted representatives (:func:`malles_graph.population.meanfield.aggregate`).
2. Sales and stock. ``sold_j = min(D_j, S_j)``, lost sales ``D_j - sold_j``, then
   ``S_j <- S_j - sold_j + restock``. A product with no stock left leaves the candidates of
   the next round (it stays in the market state, marked sold out, and returns if restocked).
3. Prices. Cover ``c_j = S_j / D_j`` (rounds of stock left at this demand; infinite without
   demand) is compared with ``target_cover`` T: ``z_j = (T^2 - c_j^2) / (T^2 + c_j^2)`` in
   [-1, 1] (= tanh(ln(T / c_j))), and ``p_j <- p_j x (1 + price_step x z_j)`` clipped to
   ``[regular x (1 - max_discount), regular x (1 + max_markup)]``. Scarce products get
   dearer; overstocked ones go on promotion (price below regular: the ``discount`` the
   agents see in each candidate).
4. Signals to agents (``MarketSignal``): popularity = m restricted to the products
   (renormalised), scarcity = ``clip(1 - c_j / T, 0, 1)`` (1 when sold out).

m0 is the reference-period popularity of the shelf's products (``Product.popularity``),
renormalised, so the first round's agents are told what the data says the crowd buys.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from malles_graph.agents import AgentOutcome
from malles_graph.models import NONE_PRODUCT, ChoiceSituation, MarketSignal, Product
from malles_graph.population.environment import AgentSpec, AgentTask, EnvironmentStep
from malles_graph.population.meanfield import Aggregate, normalise
from malles_graph.scenario import RetailEnvironmentConfig


class ProductState(BaseModel):
    """One product on the shelf as the environment tracks it."""

    model_config = ConfigDict(extra="forbid")

    product: Product
    stock: float = Field(ge=0)
    last_demand: float = Field(default=0.0, ge=0)
    sold_total: float = Field(default=0.0, ge=0)
    lost_total: float = Field(default=0.0, ge=0)

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


class RetailMarket(BaseModel):
    """The whole market state (checkpointed as a dict)."""

    model_config = ConfigDict(extra="forbid")

    n_customers: int = Field(ge=1)
    n_subclasses: int = Field(default=1, ge=1, description="subclasses each customer decides in per round")
    products: dict[str, ProductState]


def cover(stock: float, demand: float) -> float:
    """Rounds of stock left at this demand (infinite without demand)."""
    return math.inf if demand <= 0 else stock / demand


def price_pressure(cover_rounds: float, target: float) -> float:
    """z = (T^2 - c^2) / (T^2 + c^2) in [-1, 1]: +1 when sold out, -1 with no demand."""
    if math.isinf(cover_rounds):
        return -1.0
    return (target**2 - cover_rounds**2) / (target**2 + cover_rounds**2)


def next_price(state: ProductState, config: RetailEnvironmentConfig) -> float:
    regular = state.product.regular_price
    z = price_pressure(cover(state.stock, state.last_demand), config.target_cover)
    price = state.product.price * (1 + config.price_step * z)
    low, high = regular * (1 - config.max_discount), regular * (1 + config.max_markup)
    return round(min(max(price, low), high), 4) if regular > 0 else price


def scarcity(state: ProductState, config: RetailEnvironmentConfig) -> float:
    if not state.in_stock:
        return 1.0
    c = cover(state.stock, state.last_demand)
    return 0.0 if math.isinf(c) else min(1.0, max(0.0, 1.0 - c / config.target_cover))


class RetailEnvironment:
    """The product environment of the retail scenario (see the module docstring for the rule)."""

    name = "retail"

    def __init__(self, config: RetailEnvironmentConfig | None = None) -> None:
        self.config = config or RetailEnvironmentConfig()

    # ------------------------------------------------------------------ start
    def initial(self, agents: list[AgentSpec], n_customers: int) -> tuple[dict[str, Any], dict[str, float]]:
        shelf: dict[str, Product] = {}
        for agent in agents:
            for product in _base(agent).candidates:
                shelf.setdefault(product.product_id, product)
        market = RetailMarket(
            n_customers=n_customers,
            n_subclasses=max(1, len({_base(a).subclass for a in agents})),
            products={
                pid: ProductState(product=p, stock=float(self.config.initial_stock)) for pid, p in sorted(shelf.items())
            },
        )
        m0 = normalise({pid: max(p.popularity, 1e-9) for pid, p in shelf.items()})
        m0[NONE_PRODUCT] = 0.0
        return market.model_dump(mode="json"), m0

    # ------------------------------------------------------------------ each round
    def situations(
        self, market: dict[str, Any], m: dict[str, float], agents: list[AgentSpec], number: int
    ) -> list[AgentTask]:
        state = RetailMarket.model_validate(market)
        signal = self.signal(state, m)
        tasks = []
        for agent in agents:
            base = _base(agent)
            offered = [
                state.products[c.product_id].product
                for c in base.candidates
                if c.product_id in state.products and state.products[c.product_id].in_stock
            ]
            if not offered:
                # Nothing left to buy is a fact of the market, not a guess about the agent.
                outcome = AgentOutcome(
                    agent_id=agent.agent_id,
                    ok=True,
                    choice=NONE_PRODUCT,
                    quantity=0,
                    details={"computed": "every candidate is sold out"},
                )
                tasks.append(AgentTask(agent_id=agent.agent_id, archetype=agent.archetype, weight=agent.weight,
                                       outcome=outcome))
                continue
            situation = base.model_copy(
                update={
                    "situation_id": f"{base.situation_id}@r{number}",
                    "candidates": offered,
                    "market": MarketSignal(
                        popularity={p.product_id: signal.popularity.get(p.product_id, 0.0) for p in offered},
                        scarcity={p.product_id: signal.scarcity.get(p.product_id, 0.0) for p in offered},
                    ),
                }
            )
            tasks.append(
                AgentTask(agent_id=agent.agent_id, archetype=agent.archetype, weight=agent.weight, situation=situation)
            )
        return tasks

    def signal(self, state: RetailMarket, m: dict[str, float]) -> MarketSignal:
        popularity = normalise({pid: m.get(pid, 0.0) for pid in state.products})
        return MarketSignal(
            popularity={k: round(v, 4) for k, v in popularity.items()},
            scarcity={pid: round(scarcity(s, self.config), 4) for pid, s in state.products.items()},
        )

    def update(self, market: dict[str, Any], aggregate: Aggregate, number: int) -> EnvironmentStep:
        state = RetailMarket.model_validate(market)
        # Agent weights sum to 1 over all (representative, subclass) tasks, so units per customer
        # per subclass are the aggregate's figure times the number of subclasses.
        shoppers = state.n_customers * self.config.visit_rate * state.n_subclasses
        demand: dict[str, float] = {}
        sold_round = lost_round = revenue = 0.0
        for pid, s in state.products.items():
            d = shoppers * aggregate.units_per_customer.get(pid, 0.0)
            sold = min(d, s.stock)
            demand[pid] = round(d, 4)
            sold_round += sold
            lost_round += d - sold
            revenue += sold * s.product.price
            s.stock = s.stock - sold
            s.last_demand = d
            s.sold_total += sold
            s.lost_total += d - sold
            # Price from the cover before restocking: the shelf the customers just emptied.
            new_price = next_price(s, self.config)
            s.stock += self.config.restock
            s.product = s.product.model_copy(update={"price": new_price})
        prices = {pid: s.product.price for pid, s in state.products.items()}
        on_promotion = sum(1 for s in state.products.values() if s.product.price < s.product.regular_price * 0.995)
        figures = {
            "units_demanded": round(sum(demand.values()), 4),
            "units_sold": round(sold_round, 4),
            "units_lost": round(lost_round, 4),
            "revenue": round(revenue, 4),
            "sold_out": float(sum(1 for s in state.products.values() if not s.in_stock)),
            "on_promotion": float(on_promotion),
            "mean_price_index": round(
                sum(s.product.price / s.product.regular_price for s in state.products.values() if s.product.regular_price)
                / max(1, len(state.products)),
                4,
            ),
        }
        return EnvironmentStep(market=state.model_dump(mode="json"), demand=demand, prices=prices, figures=figures)


def _base(agent: AgentSpec) -> ChoiceSituation:
    base = agent.base
    if isinstance(base, dict):
        base = ChoiceSituation.model_validate(base)
    if not isinstance(base, ChoiceSituation):
        raise TypeError(f"retail agent {agent.agent_id!r} needs a ChoiceSituation template, got {type(base).__name__}")
    return base
