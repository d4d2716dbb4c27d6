"""The alignment package's user-facing error."""

from __future__ import annotations

from malles_graph.errors import MallesError


class AlignmentError(MallesError):
    """Bad alignment input (empty split, mismatched arrays, missing model file, unknown option)."""
