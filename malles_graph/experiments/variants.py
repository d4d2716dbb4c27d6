"""The variants of a prompt experiment: named prompt sets, checked before any LLM call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from malles_graph.errors import MallesError, PromptError
from malles_graph.prompt_sets import PromptSet, load_prompt_set
from malles_graph.prompts import PromptTemplate, check_prompts, parse_prompt

# The prompts the customer decision graph renders; a variant must hold each of them.
DECISION_PROMPTS = ("product_specialist", "price_analyst", "persona", "decide", "single_agent")


class ExperimentError(MallesError):
    """A variant, case file or experiment folder that cannot be run; the message names it."""


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment: a name and the prompt set it runs with."""

    name: str
    prompts: PromptSet

    def templates(self) -> dict[str, PromptTemplate]:
        """The decision prompts parsed from the set's texts (unsaved editor buffers included)."""
        return {
            name: parse_prompt(name, self.prompts.texts[name], self.prompts.folder / f"{name}.txt")
            for name in DECISION_PROMPTS
        }


def check_texts(prompts: PromptSet) -> None:
    """Raise PromptError naming the file and variable of the first invalid or missing decision prompt."""
    for name in DECISION_PROMPTS:
        path = prompts.folder / f"{name}.txt"
        if name not in prompts.texts:
            raise PromptError(f"{path}: prompt file not found")
        parse_prompt(name, prompts.texts[name], path)


def load_variants(folders: list[Path], names: list[str] | None = None) -> list[Variant]:
    """Variants from prompt folders (named after the folders unless ``names``); every error before any call."""
    if len(folders) < 2:
        raise ExperimentError("an experiment needs at least two prompt folders (the first is the reference)")
    if names and len(names) != len(folders):
        raise ExperimentError(f"{len(names)} --name value(s) for {len(folders)} prompt folders")
    chosen = names or [Path(f).resolve().name for f in folders]
    seen: dict[str, Path] = {}
    for name, folder in zip(chosen, folders, strict=True):
        if name in seen:
            raise ExperimentError(
                f"two variants named {name!r} ({seen[name]} and {folder}); rename a folder or pass --name"
            )
        seen[name] = folder
    variants = []
    for name, folder in zip(chosen, folders, strict=True):
        results = check_prompts(Path(folder))  # the folder's own files, never completed from the bundled ones
        for prompt in DECISION_PROMPTS:
            if results.get(prompt):
                raise PromptError(str(results[prompt]))
        variants.append(Variant(name, load_prompt_set(folder)))
    return variants
