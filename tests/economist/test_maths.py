"""Core maths of the economist scenario: taxes, rebate, best response, welfare, Saez, voting, population."""

from __future__ import annotations

import numpy as np
import pytest

from malles_graph.economist.economy import LabourModel, best_response, calibrate_cost, equilibrium, evaluate
from malles_graph.economist.occupations import OCCUPATIONS
from malles_graph.economist.options import EconomistOptions
from malles_graph.economist.population import (
    cluster_archetypes,
    gb2_cdf,
    gb2_median,
    gb2_quantile,
    sample_population,
)
from malles_graph.economist.saez import g_above, saez_rate, saez_rates, saez_schedule
from malles_graph.economist.search import multi_start_search, schedule_welfare
from malles_graph.economist.tax import TaxSchedule, flat_schedule, rebate_per_worker, us_schedule
from malles_graph.economist.voting import self_interested_votes, tally
from malles_graph.economist.welfare import gini, summarise, welfare_weights


def scalar_tax(z: float, sched: TaxSchedule) -> float:
    """Independent bracket-by-bracket tax, for checking the vectorised one."""
    owed = 0.0
    t = list(sched.thresholds) + [float("inf")]
    for k, rate in enumerate(sched.rates):
        owed += rate / 100.0 * max(0.0, min(z, t[k + 1]) - t[k])
    return owed


# -- taxes and rebate ------------------------------------------------------------------------------
def test_us_tax_by_hand():
    us = us_schedule()
    # 10% of 11,600 + 12% of 35,550 + 22% of 2,850
    assert us.tax(50_000) == pytest.approx(1_160 + 4_266 + 627)
    assert us.tax(0) == 0
    assert us.tax(-5) == 0
    top = 1_160 + 4_266 + 0.22 * 53_375 + 0.24 * 91_425 + 0.32 * 51_775 + 0.35 * 365_625 + 0.37 * 90_650
    assert us.tax(700_000) == pytest.approx(top)
    assert us.marginal_rate(47_150) == pytest.approx(0.22)
    assert us.marginal_rate(47_149.99) == pytest.approx(0.12)


def test_vectorised_tax_matches_scalar():
    rng = np.random.default_rng(3)
    sched = TaxSchedule(rates=tuple(rng.uniform(0, 100, 7)))
    z = rng.uniform(0, 2_000_000, 500)
    assert np.allclose(sched.tax(z), [scalar_tax(v, sched) for v in z])


def test_rebate_is_equal_share_of_revenue():
    us = us_schedule()
    assert rebate_per_worker(us, np.array([0.0, 50_000.0])) == pytest.approx(6_053 / 2)
    # mass weights: the second worker stands for three people
    assert rebate_per_worker(us, np.array([0.0, 50_000.0]), np.array([1.0, 3.0])) == pytest.approx(6_053 * 3 / 4)


def test_bounded_change_and_validation():
    us = us_schedule()
    new, clipped = us.clipped_toward([50, 12, 0, 24, 32, 35, 37], max_change=10)
    assert new.rates == (20, 12, 12, 24, 32, 35, 37) and clipped
    same, clipped = us.clipped_toward([11, 12, 22, 24, 32, 35, 37], max_change=10)
    assert same.rates[0] == 11 and not clipped
    with pytest.raises(ValueError):
        TaxSchedule(rates=(10, 12, 22, 24, 32, 35, 137))
    with pytest.raises(ValueError):
        TaxSchedule(rates=(10, 12))


# -- best response ---------------------------------------------------------------------------------
def test_best_response_exact_on_grid_brute_force():
    rng = np.random.default_rng(0)
    model = LabourModel(grid=np.arange(0, 101, 10, dtype=float), cost=0.17, exponent=3.0)
    sched = TaxSchedule(rates=tuple(rng.uniform(0, 90, 7)))
    skill = np.exp(rng.uniform(np.log(50), np.log(50_000), 300))
    hours, best = best_response(skill, sched, model)
    for s, h, b in zip(skill, hours, best, strict=True):
        utils = [s * h_ - scalar_tax(s * h_, sched) - 0.17 * h_**3 for h_ in range(0, 101, 10)]
        assert b == pytest.approx(max(utils), rel=1e-9, abs=1e-6)
        assert h == 10 * int(np.argmax(utils))


def test_step_function_best_response_matches_grid_enumeration_on_many_schedules():
    """The kink/crossing step function equals plain enumeration of the grid, including 0% and 100% rates."""
    rng = np.random.default_rng(11)
    model = LabourModel(grid=np.arange(0, 101, 10, dtype=float), cost=0.1746, exponent=3.0)
    skill = np.exp(rng.uniform(np.log(20), np.log(200_000), 5_000))
    schedules = [TaxSchedule(rates=tuple(rng.choice([0.0, 100.0, *rng.uniform(0, 100, 5)], 7))) for _ in range(40)]
    for sched in schedules:
        z = skill[:, None] * model.grid[None, :]
        u = z - sched.tax(z) - model.labour_cost(model.grid)[None, :]
        hours, best = best_response(skill, sched, model)
        assert np.array_equal(hours, model.grid[np.argmax(u, axis=1)]), sched.rates
        assert np.allclose(best, u.max(axis=1), rtol=1e-12, atol=1e-6)


