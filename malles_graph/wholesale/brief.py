"""The texts the three roles read: market facts, demand outlook, the manufacturer's terms, the rule contract.

Only history periods are shown: the held-out window is what the rule is tested on.
"""

from __future__ import annotations

import numpy as np

from malles_graph.wholesale.demand import ItemDemand
from malles_graph.wholesale.economics import resolve_economics
from malles_graph.wholesale.formula import FUNCTIONS, VARIABLES
from malles_graph.wholesale.options import WholesaleOptions


def demand_outlook(items: list[ItemDemand], options: WholesaleOptions, shown: int = 6) -> str:
    """Marketing's data: recent sales, trend against the window, promotion weeks (price 5% under the mean)."""
    lines = []
    for item in items:
        history = item.history
        recent = history[-shown:]
        window = history[-options.forecast_window :]
        mean, sd = float(window.mean()), float(window.std(ddof=1)) if len(window) > 1 else 0.0
        trend = float(history[-1] / mean) if mean > 0 else 1.0
        promotions = []
        if item.prices is not None:
            hist_prices = item.prices[: item.history_len]
            for day, price in zip(item.periods[: item.history_len], hist_prices, strict=True):
                if np.isfinite(price) and price < 0.95 * item.mean_price:
                    promotions.append(f"{day.isoformat()} ({price:.1f})")
        days = item.periods[: item.history_len]
        peak, low = int(np.argmax(history)), int(np.argmin(history))
        seasonality = (
            f"peak {options.period} {days[peak].isoformat()} ({int(history[peak])}), "
            f"lowest {days[low].isoformat()} ({int(history[low])})"
        )
        if options.period == "day" and len(history) >= 14:
            weekday = [float(np.mean(history[i::7])) for i in range(7)]
            names = [days[i].strftime("%a") for i in range(7)]
            overall = float(np.mean(history)) or 1.0
            seasonality += "; weekday profile " + " ".join(
                f"{n} {w / overall:.2f}" for n, w in zip(names, weekday, strict=True)
            )
        lines.append(
            f"- item {item.item_id}: {seasonality}; last {len(recent)} {options.period}s sold "
            f"{', '.join(str(int(u)) for u in recent)} units; mean of last {len(window)} = {mean:.0f}, "
            f"sd = {sd:.0f}; last {options.period} is {trend:.2f} x that mean; "
            f"promotion {options.period}s (price under 95% of {item.mean_price:.1f}): "
            f"{', '.join(promotions[-3:]) or 'none'}"
        )
    return "\n".join(lines)


def market(items: list[ItemDemand], options: WholesaleOptions) -> str:
    """The store and its items in a few lines."""
    level = "product subclass" if options.level == "subclass" else "product"
    first = items[0].holdout_periods[0].isoformat() if items and items[0].holdout_periods else "?"
    return (
        f"A grocery store (Ta Feng, Taiwan) stocks {len(items)} {level}(s): "
        f"{', '.join(i.item_id for i in items)}. One period is one {options.period}. "
        f"The next period to order for starts {first}."
    )


def terms(items: list[ItemDemand], options: WholesaleOptions) -> str:
    """The manufacturer's terms (scenario parameters)."""
    tiers = "; ".join(f"{t.discount:.0%} off every unit from {t.min_quantity} units" for t in options.discount_tiers)
    prices = ", ".join(f"{i.item_id}: {resolve_economics(options, i).cost:.2f}" for i in items)
    return (
        f"list price per unit: {prices}. Volume discounts (all units): {tiers or 'none'}. "
        f"Minimum order: {options.min_order} units. Lead time: {options.lead_time} {options.period}(s). "
        f"Fixed cost per order: {options.order_cost:.2f}."
    )


def economics(items: list[ItemDemand], options: WholesaleOptions) -> str:
    """The store's own economics per item."""
    lines = []
    for item in items:
        e = resolve_economics(options, item)
        lines.append(
            f"- item {item.item_id}: retail price {e.price:.2f}, list price {e.cost:.2f}, "
            f"holding cost {e.holding_cost:.3f} per unit per {options.period}, lost sale costs "
            f"{e.underage:.2f} in margin, critical ratio {e.critical_ratio:.3f}"
        )
    lines.append("Unsold stock carries over to the next period; unmet demand is lost.")
    return "\n".join(lines)


def variables_text() -> str:
    return "\n".join(f"- {name}: {meaning}" for name, meaning in VARIABLES.items())


def functions_text() -> str:
    return ", ".join(sorted({name for name in FUNCTIONS if name[0].isupper() or name in ("sqrt", "log", "exp")}))
