"""Scenario section ``economist:`` (see scenarios/economist-*.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EconomistOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_workers: int = Field(default=100, ge=1, description="number of worker agents")
    steps: int = Field(default=20, ge=1, description="worker steps in the run")
    planner_every: int = Field(default=5, ge=1, description="the planner acts every T steps")
