"""Prompt sets: a folder of prompt files, identified by a content hash.

A prompt set is what a prompt engineer edits: ``prompts/`` by default, any folder by option.
Its identity is the SHA-256 of its files' names and contents (``*.txt``, sorted by name), so
changing one word of ``decide.txt`` changes the set's digest and that file's digest, while
copying the folder elsewhere does not. Every decision, run and evaluation records the digest
(and the per-file digests), so a result can always be traced to the exact prompts behind it.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from malles_graph.errors import PromptError
from malles_graph.prompts import check_prompts, prompt_folder, read_prompt_text

SHORT = 12  # characters of a digest shown to people (git-style short hash)


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PromptSet:
    """The prompt files of one folder and their digests."""

    folder: Path
    files: dict[str, str] = field(default_factory=dict)  # prompt name -> sha256 of its text
    texts: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def digest(self) -> str:
        """SHA-256 over (name, file digest) pairs in name order: the set's identity."""
        joined = "\n".join(f"{name}\t{sha}" for name, sha in sorted(self.files.items()))
        return text_digest(joined)

    @property
    def short(self) -> str:
        return self.digest[:SHORT]

    def record(self) -> dict[str, object]:
        """What a decision, run or evaluation stores about its prompts (JSON-ready)."""
        return {"digest": self.digest, "folder": str(self.folder), "files": dict(sorted(self.files.items()))}


def load_prompt_set(folder: Path | str | None = None) -> PromptSet:
    """The prompt set in ``folder`` (default: $MALLES_PROMPTS, else the bundled prompts).

    Raises PromptError naming the folder when it is missing or holds no prompt file.
    """
    directory = prompt_folder(Path(folder) if folder is not None else None)
    paths = sorted(p for p in directory.glob("*.txt") if p.is_file())
    if not paths:
        raise PromptError(f"{directory}: no prompt files (*.txt) in this folder")
    texts = {p.stem: read_prompt_text(p) for p in paths}
    return PromptSet(directory, {name: text_digest(text) for name, text in texts.items()}, texts)


def set_of_texts(folder: Path, texts: dict[str, str]) -> PromptSet:
    """A prompt set from in-memory texts (an editor's unsaved buffers), named after ``folder``."""
    return PromptSet(folder, {name: text_digest(text) for name, text in texts.items()}, dict(texts))


def diff_sets(a: PromptSet, b: PromptSet, *, context: int = 2) -> str:
    """A unified diff of every file that differs between ``a`` and ``b`` ('' when identical)."""
    chunks: list[str] = []
    for name in sorted(a.files.keys() | b.files.keys()):
        if a.files.get(name) == b.files.get(name):
            continue
        old = a.texts.get(name, "").splitlines(keepends=True)
        new = b.texts.get(name, "").splitlines(keepends=True)
        label_a = f"{a.folder / name}.txt" if name in a.files else "/dev/null"
        label_b = f"{b.folder / name}.txt" if name in b.files else "/dev/null"
        chunks.extend(difflib.unified_diff(old, new, label_a, label_b, n=context))
        if chunks and not chunks[-1].endswith("\n"):
            chunks[-1] += "\n"
    return "".join(chunks)


def checked_prompt_set(folder: Path | str | None = None) -> PromptSet:
    """The prompt set in ``folder``, every known prompt checked against its spec first.

    A run calls this before any LLM call: a missing folder, or a file missing or invalid in it,
    raises one PromptError naming the folder and the file (and how many others are wrong).
    """
    directory = prompt_folder(Path(folder) if folder is not None else None)
    problems = [error for error in check_prompts(directory).values() if error]
    if problems:
        more = f" (and {len(problems) - 1} more; see `malles prompts check --dir {directory}`)" if len(problems) > 1 else ""
        raise PromptError(f"prompt set {directory}: {problems[0]}{more}")
    return load_prompt_set(directory)
