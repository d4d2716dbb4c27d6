"""RunSummary: what a stored run of any kind produced, read back from the store (`malles show`, the TUI)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from malles_graph.scenario import Scenario
from malles_graph.store import repository as repo
from malles_graph.store.engine import safe_url
from malles_graph.usage import UsageReport, usage_report


class RunSummary(BaseModel):
    """Headline figures of a run; ``summary`` holds the kind's own final figures."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    name: str
    kind: str = "retail"
    status: str
    reason: str | None = None
    store_url: str
    seed: int
    backend: str
    n_customers: int = 0
    archetypes: int = 0
    representatives: int = 0
    rounds: list[repo.RoundRecord] = Field(default_factory=list)
    converged: bool = False
    decisions: int = 0
    failed: int = 0
    llm_calls: int = Field(default=0, description="answers that came from the backend (counted by the run's client)")
    cached: int = Field(default=0, description="answers served by the response cache")
    wall_s: float = 0.0
    resumed: bool = False
    summary: dict[str, Any] = Field(default_factory=dict)
    prompt_set: dict[str, Any] = Field(default_factory=dict, description="digest, folder and files of the prompts")
    usage: UsageReport = Field(
        default_factory=UsageReport, description="tokens per role and round, cache hit rate, cost when priced"
    )

    @property
    def final(self) -> repo.RoundRecord | None:
        return self.rounds[-1] if self.rounds else None


def summarise(engine: Engine, run_id: str, url: str, resumed: bool = False) -> RunSummary:
    """The RunSummary of a stored run (any kind)."""
    row = repo.get_run(engine, run_id)
    counts = repo.decision_counts(engine, run_id)
    return RunSummary(
        run_id=row.id, name=row.name, kind=row.kind, status=row.status, reason=row.error, store_url=safe_url(url),
        seed=row.seed, backend=row.backend, n_customers=row.n_customers or 0, archetypes=row.archetypes,
        representatives=row.representatives, rounds=repo.load_rounds(engine, run_id), converged=row.converged,
        decisions=sum(n for n, _ in counts.values()), failed=sum(f for _, f in counts.values()),
        llm_calls=row.llm_calls or 0, cached=row.cached_calls or 0, resumed=resumed, summary=json.loads(row.summary_json or "{}"),
        prompt_set=json.loads(row.prompt_set_json or "{}"), usage=stored_usage(engine, run_id, row.scenario_json),
    )


def stored_usage(engine: Engine, run_id: str, scenario_json: str | None) -> UsageReport:
    """The run's token report from its stored turns, priced with the stored scenario's price table."""
    try:
        scenario = Scenario.model_validate_json(scenario_json) if scenario_json and scenario_json != "{}" else None
    except ValueError:  # a run stored by an older version whose scenario no longer validates: tokens, no cost
        scenario = None
    return usage_report(repo.token_usage(engine, run_id, "role"), repo.token_usage(engine, run_id, "round"), scenario)
