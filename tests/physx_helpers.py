"""Helpers for the SAPIEN PhysX tests (tests/test_physx.py, and the push of such a build in
tests/test_push.py): the CI spec with SAPIEN as its simulator, and a synthetic linux-so.zip."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from conftest import CI_SPEC

SAPIEN = "sapien==3.0.3"
LIBRARY = "libPhysXGpu_64.so"


def sapien_spec(folder: Path, extra: str = "") -> Path:
    """The CI spec with SAPIEN as its only simulator (system/python/node layers reused)."""
    spec = folder / "imagebuild.toml"
    spec.write_text(CI_SPEC.read_text().replace(
        'packages = ["mujoco", "gymnasium"]', f'packages = ["{SAPIEN}"]\n{extra}'))
    return spec


def standin_library(folder: Path) -> Path:
    """A real shared library with one function, so that loading it proves something."""
    source = folder / "standin.c"
    source.write_text("int physx_standin(void) { return 42; }\n")
    library = folder / LIBRARY
    # Relative names and fixed zip dates: the same bytes at every run, so the sim layer is reused.
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", LIBRARY, "standin.c"], check=True, cwd=folder)
    return library


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return path


def baked_zip(folder: Path) -> tuple[Path, Path]:
    """The synthetic linux-so.zip (the stand-in library and a README): (zip, library)."""
    library = standin_library(folder)
    return make_zip(folder / "linux-so.zip", {LIBRARY: library.read_bytes(), "README": b"x"}), library
