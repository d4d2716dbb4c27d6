"""docs/api.md, the public API page: every name it lists exists, it covers every graph and event, its example runs."""

from __future__ import annotations

import importlib
import json
import re
import sys
import types

import pytest
from malles_graph.graphs.run import RUNNERS

from malles_graph.events import EVENT_TYPES
from tests.packaging.layout import REPO

DOC = REPO / "docs" / "api.md"
ROW = re.compile(r"^\| `(malles_graph[\w.]*)` \| (`.+`) \|$", re.MULTILINE)


def public_names() -> dict[str, list[str]]:
    section = DOC.read_text(encoding="utf-8").split("## Public names", 1)[1].split("\n## ", 1)[0]
    table = {module: re.findall(r"`(\w+)`", names) for module, names in ROW.findall(section)}
    assert table, "docs/api.md: no table of public names"
    return table


def test_every_public_name_exists() -> None:
    missing = []
    for module, names in public_names().items():
        imported = importlib.import_module(module)
        missing += [f"{module}.{name}" for name in names if not hasattr(imported, name)]
    assert not missing, f"docs/api.md lists names that do not exist: {missing}"


def test_every_served_graph_and_event_is_public() -> None:
    table = public_names()
    graphs = json.loads((REPO / "langgraph.json").read_text(encoding="utf-8"))["graphs"]
    for target in graphs.values():
        module, _, attribute = target.partition(":")
        assert attribute in table.get(module, []), f"docs/api.md does not list {target}"
        assert any(name.startswith("build_") for name in table[module]), f"{module}: no build_* function listed"
    for runner in RUNNERS.values():  # the scenario kinds: what the generic runner calls is public
        module = f"malles_graph.graphs.{runner.package}"
        assert {"run_inputs", "run_context"} <= set(table.get(module, [])), f"{module}: run_inputs/run_context"
    assert {cls.__name__ for cls in EVENT_TYPES} <= set(table["malles_graph.events"])
    text = DOC.read_text(encoding="utf-8")
    for cls in EVENT_TYPES:
        assert f"| `{cls.__name__}` |" in text, f"docs/api.md: event {cls.__name__} is not described"


@pytest.mark.slow
def test_api_example_runs(tmp_path, monkeypatch, capsys) -> None:
    """The generic-runner example, verbatim, as a user's script in an empty folder."""
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert match, "docs/api.md: the example block is missing"
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("api_doc_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(match.group(1), str(DOC), "exec"), module.__dict__)  # noqa: S102 - the documented example
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("started economist ")
    assert [line.split()[1] for line in lines if line.startswith("round ")] == ["1", "2", "3"]
    assert lines[-1].startswith("finished ") and (tmp_path / "runs" / "embedded.sqlite").is_file()
