"""Where malles-graph keeps fetched data, models and runs, and where it reads its bundled files.

Everything fetched lives under one home folder so a fresh machine needs one fetch and a
user can wipe it in one go. ``MALLES_HOME`` overrides the default.

The prompts, personas and scenarios ship inside the package (``malles_graph.assets.*``, mapped
from the repository's top-level ``prompts/``, ``personas/``, ``scenarios/``) and are found with
``importlib.resources``, so an installed wheel works outside a checkout. A user's own folder
replaces a bundled one whole (``MALLES_PROMPTS``, ``MALLES_PERSONAS``): it must exist, and a file
it lacks is an error naming that file, never a silent fallback to the bundled copy.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

from malles_graph.errors import MallesError, ScenarioError

# The root of a source checkout. Only meaningful there (tests read repository files with it); installed code
# never reads data through it: bundled files come from bundled().
REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The malles-graph home folder (created on first use)."""
    root = Path(os.environ.get("MALLES_HOME", Path.home() / ".cache" / "malles-graph"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def data_dir() -> Path:
    path = home() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    path = home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Default folder for run outputs (databases, Chroma memories, reports)."""
    configured = os.environ.get("MALLES_RUNS")
    path = Path(configured) if configured else Path.cwd() / "runs"
    where = f"MALLES_RUNS={configured}" if configured else f"the runs folder {path}"
    if path.exists() and not path.is_dir():
        raise MallesError(f"{where} is a file, not a folder; point MALLES_RUNS at a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent that is a file, no permission, a read-only disk
        raise MallesError(f"{where} cannot be created: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise MallesError(f"{where} is not writable; point MALLES_RUNS at a folder you can write")
    return path


def output_folder(path: str | Path) -> Path:
    """``path`` created as a folder for outputs (see _make_folder for what is refused)."""
    path = Path(path)
    _make_folder(path, path)
    return path


def output_file(path: str | Path) -> Path:
    """``path`` ready to be written as a file: its folder is created; a folder at the path itself is refused,
    before any work is lost to an IsADirectoryError."""
    path = Path(path)
    if path.is_dir():
        raise MallesError(f"{path}: is a folder, not a file")
    _make_folder(path.parent, path)
    return path


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write, moved over ``path`` in one step when the block ends and
    removed if it raises: a reader never sees half a file. The name is this call's own, so two processes
    writing the same file at once (two first runs fetching the same model) each replace it whole, where a
    shared ``.part`` name had one move the other's file away under it. Its suffix is ``path``'s (np.save
    would add ``.npy`` to another)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.part{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _make_folder(folder: Path, output: Path) -> None:
    """``mkdir -p folder``; a file in the way or a folder that cannot be made is a MallesError naming ``output``
    (the path the user gave) and the culprit. An `--out` through a file was a FileExistsError traceback."""
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        where = "" if blocker == output else f"{blocker} "
        raise MallesError(f"{output}: {where}is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # no permission, a read-only disk
        raise MallesError(f"{output}: cannot create the folder {folder} ({exc.strerror or exc})") from None


def bundled(kind: str) -> Path:
    """A folder of bundled package data (``prompts``, ``personas`` or ``scenarios``), wherever it is installed."""
    return Path(str(files(f"malles_graph.assets.{kind}")))


def _folder(variable: str, kind: str) -> Path:
    """The user's folder from ``variable`` when set (it must exist: no silent fallback), else the bundled one."""
    override = os.environ.get(variable)
    if not override:
        return bundled(kind)
    path = Path(override).expanduser()
    if not path.is_dir():
        raise MallesError(f"{variable}={override}: no such folder of {kind}")
    return path


def prompts_dir() -> Path:
    """The prompt folder: ``MALLES_PROMPTS`` when set, else the prompts bundled with the package."""
    return _folder("MALLES_PROMPTS", "prompts")


def personas_dir() -> Path:
    """The persona folder: ``MALLES_PERSONAS`` when set, else the personas bundled with the package."""
    return _folder("MALLES_PERSONAS", "personas")


def scenarios_dir() -> Path:
    """The bundled scenario files."""
    return bundled("scenarios")


def scenario_file(path: str | Path) -> Path:
    """The scenario file ``path`` names: the file itself when it exists, else a bundled scenario of that bare name.

    So ``malles run demo.yaml`` (or ``demo``) works from an installed package in any folder, while a file of the
    same name in the current folder wins. A path with a folder part is never redirected.
    """
    path = Path(path)
    if path.exists():
        return path
    bundled_names = sorted(p.name for p in scenarios_dir().glob("*.yaml"))
    if len(path.parts) == 1:
        name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
        if name in bundled_names:
            return scenarios_dir() / name
    raise ScenarioError(f"{path}: scenario file not found; bundled scenarios (run by name): {', '.join(bundled_names)}")
