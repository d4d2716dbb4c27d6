"""Scenario files: YAML loaded into the :class:`Scenario` model with precise errors."""

from __future__ import annotations

import datetime as dt
import reprlib
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from malles_graph.economist.options import EconomistOptions
from malles_graph.errors import ScenarioError
from malles_graph.paths import scenario_file
from malles_graph.wholesale.options import WholesaleOptions
from malles_graph.yaml_files import parse_yaml_value, read_yaml

# The one list of backend names (the registry in malles_graph/backends builds each); the first three chat.
BackendName = Literal["local", "openai", "ollama", "choice-model", "best-response"]
BACKEND_NAMES: tuple[str, ...] = get_args(BackendName)
LLM_BACKENDS: tuple[str, ...] = BACKEND_NAMES[:3]
# The Ta Feng data covers these days (see malles_graph/data/tafeng.py and `malles data info tafeng`).
TAFENG_FIRST_DAY, TAFENG_LAST_DAY = dt.date(2000, 11, 1), dt.date(2001, 2, 28)
# A run starts after a week of data: the busiest subclasses and each customer's history are read from the
# days before start_date (on the first day there are none, and the population would be empty).
HISTORY_DAYS = 7
EARLIEST_START = TAFENG_FIRST_DAY + dt.timedelta(days=HISTORY_DAYS)
# Seeds reach numpy, the LLM servers (a 32-bit field in llama.cpp) and the cache key.
MAX_SEED = 2**32 - 1


class Section(BaseModel):
    # Strict: `max_rounds: true` or `n_customers: 1e30` is a mistake, not 1 or 10**30; inf/nan never a setting.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class BackendConfig(Section):
    """Which LLM answers, and how it is called."""

    name: BackendName = Field(default="local", description="backend registry name")
    model: str | None = Field(default=None, description="model name or GGUF path; backend default when empty")
    base_url: str | None = Field(default=None, description="server URL for openai/ollama backends")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="environment variable holding the API key")
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    timeout_s: float = Field(default=120.0, gt=0)
    max_concurrency: int = Field(default=2, ge=1, le=256)
    max_retries: int = Field(default=2, ge=0, le=10, description="repairs of an invalid structured answer")
    call_retries: int = Field(
        default=1,
        ge=0,
        le=10,
        description="retries of a call that got no answer (timeout, connection error, HTTP 429/5xx); "
        "each attempt waits at most timeout_s",
    )
    failure_limit: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="circuit breaker: after this many consecutive failed calls the run stops as failed",
    )
    cache: bool = Field(default=True, description="use the on-disk response cache")
    n_ctx: int = Field(default=4096, ge=256, description="context size of the local llama.cpp server")
    threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="compute threads of the local llama.cpp server; empty: every usable CPU (up to 4), "
        "one when the machine is already busy (docs/performance.md)",
    )
    lora: str | None = Field(
        default=None, description="GGUF LoRA adapter applied on the local model (from `malles align serve`)"
    )


class PopulationConfig(Section):
    source: Literal["tafeng", "personas"] = "tafeng"
    n_customers: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,  # beyond the data's 32,266 customers the rest are synthesised, in memory
        description="sample size (larger than the data: synthesised customers); all customers when empty",
    )
    personas_file: str | None = Field(default=None, description="YAML under personas/ when source is personas")
    archetypes: int = Field(default=8, ge=1, description="K: number of archetypes (clusters)")
    representatives: int = Field(default=1, ge=1, description="simulated representatives per archetype")


class RetailEnvironmentConfig(Section):
    subclasses: list[str] | None = Field(default=None, description="product subclasses offered; busiest when empty")
    n_subclasses: int = Field(default=1, ge=1)
    n_candidates: int = Field(default=5, ge=2, le=26, description="products offered per decision (labelled A-Z)")
    start_date: dt.date | None = Field(
        default=None,
        strict=False,  # a quoted '2001-01-05' is a date too
        description=f"first simulated day, within the Ta Feng data after a week of history ({EARLIEST_START} to "
        f"{TAFENG_LAST_DAY}); "
        "data-driven when empty",
    )
    initial_stock: int = Field(default=500, ge=0)
    price_step: float = Field(default=0.05, ge=0, le=0.5, description="max relative price change per round")
    restock: int = Field(default=0, ge=0, description="units added to each product's stock per round")
    visit_rate: float = Field(
        default=0.02, ge=1e-6, le=1, description="share of the population shopping the subclass in one round"
    )
    target_cover: float = Field(
        default=3.0, gt=0, description="rounds of demand the store wants in stock; prices rise below, fall above"
    )
    max_discount: float = Field(default=0.5, ge=0, lt=1, description="lowest price = regular x (1 - max_discount)")
    max_markup: float = Field(default=0.5, ge=0, description="highest price = regular x (1 + max_markup)")


