"""Role prompts as data: ``prompts/<name>.txt`` files with ``{variable}`` placeholders.

Each prompt has a :class:`PromptSpec` saying which variables the code supplies
and which the prompt must use. Loading checks both, so a typo fails at load time
naming the file and the variable, not deep inside a run. Literal braces are
written doubled (``{{`` and ``}}``), as in ``str.format``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from malles_graph.errors import PromptError
from malles_graph.paths import prompts_dir


@dataclass(frozen=True)
class PromptSpec:
    """The contract between a prompt file and the code that renders it."""

    variables: frozenset[str]
    required: frozenset[str] = frozenset()

    @classmethod
    def of(cls, variables: str, required: str = "") -> PromptSpec:
        return cls(frozenset(variables.split()), frozenset(required.split()))


# What the code supplies to each prompt (variables) and what each prompt must use (required).
PROMPT_SPECS: dict[str, PromptSpec] = {
    "product_specialist": PromptSpec.of(
        "round subclass candidates product_cards transcript market", "product_cards"
    ),
    "price_analyst": PromptSpec.of(
        "round candidates price_table price_level style transcript", "price_table"
    ),
    "persona": PromptSpec.of(
        "round customer persona style hidden_factors recent_baskets own_history neighbours candidates transcript",
        "customer",
    ),
    "decide": PromptSpec.of(
        "customer candidates candidate_ids transcript hidden_factors feedback max_quantity", "candidate_ids"
    ),
    "single_agent": PromptSpec.of(
        "customer persona style hidden_factors recent_baskets own_history neighbours candidates product_cards "
        "price_table price_level market candidate_ids feedback max_quantity",
        "candidate_ids",
    ),
    "worker": PromptSpec.of(
        "persona step schedule hours_grid labour_cost rebate own_history hours_max", "persona schedule hours_grid"
    ),
    "planner": PromptSpec.of(
        "step objective objective_text schedule history max_change n_workers brackets n_brackets",
        "schedule history n_brackets",
    ),
    "voter": PromptSpec.of("persona platforms letters current_income", "platforms letters"),
    "marketing": PromptSpec.of("round market demand_outlook transcript", "demand_outlook"),
    "manufacturer": PromptSpec.of("round market terms transcript", "terms"),
    "wholesaler": PromptSpec.of("round market terms economics transcript", "economics transcript"),
    "purchasing_rule": PromptSpec.of(
        "market terms economics variables functions items transcript", "variables items"
    ),
}


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    path: Path
    text: str
    fields: frozenset[str]

    def render(self, **values: object) -> str:
        missing = sorted(self.fields - values.keys())
        if missing:
            raise PromptError(f"{self.path}: no value given for variable(s) {missing}")
        return self.text.format(**{k: v for k, v in values.items() if k in self.fields})


def template_fields(text: str, path: Path) -> frozenset[str]:
    """The placeholder names in ``text``; raises PromptError on malformed braces or expressions."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise PromptError(f"{path}: malformed placeholder ({exc}); write literal braces as {{{{ and }}}}") from None
    names = set()
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise PromptError(f"{path}: placeholder {{{field}}} is not a plain variable name")
        names.add(field)
    return frozenset(names)


def prompt_folder(directory: Path | None = None) -> Path:
    """``directory`` when given (it must exist), else :func:`malles_graph.paths.prompts_dir`.

    A user's folder is never completed from the bundled copy: a file it lacks fails with its name.
    """
    if directory is None:
        return prompts_dir()
    if not directory.is_dir():
        raise PromptError(f"{directory}: no such prompt folder")
    return directory


def load_prompt(name: str, directory: Path | None = None, spec: PromptSpec | None = None) -> PromptTemplate:
    """Load ``<directory>/<name>.txt`` and check its variables against the spec."""
    path = prompt_folder(directory) / f"{name}.txt"
    if not path.exists():
        raise PromptError(f"{path}: prompt file not found")
    return parse_prompt(name, path.read_text(encoding="utf-8"), path, spec)


def parse_prompt(name: str, text: str, path: Path, spec: PromptSpec | None = None) -> PromptTemplate:
    """Check prompt ``text`` (e.g. unsaved editor content) against its spec."""
    spec = spec or PROMPT_SPECS.get(name)
    if spec is None:
        raise PromptError(f"{path}: no prompt named {name!r} is known; known prompts: {sorted(PROMPT_SPECS)}")
    fields = template_fields(text, path)
    unknown = sorted(fields - spec.variables)
    if unknown:
        raise PromptError(
            f"{path}: unknown variable(s) {unknown}; the code supplies {sorted(spec.variables)}"
        )
    missing = sorted(spec.required - fields)
    if missing:
        raise PromptError(f"{path}: missing required variable(s) {missing}")
    return PromptTemplate(name, path, text, fields)


def check_prompts(directory: Path | None = None) -> dict[str, str | None]:
    """Validate every known prompt; maps name -> error message (None when fine)."""
    directory = prompt_folder(directory)  # a missing folder is one error, not one per prompt
    results: dict[str, str | None] = {}
    for name in sorted(PROMPT_SPECS):
        try:
            load_prompt(name, directory)
            results[name] = None
        except PromptError as exc:
            results[name] = str(exc)
    return results
