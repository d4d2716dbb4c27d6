"""Errors that reach the user: each names the file, field or value at fault."""

from __future__ import annotations


class MallesError(Exception):
    """Base class for errors that the CLI prints without a traceback."""


class ScenarioError(MallesError):
    """A scenario file is missing, not YAML, or does not match the Scenario model."""


class PromptError(MallesError):
    """A prompt file is missing or its variables do not match what the code supplies."""


class DataError(MallesError):
    """A data set is missing, corrupt or cannot be fetched."""


class BackendError(MallesError):
    """An LLM backend is unknown, misconfigured or does not answer."""


class BackendFatalError(BackendError):
    """The backend cannot serve this run at all (authentication refused, or the circuit breaker opened after
    too many consecutive failed calls): the runner stops the run as failed instead of recording more failures."""
