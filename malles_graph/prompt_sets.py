"""Prompt sets and persona sets: the files a prompt engineer edits, identified by a content hash.

A prompt set is a folder of prompt files: ``prompts/`` by default, any folder by option. A persona
set is one persona file (``personas/*.yaml``) plus the style presets it names (``personas/styles.yaml``
when one of its personas uses a preset it does not define itself). Both are identified the same
way: the SHA-256 over their files' names and content digests (sorted by name), so changing one word
of ``decide.txt`` or of a persona's description changes the set's digest and that file's digest,
while copying the files elsewhere does not.

A prompt set may carry the persona set its decisions read (``PromptSet.personas``); its ``record()``
then holds the persona set's record under ``"personas"``. Every decision, run and evaluation
records these, so a result can always be traced to the exact prompts and personas behind it.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from malles_graph.errors import PromptError
from malles_graph.prompts import check_prompts, prompt_folder, read_prompt_text

SHORT = 12  # characters of a digest shown to people (git-style short hash)
PERSONA_SUFFIXES = (".yaml", ".yml")  # a persona file; anything else names a prompt folder
# A persona set's persona file is keyed by its role, not its name: a renamed copy is the same set, and
# two versions of one file pair up in a diff whatever they are called.
PERSONAS_KEY = "personas"


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Digested:
    """The one identity of a set of files: SHA-256 over (name, file digest) pairs in name order."""

    files: dict[str, str]
    texts: dict[str, str]

    @property
    def digest(self) -> str:
        joined = "\n".join(f"{name}\t{sha}" for name, sha in sorted(self.files.items()))
        return text_digest(joined)

    @property
    def short(self) -> str:
        return self.digest[:SHORT]

    kind = "set"

    @property
    def location(self) -> Path:  # pragma: no cover - every set says where it is
        raise NotImplementedError

    def path_of(self, name: str) -> Path:  # pragma: no cover - every set says where its files are
        raise NotImplementedError


@dataclass(frozen=True)
class PersonaSet(_Digested):
    """A persona file and the presets file it reads: their digests (keyed by file name) and texts."""

    file: Path
    files: dict[str, str] = field(default_factory=dict)  # PERSONAS_KEY or "styles.yaml" -> sha256 of its text
    texts: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    paths: dict[str, Path] = field(default_factory=dict, repr=False, compare=False)  # key -> where it was read
    personas: tuple[Any, ...] = field(default=(), repr=False, compare=False)  # the validated Persona models
    kind = "persona set"

    @property
    def location(self) -> Path:
        return self.file

    def path_of(self, name: str) -> Path:
        return self.paths.get(name, self.file.parent / name)

    def record(self) -> dict[str, object]:
        """What a decision, run or evaluation stores about its personas (JSON-ready)."""
        return {"digest": self.digest, "file": str(self.file), "files": dict(sorted(self.files.items()))}


@dataclass(frozen=True)
class PromptSet(_Digested):
    """The prompt files of one folder and their digests, and the persona set read with them (if any)."""

    folder: Path
    files: dict[str, str] = field(default_factory=dict)  # prompt name -> sha256 of its text
    texts: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    personas: PersonaSet | None = None
    kind = "prompt set"

    @property
    def location(self) -> Path:
        return self.folder

    def path_of(self, name: str) -> Path:
        return self.folder / f"{name}.txt"

    def record(self) -> dict[str, object]:
        """What a decision, run or evaluation stores about its prompts (JSON-ready)."""
        out: dict[str, object] = {
            "digest": self.digest,
            "folder": str(self.folder),
            "files": dict(sorted(self.files.items())),
        }
        if self.personas is not None:
            out["personas"] = self.personas.record()
        return out


def load_prompt_set(folder: Path | str | None = None, personas: Path | str | None = None) -> PromptSet:
    """The prompt set in ``folder`` (default: $MALLES_PROMPTS, else the bundled prompts), carrying the
    persona set of the file ``personas`` when given.

    Raises PromptError naming the folder when it is missing or holds no prompt file, PersonaError
    naming the file and field when the persona file is missing or invalid.
    """
    directory = prompt_folder(Path(folder) if folder is not None else None)
    paths = sorted(p for p in directory.glob("*.txt") if p.is_file())
    if not paths:
        raise PromptError(f"{directory}: no prompt files (*.txt) in this folder")
    texts = {p.stem: read_prompt_text(p) for p in paths}
    persona_set = load_persona_set(personas) if personas is not None else None
    return PromptSet(directory, {name: text_digest(text) for name, text in texts.items()}, texts, persona_set)


def load_set(path: Path | str) -> PromptSet | PersonaSet:
    """The set at ``path``: a persona set for a ``.yaml``/``.yml`` file, else the prompt set of a folder."""
    return load_persona_set(path) if is_persona_file(path) else load_prompt_set(path)


def is_persona_file(path: Path | str) -> bool:
    return Path(path).suffix in PERSONA_SUFFIXES


def scenario_personas(scenario: Any) -> str | None:
    """The persona file a scenario's decisions read (``population.source: personas``), else None."""
    population = getattr(scenario, "population", None)
    return population.personas_file if population is not None and population.source == "personas" else None


