"""What pyproject.toml says the wheel holds: packages, where each lives in the checkout, its data patterns."""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OLD_NAMES = ("graphs", "retrieval", "tui")  # repository folders that install under malles_graph only


@dataclass(frozen=True)
class Layout:
    packages: list[str]
    package_dir: dict[str, str]
    package_data: dict[str, list[str]]

    def source(self, package: str) -> Path:
        """The checkout folder of ``package`` (the nearest mapped parent decides, as in setuptools)."""
        parts = package.split(".")
        for cut in range(len(parts), 0, -1):
            parent = ".".join(parts[:cut])
            if parent in self.package_dir:
                return REPO / self.package_dir[parent] / Path(*parts[cut:])
        return REPO / Path(*parts)

    def roots(self) -> dict[str, Path]:
        """Mapped package name -> its checkout folder."""
        return {name: REPO / folder for name, folder in self.package_dir.items()}

    def data_matches(self, package: str, name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in self.package_data.get(package, []))


def layout() -> Layout:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    return Layout(config["packages"], config.get("package-dir", {}), config.get("package-data", {}))


def source_trees() -> list[Path]:
    """The distribution's inputs besides the mapped package folders (for building from a copy)."""
    return [REPO / "pyproject.toml", REPO / "README.md"]
