"""The computed agent: three fitted role models, a fitted decide (stacking) and a count model for quantity.

No LLM. Each role is a LightGBM classifier over its own slice (``slices.py``) giving a utility
(log-odds) per candidate. ``decide`` is a LightGBM lambdarank model over the roles' opinions, the
market signal and the roles' raw slices, fitted on out-of-fold role opinions (so it learns how
far to trust each role, and where, not how well a role remembers its own training rows); its
score is the mean of five such rankers with different random states (steadier than one).
Calibration: a temperature on the within-case softmax, fitted on the ranker's out-of-fold
scores. The vote: bootstrap replicas of the ranker are the samples the decision graph draws and
votes over. The ``no-ranker`` ablation decides with the logistic-regression stacker instead, with
cross-subclass pooling (shared weights plus per-subclass deviations under the same L2 penalty, so
a sparse subclass keeps close to the shared weights); ``no-pooling`` drops the shared weights.
Quantity: the median of the candidates' unit distributions mixed by the choice probabilities (``quantity.py``).

This module holds the fitted agent and what the decision graph calls: its role nodes call
:meth:`ComputedAgent.opinion` with the retrieved neighbours and Z of the graph's state, its decide
node :meth:`ComputedAgent.decide`. The features are in ``slices.py`` (roles) and ``quantity.py``;
fitting is in ``fitting.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from malles_graph.errors import MallesError
from malles_graph.evaluation.features import AttributeSchema, segment_softmax
from malles_graph.models import ChoiceSituation, Decision, HiddenFactors
from malles_graph.retail.hidden_factors import reconstruct
from malles_graph.retail.retrieval_api import RetrievedRecord
from malles_graph.roles.fitting import ensemble_score
from malles_graph.roles.memory import Line, PopulationMemory, lines_from_columns, lines_to_columns, merge_lines
from malles_graph.roles.quantity import mixture_units, quantity_matrix
from malles_graph.roles.slices import ROLE_FEATURES, market_shares, persona_rows, price_rows, specialist_rows

FORMAT = "malles-computed-agent/6"  # /6: count model without Z; /5: seed-ensemble decide, P(units >= k); older refused
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
    ranker: bool = True  # off: the pooled logistic stacker decides (pooling applies to it)


def no_evidence(situation: ChoiceSituation) -> tuple[list[RetrievedRecord], HiddenFactors | None]:
    """Evidence without a memory: no neighbours, Z from the customer's own history."""
    return [], reconstruct(situation, []).hidden


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
    attributes: AttributeSchema
    memory_lines: list[Line]
    meta: dict[str, Any] = field(default_factory=dict)
    stacker_c: float = 1.0
    mechanisms: Mechanisms = field(default_factory=Mechanisms)
    rankers: list[list[Any]] = field(default_factory=list)  # the decide's seed ensemble, then bootstrap replicas
    ranker_temperature: float = 1.0
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
    def design(
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
        evidence: Sequence[tuple[Sequence[RetrievedRecord], HiddenFactors | None]],
        member: int = 0,
        roles: Sequence[str] = ROLES,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stacked, calibrated choice probabilities of every candidate row, and the case offsets."""
        offsets = np.concatenate([[0], np.cumsum([len(s.candidates) for s in situations])])
        market = np.concatenate([self.market_column(s) for s in situations])
        shared, local = self.design(opinions, market, offsets, [s.subclass for s in situations], roles)
        if self.mechanisms.ranker:
            X = np.column_stack([shared.toarray(), self.raw_rows(situations, evidence, roles)])
            score = ensemble_score(self.rankers[member % len(self.rankers)], X)
            temperature = self.ranker_temperature if self.mechanisms.calibration else 1.0
            return segment_softmax(score / temperature, offsets), offsets
        if self.mechanisms.pooling:
            score = self.stackers[member % len(self.stackers)].decision_function(sparse.hstack([shared, local]).tocsr())
        else:
            score = self.local_stacker.decision_function(local)
        temperature = self.temperature if self.mechanisms.calibration else 1.0
        return segment_softmax(score / temperature, offsets), offsets

    def raw_rows(
        self,
        situations: Sequence[ChoiceSituation],
        evidence: Sequence[tuple[Sequence[RetrievedRecord], HiddenFactors | None]],
        roles: Sequence[str] = ROLES,
    ) -> np.ndarray:
        """Every role's slice side by side, one row per candidate (the ranker decide's raw features);
        a silent role's slice is missing (NaN), as its opinion is."""
        blocks = []
        for role in ROLES:
            rows = [
                r for s, (nb, z) in zip(situations, evidence, strict=True) for r in self.role_features(role, s, nb, z)
            ]
            block = np.asarray(rows, dtype=float)
            blocks.append(block if role in roles else np.full_like(block, np.nan))
        return np.column_stack(blocks)

    def market_column(self, s: ChoiceSituation) -> np.ndarray:
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
        p, _ = self.probabilities([s], opinions, [(neighbours, hidden)], member=sample, roles=roles)
        k = int(np.argmax(p))
        product = s.candidates[k].product_id
        key = ("quantity", s.situation_id, tuple(np.round(p, 3)))
        if key not in self._cache:  # the vote's samples of one replica share one count-model answer
            self._cache[key] = self.quantity_for([s], [p])[0]  # type: ignore[assignment]
        quantity = int(self._cache[key])  # type: ignore[arg-type]
        spoke = ", ".join(r.replace("_", " ") for r in roles) or "no role"
        decision = Decision(
            product_id=product,
            quantity=quantity,
            confidence=round(float(p[k]), 4),
            rationale=f"stacked opinions of {spoke} (replica {sample % self.replicas})",
        )
        return decision, dict(zip(s.candidate_ids, (round(float(x), 6) for x in p), strict=True))

    # ---------------------------------------------------------------- quantity
    def quantity_for(
        self,
        situations: Sequence[ChoiceSituation],
        probs: Sequence[np.ndarray],
    ) -> list[int]:
        """Units per situation: the median of the candidates' unit distributions mixed by the choice probabilities."""
        out = []
        for s, p in zip(situations, probs, strict=True):
            ids = s.candidate_ids
            rows = quantity_matrix([s] * len(ids), ids, self.memory, self.attributes)
            out.append(mixture_units(self.quantity_model, rows, np.asarray(p, dtype=float)))
        return out

    # ---------------------------------------------------------------- checks, save, load
    def check_cases(self, situations: Sequence[ChoiceSituation], source: str) -> None:
        """Refuse cases whose attributes contradict the fitted ones (before any work starts)."""
        if problem := self.attributes.mismatch(situations, "the agent's training cases"):
            raise AgentModelError(f"{source}: {problem}")

    def unused_attributes(self, situations: Sequence[ChoiceSituation]) -> list[str]:
        """Attributes the cases carry that the training cases did not: the agent cannot use them."""
        return sorted(set(AttributeSchema.fit(situations).kinds) - set(self.attributes.kinds))

    def with_memory(self, situations: Sequence[Any] = ()) -> ComputedAgent:
        """A copy whose population memory holds the fitted lines plus the baskets of ``situations``."""
        extra = PopulationMemory.case_lines(situations)
        focus = {p.product_id for s in situations for p in s.candidates} or None
        memory = PopulationMemory.from_lines(merge_lines(self.memory_lines, extra), focus)
        return replace(self, memory=memory, _cache={})

    @property
    def max_units(self) -> int:
        """The most units it answers (the decision graph accepts up to this many from it)."""
        return self.quantity_model.largest

    @property
    def replicas(self) -> int:
        """How many different samples the vote can draw from the decide in use."""
        return len(self.rankers) if self.mechanisms.ranker else len(self.stackers)

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
                "memory_lines",
                "meta",
                "stacker_c",
                "rankers",
                "ranker_temperature",
            )
        }
        state["attributes"] = self.attributes.to_json()
        state["memory_lines"] = lines_to_columns(self.memory_lines)
        joblib.dump({"format": FORMAT, "state": state}, path, compress=3)

    @classmethod
    def load(cls, path: str | Path) -> ComputedAgent:
        import joblib

        path = Path(path)
        if not path.exists():
            raise AgentModelError(f"{path}: agent model file not found (fit one with `malles eval fit --cases FILE`)")
        try:
            data = joblib.load(path)
        except Exception as exc:  # pickle, zlib, EOF: all mean "not a saved agent"
            raise AgentModelError(
                f"{path}: not a saved computed agent (joblib cannot read it: {type(exc).__name__}); "
                "`malles eval fit --cases FILE --out FILE` writes one"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise AgentModelError(
                f"{path}: format {found!r} is not {FORMAT!r} (a computed agent saved by this version); "
                "refit it with `malles eval fit`"
            )
        try:
            state = dict(data["state"])
            state["attributes"] = AttributeSchema.from_json(state["attributes"])
            if isinstance(state["memory_lines"], dict):  # columns since 0.5.5; a list of lines before
                state["memory_lines"] = lines_from_columns(state["memory_lines"])
            return cls(**state)
        except (KeyError, TypeError, ValueError) as exc:  # the tag is right but the contents are not this version's
            raise AgentModelError(
                f"{path}: a computed agent whose contents this version cannot read ({type(exc).__name__}: {exc}); "
                "refit it with `malles eval fit`"
            ) from None

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
        extra_lines: Sequence[Line] = (),
    ) -> ComputedAgent:
        """Fit on training cases (situations with their truth), from an earlier window than any test case."""
        from malles_graph.roles.fitting import fit_agent

        return fit_agent(cls, cases, evidence, seed, replicas, folds, progress, extra_lines)


def said(opinions: dict[str, np.ndarray], role: str, roles: Sequence[str], offsets: np.ndarray) -> np.ndarray:
    """What ``role`` said, as later roles hear it: its opinion centred within each case, NaN when silent."""
    if role not in roles or role not in opinions:
        return np.full(offsets[-1], np.nan)
    u = opinions[role]
    return u - np.repeat(np.add.reduceat(u, offsets[:-1]) / np.diff(offsets), np.diff(offsets))


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