def persona_file(path: Path | str) -> Path:
    """Where a persona file is: as given when it exists (or is absolute), else under the personas folder."""
    from malles_graph.paths import personas_dir

    given = Path(path)
    return given if given.is_absolute() or given.exists() else personas_dir() / given


def load_persona_set(path: Path | str) -> PersonaSet:
    """The persona set of the persona file ``path`` (a bare name is looked up under ``personas/``).

    Every persona is validated first: a missing file or an invalid field raises one one-line
    PersonaError naming the file and the field (and how many more problems there are).
    """
    from malles_graph.retail.personas import STYLES_FILE, PersonaError, load_personas
    from malles_graph.yaml_files import load_yaml_text

    file = persona_file(path)
    try:
        personas = load_personas(file)
    except PersonaError as exc:
        first, *more = str(exc).splitlines() or [""]
        raise PersonaError(first + (f" (and {len(more)} more)" if more else "")) from None
    text = file.read_text(encoding="utf-8")  # valid UTF-8 YAML: load_personas read it
    paths = {PERSONAS_KEY: file}
    presets = persona_file(STYLES_FILE)
    if _uses_presets(load_yaml_text(text)) and presets.resolve() != file.resolve():
        paths[STYLES_FILE] = presets
    texts = {name: (text if where == file else where.read_text(encoding="utf-8")) for name, where in paths.items()}
    return PersonaSet(file, {name: text_digest(t) for name, t in texts.items()}, texts, paths, tuple(personas))


def _uses_presets(data: Any) -> bool:
    """Whether a persona names a style preset its own file does not define (so the presets file counts)."""
    own = data.get("styles") or {}
    return any(
        isinstance(e, dict) and isinstance(e.get("style"), str) and e["style"] not in own
        for e in data.get("personas") or []
    )


def set_of_texts(folder: Path, texts: dict[str, str]) -> PromptSet:
    """A prompt set from in-memory texts (an editor's unsaved buffers), named after ``folder``."""
    return PromptSet(folder, {name: text_digest(text) for name, text in texts.items()}, dict(texts))


def diff_sets(a: _Digested, b: _Digested, *, context: int = 2) -> str:
    """A unified diff of every file that differs between sets ``a`` and ``b`` ('' when identical).

    Both are prompt sets or both persona sets; a persona set's persona file is compared with the
    other's whatever their names (two versions of one file), its presets file with the other's.
    """
    chunks: list[str] = []
    for name in sorted(a.files.keys() | b.files.keys()):
        if a.files.get(name) == b.files.get(name):
            continue
        old = a.texts.get(name, "").splitlines(keepends=True)
        new = b.texts.get(name, "").splitlines(keepends=True)
        label_a = str(a.path_of(name)) if name in a.files else "/dev/null"
        label_b = str(b.path_of(name)) if name in b.files else "/dev/null"
        chunks.extend(difflib.unified_diff(old, new, label_a, label_b, n=context))
        if chunks and not chunks[-1].endswith("\n"):
            chunks[-1] += "\n"
    return "".join(chunks)


def changed_files(a: _Digested, b: _Digested) -> list[str]:
    """The names of the files that differ between two sets of one kind (as :func:`diff_sets` pairs them)."""
    names = sorted(n for n in a.files.keys() | b.files.keys() if a.files.get(n) != b.files.get(n))
    return [(a if n in a.files else b).path_of(n).name for n in names]


def checked_prompt_set(folder: Path | str | None = None, personas: Path | str | None = None) -> PromptSet:
    """The prompt set in ``folder``, every known prompt checked against its spec first (and the
    persona file ``personas``, when given, validated persona by persona).

    A run calls this before any LLM call: a missing folder, or a file missing or invalid in it,
    raises one PromptError naming the folder and the file (and how many others are wrong); a bad
    persona file one PersonaError naming the file and field.
    """
    directory = prompt_folder(Path(folder) if folder is not None else None)
    problems = [error for error in check_prompts(directory).values() if error]
    if problems:
        more = (
            f" (and {len(problems) - 1} more; see `malles prompts check --dir {directory}`)"
            if len(problems) > 1
            else ""
        )
        raise PromptError(f"prompt set {directory}: {problems[0]}{more}")
    return load_prompt_set(directory, personas)
