"""Fitting the computed agent on training cases (situations with their truth).

* each role: a LightGBM lambdarank model over its slice plus the opinions of the roles before it,
  fitted on grouped folds first (out-of-fold opinions, so the stacker learns how far to trust a
  role on cases it has not seen), then on all cases;
* decide: a LightGBM lambdarank model over the out-of-fold role opinions, the market signal and
  every role's raw slice (it can learn where a role is trustworthy, which one weight per role
  cannot); bootstrap replicas are the vote's samples; a softmax temperature fitted on its own
  out-of-fold scores is the calibration (3-fold CV within January: hit@1 0.5848 -> 0.5900,
  log-loss 1.0560 -> 1.0479 against the logistic stacker; docs/agent-choices.md). The decide is the
  mean of five such rankers with different random states (same CV: hit@1 0.5900 -> 0.5958,
  log-loss 1.0479 -> 1.0415, sparse hit@1 0.485 -> 0.506; over three seed draws +0.003 hit@1 and
  -0.0055 log-loss, and a smaller spread between draws);
* the logistic-regression stacker it replaced stays for the ablations (``no-ranker``,
  ``no-pooling``): shared weights and per-subclass deviations, the deviations' scale (how much a
  subclass borrows from the rest) and the L2 strength chosen together by cross-validated log-loss;
* the count model: P(units >= k) per threshold k (``quantity.py``), its number of trees chosen by
  the cross-validated MAE of the agent's answer on the same folds (``quantity.choose_trees``).

Every choice is made by cross-validation within the training cases, never on the cases scored.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse
from scipy.optimize import minimize_scalar

from malles_graph.evaluation.cases import require_choices
from malles_graph.evaluation.features import AttributeSchema, segment_softmax
from malles_graph.evaluation.metrics import clearly_better
from malles_graph.roles.memory import PopulationMemory
from malles_graph.roles.quantity import choose_trees, fit_units_model, quantity_matrix

if TYPE_CHECKING:
    from malles_graph.roles.agent import ComputedAgent, Evidence

POOLING_SCALES = (0.1, 0.3, 1.0)  # per-subclass deviation scale: smaller = more borrowing
STACKER_C = (0.3, 1.0, 3.0)  # inverse L2 strength of the stacker
MIN_CASES = 20  # training cases with a choice (two or more candidates) the agent needs
RANKER_SEEDS = 5  # rankers with different random states averaged into the decide
LEAVES = 15  # leaves per tree of the role models and the decide's rankers
RANKER_LEAVES = (LEAVES, 4)  # the decide's: the default, and the one for additive data (fit_ranker_decide)


def lgbm(seed: int, objective: str = "lambdarank", **kw: Any) -> Any:
    from lightgbm import LGBMClassifier, LGBMRanker

    params = dict(
        n_estimators=150,
        learning_rate=0.05,
        num_leaves=LEAVES,
        min_child_samples=20,
        subsample=0.9,
        subsample_freq=1,
        colsample_bytree=0.9,
        random_state=seed,
        verbose=-1,
        n_jobs=1,
        **kw,
    )
    if objective == "lambdarank":
        return LGBMRanker(objective=objective, **params)
    return LGBMClassifier(objective=objective, **params)  # the count model's thresholds


def fit_role(seed: int, X: np.ndarray, y: np.ndarray, seg: np.ndarray, leaves: int = LEAVES) -> Any:
    """A LightGBM lambdarank model: candidates of one case are ranked against each other (rows sorted by case)."""
    _, sizes = np.unique(seg, return_counts=True)
    return lgbm(seed).set_params(num_leaves=leaves).fit(X, y, group=sizes)


def check_training(cases: Sequence[Any], source: str = "training cases") -> None:
    """Refuse training cases that hold too few choices to fit the roles (the CLI calls it before any work)."""
    require_choices(cases, f"{source}: the agent", MIN_CASES)


def fit_agent(
    cls: type[ComputedAgent],
    cases: Sequence[Any],
    evidence: Evidence,
    seed: int = 0,
    replicas: int = 5,
    folds: int = 3,
    progress: Callable[[str], None] | None = None,
    extra_lines: Sequence[Any] = (),
) -> ComputedAgent:
    """Fit on training cases, from an earlier window than any test case (see the module docstring);
    ``extra_lines`` are further purchase lines the memory holds."""
    from sklearn.model_selection import GroupKFold

    from malles_graph.roles.agent import ROLES, said

    say = progress or (lambda _m: None)
    check_training(cases)
    memory_lines = [*PopulationMemory.case_lines(cases), *extra_lines]
    agent = cls(
        role_models={},
        stackers=[],
        local_stacker=None,
        subclasses=[],
        pooling_scale=1.0,
        temperature=1.0,
        quantity_model=None,
        attributes=AttributeSchema.fit(cases),
        memory_lines=memory_lines,
    )
    agent = agent.with_memory(cases)
    say("retrieving evidence for the training cases")
    ev = [evidence(c) for c in cases]
    offsets = np.concatenate([[0], np.cumsum([len(c.candidates) for c in cases])])
    seg = np.repeat(np.arange(len(cases)), np.diff(offsets))
    y = np.zeros(offsets[-1], dtype=int)
    for i, c in enumerate(cases):
        y[offsets[i] + c.candidate_ids.index(c.truth_product_id)] = 1
    oof: dict[str, np.ndarray] = {}
    splits = list(GroupKFold(n_splits=folds).split(np.zeros(len(y)), y, groups=seg))
    for role in ROLES:
        say(f"fitting the {role.replace('_', ' ')}")
        rows = np.asarray(
            [r for c, (nb, z) in zip(cases, ev, strict=True) for r in agent.role_features(role, c, nb, z)],
            dtype=float,
        )
        X = np.column_stack([rows, *(said(oof, r, ROLES, offsets) for r in ROLES[: ROLES.index(role)])])
        out = np.zeros(len(y))
        for k, (tr, te) in enumerate(splits):
            out[te] = fit_role(seed + k, X[tr], y[tr], seg[tr]).predict(X[te])
        oof[role] = out
        agent.role_models[role] = fit_role(seed, X, y, seg)
    say("fitting decide (stacking, pooling, calibration)")
    agent.subclasses = sorted({c.subclass for c in cases})
    market = np.concatenate([agent.market_column(c) for c in cases])
    agent.pooling_scale, agent.stacker_c = choose_pooling(agent, oof, market, offsets, cases, y, splits)
    shared, local = agent.design(oof, market, offsets, [c.subclass for c in cases], ROLES)
    design = sparse.hstack([shared, local]).tocsr()
    agent.stackers = [stacker(design, y, agent.stacker_c)]
    rng = np.random.default_rng(seed)
    for _ in range(replicas - 1):
        pick = rng.integers(0, len(cases), len(cases))
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in pick])
        agent.stackers.append(stacker(design[rows], y[rows], agent.stacker_c))
    agent.local_stacker = stacker(local, y, agent.stacker_c)
    agent.temperature = temperature(agent.stackers[0].decision_function(design), offsets, y)
    say("fitting the ranker decide")
    decide = fit_ranker_decide(
        np.column_stack([shared.toarray(), agent.raw_rows(cases, ev)]), y, offsets, splits, seed, replicas
    )
    agent.rankers, agent.ranker_temperature = decide.models, decide.temperature
    say("fitting the quantity model")
    candidates = quantity_matrix(
        [c for c in cases for _ in c.candidate_ids],
        [p for c in cases for p in c.candidate_ids],
        agent.memory,
        agent.attributes,
    )
    Q = candidates[np.flatnonzero(y)]  # the product bought
    q = np.array([c.truth_quantity for c in cases], dtype=float)
    case_folds = [(np.unique(seg[train]), np.unique(seg[held])) for train, held in splits]
    trees, tree_maes = choose_trees(Q, q, candidates, offsets, decide.oof_probs, case_folds, seed, lgbm)
    agent.quantity_model = fit_units_model(Q, q, seed, lgbm, trees=trees)
    agent.meta = {
        "n_cases": len(cases),
        "memory_lines": len(memory_lines),
        "replicas": replicas,
        "temperature": round(agent.temperature, 4),
        "ranker_temperature": round(agent.ranker_temperature, 4),
        "pooling_scale": agent.pooling_scale,
        "stacker_c": agent.stacker_c,
        "quantity_objective": agent.quantity_model.describe(),
        "ranker_leaves": decide.leaves,
        "ranker_cv_logloss": {str(n): round(v, 4) for n, v in decide.cv_logloss.items()},
        "quantity_trees": trees,
        "quantity_cv_mae": {str(n): round(e, 4) for n, e in tree_maes.items()},
        "attributes": agent.attributes.to_json(),
        "seed": seed,
        "fingerprint": hashlib.sha1("".join(sorted(c.situation_id for c in cases)).encode()).hexdigest()[:12],
    }
    return agent


@dataclass
class DecideFit:
    """The fitted ranker decide: ``[ensemble, [replica], ...]``, its temperature, the out-of-fold choice
    probabilities, the leaves per tree and each size's out-of-fold log-loss."""

    models: list[list[Any]]
    temperature: float
    oof_probs: np.ndarray
    leaves: int
    cv_logloss: dict[int, float]


