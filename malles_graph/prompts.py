"""Role prompts as data: ``prompts/<name>.txt`` files with ``{variable}`` placeholders.

Each prompt has a :class:`PromptSpec` saying which variables the code supplies
and which the prompt must use. Loading checks both, so a typo fails at load time
naming the file and the variable, not deep inside a run. Literal braces are
written doubled (``{{`` and ``}}``), as in ``str.format``.
"""

from __future__ import annotations

import re
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


# The variables of the context block every retail decision prompt opens with, byte-identical for every role,
# round and sample of a decision so the server's prompt cache serves it (docs/performance.md).
SHARED_RETAIL = (
    "candidates customer persona style hidden_factors recent_baskets own_history neighbours product_cards "
    "price_table price_level market"
)

# What the code supplies to each prompt (variables) and what each prompt must use (required).
PROMPT_SPECS: dict[str, PromptSpec] = {
    # required = what the role decides on: dropping one of them from its prompt fails `malles prompts check`
    "product_specialist": PromptSpec.of(f"{SHARED_RETAIL} round subclass transcript", "product_cards market"),
    "price_analyst": PromptSpec.of(f"{SHARED_RETAIL} round transcript", "price_table market"),
    "persona": PromptSpec.of(f"{SHARED_RETAIL} round transcript", "customer hidden_factors own_history market"),
    "decide": PromptSpec.of(
        f"{SHARED_RETAIL} offers candidate_ids transcript feedback max_quantity",
        "candidate_ids offers neighbours market transcript hidden_factors feedback",
    ),
    "single_agent": PromptSpec.of(
        f"{SHARED_RETAIL} offers candidate_ids feedback max_quantity",
        "candidate_ids product_cards price_table hidden_factors neighbours market feedback",
    ),
    "worker": PromptSpec.of(
        "persona step schedule hours_grid labour_cost rebate own_history hours_max", "persona schedule hours_grid"
    ),
    "planner": PromptSpec.of(
        "step objective objective_text schedule history max_change n_workers brackets n_brackets best best_welfare "
        "allowed keys",
        "schedule history best allowed keys",
    ),
    "candidate": PromptSpec.of(
        "persona current_income n_brackets brackets schedule allowed keys", "persona schedule allowed keys"
    ),
    "voter": PromptSpec.of("persona platforms letters current_income", "platforms letters"),
    "marketing": PromptSpec.of("round market demand_outlook transcript", "demand_outlook"),
    "manufacturer": PromptSpec.of("round market terms transcript", "terms"),
    "wholesaler": PromptSpec.of("round market terms economics transcript", "economics transcript"),
    "purchasing_rule": PromptSpec.of("market terms economics variables functions items transcript", "variables items"),
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
        # Values are inserted as text: the check below renders with text, so what passes it always renders.
        return self.text.format(**{k: str(v) for k, v in values.items() if k in self.fields})


# A width or precision beyond this is a typo (or a memory bomb: {customer:>999999999}), never a layout.
MAX_FORMAT_NUMBER = 1000
_NUMBERS = re.compile(r"\d+")


def template_fields(text: str, path: Path) -> frozenset[str]:
    """The placeholder names in ``text``; raises PromptError on anything that would fail at render time:
    malformed braces, expressions, unknown conversions, nested or invalid format specs."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise PromptError(f"{path}: malformed placeholder ({exc}); write literal braces as {{{{ and }}}}") from None
    names = set()
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if not field.isidentifier():
            raise PromptError(f"{path}: placeholder {shown} is not a plain variable name")
        if conversion not in (None, "r", "s", "a"):
            raise PromptError(f"{path}: placeholder {shown}: unknown conversion !{conversion} (use !r, !s or !a)")
        if spec and ("{" in spec or "}" in spec):
            raise PromptError(f"{path}: placeholder {shown}: a placeholder inside a format spec is not supported")
        if spec and any(int(n) > MAX_FORMAT_NUMBER for n in _NUMBERS.findall(spec)):
            raise PromptError(f"{path}: placeholder {shown}: width or precision above {MAX_FORMAT_NUMBER}")
        try:
            ("{0" + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}").format("text")
        except (ValueError, TypeError) as exc:
            raise PromptError(f"{path}: placeholder {shown} cannot be rendered with a text value ({exc})") from None
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
    return parse_prompt(name, read_prompt_text(path), path, spec)


def read_prompt_text(path: Path) -> str:
    """The text of a prompt file; PromptError naming the file when it is missing, a folder, binary or not UTF-8."""
    if not path.exists():
        raise PromptError(f"{path}: prompt file not found")
    if path.is_dir():
        raise PromptError(f"{path}: is a folder, not a prompt file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PromptError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the prompt as UTF-8"
        ) from None
    except OSError as exc:
        raise PromptError(f"{path}: cannot read the prompt file ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise PromptError(f"{path}: binary content (NUL bytes); not a prompt file")
    return text


def parse_prompt(name: str, text: str, path: Path, spec: PromptSpec | None = None) -> PromptTemplate:
    """Check prompt ``text`` (e.g. unsaved editor content) against its spec."""
    spec = spec or PROMPT_SPECS.get(name)
    if spec is None:
        raise PromptError(f"{path}: no prompt named {name!r} is known; known prompts: {sorted(PROMPT_SPECS)}")
    fields = template_fields(text, path)
    unknown = sorted(fields - spec.variables)
    if unknown:
        raise PromptError(f"{path}: unknown variable(s) {unknown}; the code supplies {sorted(spec.variables)}")
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
