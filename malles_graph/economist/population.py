"""Census-calibrated worker populations: GB2 incomes (ACS 2023) and the BLS occupation x sex x age mix.

A worker's skill s is annual income per weekly hour: working l hours a week earns z = s * l a year.
The sampled GB2 income is what the worker earns at ``reference_hours`` (40 h), so s = income / 40.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from malles_graph.economist.occupations import AGE_BANDS, OCCUPATIONS
from malles_graph.economist.options import EconomistOptions, GB2Params


def gb2_quantile(p: np.ndarray | float, params: GB2Params) -> np.ndarray:
    """GB2 quantile (GAMLSS parametrisation): (y/mu)^sigma follows a beta-prime(nu, tau) law."""
    p = np.asarray(p, dtype=float)
    x = special.betaincinv(params.nu, params.tau, p)  # Beta(nu, tau) quantile
    with np.errstate(divide="ignore"):
        beta_prime = x / (1.0 - x)
    return params.mu * beta_prime ** (1.0 / params.sigma)


def gb2_cdf(y: np.ndarray | float, params: GB2Params) -> np.ndarray:
    r = (np.maximum(np.asarray(y, dtype=float), 0.0) / params.mu) ** params.sigma
    return special.betainc(params.nu, params.tau, r / (1.0 + r))


def gb2_median(params: GB2Params) -> float:
    return float(gb2_quantile(0.5, params))


@dataclass
class Population:
    """Workers as parallel numpy arrays (index i is worker i)."""

    skill: np.ndarray  # dollars per year per weekly hour
    occupation: np.ndarray  # index into OCCUPATIONS
    female: np.ndarray  # bool
    age: np.ndarray  # years
    weight: np.ndarray  # population mass (1 per worker; archetype mass for representatives)
    reference_hours: float

    def __len__(self) -> int:
        return len(self.skill)

    @property
    def potential_income(self) -> np.ndarray:
        return self.skill * self.reference_hours

    def persona(self, i: int) -> str:
        """Short persona text (template) for worker ``i``."""
        occ = OCCUPATIONS[int(self.occupation[i])].name
        sex = "woman" if self.female[i] else "man"
        article = "an" if occ[0] in "aeiou" else "a"
        income = self.potential_income[i]
        return (
            f"You are a {int(self.age[i])}-year-old {sex} living in the United States who works as {article} {occ}. "
            f"Your pay works out to ${self.skill[i] / 52:,.0f} per hour; at {self.reference_hours:.0f} hours a week "
            f"you would earn about ${income:,.0f} a year before tax."
        )

    def take(self, index: np.ndarray, weight: np.ndarray | None = None) -> Population:
        """The sub-population at ``index`` (used for archetype representatives)."""
        return Population(
            skill=self.skill[index],
            occupation=self.occupation[index],
            female=self.female[index],
            age=self.age[index],
            weight=self.weight[index] if weight is None else np.asarray(weight, dtype=float),
            reference_hours=self.reference_hours,
        )


def sample_population(n: int, options: EconomistOptions, rng: np.random.Generator) -> Population:
    """Draw ``n`` workers: occupation by BLS employment, sex and age band within occupation, GB2 income.

    Income and occupation are linked by a rank copula: incomes drawn from the GB2 are handed out in the
    order of a latent score rho * z_occ + sqrt(1 - rho^2) * noise, where z_occ is the normal score of the
    occupation's median earnings. The GB2 marginal is kept exactly for any rho.
    """
    emp = np.array([o.employed_k for o in OCCUPATIONS], dtype=float)
    occ = rng.choice(len(OCCUPATIONS), size=n, p=emp / emp.sum())
    pct_female = np.array([o.pct_female for o in OCCUPATIONS]) / 100.0
    female = rng.random(n) < pct_female[occ]
    age_p = np.array([o.age_pct for o in OCCUPATIONS], dtype=float)
    age_p /= age_p.sum(axis=1, keepdims=True)
    # inverse-CDF draw of the age band per worker, vectorised over occupations
    band = (rng.random(n)[:, None] > np.cumsum(age_p, axis=1)[occ][:, :-1]).sum(axis=1)
    lo = np.array([b[0] for b in AGE_BANDS])[band]
    hi = np.array([b[1] for b in AGE_BANDS])[band]
    age = lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(int)

    u = rng.random(n)
    u = np.clip(u, 1e-9, 1 - 1e-9)
    income = np.sort(gb2_quantile(u, options.income))
    rho = options.occupation_income_correlation
    z_occ = _occupation_scores(emp)[occ]
    latent = rho * z_occ + np.sqrt(1.0 - rho**2) * rng.standard_normal(n)
    skill = np.empty(n)
    skill[np.argsort(latent, kind="stable")] = income / options.reference_hours
    # workers are numbered by ascending skill: incomes then come in a few sorted runs (one per hours
    # level), which makes the per-step sort of the Gini coefficients and the median nearly free
    by_skill = np.argsort(skill, kind="stable")
    return Population(
        skill=skill[by_skill],
        occupation=occ[by_skill].astype(np.int16),
        female=female[by_skill],
        age=age[by_skill].astype(np.int16),
        weight=np.ones(n),
        reference_hours=options.reference_hours,
    )


def _occupation_scores(employment: np.ndarray) -> np.ndarray:
    """Normal score of each occupation's median earnings, mid-rank within the employment-weighted population."""
    earnings = np.array([o.median_weekly for o in OCCUPATIONS], dtype=float)
    order = np.argsort(earnings, kind="stable")
    share = employment[order] / employment.sum()
    mid = np.cumsum(share) - share / 2.0
    scores = np.empty(len(OCCUPATIONS))
    scores[order] = stats.norm.ppf(mid)
    return scores


def feature_matrix(pop: Population) -> np.ndarray:
    """Standardised features for clustering: log skill (weighted x3: it drives the decision), sex, age, occupation earnings."""
    earnings = np.log(np.array([o.median_weekly for o in OCCUPATIONS]))[pop.occupation]
    cols = [np.log(pop.skill), pop.female.astype(float), pop.age.astype(float), earnings]
    x = np.column_stack(cols)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    x[:, 0] *= 3.0
    return x


@dataclass
class Archetypes:
    """Cluster labels of every worker and the index of each cluster's representative."""

    labels: np.ndarray  # (n,) cluster of each worker
    representatives: np.ndarray  # (k,) worker index of each cluster's representative
    mass: np.ndarray  # (k,) number of workers (sum of weights) in each cluster


def cluster_archetypes(pop: Population, k: int, seed: int) -> Archetypes:
    """Archetypes of workers by persona/skill features, with the one k-means picker of the core
    (representative = the member nearest the centroid; an empty cluster is represented by nobody, mass 0)."""
    from malles_graph.population.archetypes import pick_archetypes

    picked = pick_archetypes(feature_matrix(pop), k, seed=seed, representatives=1, n_init=1)
    reps = np.array([members[0] if members else 0 for members in picked.representatives], dtype=int)
    mass = np.bincount(picked.labels, weights=pop.weight, minlength=k).astype(float)
    return Archetypes(labels=picked.labels, representatives=reps, mass=mass)
