"""The computed agent: three fitted role models, a fitted decide (stacking) and a count model for quantity.

No LLM. Each role is a LightGBM classifier over its own slice (``slices.py``) giving a utility
(log-odds) per candidate. ``decide`` is a logistic-regression stacker over the roles' opinions
and the market signal, fitted on out-of-fold role opinions (so it learns how far to trust each
role, not how well a role remembers its own training rows). Cross-subclass pooling: the stacker
has shared weights plus per-subclass deviations under the same L2 penalty, so a sparse subclass
keeps close to the shared weights (borrows strength) and a rich one can move away. Calibration:
a temperature on the within-case softmax, fitted on the training cases. The vote: bootstrap
replicas of the stacker are the samples the decision graph draws and votes over. Quantity: a
LightGBM count model (Poisson or median, chosen by cross-validation on the training cases).

The decision graph runs this agent (backend ``agent``): its role nodes call :meth:`opinion`
with the retrieved neighbours and Z of the graph's state, its decide node calls :meth:`decide`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import minimize_scalar

from malles_graph.errors import MallesError
from malles_graph.evaluation.features import quantity_features, recent_median_quantity, segment_softmax
from malles_graph.models import ChoiceSituation, Decision, HiddenFactors
from malles_graph.retail.hidden_factors import reconstruct
from malles_graph.retail.retrieval_api import RetrievedRecord
from malles_graph.roles.memory import Line, PopulationMemory
from malles_graph.roles.slices import (
    ROLE_FEATURES,
    AttributeSchema,
    market_shares,
    persona_rows,
    price_rows,
    specialist_rows,
)

FORMAT = "malles-computed-agent/1"
ROLES: tuple[str, ...] = ("product_specialist", "price_analyst", "persona")
Evidence = Callable[[ChoiceSituation], tuple[list[RetrievedRecord], HiddenFactors | None]]


class AgentModelError(MallesError):
    """A saved agent cannot be read, or does not match the cases it is asked to decide."""


@dataclass(frozen=True)
class Mechanisms:
    """Mechanisms of ``decide`` that can be switched off (ablations). Retrieval, Z, the roles and
    the vote are switched in the decision graph's context; these live in the agent itself."""

    market: bool = True
    calibration: bool = True
    pooling: bool = True


def no_evidence(situation: ChoiceSituation) -> tuple[list[RetrievedRecord], HiddenFactors | None]:
    """Evidence without a memory: no neighbours, Z from the customer's own history."""
    return [], reconstruct(situation, []).hidden