def test_regret_is_zero_at_best_response_and_positive_elsewhere():
    model = LabourModel(grid=np.arange(0, 101, 10, dtype=float), cost=0.17, exponent=3.0)
    skill = np.array([500.0, 2_000.0, 10_000.0])
    eq = equilibrium(skill, us_schedule(), model)
    assert np.all(eq.regret == 0)
    off = evaluate(skill, np.array([100.0, 100.0, 0.0]), us_schedule(), model)
    assert np.all(off.regret > 0)
    # utility includes the rebate, which is the mean tax
    assert off.rebate == pytest.approx(off.tax.mean())


def test_calibrated_cost_puts_median_worker_at_reference_hours():
    opt = EconomistOptions()
    c = calibrate_cost(opt)
    s = gb2_median(opt.income) / opt.reference_hours
    tau = float(us_schedule().marginal_rate(gb2_median(opt.income)))
    # continuous first-order condition s (1 - tau) = c delta l^(delta-1) holds at l = 40
    assert s * (1 - tau) == pytest.approx(c * opt.labour_exponent * 40 ** (opt.labour_exponent - 1))


# -- welfare ---------------------------------------------------------------------------------------
def test_gini_by_hand():
    assert gini(np.array([1.0, 1.0, 1.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 0.0, 1.0])) == pytest.approx(0.75)
    # weights act as replication
    assert gini(np.array([0.0, 1.0]), np.array([3.0, 1.0])) == pytest.approx(0.75)


def test_inverse_income_weights_explode_for_idle_workers_but_skill_weights_do_not():
    opt = EconomistOptions()
    income = np.array([0.0, 40_000.0])
    potential = np.array([40_000.0, 40_000.0])
    inv = welfare_weights("inverse_income", income, potential, opt)
    assert inv[0] / inv[1] == pytest.approx(40_000)
    sk = welfare_weights("skill_weighted", income, potential, opt)
    assert sk[0] == sk[1] == pytest.approx(1.0)
    assert np.all(welfare_weights("utilitarian", income, potential, opt) == 1)


def test_summary_reports_all_figures():
    opt = EconomistOptions()
    model = LabourModel(grid=np.arange(0, 101, 10, dtype=float), cost=0.17, exponent=3.0)
    skill = np.array([300.0, 1_000.0, 5_000.0])
    fig = summarise(equilibrium(skill, us_schedule(), model), skill * 40, opt)
    for key in ("welfare_skill_weighted", "welfare_utilitarian", "welfare_inverse_income", "gini_pretax",
                "total_revenue", "mean_hours", "mean_regret"):
        assert key in fig
    assert fig["mean_regret"] == 0


# -- Saez ------------------------------------------------------------------------------------------
def test_saez_rate_formula():
    assert saez_rate(0.5, 2.0, 0.5) == pytest.approx(1 / 3)
    assert saez_rate(1.0, 2.0, 0.5) == 0.0  # utilitarian with quasi-linear utility: no redistribution motive
    assert saez_rate(0.0, 0.0, 0.5) == 1.0


def test_saez_rates_hand_computed_example():
    income = np.array([20_000.0, 40_000.0, 80_000.0, 160_000.0, 320_000.0])
    weights = np.array([4.0, 2.0, 1.0, 0.5, 0.25])  # mean weight 1.55
    mass = np.ones(5)
    rates, points = saez_rates(income, weights, mass, (0.0, 100_000.0), 0.5, density=lambda z: 1e-5)
    # bracket 1 at z = 50,000: G = mean(1, .5, .25) / 1.55; F = 0.4; a = 50,000 * 1e-5 / 0.6
    g1 = (1.75 / 3) / 1.55
    a1 = 0.5 / 0.6
    assert points[0]["G"] == pytest.approx(g1)
    assert rates[0] == pytest.approx(100 * (1 - g1) / (1 - g1 + a1 * 0.5))
    assert rates[0] == pytest.approx(59.948, abs=1e-3)
    # top bracket at z = 100,000: G = mean(.5, .25) / 1.55; a = m / (m - z), m = 240,000
    g2 = 0.375 / 1.55
    a2 = 240_000 / 140_000
    assert rates[1] == pytest.approx(100 * (1 - g2) / (1 - g2 + a2 * 0.5))
    assert rates[1] == pytest.approx(46.933, abs=1e-3)


def test_g_above_none_when_nobody_above():
    assert g_above(1e9, np.array([1.0, 2.0]), np.ones(2), np.ones(2)) is None


