"""Scenario section ``economist:`` (see scenarios/economist-*.yaml).

Every field has a description and a default; the defaults reproduce the LLM Economist set-up
(Karten et al. 2025, arXiv 2507.15815) with the robustness changes documented in docs/economist.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from malles_graph.economist.brackets import N_BRACKETS, US_THRESHOLDS

Objective = Literal["skill_weighted", "utilitarian", "inverse_income"]
ScheduleName = Literal["us", "flat", "saez", "zero"]
Platform = Literal["planner", "us", "flat", "saez"]
# Workers are arrays in memory: a bound refuses a population that could only end in a MemoryError mid-run
# (retail's population.n_customers has the same one).
MAX_WORKERS = 10_000_000


class GB2Params(BaseModel):
    """Generalised Beta of the second kind in the GAMLSS parametrisation (mu scale; sigma, nu, tau shapes).

    Defaults: the fit to U.S. American Community Survey 2023 personal incomes published with the
    LLM Economist code (Karten et al. 2025): mu=72402.78, sigma=2.0721, nu=0.48652, tau=1.14104.
    """

    model_config = ConfigDict(extra="forbid")

    mu: float = Field(default=72402.78177917618, gt=0, description="scale (dollars per year)")
    sigma: float = Field(default=2.0721070746154746, gt=0, description="shape: overall dispersion")
    nu: float = Field(default=0.48651871959386955, gt=0, description="shape: lower tail")
    tau: float = Field(default=1.1410398548220329, gt=0, description="shape: upper (Pareto) tail")


class EconomistOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # population and time
    n_workers: int = Field(default=100, ge=1, le=MAX_WORKERS, description="number of worker agents")
    steps: int = Field(default=20, ge=1, description="worker steps in the run")
    planner_every: int = Field(default=5, ge=1, description="the planner acts every T steps")
    archetypes: int | None = Field(
        default=None,
        ge=1,
        description="cluster workers into this many archetypes and simulate one representative each "
        "(LLM workers only); every worker is simulated when empty",
    )
    # who decides
    worker: Literal["auto", "llm", "best_response"] = Field(
        default="auto", description="worker policy; auto = best_response on the best-response backend, else llm"
    )
    planner: Literal["auto", "llm", "cma", "fixed"] = Field(
        default="auto",
        description="planner policy; auto = cma (CMA-ES) on the best-response backend, else llm; "
        "fixed keeps the initial schedule",
    )
    # income model (census-calibrated)
    income: GB2Params = Field(default_factory=GB2Params, description="GB2 fit of U.S. incomes (ACS 2023)")
    occupation_income_correlation: float = Field(
        default=0.4,
        ge=0,
        le=1,
        description="rank correlation between occupation median earnings and a worker's GB2 income draw",
    )
    reference_hours: float = Field(
        default=40.0, gt=0, description="weekly hours at which a worker's sampled annual income is earned"
    )
    # labour supply
    hours_max: int = Field(default=100, ge=1, description="largest weekly hours on the choice grid")
    hours_step: int = Field(default=10, ge=1, description="spacing of the hours grid 0, step, ..., hours_max")
    labour_exponent: float = Field(
        default=3.0, gt=1, description="delta in the labour cost c * l^delta (elasticity 1/(delta-1) = 0.5)"
    )
    labour_cost: float | None = Field(
        default=None,
        gt=0,
        description="c in the labour cost c * l^delta; when empty, calibrated so that the median-skill "
        "worker's continuous best response under the U.S. schedule is reference_hours",
    )
    # planner
    objective: Objective = Field(
        default="skill_weighted", description="welfare the planner maximises (all three are reported)"
    )
    income_floor: float = Field(
        default=1.0, gt=0, description="inverse_income weights are 1 / max(z, income_floor) (the paper's form)"
    )
    skill_weight_floor: float = Field(
        default=15080.0,
        gt=0,
        description="skill_weighted weights are 1 / max(potential income, floor); 15,080 $ = full-time "
        "federal minimum wage (7.25 $/h x 2,080 h)",
    )
    elasticity: float | None = Field(
        default=None, gt=0, description="labour-supply elasticity for Saez; 1/(delta-1) (the workers' own) when empty"
    )
    initial_schedule: ScheduleName | list[float] = Field(
        default="us", description="starting schedule: us, flat, saez, zero, or 7 marginal rates in percent"
    )
    flat_rate: float = Field(default=20.0, ge=0, le=100, description="rate of the flat-tax baseline, percent")
    max_rate_change: float = Field(
        default=10.0, gt=0, le=100, description="largest change of one bracket rate per planner action (points)"
    )
    brackets: list[float] = Field(
        default_factory=lambda: list(US_THRESHOLDS),
        description="lower thresholds of the seven brackets in dollars (2024 U.S. single filers by default)",
    )
    history_window: int = Field(default=8, ge=1, description="planner steps of history shown in its prompt")
    planner_max_tokens: int = Field(
        default=160, ge=16, description="answer length allowed to the LLM planner (7 rates; at least backend.max_tokens)"
    )
    cma_sigma: float = Field(default=15.0, gt=0, le=50, description="initial CMA-ES step size of the cma planner (points)")
    oracle_sample: int = Field(
        default=20000,
        ge=100,
        description="with best-response workers the cma planner scores candidates on the exact equilibrium of "
        "at most this many workers (a seeded subsample)",
    )
    # voting
    vote_every: int | None = Field(default=None, ge=1, description="workers vote every N steps; no voting when empty")
    vote_platforms: list[Platform] = Field(
        default_factory=lambda: ["planner", "us", "flat", "saez"], description="candidate platforms on the ballot"
    )
    vote_mode: Literal["platforms", "leader"] = Field(
        default="platforms",
        description="platforms: workers vote among vote_platforms; leader (democratic): candidate workers each "
        "write a platform, the elected leader's platform sets the rates",
    )
    candidates: int = Field(default=3, ge=2, le=26, description="candidate workers standing in a leader election")
    # checks and output
    stackelberg_check: bool = Field(
        default=True, description="after the run, compare the final schedule with a multi-start search and Saez"
    )
    check_budget: int = Field(
        default=600, ge=10, description="equilibrium evaluations per start of the near-Stackelberg multi-start search"
    )

    @model_validator(mode="after")
    def _checks(self) -> EconomistOptions:
        if self.hours_max % self.hours_step != 0:
            raise ValueError(f"hours_max ({self.hours_max}) must be a multiple of hours_step ({self.hours_step})")
        if isinstance(self.initial_schedule, list):
            bad = [r for r in self.initial_schedule if not 0 <= r <= 100]
            if bad:
                raise ValueError(f"initial_schedule rates must be in [0, 100] percent, got {bad}")
            if len(self.initial_schedule) != N_BRACKETS:
                raise ValueError(f"initial_schedule needs {N_BRACKETS} rates, got {len(self.initial_schedule)}")
        b = self.brackets
        if len(b) != N_BRACKETS or b[0] != 0 or any(hi <= lo for lo, hi in zip(b, b[1:], strict=False)):
            raise ValueError(f"brackets must be {N_BRACKETS} thresholds starting at 0 in increasing order, got {b}")
        if self.vote_every is not None and self.vote_every >= self.steps:
            raise ValueError(
                f"vote_every ({self.vote_every}) must be smaller than steps ({self.steps}): no vote would take effect"
            )
        if self.archetypes is not None and self.archetypes > self.n_workers:
            raise ValueError(f"archetypes ({self.archetypes}) must not exceed n_workers ({self.n_workers})")
        if len(set(self.vote_platforms)) < 2:
            raise ValueError("vote_platforms needs at least two distinct platforms")
        return self

    def delta_elasticity(self) -> float:
        """The elasticity used by Saez: the configured one, or the workers' own 1/(delta-1)."""
        return self.elasticity if self.elasticity is not None else 1.0 / (self.labour_exponent - 1.0)
