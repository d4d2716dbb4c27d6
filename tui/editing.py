"""What the Prompts & personas editor does to files, without any widget.

Validation reuses the core's own checks (``parse_prompt`` for prompts, the
persona loader for YAML), so the editor refuses exactly what a run would refuse.
Saving is atomic: the text goes to a temporary file in the same folder, which
``os.replace`` then moves over the original, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from rich.table import Table

from malles_graph.errors import MallesError, PromptError
from malles_graph.models import Persona, StyleParams
from malles_graph.paths import personas_dir, prompts_dir, written_whole
from malles_graph.prompts import PROMPT_SPECS, PromptTemplate, parse_prompt

FileKind = Literal["prompt", "personas", "styles"]
STYLES_FILE = "styles.yaml"


@dataclass(frozen=True)
class EditableFile:
    """One file the editor can open: a role prompt or a persona/style YAML."""

    kind: FileKind
    name: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.name}.txt" if self.kind == "prompt" else self.path.name

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.path.name}"


@dataclass(frozen=True)
class Validation:
    """The outcome of checking unsaved text: ``error`` is None when the text may be saved."""

    error: str | None
    summary: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def editable_files(prompt_folder: Path | None = None, persona_folder: Path | None = None) -> list[EditableFile]:
    """Every known prompt (even when its file is missing yet) and every YAML under personas/."""
    prompt_folder = prompt_folder or prompts_dir()
    persona_folder = persona_folder or personas_dir()
    files = [EditableFile("prompt", name, prompt_folder / f"{name}.txt") for name in sorted(PROMPT_SPECS)]
    if persona_folder.is_dir():
        for path in sorted(persona_folder.glob("*.y*ml")):
            kind: FileKind = "styles" if path.name == STYLES_FILE else "personas"
            files.append(EditableFile(kind, path.stem, path))
    return files


def read_text(file: EditableFile) -> str:
    return file.path.read_text(encoding="utf-8") if file.path.exists() else ""


def validate_prompt(file: EditableFile, text: str) -> tuple[Validation, PromptTemplate | None]:
    try:
        template = parse_prompt(file.name, text, file.path)
    except PromptError as exc:
        return Validation(str(exc)), None
    spec = PROMPT_SPECS[file.name]
    unused = sorted(spec.variables - template.fields)
    note = f"uses {sorted(template.fields)}" + (f"; not used (optional): {unused}" if unused else "")
    return Validation(None, note), template


def load_yaml_text(file: EditableFile, text: str) -> dict[str, StyleParams] | list[Persona]:
    """Load unsaved persona/style YAML with the real loader (on a temporary copy of the text).

    Returns the style presets of a styles file or the personas of a personas file; raises
    MallesError naming the user's file (not the temporary copy) and the field at fault.
    """
    from malles_graph.retail.personas import load_personas, load_styles

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise MallesError(f"{file.path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise MallesError(f"{file.path}: expected a mapping at the top level, got {type(data).__name__}")
    with tempfile.TemporaryDirectory(prefix="malles-edit-") as tmp:
        copy = Path(tmp) / file.path.name
        copy.write_text(text, encoding="utf-8")
        try:
            if file.kind == "styles" or ("styles" in data and "personas" not in data):
                return load_styles(copy)
            styles_path = file.path.parent / STYLES_FILE
            presets = load_styles(styles_path) if styles_path.exists() else {}
            return load_personas(copy, presets=presets)
        except MallesError as exc:
            raise MallesError(str(exc).replace(str(copy), str(file.path))) from None


def validate_yaml_file(file: EditableFile, text: str) -> Validation:
    try:
        loaded = load_yaml_text(file, text)
    except MallesError as exc:
        return Validation(str(exc))
    if isinstance(loaded, dict):
        return Validation(None, f"{len(loaded)} style preset(s): {', '.join(loaded)}")
    return Validation(None, f"{len(loaded)} persona(s): {', '.join(p.name for p in loaded)}")


STYLE_FIELDS = tuple(StyleParams.model_fields)


def validate(file: EditableFile, text: str) -> Validation:
    if file.kind == "prompt":
        return validate_prompt(file, text)[0]
    return validate_yaml_file(file, text)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    with written_whole(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
        os.chmod(tmp, mode)


def save(file: EditableFile, text: str) -> Validation:
    """Validate then write; invalid text is never written (the returned Validation says why)."""
    result = validate(file, text)
    if result.ok:
        atomic_write(file.path, text)  # the next run's context loads the saved file
    return result


# Values for previewing a prompt when no real situation is at hand: a plausible Ta Feng shopper.
SAMPLE_VALUES: dict[str, str] = {
    "round": "1",
    "subclass": "100205 (instant noodles)",
    "customer": "customer 01234567, age group 35-39, lives in area 114",
    "persona": "family-of-four, age 35-39, area 114, two adults, two children. Weekly big shop.",
    "style": "discount sensitivity 0.70, loss aversion 2.0, reference-price anchoring 0.60, "
    "brand loyalty 0.50, quantity propensity 0.90",
    "hidden_factors": "price sensitivity: high (buys discounted lines 60% of the time); pack size: multi-pack",
    "recent_baskets": "2000-12-28: 4710088620156 x2, 4710114128038 x1\n2000-12-21: 4710088620156 x3",
    "own_history": "A: bought 5 times, last 2000-12-28, usually 2 units\nB: never bought",
    "neighbours": "similar customer 0998 bought A x2 on 2000-12-30",
    "candidates": "A 4710088620156 at 24.0 (regular 27.0)\nB 4710114128038 at 31.0 (regular 31.0)\n"
    "C 4712425010712 at 19.5 (regular 22.0)",
    "candidate_ids": "A, B, C, none",
    "product_cards": "A: instant noodles, beef, 5-pack, popularity 0.21\nB: instant noodles, shrimp, 5-pack, "
    "popularity 0.12\nC: instant noodles, vegetable, single, popularity 0.08",
    "price_table": "A 24.0 (-11%)\nB 31.0 (0%)\nC 19.5 (-11%)",
    "price_level": "prices are 6% below their regular level on average",
    "market": "demand share last round: A 0.40, B 0.25, C 0.15; stock: plenty",
    "transcript": "(no earlier turns)",
    "feedback": "",
    "max_quantity": "10",
    "step": "3",
    "schedule": "0-11k: 10%, 11k-44k: 12%, 44k-95k: 22%, 95k+: 24%",
    "hours_grid": "0, 10, 20, 30, 40, 50, 60",
    "labour_cost": "hourly wage 28.50",
    "rebate": "1200.00 per worker",
    "hours_max": "60",
    "objective": "utilitarian",
    "objective_text": "maximise the sum of worker utilities",
    "history": "step 1: welfare 1021.3; step 2: welfare 1030.9",
    "max_change": "0.05",
    "n_workers": "100",
    "brackets": "0, 11000, 44725, 95375",
    "n_brackets": "4",
    "platforms": "A: lower the top rate; B: keep the schedule",
    "letters": "A, B",
    "current_income": "52000",
}


def render_preview(template: PromptTemplate, values: dict[str, object] | None = None) -> str:
    """The prompt filled with ``values`` (a situation's, from the decision graph's views), else the samples above."""
    supplied = {**SAMPLE_VALUES, **(values or {})}
    return template.render(**{name: supplied.get(name, f"<{name}>") for name in template.fields})


def folding(table: Table) -> Table:
    """Long names wrap onto a second line instead of ending in an ellipsis (preview and experiment tables)."""
    for column in table.columns:
        column.overflow = "fold"
    return table
