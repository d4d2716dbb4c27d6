"""Personas and style presets (rho) from YAML files under ``personas/``.

Two file shapes (see docs/decision-graph.md):

* a **styles** file: ``styles: {preset_name: {discount_sensitivity: ..., ...}}``
  (``personas/styles.yaml`` holds the shipped presets);
* a **personas** file: ``personas: [{name, age_group, pin_code, household, style, description}]``
  where ``style`` is a preset name or a mapping of StyleParams fields (missing fields take
  the defaults), and an optional ``styles:`` section adds presets local to the file.

Every error names the file and the field path, e.g.
``personas/retail_households.yaml: personas.2.style.loss_aversion: Input should be less than or equal to 5``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from malles_graph.errors import MallesError
from malles_graph.models import Persona, StyleParams
from malles_graph.paths import personas_dir
from malles_graph.yaml_files import read_yaml

STYLES_FILE = "styles.yaml"


class PersonaError(MallesError):
    """A persona or style file is missing, not YAML, or has an invalid field."""


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path, PersonaError, "persona")
    if not isinstance(data, dict):
        raise PersonaError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _problems(path: Path, prefix: str, exc: ValidationError) -> PersonaError:
    lines = []
    for err in exc.errors():
        where = ".".join([prefix, *map(str, err["loc"])]).strip(".")
        lines.append(f"{path}: {where}: {err['msg']} (got {err.get('input')!r})")
    return PersonaError("\n".join(lines))


def parse_styles(data: object, path: Path, prefix: str = "styles") -> dict[str, StyleParams]:
    """Validate a ``styles:`` mapping of preset name -> StyleParams fields."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PersonaError(f"{path}: {prefix}: expected a mapping of preset name to style fields")
    out = {}
    for name, fields in data.items():
        if not isinstance(fields, dict):
            raise PersonaError(f"{path}: {prefix}.{name}: expected a mapping of style fields")
        try:
            out[str(name)] = StyleParams.model_validate(fields)
        except ValidationError as exc:
            raise _problems(path, f"{prefix}.{name}", exc) from None
    return out


def load_styles(path: str | Path | None = None) -> dict[str, StyleParams]:
    """The style presets (rho) of a styles file; ``personas/styles.yaml`` by default."""
    path = Path(path) if path else personas_dir() / STYLES_FILE
    data = _read_yaml(path)
    if "styles" not in data:
        raise PersonaError(f"{path}: missing the 'styles:' section")
    return parse_styles(data["styles"], path)


def load_personas(path: str | Path, presets: dict[str, StyleParams] | None = None) -> list[Persona]:
    """The personas of a file (a bare name is looked up under ``personas/``).

    ``style`` may name a preset from ``presets`` (default: ``personas/styles.yaml`` plus the
    file's own ``styles:`` section) or give the fields inline.
    """
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = personas_dir() / path
    data = _read_yaml(path)
    entries = data.get("personas")
    if not isinstance(entries, list) or not entries:
        raise PersonaError(f"{path}: personas: expected a non-empty list of personas")
    if presets is None:
        default = personas_dir() / STYLES_FILE
        presets = load_styles(default) if default.exists() and default != path else {}
    presets = {**presets, **parse_styles(data.get("styles"), path)}
    personas, names = [], set()
    for i, entry in enumerate(entries):
        where = f"personas.{i}"
        if not isinstance(entry, dict):
            raise PersonaError(f"{path}: {where}: expected a mapping of persona fields")
        entry = dict(entry)
        style = entry.get("style")
        if isinstance(style, str):
            if style not in presets:
                raise PersonaError(f"{path}: {where}.style: unknown style preset {style!r}; known: {sorted(presets)}")
            entry["style"] = presets[style]
        try:
            persona = Persona.model_validate(entry)
        except ValidationError as exc:
            raise _problems(path, where, exc) from None
        if persona.name in names:
            raise PersonaError(f"{path}: {where}.name: duplicate persona name {persona.name!r}")
        names.add(persona.name)
        personas.append(persona)
    return personas


def persona_text(persona: Persona) -> str:
    """The short description a decision's persona prompt receives."""
    bits = [persona.name, f"age {persona.age_group}", f"area {persona.pin_code}"]
    if persona.household:
        bits.append(persona.household)
    text = ", ".join(bits)
    return f"{text}. {persona.description.strip()}" if persona.description.strip() else text
