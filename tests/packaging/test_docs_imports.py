"""What the README and docs/ tell a developer to import exists under that public name.

A renamed or moved module (the decision graph becoming a package, the runner moving) otherwise leaves the docs
pointing at names that raise ImportError in the reader's app.
"""

from __future__ import annotations

import ast
import importlib
import re
import textwrap
from pathlib import Path

import pytest

from tests.packaging.layout import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
# langgraph.json's old form, a file of the checkout (`"./graphs/x.py:graph"`), instead of the installed module
FILE_TARGET = re.compile(r"\./graphs/[\w/]+\.py:\w+")


def blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, textwrap.dedent(m.group(1))) for m in PYTHON_BLOCK.finditer(text)]


def imported_names(code: str) -> list[tuple[str, str | None]]:
    """(module, name) for every `from malles_graph... import name` and (module, None) for `import malles_graph...`."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("malles_graph"):
            out += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            out += [(alias.name, None) for alias in node.names if alias.name.startswith("malles_graph")]
    return out


def problem(module: str, name: str | None) -> str | None:
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        return f"import {module}: {exc}"
    if name is None or name == "*" or hasattr(imported, name):
        return None
    try:  # `from package import submodule`
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return f"{module} has no {name!r}"
    return None


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_documented_imports_exist(path: Path) -> None:
    problems = []
    for line, code in blocks(path):
        try:
            names = imported_names(code)
        except SyntaxError as exc:
            problems.append(f"{path.name}:{line + (exc.lineno or 1) - 1}: the python block does not parse: {exc.msg}")
            continue
        problems += [f"{path.name}:{line}: {p}" for module, name in names if (p := problem(module, name))]
    assert not problems, "\n".join(dict.fromkeys(problems))


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_graphs_are_named_by_module(path: Path) -> None:
    """langgraph.json names graphs as `malles_graph.graphs.<name>:graph`; the docs say so too."""
    text = path.read_text(encoding="utf-8")
    stale = [m.group(0) for m in FILE_TARGET.finditer(text)]
    assert not stale, f"{path.name}: file targets {stale}; write malles_graph.graphs.<name>:graph"


def test_the_checks_catch_a_stale_import() -> None:
    assert problem("malles_graph.graphs.runner", "run_scenario")
    assert problem("malles_graph.events", "NoSuchEvent")
    assert problem("malles_graph.graphs", "decision") is None
    assert imported_names("import malles_graph.events\nfrom os import path") == [("malles_graph.events", None)]
    assert FILE_TARGET.search('"wholesale": "./graphs/wholesale.py:graph"')
