"""Where malles-graph keeps fetched data, models and runs.

Everything lives under one home folder so a fresh machine needs one fetch and a
user can wipe it in one go. ``MALLES_HOME`` overrides the default.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def prompts_dir() -> Path:
    return Path(os.environ.get("MALLES_PROMPTS", REPO_ROOT / "prompts"))


def personas_dir() -> Path:
    return Path(os.environ.get("MALLES_PERSONAS", REPO_ROOT / "personas"))


def scenarios_dir() -> Path:
    return REPO_ROOT / "scenarios"
