"""Checkpoint types registered with LangGraph's serializer, so resume works under strict msgpack.

LangGraph's checkpointer stores pydantic models and dataclasses of the state by module and
class name and warns ("Deserializing unregistered type") for any type not on its allowlist;
with ``LANGGRAPH_STRICT_MSGPACK=true`` it refuses them. The allowlist is derived from the graph
itself: every class reachable from its state, input, output and node schemas.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any

import typing_extensions
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel


def checkpoint_types(builder: Any) -> set[type]:
    """Classes (pydantic models, dataclasses, enums) reachable from the builder's schemas."""
    roots: list[Any] = [getattr(builder, "state_schema", None), getattr(builder, "input_schema", None),
                        getattr(builder, "output_schema", None)]
    roots += list(getattr(builder, "schemas", {}) or {})
    for spec in (getattr(builder, "nodes", {}) or {}).values():
        roots.append(getattr(spec, "input_schema", None))
    found: set[type] = set()
    for root in roots:
        _walk(root, found, set())
    return found


def _walk(tp: Any, found: set[type], seen: set[int]) -> None:
    if tp is None or id(tp) in seen:
        return
    seen.add(id(tp))
    for arg in typing.get_args(tp):
        _walk(arg, found, seen)
    origin = typing.get_origin(tp)
    if origin is not None and not isinstance(origin, type):
        return
    if not isinstance(tp, type):
        return
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        found.add(tp)
        for field in tp.model_fields.values():
            _walk(field.annotation, found, seen)
    elif dataclasses.is_dataclass(tp):
        found.add(tp)
        for hint in _hints(tp).values():
            _walk(hint, found, seen)
    elif issubclass(tp, enum.Enum):
        found.add(tp)
    elif typing_extensions.is_typeddict(tp):
        for hint in _hints(tp).values():
            _walk(hint, found, seen)


def _hints(tp: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(tp, include_extras=True)
    except Exception:  # noqa: BLE001 - forward references that do not resolve: nothing to add from them
        return {}


def checkpoint_serde(*builders: Any) -> JsonPlusSerializer:
    """A serializer allowing exactly the graphs' own classes besides LangGraph's safe types."""
    types: set[type] = set()
    for builder in builders:
        types |= checkpoint_types(builder)
    allowed = sorted((t.__module__, t.__qualname__) for t in types)
    return JsonPlusSerializer(allowed_msgpack_modules=allowed)
