"""Screen snapshots as plain text: what a user sees, without colours, compared with stored files.

``screen_text`` renders the current screen exactly as ``App.export_screenshot`` does, but exports text
instead of SVG: a layout change (a clipped column, a hidden button, a wrapped title) changes the text,
while colour-theme or cursor-blink differences do not. Stored files live in tests/tui/snapshots/;
regenerate them after an intended change with::

    MALLES_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/tui/test_snapshots.py
"""

from __future__ import annotations

import difflib
import io
import os
from pathlib import Path
from typing import Any

from rich.console import Console

SNAPSHOT_DIR = Path(__file__).parent / "snapshots"


def screen_text(app: Any) -> str:
    """The current screen (with any modal over it) as text, one line per terminal row."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), force_terminal=True, color_system="truecolor",
        record=True, legacy_windows=False, safe_box=False,
    )  # fmt: skip
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def assert_snapshot(app: Any, name: str) -> None:
    """Compare the screen with tests/tui/snapshots/<name>.txt (written when MALLES_UPDATE_SNAPSHOTS=1)."""
    text = screen_text(app)
    stored = SNAPSHOT_DIR / f"{name}.txt"
    if os.environ.get("MALLES_UPDATE_SNAPSHOTS") == "1" or not stored.exists():
        if os.environ.get("MALLES_UPDATE_SNAPSHOTS") != "1":
            raise AssertionError(f"no snapshot {stored}; run with MALLES_UPDATE_SNAPSHOTS=1 to write it")
        SNAPSHOT_DIR.mkdir(exist_ok=True)
        stored.write_text(text, encoding="utf-8")
        return
    expected = stored.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), text.splitlines(keepends=True), str(stored), "this run"
            )
        )
        raise AssertionError(
            f"screen {name} differs from {stored} (MALLES_UPDATE_SNAPSHOTS=1 rewrites it if intended):\n{diff}"
        )