def _lgbm(seed: int, objective: str = "lambdarank", **kw: Any) -> Any:
    from lightgbm import LGBMRanker, LGBMRegressor

    params = dict(
        n_estimators=150,
        learning_rate=0.05,
        num_leaves=15,
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
    return LGBMRegressor(objective=objective, **params)


def _fit_role(seed: int, X: np.ndarray, y: np.ndarray, seg: np.ndarray) -> Any:
    """A LightGBM lambdarank model: candidates of one case are ranked against each other (rows sorted by case)."""
    _, sizes = np.unique(seg, return_counts=True)
    return _lgbm(seed).fit(X, y, group=sizes)


@dataclass
class ComputedAgent:
    """Fitted role models, stacker replicas, calibration temperature, quantity model and memory."""

    role_models: dict[str, Any]
    stackers: list[Any]  # pooled stacker, then bootstrap replicas (the vote's samples)
    local_stacker: Any  # per-subclass weights only (the no-pooling ablation)
    subclasses: list[str]
    pooling_scale: float  # per-subclass deviation columns are scaled by this: smaller = more borrowing
    temperature: float
    quantity_model: Any
    quantity_objective: str
    attributes: AttributeSchema
    memory_lines: list[Line]
    meta: dict[str, Any] = field(default_factory=dict)
    mechanisms: Mechanisms = field(default_factory=Mechanisms)
    memory: PopulationMemory | None = field(default=None, repr=False)
    _cache: dict[Any, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    # ---------------------------------------------------------------- features
    def role_features(
        self, role: str, s: ChoiceSituation, neighbours: Sequence[RetrievedRecord], hidden: HiddenFactors | None
    ) -> list[list[float]]:
        if role == "product_specialist":
            return specialist_rows(s, self.memory, neighbours, self.attributes)
        if role == "price_analyst":
            return price_rows(s)
        if role == "persona":
            return persona_rows(s, neighbours, hidden)
        raise AgentModelError(f"unknown role {role!r}; roles are {list(ROLES)}")

    def feature_names(self, role: str) -> list[str]:
        names = list(ROLE_FEATURES[role]) + (self.attributes.names() if role == "product_specialist" else [])
        return names + [f"opinion:{r}" for r in ROLES[: ROLES.index(role)]]

    # ---------------------------------------------------------------- the roles
    def opinions_many(
        self,
        situations: Sequence[ChoiceSituation],
        evidence: Sequence[tuple[list[RetrievedRecord], HiddenFactors | None]],
        roles: Sequence[str] = ROLES,
    ) -> dict[str, np.ndarray]:
        """Each role's utility for every candidate row, in debate order: a role sees its own slice and
        what the roles before it said (their opinions, centred within the case; NaN when silent)."""
        offsets = np.concatenate([[0], np.cumsum([len(s.candidates) for s in situations])])
        out: dict[str, np.ndarray] = {}
        for role in ROLES:
            rows = np.asarray(
                [
                    r
                    for s, (nb, z) in zip(situations, evidence, strict=True)
                    for r in self.role_features(role, s, nb, z)
                ],
                dtype=float,
            )
            X = np.column_stack([rows, *(said(out, r, roles, offsets) for r in ROLES[: ROLES.index(role)])])
            # the booster directly: the scikit-learn wrapper's checks cost more than the trees for five rows
            out[role] = self.role_models[role].booster_.predict(X, num_threads=1)
        return out

    def opinion(
        self,
        role: str,
        s: ChoiceSituation,
        neighbours: Sequence[RetrievedRecord],
        hidden: HiddenFactors | None,
        roles: Sequence[str] = ROLES,
    ) -> np.ndarray:
        """One role's utilities for the candidates of ``s`` (memoised per situation, evidence and speakers)."""
        key = (s.situation_id, tuple(r.id for r in neighbours), hidden is None, tuple(roles))
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 256:
                self._cache.clear()
            cached = self._cache[key] = self.opinions_many([s], [(list(neighbours), hidden)], roles)
        return cached[role]

    def explain(self, role: str, s: ChoiceSituation, utility: np.ndarray) -> str:
        """The role's turn: its ranking of the candidates, in words."""
        labels = {p.product_id: p.label or p.product_id for p in s.candidates}
        p = np.exp(utility - utility.max())
        p /= p.sum()
        order = np.argsort(-utility)
        ranked = ", ".join(f"{labels[s.candidates[i].product_id]} {p[i]:.2f}" for i in order)
        slice_ = ", ".join(self.feature_names(role)[:6])
        return f"[computed {role.replace('_', ' ')}, fitted on {slice_}...] favours {ranked}"

    # ---------------------------------------------------------------- decide
    def _design(
        self,
        opinions: dict[str, np.ndarray],
        market: np.ndarray,
        offsets: np.ndarray,
        subclasses: Sequence[str],
        roles: Sequence[str],
    ) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """Shared columns (one per role + market) and per-subclass deviation columns."""
        seg = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        cols = []
        for role in ROLES:
            u = opinions[role] if role in roles else np.zeros(len(seg))
            cols.append(u - (np.add.reduceat(u, offsets[:-1]) / np.diff(offsets))[seg])
        cols.append(market if self.mechanisms.market else np.zeros(len(seg)))
        shared = np.column_stack(cols)
        index = {s: i for i, s in enumerate(self.subclasses)}
        sub = np.array([index.get(subclasses[i], -1) for i in seg])
        known = sub >= 0
        rows = np.repeat(np.flatnonzero(known), shared.shape[1])
        colidx = (sub[known][:, None] * shared.shape[1] + np.arange(shared.shape[1])).ravel()
        local = sparse.csr_matrix(
            (self.pooling_scale * shared[known].ravel(), (rows, colidx)),
            shape=(len(seg), max(1, len(self.subclasses)) * shared.shape[1]),
        )
        return sparse.csr_matrix(shared), local

    def probabilities(
        self,
        situations: Sequence[ChoiceSituation],
        opinions: dict[str, np.ndarray],
        member: int = 0,
        roles: Sequence[str] = ROLES,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stacked, calibrated choice probabilities of every candidate row, and the case offsets."""
        offsets = np.concatenate([[0], np.cumsum([len(s.candidates) for s in situations])])
        market = np.concatenate([self._market(s) for s in situations])
        shared, local = self._design(opinions, market, offsets, [s.subclass for s in situations], roles)
        if self.mechanisms.pooling:
            score = self.stackers[member % len(self.stackers)].decision_function(sparse.hstack([shared, local]).tocsr())
        else:
            score = self.local_stacker.decision_function(local)
        temperature = self.temperature if self.mechanisms.calibration else 1.0
        return segment_softmax(score / temperature, offsets), offsets

    def _market(self, s: ChoiceSituation) -> np.ndarray:
        shares = market_shares(s, self.memory)
        if shares is None:
            return np.zeros(len(s.candidates))
        logs = np.log(shares)
        return logs - logs.mean()

    def decide(
        self,
        s: ChoiceSituation,
        neighbours: Sequence[RetrievedRecord] = (),
        hidden: HiddenFactors | None = None,
        roles: Sequence[str] = ROLES,
        sample: int = 0,
    ) -> tuple[Decision, dict[str, float]]:
        """One sample of decide: stacker replica ``sample`` over the roles that spoke; quantity from the count model."""
        opinions = {r: self.opinion(r, s, neighbours, hidden, roles) for r in ROLES}
        p, _ = self.probabilities([s], opinions, member=sample, roles=roles)
        k = int(np.argmax(p))
        product = s.candidates[k].product_id
        key = ("quantity", s.situation_id, product, hidden is None)
        if key not in self._cache:  # the vote's samples share one count-model answer per product
            self._cache[key] = self.quantity_many([s], [product], [hidden])[0]  # type: ignore[assignment]
        quantity = int(self._cache[key])  # type: ignore[arg-type]
        spoke = ", ".join(r.replace("_", " ") for r in roles) or "no role"
        decision = Decision(
            product_id=product,
            quantity=quantity,
            confidence=round(float(p[k]), 4),
            rationale=f"stacked opinions of {spoke} (replica {sample % len(self.stackers)})",
        )
        return decision, dict(zip(s.candidate_ids, (round(float(x), 6) for x in p), strict=True))

    # ---------------------------------------------------------------- quantity
    def quantity_rows(self, s: ChoiceSituation, product_id: str, hidden: HiddenFactors | None) -> list[float]:
        product = next(p for p in s.candidates if p.product_id == product_id)
        nums = [
            float(v) if isinstance(v, (int, float)) else math.nan
            for k, kind in self.attributes.kinds.items()
            if kind == "number"
            for v in [product.attributes.get(k)]
        ]
        median = recent_median_quantity(s)
        lines = [i for b in s.recent_baskets for i in b.items]
        last = next((i.quantity for i in lines if i.product_id == product_id), math.nan)  # most recent first
        sub = sorted(i.quantity for i in lines if i.subclass == s.subclass)
        multi = sum(i.quantity > 1 for i in lines) / len(lines) if lines else math.nan
        return [
            *quantity_features(s, product_id).tolist(),
            math.nan if median is None else median,
            last,
            sub[len(sub) // 2] if sub else math.nan,
            multi,
            hidden.usual_quantity if hidden else math.nan,
            hidden.stock_up_intent.value if hidden else math.nan,
            *nums,
        ]

    def quantity_many(
        self, situations: Sequence[ChoiceSituation], products: Sequence[str], hidden: Sequence[HiddenFactors | None]
    ) -> list[int]:
        X = np.asarray([self.quantity_rows(s, p, z) for s, p, z in zip(situations, products, hidden, strict=True)])
        pred = self.quantity_model.booster_.predict(X, num_threads=1)
        return [max(1, int(math.floor(v + 0.5))) for v in pred]

    # ---------------------------------------------------------------- checks, save, load
    def check_cases(self, situations: Sequence[ChoiceSituation], source: str) -> None:
        """Refuse cases whose attributes contradict the fitted ones (before any work starts)."""
        seen: dict[str, str] = {}
        for s in situations:
            for p in s.candidates:
                for key, value in p.attributes.items():
                    seen.setdefault(key, "text" if isinstance(value, str) else "number")
        for key, kind in seen.items():
            fitted = self.attributes.kinds.get(key)
            if fitted is not None and fitted != kind:
                raise AgentModelError(
                    f"{source}: attribute {key!r} is {kind} in the cases but the agent was fitted with it as {fitted}"
                )
        if self.attributes.kinds and not set(seen) & set(self.attributes.kinds):
            raise AgentModelError(
                f"{source}: the agent was fitted with product attributes {sorted(self.attributes.kinds)} "
                "and the cases carry none of them: it was fitted on another kind of data"
            )

    def with_memory(self, situations: Sequence[Any] = ()) -> ComputedAgent:
        """A copy whose population memory holds the fitted lines plus the baskets of ``situations``."""
        extra = PopulationMemory.from_cases(situations).lines if situations else []
        focus = {p.product_id for s in situations for p in s.candidates} or None
        merged = {(ln.customer_id, ln.day, ln.product_id): ln for ln in [*self.memory_lines, *extra]}
        memory = PopulationMemory.from_lines(merged.values(), focus)
        return replace(self, memory=memory, _cache={})

    def with_mechanisms(self, **switches: bool) -> ComputedAgent:
        return replace(self, mechanisms=replace(self.mechanisms, **switches), _cache={})

    def save(self, path: str | Path) -> None:
        import joblib

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            k: getattr(self, k)
            for k in (
                "role_models",
                "stackers",
                "local_stacker",
                "subclasses",
                "pooling_scale",
                "temperature",
                "quantity_model",
                "quantity_objective",
                "memory_lines",
                "meta",
            )
        }
        state["attributes"] = self.attributes.to_json()
        joblib.dump({"format": FORMAT, "state": state}, path, compress=3)

    @classmethod
    def load(cls, path: str | Path) -> ComputedAgent:
        import joblib

        path = Path(path)
        if not path.exists():
            raise AgentModelError(f"{path}: agent model file not found (fit one with `malles eval fit -b agent`)")
        try:
            data = joblib.load(path)
        except Exception as exc:  # pickle, zlib, EOF: all mean "not a saved agent"
            raise AgentModelError(f"{path}: not a saved computed agent ({type(exc).__name__}: {exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise AgentModelError(
                f"{path}: format {found!r} is not {FORMAT!r} (a computed agent saved by this version)"
            )
        state = dict(data["state"])
        state["attributes"] = AttributeSchema.from_json(state["attributes"])
        return cls(**state)

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls,
        cases: Sequence[Any],
        evidence: Evidence = no_evidence,
        seed: int = 0,
        replicas: int = 5,
        folds: int = 3,
        progress: Callable[[str], None] | None = None,
    ) -> ComputedAgent:
        """Fit on training cases (situations with their truth), from an earlier window than any test case."""
        from sklearn.model_selection import GroupKFold

        say = progress or (lambda _m: None)
        if len(cases) < 20:
            raise AgentModelError(f"the agent needs at least 20 training cases, got {len(cases)}")
        memory_lines = PopulationMemory.from_cases(cases).lines
        agent = cls(
            role_models={},
            stackers=[],
            local_stacker=None,
            subclasses=[],
            pooling_scale=1.0,
            temperature=1.0,
            quantity_model=None,
            quantity_objective="",
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
        # roles: out-of-fold opinions for the stacker, then each role refitted on all cases
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
                out[te] = _fit_role(seed + k, X[tr], y[tr], seg[tr]).predict(X[te])
            oof[role] = out
            agent.role_models[role] = _fit_role(seed, X, y, seg)
        # decide: pooled stacker (+ bootstrap replicas), the per-subclass-only stacker, the temperature
        say("fitting decide (stacking, pooling, calibration)")
        agent.subclasses = sorted({c.subclass for c in cases})
        market = np.concatenate([agent._market(c) for c in cases])
        agent.pooling_scale = _choose_pooling(agent, oof, market, offsets, cases, y, splits)
        shared, local = agent._design(oof, market, offsets, [c.subclass for c in cases], ROLES)
        design = sparse.hstack([shared, local]).tocsr()
        agent.stackers = [_stacker(design, y)]
        rng = np.random.default_rng(seed)
        for _ in range(replicas - 1):
            pick = rng.integers(0, len(cases), len(cases))
            rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in pick])
            agent.stackers.append(_stacker(design[rows], y[rows]))
        agent.local_stacker = _stacker(local, y)
        score = agent.stackers[0].decision_function(design)
        agent.temperature = _temperature(score, offsets, y)
        # quantity: a count model on the bought product, objective chosen by cross-validation
        say("fitting the quantity model")
        Q = np.asarray([agent.quantity_rows(c, c.truth_product_id, z) for c, (_, z) in zip(cases, ev, strict=True)])
        q = np.array([c.truth_quantity for c in cases], dtype=float)
        agent.quantity_objective = _choose_quantity_objective(Q, q, seed, folds)
        agent.quantity_model = _lgbm(seed, agent.quantity_objective).fit(Q, q)
        agent.meta = {
            "n_cases": len(cases),
            "memory_lines": len(memory_lines),
            "replicas": replicas,
            "temperature": round(agent.temperature, 4),
            "pooling_scale": agent.pooling_scale,
            "quantity_objective": agent.quantity_objective,
            "attributes": agent.attributes.to_json(),
            "seed": seed,
            "fingerprint": hashlib.sha1("".join(sorted(c.situation_id for c in cases)).encode()).hexdigest()[:12],
        }
        return agent


def said(opinions: dict[str, np.ndarray], role: str, roles: Sequence[str], offsets: np.ndarray) -> np.ndarray:
    """What ``role`` said, as later roles hear it: its opinion centred within each case, NaN when silent."""
    if role not in roles or role not in opinions:
        return np.full(offsets[-1], np.nan)
    u = opinions[role]
    return u - np.repeat(np.add.reduceat(u, offsets[:-1]) / np.diff(offsets), np.diff(offsets))


POOLING_SCALES = (0.1, 0.3, 1.0)


def _choose_pooling(
    agent: ComputedAgent,
    oof: dict[str, np.ndarray],
    market: np.ndarray,
    offsets: np.ndarray,
    cases: Sequence[Any],
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> float:
    """How much the subclasses borrow: the deviation scale with the best cross-validated log-loss."""
    seg = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    best, best_loss = POOLING_SCALES[0], math.inf
    for scale in POOLING_SCALES:
        agent.pooling_scale = scale
        shared, local = agent._design(oof, market, offsets, [c.subclass for c in cases], ROLES)
        design = sparse.hstack([shared, local]).tocsr()
        loss = 0.0
        for tr, te in splits:
            score = _stacker(design[tr], y[tr]).decision_function(design[te])
            cases_te = np.unique(seg[te])
            off_te = np.concatenate([[0], np.cumsum(np.diff(offsets)[cases_te])])
            loss -= float(np.log(segment_softmax(score, off_te)[y[te] == 1] + 1e-12).sum())
        if loss < best_loss:
            best, best_loss = scale, loss
    return best


def _stacker(X: sparse.csr_matrix, y: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=500).fit(X, y)


def _temperature(score: np.ndarray, offsets: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature minimising the within-case log-loss of the truth."""
    truth = np.flatnonzero(y)

    def loss(t: float) -> float:
        return float(-np.log(segment_softmax(score / t, offsets)[truth] + 1e-12).mean())

    return float(minimize_scalar(loss, bounds=(0.2, 5.0), method="bounded").x)


def _choose_quantity_objective(Q: np.ndarray, q: np.ndarray, seed: int, folds: int) -> str:
    """Poisson (mean, rounded) or L1 (median): whichever has the lower cross-validated MAE."""
    from sklearn.model_selection import KFold

    best, best_mae = "poisson", math.inf
    for objective in ("poisson", "l1"):
        errors = []
        for tr, te in KFold(n_splits=folds, shuffle=True, random_state=seed).split(Q):
            pred = np.maximum(1, np.floor(_lgbm(seed, objective).fit(Q[tr], q[tr]).predict(Q[te]) + 0.5))
            errors.append(np.abs(pred - q[te]).mean())
        if float(np.mean(errors)) < best_mae:
            best, best_mae = objective, float(np.mean(errors))
    return best


# ---------------------------------------------------------------- what the decision graph calls
def computed_turn(
    model: Any,
    role: str,
    s: ChoiceSituation,
    neighbours: Sequence[RetrievedRecord],
    hidden: HiddenFactors | None,
    roles: Sequence[str] = ROLES,
) -> str:
    """A computed role's turn in the decision graph: the agent's fitted role, or the choice model's split."""
    if isinstance(model, ComputedAgent):
        return model.explain(role, s, model.opinion(role, s, neighbours, hidden, roles))
    return model.explain(s)[role]


def computed_decision(
    model: Any,
    s: ChoiceSituation,
    neighbours: Sequence[RetrievedRecord],
    hidden: HiddenFactors | None,
    roles: Sequence[str],
    sample: int,
    rng: np.random.Generator | None,
) -> tuple[Decision, dict[str, float] | None]:
    """One computed decide sample: the agent's stacker replica ``sample`` over the roles that spoke
    (with its probabilities), or the choice model's decision (no probabilities)."""
    if isinstance(model, ComputedAgent):
        return model.decide(s, neighbours, hidden, roles=roles, sample=sample)
    return model.decide(s, rng=rng), None


def mean_probs(samples: Sequence[dict[str, float]]) -> dict[str, float] | None:
    """The vote's probabilities: the mean over the samples that carry some (None when none do)."""
    if not samples:
        return None
    keys = list(samples[0])
    return {k: round(sum(p.get(k, 0.0) for p in samples) / len(samples), 6) for k in keys}
