"""Copies of the bundled prompt folder for tests that run with a prompt set of their own."""

from __future__ import annotations

import shutil
from pathlib import Path

from malles_graph.paths import prompts_dir


def prompt_copy(folder: Path, *marked: str) -> Path:
    """Copy the bundled prompts (their text files only) to ``folder``; each prompt named in ``marked`` opens
    with a line ``MARKER-<name>``, so a test can see which file a model call was rendered from."""
    shutil.copytree(prompts_dir(), folder, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    for name in marked:
        path = folder / f"{name}.txt"
        path.write_text(f"MARKER-{name}\n" + path.read_text())
    return folder
