"""SAPIEN's PhysX GPU library (``libPhysXGpu_64.so``), baked into the sim layer.

``sapien.physx.enable_gpu()`` loads ``~/.sapien/physx/<sapien.physx.version()>/
libPhysXGpu_64.so`` and downloads it from GitHub when it is missing: minutes at every
pod restart (the home is on the container disk), and never where GitHub is
unreachable. The sim layer bakes one copy and links it from root's and dev's homes.
Sources, in order: a ``linux-so.zip`` given to the build, SAPIEN's release download
during the build, else nothing (the entrypoint then keeps ``~/.sapien`` on the volume).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from imagebuild.errors import SpecError
from imagebuild.image.pkgname import requirement_name
from imagebuild.image.spec import PHYSX_DOWNLOAD, PHYSX_VOLUME

LIBRARY = "libPhysXGpu_64.so"
# Where the sim layer keeps the one copy: <dir>/<physx version>/libPhysXGpu_64.so.
BAKED_DIR = "/usr/local/lib/sapien-physx"
# Distributions that install SAPIEN (mani-skill depends on it).
SAPIEN_DISTS = ("sapien", "mani-skill")
ZIP_IN_CONTEXT = "physx/linux-so.zip"


@dataclass(frozen=True)
class PhysxPlan:
    """What the sim layer does: ``mode`` is "zip", "download" or None (no bake step)."""

    mode: str | None
    zip_bytes: bytes = b""


def installs_sapien(packages: list[str]) -> bool:
    return any(requirement_name(r) in SAPIEN_DISTS for r in packages)


def read_zip(path: Path) -> bytes:
    """The zip's bytes once it is proven to hold a loadable ``libPhysXGpu_64.so``
    at its top level (where ``enable_gpu()`` unpacks it); else one line naming it."""
    hint = ("pass SAPIEN's linux-so.zip (github.com/sapien-sim/physx-precompiled/releases) "
            "to --physx-gpu or simulators.physx_gpu")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SpecError(f"PhysX GPU zip {path}: cannot read it ({error.strerror}); {hint}") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if LIBRARY not in names:
                nested = [n for n in names if n.rsplit("/", 1)[-1] == LIBRARY]
                where = f" (only as {nested[0]}, not at the top level)" if nested else ""
                raise SpecError(f"PhysX GPU zip {path}: the zip has no {LIBRARY}{where}; {hint}")
            with archive.open(LIBRARY) as member:
                head = member.read(4)
                member.read()  # reads the whole member: a bad CRC raises here
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as error:
        raise SpecError(f"PhysX GPU zip {path}: not a readable zip archive ({error}); {hint}") from None
    if head != b"\x7fELF":
        raise SpecError(f"PhysX GPU zip {path}: its {LIBRARY} is not an ELF shared library; {hint}")
    return data


def plan_physx(packages: list[str], physx_gpu: str) -> PhysxPlan:
    """The sim layer's PhysX step for the spec's simulator packages and source."""
    sapien = installs_sapien(packages)
    if physx_gpu not in (PHYSX_DOWNLOAD, PHYSX_VOLUME):
        if not sapien:
            raise SpecError(f"PhysX GPU zip {physx_gpu}: the spec's simulators.packages install no "
                            "SAPIEN (sapien or mani-skill); add one or drop the zip")
        return PhysxPlan("zip", read_zip(Path(physx_gpu)))
    if sapien and physx_gpu == PHYSX_DOWNLOAD:
        return PhysxPlan(PHYSX_DOWNLOAD)
    return PhysxPlan(None)
