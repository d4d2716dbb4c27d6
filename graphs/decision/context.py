"""The decision graph's runtime context (configuration) and how nodes resolve it.

Every option is a described, defaulted dataclass field (a unit test pins the defaults).
Non-serialisable collaborators live here too, never in the state: the LLM client, the
retriever, the calibrator and the fitted choice model.

When the decision graph runs as a subgraph, LangGraph hands it the *parent's* context.
:func:`resolve_context` accepts a :class:`DecisionContext`, ``None`` (all defaults), a plain
dict of field values, or any parent context with a ``decision`` attribute holding a
:class:`DecisionContext` (the convention for graphs that embed this one).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from malles_graph.backends import LLMClient, build_client, is_llm_backend
from malles_graph.errors import BackendError
from malles_graph.retail.retrieval_api import Retriever
from malles_graph.retail.stabilise import Calibrator, IdentityCalibrator
from malles_graph.scenario import BackendConfig, DecisionOptions

RoleName = Literal["product_specialist", "price_analyst", "persona"]
ROLES: tuple[RoleName, ...] = ("product_specialist", "price_analyst", "persona")


def _d(default: Any, description: str, **kw: Any) -> Any:
    if callable(default) and not isinstance(default, (int, float, str, bool, tuple)):
        return field(default_factory=default, metadata={"description": description}, **kw)
    return field(default=default, metadata={"description": description}, **kw)


@dataclass(kw_only=True)
class DecisionContext:
    """Configuration of one customer decision (LangGraph ``context_schema``).

    Collaborator fields are left out of the JSON schema (``SkipJsonSchema``): they are objects,
    set in code, not values a server user can type.
    """

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    backend: BackendConfig = _d(BackendConfig, "LLM backend; name 'choice-model' decides with the fitted model")
    debate_rounds: int = _d(2, "debate rounds of product_specialist -> price_analyst -> persona (0 = none)")
    roles: tuple[RoleName, ...] = _d(ROLES, "debate roles that speak; the others stay silent")
    samples: int = _d(1, "multi-sampling: decisions drawn, then majority vote and median quantity")
    shuffle: bool = _d(True, "list the candidates in another order in each sample after the first (position bias)")
    retrieval: bool = _d(True, "ablation: retrieve similar past episodes from the memory")
    hidden_factors: bool = _d(True, "ablation: reconstruct the hidden factors Z")
    single_agent: bool = _d(False, "ablation: one prompt holding everything instead of the debate")
    apply_style: bool = _d(True, "ablation: apply rho (price framing and quantity propensity)")
    max_repairs: int = _d(2, "repairs of an invalid decision before it is recorded as a failure")
    max_conflict_loops: int = _d(1, "times a decision conflicting with the customer's history is sent back")
    conflict_ratio: float = _d(10.0, "a quantity >= this x the customer's usual units is a conflict")
    max_quantity: int = _d(
        100, "largest quantity accepted from an LLM without repair (a choice model: its own largest answer if more)"
    )
    neighbours: int = _d(8, "retrieved episodes per query (own and other customers each)")
    turn_max_tokens: int = _d(96, "max tokens of one debate turn")
    decide_max_tokens: int = _d(192, "max tokens of one structured decision (the JSON grammar ends shorter answers)")
    rationale_chars: int = _d(160, "max characters of the rationale (grammar-enforced with llama.cpp)")
    transcript_chars: int = _d(280, "characters of each earlier turn shown to later roles")
    temperature: float | None = _d(None, "sampling temperature; the backend's when empty")
    seed: int = _d(0, "base seed; sample i of conflict loop j uses seed + 1000 j + i")
    choice_model_path: str | None = _d(
        None, "fitted choice model JSON for backend 'choice-model' (default model when empty)"
    )
    prompts_dir: str | None = _d(None, "folder of prompt files; $MALLES_PROMPTS, else the bundled prompts, when empty")
    personas_file: str | None = _d(
        None, "persona file the situations' personas come from (its set's digest is recorded with each decision)"
    )
    client: SkipJsonSchema[LLMClient | None] = _d(
        None, "LLM client; built from `backend` when empty", compare=False, repr=False
    )
    retriever: SkipJsonSchema[Retriever | None] = _d(
        None, "transaction memory; retrieval is skipped when empty", compare=False, repr=False
    )
    calibrator: SkipJsonSchema[Calibrator] = _d(
        IdentityCalibrator, "f(decision, X, Z) applied after the vote", compare=False, repr=False
    )
    choice_model: SkipJsonSchema[Any] = _d(
        None, "a loaded ChoiceModel (else loaded from choice_model_path)", compare=False, repr=False
    )
    prompt_templates: SkipJsonSchema[dict[str, Any]] = _d(
        dict, "prompt templates loaded by this context, by name (filled on first use)", compare=False, repr=False
    )

    def __post_init__(self) -> None:
        # contexts given as JSON (langgraph dev, a dict): coerce the nested values
        if isinstance(self.backend, dict):
            self.backend = BackendConfig.model_validate(self.backend)
        self.roles = tuple(self.roles)
        unknown = [r for r in self.roles if r not in ROLES]
        if unknown:
            raise ValueError(f"unknown debate role(s) {unknown}; roles are {list(ROLES)}")

    @classmethod
    def from_options(
        cls, options: DecisionOptions, backend: BackendConfig | None = None, **extra: Any
    ) -> DecisionContext:
        """A context from a scenario's ``decision:`` section (plus collaborators in ``extra``)."""
        return cls(
            backend=backend or BackendConfig(),
            debate_rounds=options.debate_rounds,
            roles=tuple(options.roles),
            samples=options.samples_for((backend or BackendConfig()).name),
            retrieval=options.retrieval,
            hidden_factors=options.hidden_factors,
            single_agent=options.single_agent,
            max_repairs=options.max_repairs,
            max_conflict_loops=options.max_conflict_loops,
            neighbours=options.neighbours,
            max_quantity=options.max_quantity,
            **({"calibrator": load_calibrator(options.calibration, backend)} if options.calibration else {}),
            **extra,
        )

    @property
    def uses_choice_model(self) -> bool:
        return self.backend.name == "choice-model"

    @property
    def quantity_limit(self) -> int:
        """The largest quantity a decision may have: ``max_quantity`` guards against an LLM's garbage; a
        fitted choice model answers from the units its training cases bought, which can be more (a
        case file of wholesale orders), so its own largest answer raises the limit."""
        if self.uses_choice_model:
            return max(self.max_quantity, int(getattr(self.model(), "max_units", 0)))
        return self.max_quantity

    # Collaborators are built once per context object, on first use (thread-safe).
    def llm(self) -> LLMClient:
        with _BUILD_LOCK:
            if self.client is None:
                if not is_llm_backend(self.backend.name):
                    raise BackendError(
                        f"backend {self.backend.name!r} is not an LLM; the decision graph cannot chat with it"
                    )
                self.client = build_client(self.backend)
            return self.client

    def model(self) -> Any:
        with _BUILD_LOCK:
            if self.choice_model is None:
                from malles_graph.evaluation.choice_model import ChoiceModel, default_model

                self.choice_model = (
                    ChoiceModel.load(self.choice_model_path) if self.choice_model_path else default_model()
                )
            return self.choice_model


