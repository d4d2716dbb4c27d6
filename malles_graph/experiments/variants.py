"""The variants of a prompt experiment: named prompt sets and persona files, checked before any LLM call.

A variant is given as one argument (its *spec*):

* ``FOLDER``: a prompt folder, the cases' customers as they are (no persona);
* ``FILE.yaml``: a persona file (a bare name is looked up under ``personas/``) with the default prompts
  ($MALLES_PROMPTS, else the bundled ones);
* ``FOLDER:FILE.yaml``: both.

With a persona file, each case's real customer is answered as the file's persona that matches
them best (see :func:`persona_for`): its description reaches the persona prompt and its style (rho)
the decision, and the persona set's digest is recorded next to the prompt set's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from malles_graph.errors import MallesError, PromptError
from malles_graph.models import ChoiceSituation, Customer, Persona
from malles_graph.prompt_sets import PERSONA_SUFFIXES, PromptSet, load_prompt_set
from malles_graph.prompts import PromptTemplate, check_prompts, parse_prompt, prompt_folder

# The prompts the customer decision graph renders; a variant must hold each of them.
DECISION_PROMPTS = ("product_specialist", "price_analyst", "persona", "decide", "single_agent")


class ExperimentError(MallesError):
    """A variant, case file or experiment folder that cannot be run; the message names it."""


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment: a name and the prompt set it runs with (and the persona set it carries)."""

    name: str
    prompts: PromptSet

    def persona(self, situation: ChoiceSituation) -> Persona | None:
        """The persona standing in for the situation's customer (None without a persona file)."""
        personas = self.prompts.personas
        return persona_for(situation.customer, personas.personas) if personas is not None else None

    def dressed(self, situation: ChoiceSituation) -> ChoiceSituation:
        """The situation as this variant's decision sees it: the persona's description and style set."""
        from malles_graph.retail.personas import persona_text

        persona = self.persona(situation)
        if persona is None:
            return situation
        return situation.model_copy(update={"persona_text": persona_text(persona), "style": persona.style})

    def templates(self) -> dict[str, PromptTemplate]:
        """The decision prompts parsed from the set's texts (unsaved editor buffers included)."""
        return {
            name: parse_prompt(name, self.prompts.texts[name], self.prompts.folder / f"{name}.txt")
            for name in DECISION_PROMPTS
        }


def persona_for(customer: Customer, personas: tuple[Persona, ...]) -> Persona:
    """The first persona, in file order, sharing the most with the customer: the age group first, then
    the area (pin code); with no match at all, the file's first persona.

    The rule depends only on the customer and the file, so two variants whose files list the same
    demographics give every case the same persona, and the pairing compares their texts and styles.
    """
    return max(personas, key=lambda p: (p.age_group == customer.age_group, p.pin_code == customer.pin_code))


def split_spec(spec: str | Path) -> tuple[Path | None, Path | None]:
    """(prompt folder, persona file) of a variant spec: FOLDER, FILE.yaml or FOLDER:FILE.yaml."""
    text = str(spec)
    if not text.endswith(PERSONA_SUFFIXES):
        return Path(text), None
    folder, sep, persona = text.rpartition(":")
    if sep and folder and persona and not Path(text).exists():
        return Path(folder), Path(persona)
    return None, Path(text)


def variant_name(folder: Path | None, personas: Path | None) -> str:
    """The default name: the folder's, the persona file's stem, or both joined by '+'."""
    names = [p for p in (folder.resolve().name if folder else "", personas.stem if personas else "") if p]
    return "+".join(names)


def check_texts(prompts: PromptSet) -> None:
    """Raise PromptError naming the file and variable of the first invalid or missing decision prompt."""
    for name in DECISION_PROMPTS:
        path = prompts.folder / f"{name}.txt"
        if name not in prompts.texts:
            raise PromptError(f"{path}: prompt file not found")
        parse_prompt(name, prompts.texts[name], path)


def load_variants(specs: list[str] | list[Path], names: list[str] | None = None) -> list[Variant]:
    """Variants from specs (named after their folders and files unless ``names``); every error before any call."""
    if len(specs) < 2:
        raise ExperimentError("an experiment needs at least two variants (the first is the reference)")
    if names and len(names) != len(specs):
        raise ExperimentError(f"{len(names)} --name value(s) for {len(specs)} variants")
    parts = [split_spec(spec) for spec in specs]
    chosen = names or [variant_name(folder, personas) for folder, personas in parts]
    seen: dict[str, str] = {}
    for name, spec in zip(chosen, specs, strict=True):
        if name in seen:
            raise ExperimentError(f"two variants named {name!r} ({seen[name]} and {spec}); rename one or pass --name")
        seen[name] = str(spec)
    variants = []
    for name, (folder, personas) in zip(chosen, parts, strict=True):
        directory = prompt_folder(folder)
        results = check_prompts(directory)  # the folder's own files, never completed from the bundled ones
        for prompt in DECISION_PROMPTS:
            if results.get(prompt):
                raise PromptError(str(results[prompt]))
        variants.append(Variant(name, load_prompt_set(directory, personas)))  # PersonaError names file and field
    return variants
