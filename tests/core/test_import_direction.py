"""DESIGN.md's import direction: tui -> graphs -> (retrieval, malles_graph); the core imports none of them."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import malles_graph

REPO = Path(__file__).resolve().parents[2]


def loaded_after(imports: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for name in {imports!r}: importlib.import_module(name)\n"
        # Top-level names, and malles_graph's mapped parts by their public names (malles_graph.graphs -> graphs).
        "print('\\n'.join(sorted({m.split('.')[1] if m.startswith('malles_graph.') else m.split('.')[0]"
        " for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return set(done.stdout.split())


def core_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(malles_graph.__path__, "malles_graph.")]
    # The CLI is the front door and the runner its helper: they import the others lazily, inside commands.
    return [n for n in names if not n.startswith("malles_graph.cli") and "train" not in n]


def test_core_imports_neither_graphs_nor_retrieval_nor_tui() -> None:
    loaded = loaded_after(core_modules())
    assert not loaded & {"graphs", "retrieval", "tui", "textual"}


def test_cli_startup_is_lazy() -> None:
    loaded = loaded_after(["malles_graph.cli"])
    assert not loaded & {"graphs", "retrieval", "tui", "textual", "chromadb", "torch"}


def test_retrieval_imports_only_the_core() -> None:
    if not (REPO / "retrieval" / "__init__.py").exists():
        raise AssertionError("retrieval/ package missing")
    loaded = loaded_after(["malles_graph.retrieval"])
    assert not loaded & {"graphs", "tui", "textual"}
