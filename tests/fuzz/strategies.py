"""Hypothesis strategies for hostile input: values of every JSON/YAML kind, YAML fragments, field paths."""

from __future__ import annotations

import copy
import datetime as dt
import tempfile
from pathlib import Path

import yaml
from hypothesis import strategies as st
from pydantic import BaseModel

from malles_graph.scenario import Scenario

EDGE_NUMBERS = [0, -1, 1, 2**31, 2**32, 2**63, 2**70, -(2**70), 1e-300, 1e300, 1e308, 0.5, -0.0]
EDGE_FLOATS = [float("inf"), float("-inf"), float("nan")]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGE_NUMBERS + EDGE_FLOATS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)),
    st.sampled_from(["local", "openai", "choice-model", "tafeng", "personas", "economist", "wholesale", "retail"]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=6,
)


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted field path of a pydantic model, sections included."""
    paths = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        annotation = info.annotation
        for candidate in getattr(annotation, "__args__", (annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                paths.extend(field_paths(candidate, f"{path}."))
    return paths


SCENARIO_PATHS = field_paths(Scenario)
paths = st.one_of(st.sampled_from(SCENARIO_PATHS), st.text(max_size=12), st.sampled_from(["", ".", "a..b", "seed.x"]))

YAML_FRAGMENTS = [
    "name: x\n",
    "&a ",
    "*a",
    "*b",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "\n",
    "  ",
    "\t",
    "!!python/object:os.system ",
    "!!binary ",
    "<<: *a\n",
    "---\n",
    "...\n",
    "'",
    '"',
    "#",
    "%YAML 1.1\n",
    "? ",
    "|\n",
    ">\n",
    "2001-13-45",
    ".inf",
    ".nan",
    "~",
    "0x1F",
    "1e30",
    "seed: ",
    "environment:\n  ",
    "n_candidates: 50",
    "\x00",
    "\ufeff",
]
yaml_soup = st.lists(st.sampled_from(YAML_FRAGMENTS) | st.text(max_size=6), max_size=30).map("".join)


BASE_SCENARIO = {
    "name": "fuzz",
    "seed": 1,
    "backend": {"name": "choice-model"},
    "population": {"n_customers": 100, "archetypes": 4, "representatives": 2},
    "environment": {"n_candidates": 4, "start_date": dt.date(2001, 2, 1)},
    "mean_field": {"max_rounds": 2, "epsilon": 0.01},
}


def set_path(data: dict, dotted: str, value: object) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[leaf] = value


@st.composite
def mutated_scenarios(draw: st.DrawFn) -> str:
    """A valid scenario with a few fields replaced, removed or added, dumped as YAML."""
    data = copy.deepcopy(BASE_SCENARIO)
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(SCENARIO_PATHS))
        if draw(st.booleans()):
            set_path(data, path, draw(values))
        else:
            node = data
            *parents, leaf = path.split(".")
            for key in parents:
                node = node.get(key) if isinstance(node.get(key), dict) else {}
            node.pop(leaf, None)
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.text(min_size=1, max_size=8))] = draw(values)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


scenario_texts = st.one_of(mutated_scenarios(), yaml_soup, st.text(max_size=200))


def scratch_folder() -> Path:
    """A fresh folder for the files one fuzz test writes (RAM-backed when the machine has /dev/shm)."""
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="malles-fuzz-", dir=shm if shm.is_dir() else None))
