"""`pip install .` into a fresh virtualenv gives a working tool, run from elsewhere:
templates, build-context files and the entrypoint ship inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    return next(out.glob("imagebuild-*.whl"))


def test_wheel_ships_templates_files_and_entrypoint(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    source = REPO / "src" / "imagebuild"
    for folder in ("image/dockerfiles", "image/files", "entrypoint"):
        shipped = {p.relative_to(source.parent).as_posix() for p in (source / folder).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts}
        assert shipped, folder
        assert shipped <= names, sorted(shipped - names)


def test_fresh_venv_install_works_from_another_directory(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    str(wheel)], check=True, capture_output=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tool = str(venv / "bin" / "imagebuild")
    version = subprocess.run([tool, "--version"], cwd=elsewhere, capture_output=True, text=True,
                             check=True, timeout=60)
    assert version.stdout.startswith("imagebuild ")
    rendered = subprocess.run([tool, "render", "--out", "out"], cwd=elsewhere, capture_output=True,
                              text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    assert (elsewhere / "out" / "5-runtime" / "entrypoint" / "bin" / "pod-entrypoint").exists()
    assert (elsewhere / "out" / "3-node" / "install-node.py").exists()
    assert "FROM nvidia/cuda:" in (elsewhere / "out" / "1-system" / "Dockerfile").read_text()