def fit_ranker_decide(
    X: np.ndarray,
    y: np.ndarray,
    offsets: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
    replicas: int,
    seeds: int = RANKER_SEEDS,
) -> DecideFit:
    """The decide: the mean score of ``seeds`` lambdarank models over the out-of-fold role opinions,
    the market and every role's raw slice, then bootstrap replicas of one model (the vote's
    samples: ``[ensemble, [replica], ...]``); its softmax temperature is fitted on the ensemble's
    out-of-fold scores (the roles' grouped folds), so the probabilities are calibrated on cases it
    has not seen. One ranker's choices move with its random state (row and column subsampling);
    the mean of several is steadier (3-fold CV within January, docs/agent-choices.md). Also the
    out-of-fold choice probabilities (the count model's trees are chosen with them).

    Each ranker has 15 leaves per tree unless 4 give a clearly lower out-of-fold log-loss (by more
    than two standard errors; ``metrics.clearly_better``): on a generated brand-choice panel whose
    utility is additive, 4 leaves gave hit@1 0.567 -> 0.583 and 0.574 -> 0.597 on two draws, while
    every Ta Feng fit for Dec -> Jan, the January CV and Feb keeps 15 (docs/agent-choices.md)."""
    seg = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    truth = np.flatnonzero(y)
    probs, temperatures, losses = {}, {}, {}
    for leaves in RANKER_LEAVES:
        oof = np.zeros(len(y))
        for k, (tr, te) in enumerate(splits):
            oof[te] = ensemble_score(fit_ensemble(seed + k, X[tr], y[tr], seg[tr], leaves, seeds), X[te])
        temperatures[leaves] = temperature(oof, offsets, y)
        probs[leaves] = segment_softmax(oof / temperatures[leaves], offsets)
        losses[leaves] = -np.log(probs[leaves][truth] + 1e-12)
    leaves = clearly_better(losses, RANKER_LEAVES[0])
    models = [fit_ensemble(seed, X, y, seg, leaves, seeds)]
    rng = np.random.default_rng(seed + 100)
    for m in range(replicas - 1):
        pick = np.sort(rng.integers(0, len(offsets) - 1, len(offsets) - 1))
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in pick])
        group = np.repeat(np.arange(len(pick)), np.diff(offsets)[pick])  # a case drawn twice is two groups
        models.append([fit_role(seed + 101 + m, X[rows], y[rows], group, leaves)])
    cv_logloss = {n: float(v.mean()) for n, v in losses.items()}
    return DecideFit(models, temperatures[leaves], probs[leaves], leaves, cv_logloss)


