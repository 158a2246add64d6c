"""Split a layer's locked Python packages into chunks, one image layer each.

A chunk's layer holds only its packages' files (installed with ``--no-deps``,
byte-compiled one package at a time, timestamps normalised), so its diff ID
depends on its packages alone: changing one package ships one chunk again, and
every machine that builds the same lock gets the same layers. The split reads
only the lock (names), never sizes measured on one machine: it is deterministic.

Order, most stable first (BuildKit reruns every step after a changed one; the
bytes stay the same, only time is spent): the torch/CUDA stack one package per
chunk (each nvidia-* wheel is hundreds of MB: no layer over 1.5 GB), then other
known-heavy wheels one per chunk, then the rest in hash buckets (a package's
bucket depends only on its name, so adding one touches one small bucket).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from imagebuild.errors import SpecError
from imagebuild.image.lock import LOCK_FILENAME, requirements_text

# The GPU stack: torch and the CUDA wheels it pins. Changes rarely.
_STABLE = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+|jax|jaxlib"
                     r"|cupy-.*)$")
# Wheels of tens to hundreds of MB installed: one chunk each, so no bucket grows large.
_HEAVY = frozenset({
    "numpy", "scipy", "pandas", "pyarrow", "sympy", "numba", "llvmlite", "matplotlib",
    "scikit-learn", "scikit-image", "opencv-python", "opencv-python-headless",
    "opencv-contrib-python", "pillow", "h5py", "grpcio", "tensorflow", "tensorboard",
    "transformers", "tokenizers", "safetensors", "mujoco", "mujoco-mjx", "sapien", "mani-skill",
    "pybullet", "dm-control", "labmaze", "open3d", "trimesh", "wandb", "networkx", "jaxlib",
    "pygame", "imageio-ffmpeg", "av", "kornia", "timm", "gymnasium", "tensorstore", "setuptools",
    "mplib", "fonttools", "jedi", "lxml", "hf-xet",  # ManiSkill's tens of MB each
})
BUCKETS = 8  # small packages: ~1/8 of them per chunk
# A distribution name (PEP 508): it lands in a RUN line and a file name, so nothing else.
_VALID_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Chunk:
    layer: str  # "python" or "sim"
    name: str  # e.g. "torch", "pkg-numpy", "rest-3"
    packages: dict[str, dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return sorted(self.packages)

    @property
    def requirements_file(self) -> str:
        """Its path in the layer's build context."""
        return f"chunks/{self.layer}-{self.name}.txt"

    @property
    def marker(self) -> str:
        """A no-op shell word naming the chunk in the image history (`imagebuild layers`)."""
        return f"imagebuild-chunk={self.layer}/{self.name} packages={','.join(self.names)}"

    def requirements(self) -> str:
        return requirements_text(self.packages)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _bucket(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % BUCKETS


def plan_chunks(layer: str, packages: dict[str, dict[str, Any]]) -> list[Chunk]:
    """The chunks of one layer's locked packages, in install order."""
    for name in packages:
        if not _VALID_NAME.match(name):
            raise SpecError(f"{LOCK_FILENAME}: [{layer}.packages] has {name!r}, not a package name; "
                            "regenerate the lock with `imagebuild lock`")
    by_name = {_normalise(name): name for name in packages}
    if len(by_name) < len(packages):  # one would silently replace the other
        twice = sorted(n for n in packages if [_normalise(m) for m in packages].count(_normalise(n)) > 1)
        raise SpecError(f"{LOCK_FILENAME}: [{layer}.packages] names one package twice "
                        f"({', '.join(twice)}); regenerate the lock with `imagebuild lock`")
    stable = sorted((n for n in by_name if _STABLE.match(n)), key=lambda n: (n != "torch", n))
    heavy = sorted(n for n in by_name if n in _HEAVY and n not in stable)
    single = [*stable, *heavy]
    chunks = [Chunk(layer, "torch" if n == "torch" else f"pkg-{n}", {by_name[n]: packages[by_name[n]]})
              for n in single]
    buckets: dict[int, dict[str, dict[str, Any]]] = {}
    for name in sorted(set(by_name) - set(single)):
        buckets.setdefault(_bucket(name), {})[by_name[name]] = packages[by_name[name]]
    chunks += [Chunk(layer, f"rest-{index}", buckets[index]) for index in sorted(buckets)]
    return chunks


def chunk_files(chunks: list[Chunk]) -> dict[str, bytes]:
    """Build-context files of a layer's chunks: one requirements file each."""
    return {chunk.requirements_file: chunk.requirements().encode() for chunk in chunks}


_MARKER = re.compile(r"imagebuild-chunk=(\S+) packages=(\S*)")


def parse_marker(created_by: str) -> tuple[str, list[str]] | None:
    """(chunk, packages) from a history entry's command, or None for other steps."""
    found = _MARKER.search(created_by)
    if not found:
        return None
    return found.group(1), [p for p in found.group(2).split(",") if p]