_BUILD_LOCK = threading.RLock()


def load_calibrator(path: str, backend: BackendConfig | None = None) -> Calibrator:
    """The fitted calibration in ``path`` for this backend's decisions (errors name the file and field)."""
    from malles_graph.alignment.calibration import Calibration

    backend = backend or BackendConfig()
    return Calibration.load_for(path, backend.name, backend.model)


def field_descriptions() -> dict[str, tuple[Any, str]]:
    """Field name -> (default, description), for docs and the defaults test."""
    out = {}
    for f in fields(DecisionContext):
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        out[f.name] = (default, f.metadata.get("description", ""))
    return out


def resolve_context(context: Any) -> DecisionContext:
    """The DecisionContext a node should use (see the module docstring)."""
    if isinstance(context, DecisionContext):
        return context
    if context is None:
        return _default_context()
    if isinstance(context, dict):
        if isinstance(context.get("decision"), DecisionContext):
            return context["decision"]
        return DecisionContext(**context)
    nested = getattr(context, "decision", None)
    if isinstance(nested, DecisionContext):
        return nested
    raise TypeError(
        f"the decision graph needs a DecisionContext (or a context with a `decision` field), got {type(context).__name__}"
    )


_DEFAULT: DecisionContext | None = None


def _default_context() -> DecisionContext:
    # one shared default so the LLM client is built once, not per node
    global _DEFAULT
    with _BUILD_LOCK:
        if _DEFAULT is None:
            _DEFAULT = DecisionContext()
        return _DEFAULT
