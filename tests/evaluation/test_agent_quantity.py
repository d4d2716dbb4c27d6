"""The computed agent's count model: P(units >= k) per threshold, the median of the choice-weighted
mixture as the answer, and the population's units before the date."""

from __future__ import annotations

import datetime as dt

import numpy as np

from malles_graph.roles.fitting import lgbm
from malles_graph.roles.memory import Line, PopulationMemory
from malles_graph.roles.quantity import (
    DEFAULT_TREES,
    MAX_THRESHOLDS,
    TREES,
    UnitsModel,
    choose_trees,
    fit_units_model,
    mixture_units,
)

DAY = dt.date(2001, 2, 10)


def fitted(p_several: tuple[float, float], n: int = 2000, seed: int = 0) -> UnitsModel:
    """Units = 1 + Bernoulli(p_several[x]) (+1 more one time in ten), x in {0, 1} the one feature."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n)
    q = 1 + (rng.random(n) < np.take(p_several, x)) * (1 + (rng.random(n) < 0.1))
    return fit_units_model(x[:, None].astype(float), q.astype(float), seed, lgbm)


def test_the_mixture_median_beats_the_weighted_median_of_the_candidates_medians():
    # candidate A (x=0) buys several 45% of the time: median 1; B (x=1) 90%: median 2. The choice is
    # A with 0.6, B with 0.4: the weighted median of the medians says 1, but the mixture buys several
    # with 0.6 * 0.45 + 0.4 * 0.9 = 0.63, so 2 is the smaller expected absolute error.
    model = fitted((0.45, 0.9))
    rows, probs = np.array([[0.0], [1.0]]), np.array([0.6, 0.4])
    tails = model.tails(rows)
    assert abs(tails[0, 0] - 0.45) < 0.05 and abs(tails[1, 0] - 0.9) < 0.05
    assert np.all(np.diff(tails, axis=1) <= 0)  # P(units >= k) never grows with k
    medians = [mixture_units(model, rows[[j]], np.ones(1)) for j in range(2)]
    assert medians == [1, 2]
    old = medians[0]  # the weighted median of [1, 2] under [0.6, 0.4]
    new = mixture_units(model, rows, probs)
    assert new == 2
    rng = np.random.default_rng(1)  # the truth: a product drawn by the choice, its units by its distribution
    pick = rng.random(20_000) < probs[1]
    truth = 1 + (rng.random(20_000) < np.where(pick, 0.9, 0.45)) * (1 + (rng.random(20_000) < 0.1))
    assert np.abs(truth - new).mean() < np.abs(truth - old).mean() - 0.2


def test_the_answer_is_the_mae_optimal_units_of_the_mixture():
    model = fitted((0.2, 0.7))
    rows = np.array([[0.0], [1.0], [1.0]])
    tails = model.tails(rows)
    pmf_of = lambda t: -np.diff(np.concatenate([[1.0], t, [0.0]]))  # noqa: E731  P(units = 1, 2, ...)
    for weights in ([0.5, 0.3, 0.2], [0.1, 0.45, 0.45], [1.0, 0.0, 0.0]):
        w = np.array(weights)
        pmf = sum(wj * pmf_of(t) for wj, t in zip(w, tails, strict=True))
        cost = [float(sum(p * abs(u - (i + 1)) for i, p in enumerate(pmf))) for u in range(1, 8)]
        assert mixture_units(model, rows, w) == 1 + int(np.argmin(cost))


def test_thresholds_without_enough_rows_and_a_floor_everyone_clears():
    assert fit_units_model(np.zeros((30, 1)), np.ones(30), 0, lgbm).describe() == "always 1 unit"
    assert mixture_units(UnitsModel(), np.zeros((2, 1)), np.array([0.5, 0.5])) == 1
    q = np.array([1.0] * 10 + [2.0] * 60 + [3.0] * 25)  # nearly everyone buys at least 2: no classifier for k = 2
    model = fit_units_model(np.arange(95.0)[:, None], q, 0, lgbm)
    assert model.thresholds[0] == (2, 85 / 95) and model.describe() == "P(units >= k), k = 2..3, 150 trees"
    assert mixture_units(model, np.array([[1.0]]), np.ones(1)) == 2
    everyone = fit_units_model(np.arange(85.0)[:, None], q[10:], 0, lgbm)  # the fewest bought is 2
    assert everyone.fewest == 2 and [k for k, _ in everyone.thresholds] == [3]
    assert mixture_units(everyone, np.array([[1.0]]), np.ones(1)) == 2
    assert fit_units_model(np.zeros((30, 1)), np.full(30, 6.0), 0, lgbm).describe() == "always 6 units"


def test_units_bought_in_packs_are_answered_in_packs_with_one_threshold_per_pack():
    """Units of 12, 24 or 36 (cases of a dozen): a classifier per count bought, not per integer
    (the 35 between would each fit one of the same two classifiers again), and answers in packs."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, 3000)
    packs = 1 + (rng.random(3000) < np.where(x == 1, 0.8, 0.2)) + (rng.random(3000) < 0.15)
    model = fit_units_model(x[:, None].astype(float), 12.0 * packs, 0, lgbm)
    assert model.fewest == 12 and [k for k, _ in model.thresholds] == [24, 36]
    assert model.describe() == "P(units >= k), k = 24, 36, 150 trees"
    assert [mixture_units(model, np.array([[v]]), np.ones(1)) for v in (0.0, 1.0)] == [12, 24]
    assert mixture_units(model, np.array([[0.0], [1.0]]), np.array([0.3, 0.7])) == 24


