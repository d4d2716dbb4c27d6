"""Mean-field maths: aggregate weighted decisions, damped update of m, distance, convergence.

m is the population's choice distribution over options (product ids plus ``"none"``). Each
round the representatives' decisions, weighted by their archetype mass, give mu(t); then

    m(t+1) = (1 - a) m(t) + a mu(t)          (a = damping in (0, 1])

and the run stops when the total-variation distance TV(m(t+1), m(t)) = a TV(mu(t), m(t)) falls
below epsilon, or after the round limit. Failed decisions (validation failures after the
bounded repairs) are counted in ``failed_share`` and left out of mu, which is renormalised
over the successful mass; a round where every decision failed leaves m unchanged and never
counts as converged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field

from malles_graph.errors import MallesError


class WeightedOutcome(BaseModel):
    """One representative's decision as the aggregation sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str
    archetype: int = Field(ge=0)
    weight: float = Field(ge=0, description="archetype mass / representatives")
    ok: bool
    choice: str | None = None
    quantity: float = Field(default=0.0, ge=0)


class Aggregate(BaseModel):
    """What one round's decisions add up to."""

    model_config = ConfigDict(extra="forbid")

    mu: dict[str, float] = Field(description="choice distribution of the successful mass (sums to 1, or empty)")
    units_per_customer: dict[str, float] = Field(description="expected units per customer per option")
    n_decisions: int
    n_failed: int
    failed_share: float = Field(ge=0, le=1, description="share of decisions that failed validation")
    failed_mass: float = Field(ge=0, le=1, description="share of population mass whose decision failed")


def aggregate(outcomes: Iterable[WeightedOutcome]) -> Aggregate:
    """mu and expected units per customer from weighted outcomes (failures counted, not used)."""
    outcomes = list(outcomes)
    choice_mass: dict[str, float] = {}
    units: dict[str, float] = {}
    ok_mass = failed_mass = 0.0
    n_failed = 0
    for o in outcomes:
        if not o.ok or o.choice is None:
            n_failed += 1
            failed_mass += o.weight
            continue
        ok_mass += o.weight
        choice_mass[o.choice] = choice_mass.get(o.choice, 0.0) + o.weight
        units[o.choice] = units.get(o.choice, 0.0) + o.weight * o.quantity
    total = ok_mass + failed_mass
    mu = {k: v / ok_mass for k, v in sorted(choice_mass.items())} if ok_mass > 0 else {}
    # Units per customer are scaled to the successful mass, the same renormalisation as mu.
    per_customer = {k: v / ok_mass for k, v in sorted(units.items())} if ok_mass > 0 else {}
    return Aggregate(
        mu=mu,
        units_per_customer=per_customer,
        n_decisions=len(outcomes),
        n_failed=n_failed,
        failed_share=n_failed / len(outcomes) if outcomes else 0.0,
        failed_mass=min(1.0, failed_mass / total) if total > 0 else 0.0,
    )


def damped_update(m: Mapping[str, float], mu: Mapping[str, float], damping: float) -> dict[str, float]:
    """m(t+1) = (1 - a) m(t) + a mu(t) over the union of options; mu empty leaves m unchanged."""
    if not 0 < damping <= 1:
        raise MallesError(f"mean_field.damping must be in (0, 1], got {damping}")
    if not mu:
        return dict(m)
    keys = sorted(set(m) | set(mu))
    return {k: (1 - damping) * m.get(k, 0.0) + damping * mu.get(k, 0.0) for k in keys}


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Total-variation distance 0.5 * sum |p - q| over the union of options."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def normalise(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights scaled to sum to 1 (uniform when they are all zero)."""
    total = sum(max(0.0, v) for v in weights.values())
    if total <= 0:
        return {k: 1.0 / len(weights) for k in weights} if weights else {}
    return {k: max(0.0, v) / total for k, v in weights.items()}


def converged(distance: float, epsilon: float, failed_share: float) -> bool:
    """Converged when m moved less than epsilon and at least one decision succeeded."""
    return distance < epsilon and failed_share < 1.0