class DecisionOptions(Section):
    debate_rounds: int = Field(default=2, ge=0, le=10)
    samples: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description="multi-sampling: decisions drawn per agent, then a majority vote; the backend's default "
        "(DEFAULT_SAMPLES) when empty",
    )
    roles: list[Literal["product_specialist", "price_analyst", "persona"]] = Field(
        default_factory=lambda: ["product_specialist", "price_analyst", "persona"]
    )
    retrieval: bool = True
    hidden_factors: bool = True
    single_agent: bool = False
    max_repairs: int = Field(default=2, ge=0, le=10)
    max_conflict_loops: int = Field(default=1, ge=0, le=5)
    neighbours: int = Field(default=8, ge=0, le=100)
    max_quantity: int = Field(
        default=100,
        ge=1,
        le=1_000_000,
        description="largest quantity accepted from an LLM without repair (raise it where orders run into hundreds)",
    )
    calibration: str | None = Field(
        default=None, description="fitted calibration JSON (`malles align calibrate`) applied after the vote"
    )

    def samples_for(self, backend: str) -> int:
        """``samples``, or the backend's default: an LLM votes over several draws, the choice model needs one."""
        return self.samples if self.samples is not None else DEFAULT_SAMPLES.get(backend, 1)


# Decisions drawn per agent when decision.samples is empty: an LLM's draws differ (sampling, and the
# candidate order is shuffled per draw) so a vote evens out position bias; the fitted choice model is
# deterministic (argmax), so one draw is the vote.
DEFAULT_SAMPLES: dict[str, int] = {"local": 3, "openai": 5, "ollama": 3, "choice-model": 1}


class MeanFieldOptions(Section):
    damping: float = Field(default=0.5, gt=0, le=1, description="a in m(t+1) = (1-a) m(t) + a mu(t)")
    epsilon: float = Field(default=0.01, gt=0, description="stop when the distance falls below this")
    max_rounds: int = Field(default=5, ge=1, le=1000)


class StoreConfig(Section):
    url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in the run folder when empty")


class MemoryConfig(Section):
    path: str | None = Field(default=None, description="Chroma persist folder; under the run folder when empty")
    url: str | None = Field(default=None, description="Chroma server URL (http://host:port) instead of a folder")
    collection: str = "tafeng_transactions"
    build: bool = Field(
        default=True,
        description="add the episodes of the run's subclasses when the memory lacks them; when false a gap is an error",
    )


class ExecutorConfig(Section):
    """Where the population's decision graphs run; the events and the store are the same either way."""

    kind: Literal["local", "ray"] = Field(default="local", description="local: threads in this process; ray: Ray tasks")
    address: str | None = Field(
        default=None, description="Ray cluster address (ray://host:10001 or auto); a local cluster is started when empty"
    )
    max_in_flight: int = Field(default=8, ge=1, le=4096, description="decision tasks in flight per LLM endpoint")


class ModelPrice(Section):
    """What one model's tokens cost, in US dollars per million tokens."""

    prompt_per_1m: float = Field(ge=0, description="uncached prompt tokens")
    cached_per_1m: float | None = Field(default=None, ge=0, description="prompt tokens read from the prompt cache")
    completion_per_1m: float = Field(ge=0, description="completion tokens")


class Scenario(Section):
    name: str = Field(min_length=1)
    description: str = ""
    kind: Literal["retail", "economist", "wholesale"] = "retail"
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    backend: BackendConfig = BackendConfig()
    population: PopulationConfig = PopulationConfig()
    environment: RetailEnvironmentConfig = RetailEnvironmentConfig()
    decision: DecisionOptions = DecisionOptions()
    mean_field: MeanFieldOptions = MeanFieldOptions()
    store: StoreConfig = StoreConfig()
    memory: MemoryConfig = MemoryConfig()
    economist: EconomistOptions | None = None
    wholesale: WholesaleOptions | None = None
    prompts: str | None = Field(
        default=None, description="prompt set folder; $MALLES_PROMPTS, else the bundled prompts, when empty"
    )
    executor: ExecutorConfig = ExecutorConfig()
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="price table: model name -> USD per 1M tokens (cost shown when set)"
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        n, k = self.population.n_customers, self.population.archetypes
        if n is not None and k > n:
            raise ValueError(f"population.archetypes ({k}) must not exceed population.n_customers ({n})")
        reps = self.population.representatives
        if n is not None and k * reps > n:
            raise ValueError(
                f"population.archetypes x population.representatives ({k} x {reps}) must not exceed "
                f"population.n_customers ({n}): representatives are distinct customers"
            )
        day = self.environment.start_date
        if day is not None and not EARLIEST_START <= day <= TAFENG_LAST_DAY:
            raise ValueError(
                f"environment.start_date {day} is outside the Ta Feng data ({TAFENG_FIRST_DAY} to {TAFENG_LAST_DAY}; "
                f"a run needs {HISTORY_DAYS} days of history, so {EARLIEST_START} at the earliest)"
            )
        if self.population.source == "personas" and not self.population.personas_file:
            raise ValueError("population.personas_file is required when population.source is 'personas'")
        if self.kind == "economist" and self.economist is None:
            raise ValueError("kind 'economist' needs an 'economist:' section")
        if self.kind == "wholesale" and self.wholesale is None:
            raise ValueError("kind 'wholesale' needs a 'wholesale:' section")
        if self.executor.kind == "ray" and self.kind != "retail":
            raise ValueError(
                f"executor.kind 'ray' runs a retail population's decisions; kind {self.kind!r} runs in this process "
                "(use executor.kind: local)"
            )
        return self