def test_units_in_the_hundreds_get_thresholds_at_their_quantiles_not_one_per_count():
    """Units from 1 to several hundred (a wholesale order, grams): a classifier per count bought would be
    hundreds of them; MAX_THRESHOLDS counts at the units' quantiles answer nearly as well."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, 4000)
    q = np.round(rng.lognormal(np.where(x == 1, 4.5, 3.0), 0.6)).clip(1)
    model = fit_units_model(x[:, None].astype(float), q, 0, lgbm, trees=25)
    ks = [k for k, _ in model.thresholds]
    assert len(ks) <= MAX_THRESHOLDS < len(np.unique(q)) - 1 and set(ks) <= set(q.astype(int))
    assert ks[0] == int(np.unique(q)[1]) and "(24 of them)" in model.describe()
    for v in (0.0, 1.0):  # the answer for each kind of row: near its units' median
        truth = q[x == v]
        answer = mixture_units(model, np.array([[v]]), np.ones(1))
        assert np.abs(truth - answer).mean() < 1.05 * np.abs(truth - np.median(truth)).mean()


def test_quantity_profile_sees_only_lines_before_the_date():
    def line(days_before: int, qty: int, who: str) -> Line:
        return Line(who, DAY.toordinal() - days_before, "s", "p", qty, 1.0)

    memory = PopulationMemory.from_lines([line(5, 1, "a"), line(3, 4, "b"), line(0, 9, "c"), line(-2, 9, "d")])
    n, several, log_units = memory.quantity_profile("p", DAY)
    assert n == 2  # the decision day and later are invisible
    assert several == (1 + 0.2) / 3
    assert np.isclose(log_units, np.log(4) / 3)
    assert memory.quantity_profile("unknown", DAY) == (0.0, 0.2, 0.0)


def units_data(signal: bool, n: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eight features; units 1, 2 or 3. Without signal P(units >= 2) is 0.45 whatever the features (the
    answer that minimises the MAE is always 1); with it, an interaction of three of them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    z = 2.5 * np.sin(2 * X[:, 0]) * X[:, 1] + 1.5 * (X[:, 2] > 0.5) - 0.3
    p = 1 / (1 + np.exp(-z)) if signal else np.full(n, 0.45)
    return X, (1 + (rng.random(n) < p) * (1 + (rng.random(n) < 0.3))).astype(float)


def three_folds(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    cases = np.arange(n)
    return [(cases[cases % 3 != k], cases[cases % 3 == k]) for k in range(3)]


def test_the_count_models_trees_are_as_many_as_held_out_cases_reward():
    """Noise features: the fewest trees (more learn the noise and answer 2 where 1 is best); a real
    interaction: many. Each case here has one candidate, so its mixture is its own distribution."""
    X, q = units_data(signal=False)
    offsets, ones = np.arange(len(q) + 1), np.ones(len(q))
    few, errors = choose_trees(X, q, X, offsets, ones, three_folds(len(q)), 0, lgbm)
    assert few == min(TREES) and errors[few] == min(errors.values()) and errors[150] > errors[few] + 0.005
    fresh, truth = units_data(signal=False, seed=1)

    def fresh_mae(trees: int) -> float:
        model = fit_units_model(X, q, 0, lgbm, trees=trees)
        return float(
            np.mean([abs(mixture_units(model, row[None], np.ones(1)) - t) for row, t in zip(fresh, truth, strict=True)])
        )

    assert fresh_mae(few) < fresh_mae(150) - 0.01  # on new cases too
    X, q = units_data(signal=True)
    many, errors = choose_trees(X, q, X, offsets, ones, three_folds(len(q)), 0, lgbm)
    assert many >= 100 and errors[many] < errors[min(TREES)] - 0.005
    X, q = units_data(signal=True, n=300)  # too few cases to tell 300 trees from 150 apart: the default stays
    kept, errors = choose_trees(X, q, X, offsets[: len(q) + 1], ones[: len(q)], three_folds(len(q)), 0, lgbm)
    assert kept == DEFAULT_TREES and min(errors.values()) < errors[DEFAULT_TREES]


def test_the_trees_are_chosen_by_the_mixture_the_agent_answers():
    """Two candidates per case: the held-out answer is the median of their mixture under the choice
    probabilities, not the units of the product bought alone (here the probabilities decide: a case
    whose choice is certain scores its bought product's median, an uncertain one the mixture's)."""
    X, q = units_data(signal=True, n=900)
    other, _ = units_data(signal=True, n=900, seed=2)
    candidates = np.stack([X, other], axis=1).reshape(-1, X.shape[1])  # the bought product first
    offsets = np.arange(0, 2 * len(q) + 1, 2)
    folds = three_folds(len(q))
    sure = np.tile([1.0, 0.0], len(q))
    assert choose_trees(X, q, candidates, offsets, sure, folds, 0, lgbm) == choose_trees(
        X, q, X, np.arange(len(q) + 1), np.ones(len(q)), folds, 0, lgbm
    )
    _, unsure = choose_trees(X, q, candidates, offsets, np.full(2 * len(q), 0.5), folds, 0, lgbm)
    _, certain = choose_trees(X, q, candidates, offsets, sure, folds, 0, lgbm)
    assert unsure != certain
