"""Scenario section ``wholesale:`` (see scenarios/wholesale-*.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WholesaleOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    periods: int = Field(default=8, ge=1, description="simulated ordering periods")
