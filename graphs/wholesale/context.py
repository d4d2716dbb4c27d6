"""Runtime configuration of the wholesale graph (LangGraph ``context_schema``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from malles_graph.backends import LLMClient, build_client
from malles_graph.scenario import BackendConfig
from malles_graph.wholesale.options import WholesaleOptions


@dataclass(kw_only=True)
class WholesaleContext:
    """The scenario's wholesale options, the backend speaking for the three roles, and the run's client.

    ``client`` is an object set in code (the runner's, or a scripted one in tests), so it is left
    out of the JSON schema; without one, the backend's client is built.
    """

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    options: WholesaleOptions = field(
        default_factory=WholesaleOptions, metadata={"description": "the scenario's wholesale: section"}
    )
    backend: BackendConfig = field(
        default_factory=BackendConfig, metadata={"description": "which LLM speaks for the three roles"}
    )
    seed: int = field(default=0, metadata={"description": "base seed of the LLM calls"})
    client: SkipJsonSchema[LLMClient | None] = field(
        default=None, repr=False, compare=False,
        metadata={"description": "the LLM client (the runner's, or a scripted one); built from backend when empty"},
    )
    prompts_dir: str | None = field(
        default=None,
        metadata={"description": "folder of prompt files; $MALLES_PROMPTS, else the bundled prompts, when empty"},
    )

    def __post_init__(self) -> None:
        # contexts given as JSON (langgraph dev, a dict): coerce the nested sections
        if isinstance(self.options, dict):
            self.options = WholesaleOptions.model_validate(self.options)
        if isinstance(self.backend, dict):
            self.backend = BackendConfig.model_validate(self.backend)

    @property
    def prompts(self) -> Path | None:
        """The prompt folder to read (None: $MALLES_PROMPTS, else the bundled prompts)."""
        return Path(self.prompts_dir) if self.prompts_dir else None

    def llm(self) -> LLMClient:
        if self.client is None:
            self.client = build_client(self.backend)
        return self.client
