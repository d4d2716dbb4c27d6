"""Reading the YAML files users write (scenarios, personas), with errors that name file, line and column.

The loader is PyYAML's safe loader with limits, so a hostile or broken file ends in a one-line error:
duplicate keys are refused (PyYAML would silently keep the last), nesting deeper than ``MAX_DEPTH`` and
aliases that expand to more than ``MAX_VALUES`` values (a "billion laughs" bomb) are refused before any
value is built, and an impossible date such as ``2001-13-45`` is reported where it stands.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from malles_graph.errors import MallesError

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 100_000


class LimitError(yaml.YAMLError):
    def __init__(self, problem: str, mark: yaml.Mark | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class LimitedLoader(yaml.SafeLoader):
    """SafeLoader refusing duplicate keys, deep nesting, alias bombs and impossible dates."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise LimitError(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1

    def get_single_data(self) -> object:
        node = self.get_single_node()
        if node is None:
            return None
        if expanded_size(node, {}) > MAX_VALUES:
            raise LimitError(f"aliases expand to more than {MAX_VALUES:,} values (an alias bomb?)", node.start_mark)
        return self.construct_document(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        seen: dict[object, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key ({[a]: 1}); the base class reports it
                continue
            if first is not key_node.start_mark:
                raise ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first.line + 1})", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: Node) -> object:
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[arg-type]
        except (ValueError, OverflowError) as exc:
            raise ConstructorError(None, None, f"{node.value!r} is not a valid date ({exc})", node.start_mark) from None


LimitedLoader.add_constructor("tag:yaml.org,2002:timestamp", LimitedLoader.construct_yaml_timestamp)


def expanded_size(node: Node, memo: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias is expanded (aliases share node objects)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    if isinstance(node, MappingNode):
        size = 1 + sum(expanded_size(k, memo) + expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, SequenceNode):
        size = 1 + sum(expanded_size(item, memo) for item in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def load_yaml_text(text: str) -> object:
    """``text`` parsed with the limits above; raises ``yaml.YAMLError``."""
    loader = LimitedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _describe(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    text = f"{context}: {problem}" if context and problem else problem
    return f"{where}: {' '.join(str(text).split())}"


def parse_yaml_value(raw: str, source: str, error: type[MallesError]) -> object:
    """One value written inline (``--set key=value``), read as YAML so numbers and booleans keep their types."""
    try:
        return load_yaml_text(raw)
    except yaml.YAMLError as exc:
        raise error(f"{source}: {raw!r} is not a valid YAML value{_describe(exc)}") from None


def read_yaml(path: Path, error: type[MallesError], what: str) -> object:
    """The parsed content of ``path``; ``error`` (naming the file) when it is missing, not UTF-8 or not YAML."""
    if not path.exists():
        raise error(f"{path}: {what} file not found")
    if path.is_dir():
        raise error(f"{path}: is a folder, not a {what} file")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise error(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MiB; not a {what} file")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); is it a {what} file?") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} file ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise error(f"{path}: binary content (NUL bytes); not a {what} file")
    try:
        return load_yaml_text(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML{_describe(exc)}") from None
