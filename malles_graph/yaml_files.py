"""Reading the YAML files users write (scenarios, personas), with errors that name file, line and column."""

from __future__ import annotations

from pathlib import Path

import yaml

from malles_graph.errors import MallesError


def read_yaml(path: Path, error: type[MallesError], what: str) -> object:
    """The parsed content of ``path``; ``error`` (naming the file) when it is missing, not UTF-8 or not YAML."""
    if not path.exists():
        raise error(f"{path}: {what} file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc})") from None
