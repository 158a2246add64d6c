"""Split a layer's locked Python packages into chunks, one image layer each.

A chunk's layer holds only its packages' files (installed with ``--no-deps``,
byte-compiled one package at a time, timestamps normalised), so its diff ID
depends on its packages alone: changing one package ships one chunk again, and
every machine that builds the same lock gets the same layers. The split reads
only the lock (names), never sizes measured on one machine: it is deterministic.

Order, most stable first (BuildKit reruns every step after a changed one; the
bytes stay the same, only time is spent): torch and triton one chunk each, the CUDA
wheels torch pins in a few groups of related libraries (they change with torch anyway;
each group stays under 1.5 GB installed, cuDNN and cuBLAS alone), then other
known-heavy wheels one per chunk (a family released in lockstep, like mujoco and
its -core/-studio parts, as one chunk: they change together anyway), then the rest
in hash buckets: a package's bucket depends only on its name and on how many small
packages the layer has (1 bucket up to 16, 2 up to 48, else 4), so adding one
touches one small bucket. Every chunk is a RUN step costing ~0.5 s of a cold build
however little it installs, hence no more chunks than these promises need; a
layer crossing a tier ships its small packages once more.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from imagebuild.errors import SpecError
from imagebuild.image.lock import LOCK_FILENAME, requirements_text
from imagebuild.image.pkgname import canonical

# The GPU stack: torch and the CUDA wheels it pins. Changes rarely.
_STABLE = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+|jax|jaxlib"
                     r"|cupy-.*)$")
# Wheels of 10 MB or more installed (measured on ManiSkill 3's stack): one chunk each, so
# no bucket grows large. Smaller ones share a bucket: each chunk is a RUN step, and a
# step costs ~0.5 s of a cold build however little it installs.
_HEAVY = frozenset({
    "numpy", "scipy", "pandas", "pyarrow", "sympy", "numba", "llvmlite", "matplotlib",
    "scikit-learn", "scikit-image", "opencv-python", "opencv-python-headless",
    "opencv-contrib-python", "pillow", "h5py", "grpcio", "tensorflow", "tensorboard",
    "transformers", "tokenizers", "mujoco", "mujoco-core", "mujoco-studio", "mujoco-mjx", "sapien",
    "mani-skill", "pybullet", "dm-control", "open3d", "wandb", "networkx", "jaxlib", "pygame",
    "imageio-ffmpeg", "av", "timm", "tensorstore", "mplib", "fonttools", "jedi", "lxml", "hf-xet",
    "pyopengl",
})
# Released in lockstep (one version for all): one chunk, named after the first present.
_FAMILIES = (("mujoco", "mujoco-core", "mujoco-studio", "mujoco-mjx"),)
# The CUDA wheels torch (or jax) pins, by library (the name without "nvidia-" and a
# "-cu12"/"-cu13" suffix): a group shares a chunk. Sizes installed, CUDA 13 (measured)
# and 12.8 (from wheel sizes): cuDNN 0.9/1.2 GB and cuBLAS 0.6/0.9 GB alone; the
# others 0.3-0.7 GB a group. A CUDA wheel in no group (a new library) gets its own.
_CUDA_GROUPS = {
    "cuda-dnn": ("cudnn",),
    "cuda-blas": ("cublas",),
    "cuda-solvers": ("cufft", "curand", "cusolver"),
    "cuda-sparse": ("cusparse", "cusparselt"),
    "cuda-comm": ("nccl", "nvshmem"),
    "cuda-runtime": ("cuda-runtime", "cuda-nvrtc", "nvjitlink", "cuda-cupti", "cuda-cccl",
                     "cuda-nvcc", "cufile", "nvtx", "ml-py", "cuda-bindings", "cuda-pathfinder",
                     "cuda-toolkit", "cuda-python", "cuda-core"),
}
_CUDA_GROUP_OF = {library: group for group, libraries in _CUDA_GROUPS.items() for library in libraries}
# (at most this many small packages, buckets). ManiSkill's sim layer has ~60 small
# packages, ~90 MB with their .pyc: 4 buckets of 8-36 MB (bench/README.md).
BUCKET_TIERS = ((16, 1), (48, 2))
BUCKETS = 4  # above the last tier
# A distribution name (PEP 508): it lands in a RUN line and a file name, so nothing else.
_VALID_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Chunk:
    layer: str  # "python" or "sim"
    name: str  # e.g. "torch", "cuda-dnn", "pkg-numpy", "rest-3"
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


def bucket_count(small: int) -> int:
    return next((count for most, count in BUCKET_TIERS if small <= most), BUCKETS)


def _bucket(name: str, count: int) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % count


def _cuda_library(name: str) -> str:
    return re.sub(r"-cu\d+$", "", name.removeprefix("nvidia-"))


def _chunk_name(name: str, names: set[str]) -> str:
    """The chunk of a package that does not go in a bucket."""
    if name == "torch":
        return "torch"
    if _STABLE.match(name) and _cuda_library(name) in _CUDA_GROUP_OF:
        return _CUDA_GROUP_OF[_cuda_library(name)]
    family = next((f for f in _FAMILIES if name in f), (name,))
    return f"pkg-{next(n for n in family if n in names)}"


def _own_chunks(names: set[str]) -> dict[str, list[str]]:
    """The chunks of packages that do not go in a bucket (each alone, or its group's or
    family's), in install order: the GPU stack, then the other heavy wheels."""
    stable = sorted((n for n in names if _STABLE.match(n)), key=lambda n: (n != "torch", n))
    heavy = sorted(n for n in names if n in _HEAVY and n not in stable)
    chunks: dict[str, list[str]] = {}
    for name in [*stable, *heavy]:
        chunks.setdefault(_chunk_name(name, names), []).append(name)
    return chunks


def plan_chunks(layer: str, packages: dict[str, dict[str, Any]]) -> list[Chunk]:
    """The chunks of one layer's locked packages, in install order."""
    for name in packages:
        if not _VALID_NAME.match(name):
            raise SpecError(f"{LOCK_FILENAME}: [{layer}.packages] has {name!r}, not a package name; "
                            "regenerate the lock with `imagebuild lock`")
    by_name = {canonical(name): name for name in packages}
    if len(by_name) < len(packages):  # one would silently replace the other
        twice = sorted(n for n in packages if [canonical(m) for m in packages].count(canonical(n)) > 1)
        raise SpecError(f"{LOCK_FILENAME}: [{layer}.packages] names one package twice "
                        f"({', '.join(twice)}); regenerate the lock with `imagebuild lock`")
    own = _own_chunks(set(by_name))
    chunks = [Chunk(layer, chunk_name, {by_name[n]: packages[by_name[n]] for n in names})
              for chunk_name, names in own.items()]
    small = sorted(set(by_name).difference(*own.values()))
    buckets: dict[int, dict[str, dict[str, Any]]] = {}
    count = bucket_count(len(small))
    for name in small:
        buckets.setdefault(_bucket(name, count), {})[by_name[name]] = packages[by_name[name]]
    chunks += [Chunk(layer, f"rest-{index}", buckets[index]) for index in sorted(buckets)]
    return chunks


def prefetch_file(layer: str) -> str:
    """The path, in the layer's build context, of all its chunks' requirements: what the
    prefetch stage downloads in one go (dockerfiles/chunk.macros.j2)."""
    return f"chunks/{layer}-prefetch.txt"


def chunk_files(chunks: list[Chunk], download_list: str | None = None) -> dict[str, bytes]:
    """Build-context files of a layer's chunks: one requirements file each, and, for a
    layer with a download stage, all of them in one at ``download_list``."""
    files = {chunk.requirements_file: chunk.requirements().encode() for chunk in chunks}
    if download_list:
        every = {name: pin for chunk in chunks for name, pin in chunk.packages.items()}
        files[download_list] = requirements_text(every).encode()
    return files


_MARKER = re.compile(r"imagebuild-chunk=(\S+) packages=(\S*)")


def parse_marker(created_by: str) -> tuple[str, list[str]] | None:
    """(chunk, packages) from a history entry's command, or None for other steps."""
    found = _MARKER.search(created_by)
    if not found:
        return None
    return found.group(1), [p for p in found.group(2).split(",") if p]