def fit_ensemble(seed: int, X: np.ndarray, y: np.ndarray, seg: np.ndarray, leaves: int, seeds: int) -> list[Any]:
    """``seeds`` rankers with the random states of :func:`ranker_seed` (``ensemble_score`` averages them)."""
    return [fit_role(ranker_seed(seed, m), X, y, seg, leaves) for m in range(seeds)]


def ranker_seed(seed: int, member: int) -> int:
    """The random state of the decide ensemble's member (member 0 is the single ranker of agent/4)."""
    return seed + 100 + 17 * member


def ensemble_score(models: Sequence[Any], X: np.ndarray) -> np.ndarray:
    """The mean score of rankers fitted with different random states (row and column subsampling)."""
    return np.mean([m.booster_.predict(X, num_threads=1) for m in models], axis=0)


def choose_pooling(
    agent: ComputedAgent,
    oof: dict[str, np.ndarray],
    market: np.ndarray,
    offsets: np.ndarray,
    cases: Sequence[Any],
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[float, float]:
    """How much the subclasses borrow and how strongly the stacker is penalised: the pair with the
    best cross-validated log-loss."""
    from malles_graph.roles.agent import ROLES

    seg = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    best, best_loss = (POOLING_SCALES[0], STACKER_C[0]), math.inf
    for scale in POOLING_SCALES:
        agent.pooling_scale = scale
        shared, local = agent.design(oof, market, offsets, [c.subclass for c in cases], ROLES)
        design = sparse.hstack([shared, local]).tocsr()
        for c in STACKER_C:
            loss = 0.0
            for tr, te in splits:
                score = stacker(design[tr], y[tr], c).decision_function(design[te])
                cases_te = np.unique(seg[te])
                off_te = np.concatenate([[0], np.cumsum(np.diff(offsets)[cases_te])])
                loss -= float(np.log(segment_softmax(score, off_te)[y[te] == 1] + 1e-12).sum())
            if loss < best_loss:
                best, best_loss = (scale, c), loss
    return best


def stacker(X: sparse.csr_matrix, y: np.ndarray, c: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=500).fit(X, y)


def temperature(score: np.ndarray, offsets: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature minimising the within-case log-loss of the truth."""
    truth = np.flatnonzero(y)

    def loss(t: float) -> float:
        return float(-np.log(segment_softmax(score / t, offsets)[truth] + 1e-12).mean())

    return float(minimize_scalar(loss, bounds=(0.2, 5.0), method="bounded").x)
