"""Where malles-graph keeps fetched data, models and runs.

Everything lives under one home folder so a fresh machine needs one fetch and a
user can wipe it in one go. ``MALLES_HOME`` overrides the default.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from malles_graph.errors import MallesError

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The malles-graph home folder (created on first use)."""
    root = Path(os.environ.get("MALLES_HOME", Path.home() / ".cache" / "malles-graph"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def data_dir() -> Path:
    path = home() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    path = home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Default folder for run outputs (databases, Chroma memories, reports)."""
    path = Path(os.environ.get("MALLES_RUNS", Path.cwd() / "runs"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def bundled(kind: str) -> Path:
    """A folder of bundled package data (``prompts``, ``personas`` or ``scenarios``), wherever it is installed."""
    return Path(str(files(f"malles_graph.assets.{kind}")))


def _folder(variable: str, kind: str) -> Path:
    """The user's folder from ``variable`` when set (it must exist: no silent fallback), else the bundled one."""
    override = os.environ.get(variable)
    if not override:
        return bundled(kind)
    path = Path(override).expanduser()
    if not path.is_dir():
        raise MallesError(f"{variable}={override}: no such folder of {kind}")
    return path


def prompts_dir() -> Path:
    """The prompt folder: ``MALLES_PROMPTS`` when set, else the prompts bundled with the package."""
    return _folder("MALLES_PROMPTS", "prompts")


def personas_dir() -> Path:
    """The persona folder: ``MALLES_PERSONAS`` when set, else the personas bundled with the package."""
    return _folder("MALLES_PERSONAS", "personas")


def scenarios_dir() -> Path:
    """The bundled scenario files."""
    return bundled("scenarios")