def test_saez_fixed_point_utilitarian_is_zero_and_redistributive_is_positive():
    opt = EconomistOptions()
    pop = sample_population(3_000, opt, np.random.default_rng(1))
    from malles_graph.economist.economy import labour_model

    model = labour_model(opt)
    util = saez_schedule(pop.skill, pop.potential_income, pop.weight, model, opt, objective="utilitarian")
    assert max(util.schedule.rates) < 1.0
    sk = saez_schedule(pop.skill, pop.potential_income, pop.weight, model, opt, objective="skill_weighted")
    # incomes jump on the hours grid, so the skill-weighted iteration may settle into a small cycle instead
    # of meeting the 1e-3 tolerance: it is then reported as not converged, within half a point of its targets
    assert min(sk.schedule.rates) > 10
    assert sk.converged or max(abs(p["rate"] - r) for p, r in zip(sk.points, sk.schedule.rates, strict=True)) < 0.5
    # Saez beats a zero tax on the objective it was computed for
    w_saez = schedule_welfare(sk.schedule, pop.skill, pop.potential_income, pop.weight, model, opt, "skill_weighted")
    w_zero = schedule_welfare(flat_schedule(0), pop.skill, pop.potential_income, pop.weight, model, opt, "skill_weighted")
    assert w_saez > w_zero


def test_multi_start_search_is_never_worse_than_its_starts():
    opt = EconomistOptions()
    pop = sample_population(500, opt, np.random.default_rng(2))
    from malles_graph.economist.economy import labour_model

    model = labour_model(opt)
    args = (pop.skill, pop.potential_income, pop.weight, model, opt, "skill_weighted")
    res = multi_start_search({"us": us_schedule(), "flat": flat_schedule(20)}, *args, budget=40, seed=1)
    assert res.welfare >= max(schedule_welfare(us_schedule(), *args), schedule_welfare(flat_schedule(20), *args))
    assert res.welfare == max(res.by_start.values()) and res.evaluations <= 2 * 48
    assert schedule_welfare(res.best, *args) == res.welfare


# -- voting ----------------------------------------------------------------------------------------
def test_tally_plurality_mass_weighted_and_abstentions():
    rng = np.random.default_rng(0)
    winner, votes = tally(["us", "flat", "flat", ""], [5.0, 1.0, 1.0, 100.0], ["us", "flat", "saez"], rng)
    assert winner == "us" and votes == {"us": 5.0, "flat": 2.0, "saez": 0.0}


def test_tally_tie_break_is_seeded():
    def winner(seed: int) -> str:
        return tally(["a", "b"], [1, 1], ["a", "b"], np.random.default_rng(seed))[0]

    assert winner(7) == winner(7)
    assert {winner(s) for s in range(20)} == {"a", "b"}


def test_self_interested_votes_split_by_skill():
    model = LabourModel(grid=np.arange(0, 101, 10, dtype=float), cost=0.17, exponent=3.0)
    platforms = {"zero": flat_schedule(0), "high": flat_schedule(50)}
    skill = np.array([100.0, 100.0, 20_000.0])  # two poor workers and one very rich one
    assert self_interested_votes(platforms, skill, np.ones(3), model) == ["high", "high", "zero"]


# -- population ------------------------------------------------------------------------------------
def test_gb2_quantile_and_cdf_agree():
    opt = EconomistOptions()
    p = np.array([0.1, 0.5, 0.9, 0.99])
    assert np.allclose(gb2_cdf(gb2_quantile(p, opt.income), opt.income), p)


def test_population_is_census_shaped_and_seeded():
    opt = EconomistOptions()
    a = sample_population(50_000, opt, np.random.default_rng(5))
    b = sample_population(50_000, opt, np.random.default_rng(5))
    assert np.array_equal(a.skill, b.skill) and np.array_equal(a.occupation, b.occupation)
    assert np.median(a.potential_income) == pytest.approx(gb2_median(opt.income), rel=0.03)
    emp = np.array([o.employed_k for o in OCCUPATIONS])
    share = np.bincount(a.occupation, minlength=len(OCCUPATIONS)) / len(a)
    assert np.allclose(share, emp / emp.sum(), atol=0.01)
    construction = a.occupation == 18
    assert a.female[construction].mean() < 0.1 < 0.6 < a.female[a.occupation == 10].mean()
    assert a.age.min() >= 16 and a.age.max() <= 74
    # occupations with higher median earnings get higher incomes (the rank copula)
    managers = np.median(a.potential_income[a.occupation == 0])
    food = np.median(a.potential_income[a.occupation == 12])
    assert managers > food
    assert "works as" in a.persona(0)


def test_archetypes_cover_the_population():
    opt = EconomistOptions()
    pop = sample_population(2_000, opt, np.random.default_rng(0))
    arch = cluster_archetypes(pop, 20, seed=0)
    assert arch.mass.sum() == 2_000
    assert len(arch.representatives) == 20
    for c, rep in enumerate(arch.representatives):
        if arch.mass[c] > 0:
            assert arch.labels[rep] == c
