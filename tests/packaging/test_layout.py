"""The wheel's contents are decided by pyproject.toml: nothing in the checkout is left out, nothing keeps an old name.

These are the cheap, static halves of tests/packaging/test_wheel.py: a new subpackage, data file or graph that
pyproject.toml does not cover fails here, naming it, before anyone builds a wheel.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import tokenize
from pathlib import Path

from langgraph.graph.state import CompiledStateGraph

from tests.packaging.layout import OLD_NAMES, REPO, layout

# A dotted reference to a repository folder by its old top-level name (`graphs.decision`, `~tui.session`,
# "retrieval.store:x"), not a file name (`docs/retrieval.md`) nor the public name (`malles_graph.tui.app`).
OLD_REFERENCE = re.compile(rf"(?<![\w./-])~?({'|'.join(OLD_NAMES)})\.(?!(?:md|py|tcss|json|txt|yaml)\b)[a-z_]\w*")
OLD_IMPORT = re.compile(rf"^\s*(?:from|import)\s+({'|'.join(OLD_NAMES)})\b", re.MULTILINE)
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}


def walk(root: Path) -> list[tuple[Path, list[str], list[str]]]:
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        out.append((Path(folder), dirs, files))
    return out


def test_packages_list_covers_every_package_folder() -> None:
    """Every folder with an __init__.py under a mapped root is listed, and every listed package exists."""
    config = layout()
    found = set()
    for name, root in config.roots().items():
        for folder, _, files in walk(root):
            if "__init__.py" in files:
                rel = folder.relative_to(root).parts
                found.add(".".join((name, *rel)))
    listed = set(config.packages)
    missing, stale = sorted(found - listed), sorted(listed - found)
    assert not missing, f"pyproject.toml [tool.setuptools] packages lacks {missing}: the wheel would not ship them"
    assert not stale, f"pyproject.toml [tool.setuptools] packages lists {stale}, which have no __init__.py"
    assert len(config.packages) == len(listed), "a package is listed twice"


def test_every_python_folder_is_a_package() -> None:
    """A folder of modules without __init__.py would install as data (or not at all), not as a subpackage."""
    config = layout()
    loose = [
        str(folder.relative_to(REPO))
        for root in config.roots().values()
        for folder, _, files in walk(root)
        if any(f.endswith(".py") for f in files) and "__init__.py" not in files
    ]
    assert not loose, f"folders with modules but no __init__.py: {loose}"


def test_every_data_file_is_package_data() -> None:
    """Prompts, personas, scenarios, the TUI stylesheet, py.typed: each matches a package-data pattern."""
    config = layout()
    uncovered = []
    for package in config.packages:
        folder = config.source(package)
        if not folder.is_dir():
            continue  # a listed package without a folder fails test_packages_list_covers_every_package_folder
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix not in (".py", ".pyc") and not config.data_matches(package, path.name):
                uncovered.append(str(path.relative_to(REPO)))
    assert not uncovered, f"files the wheel would leave out (add a [tool.setuptools.package-data] pattern): {uncovered}"
    shipped = {
        "malles_graph.assets.prompts": "*.txt",
        "malles_graph.assets.personas": "*.yaml",
        "malles_graph.assets.scenarios": "*.yaml",
        "malles_graph.tui": "*.tcss",
    }
    for package, pattern in shipped.items():
        assert list(config.source(package).glob(pattern)), f"{package}: no {pattern} files to ship"


def test_langgraph_json_names_the_installed_graphs() -> None:
    """langgraph.json uses the public import names, and each one is a compiled graph."""
    graphs = json.loads((REPO / "langgraph.json").read_text(encoding="utf-8"))["graphs"]
    assert {"decision", "population", "economist", "wholesale"} <= set(graphs)
    for graph_id, target in graphs.items():
        module, _, attribute = target.partition(":")
        assert re.fullmatch(r"malles_graph\.graphs\.\w+(\.\w+)*", module), f"{graph_id}: {target}"
        assert isinstance(getattr(importlib.import_module(module), attribute), CompiledStateGraph), target


def files_to_scan() -> list[Path]:
    folders = [*layout().roots().values(), REPO / "tests", REPO / "benchmarks", REPO / "docs"]
    paths = [REPO / "README.md", REPO / "langgraph.json", REPO / "Makefile", REPO / "pyproject.toml"]
    for folder in folders:
        for path, _, files in walk(folder):
            paths += [path / f for f in files if f.endswith((".py", ".md", ".json", ".toml", ".tcss"))]
    return [p for p in paths if p.exists()]


def prose(path: Path) -> list[tuple[int, str]]:
    """(first line, text) of what may name a module: a Python file's strings and comments (its code has
    variables such as `graphs.items()`), or a whole document."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return [(1, text)]
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [(t.start[0], t.string) for t in tokens if t.type in (tokenize.STRING, tokenize.COMMENT)]


def test_no_old_top_level_names_anywhere() -> None:
    """Installed code, tests, benchmarks, docs, README and langgraph.json name `malles_graph.*` only."""
    hits = []
    for path in files_to_scan():
        if path == Path(__file__):  # the pattern test below spells old names on purpose
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        found = [(i + 1, m.group(0)) for i, line in enumerate(lines) for m in OLD_IMPORT.finditer(line)]
        for first, text in prose(path):
            found += [(first + text.count("\n", 0, m.start()), m.group(0)) for m in OLD_REFERENCE.finditer(text)]
        hits += [f"{path.relative_to(REPO)}:{line}: {name.strip()}" for line, name in sorted(found)]
    assert not hits, "old top-level names (use malles_graph.graphs / .retrieval / .tui):\n" + "\n".join(hits)


def test_old_name_patterns_catch_what_they_should() -> None:
    """The scan above is only as good as its patterns: they flag old names and pass public names and paths."""
    flagged = [
        "from graphs.decision import graph",
        "import tui",
        "  from retrieval import store",
        '"graphs.decision:graph"',
        ":class:`~tui.session.RunSession`",
        'setattr("retrieval.store.x", 1)',
    ]
    passed = [
        "from malles_graph.graphs.decision import graph",
        "docs/retrieval.md",
        "tui/app.tcss",
        '"malles_graph.graphs.decision:graph"',
        "the graphs. Then",
        "`graphs/` folder",
        "import tuition",
    ]
    for text in flagged:
        assert OLD_IMPORT.search(text) or OLD_REFERENCE.search(text), text
    for text in passed:
        assert not (OLD_IMPORT.search(text) or OLD_REFERENCE.search(text)), text