# Bounded: a value from a hostile file (an alias bomb, a huge list) is shown cut short, never expanded whole.
_short = reprlib.Repr()
_short.maxlevel, _short.maxlist, _short.maxdict, _short.maxstring, _short.maxother, _short.maxlong = 2, 4, 4, 60, 60, 40
MAX_SHOWN_PROBLEMS = 10


def _field_name(part: object) -> str:
    """A path element as shown: a key with control characters (a line break to splitlines) is quoted."""
    text = str(part)
    return text if text.isprintable() and text else repr(text)


def format_validation_error(source: str, exc: ValidationError) -> str:
    """File, dotted field path, what was expected, what was given: one line for one problem, else one per problem."""
    problems = []
    for err in exc.errors(include_url=False, include_context=False)[:MAX_SHOWN_PROBLEMS]:
        where = ".".join(_field_name(p) for p in err["loc"]) or "(top level)"
        given = err.get("input")
        shown = "" if isinstance(given, dict) else f" (got {_short.repr(given)})"
        problems.append(f"{where}: {err['msg']}{shown}")
    if len(problems) == 1:
        return f"{source}: {problems[0]}"
    more = exc.error_count() - len(problems)
    tail = [f"  ... and {more} more"] if more > 0 else []
    return "\n".join(
        [f"{source}: {exc.error_count()} problem(s) in the scenario", *(f"  - {p}" for p in problems), *tail]
    )


def parse_scenario(data: object, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: expected a mapping of scenario fields at the top level, got {type(data).__name__}"
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(source, exc)) from None


def load_scenario(path: str | Path, overrides: dict[str, object] | None = None) -> Scenario:
    """Load and validate a scenario file (or a bundled one by bare name); ``overrides`` maps dotted paths to values."""
    path = scenario_file(path)
    data = read_yaml(path, ScenarioError, "scenario")
    if data is None:
        raise ScenarioError(f"{path}: the file is empty")
    for dotted, value in (overrides or {}).items():
        if value is not None and isinstance(data, dict):
            set_dotted(data, dotted, value)
    return parse_scenario(data, str(path))


class _ExplicitNull:
    """``--set key=`` or ``--set key=null``: set the field to null. A plain None among the overrides means "option
    not given" and is skipped, which silently dropped these (``--set name=`` ran the scenario unchanged)."""

    def __repr__(self) -> str:
        return "null"


EXPLICIT_NULL = _ExplicitNull()


def parse_sets(pairs: list[str]) -> dict[str, object]:
    """``--set key.path=value`` pairs; values are read as YAML (so 3, 0.5, true, [a, b] keep their types)."""
    overrides: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key or any(not part.strip() for part in key.split(".")):
            raise ScenarioError(f"--set {pair!r}: expected key.path=value, e.g. --set decision.samples=3")
        value = parse_yaml_value(raw, f"--set {key}", ScenarioError)
        overrides[key] = EXPLICIT_NULL if value is None else value
    return overrides


def set_dotted(data: dict, dotted: str, value: object) -> None:
    """Set ``a.b.c`` in nested mappings; a path through a value that is not a section is a ScenarioError."""
    node = data
    *parents, leaf = dotted.split(".")
    for depth, key in enumerate(parents):
        child = node.setdefault(key, {})
        if child is None:  # `economist:` left empty in the file
            child = node[key] = {}
        if not isinstance(child, dict):
            where = ".".join(parents[: depth + 1])
            raise ScenarioError(f"--set {dotted}: {where} is a value ({_short.repr(child)}), not a section with fields")
        node = child
    node[leaf] = None if value is EXPLICIT_NULL else value
