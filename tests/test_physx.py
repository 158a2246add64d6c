"""SAPIEN's PhysX GPU library baked into the sim layer (`imagebuild build --physx-gpu
ZIP`), asked for by SAPIEN itself in the container, for root and dev; the release
download failing over to the volume; and zips that must be refused before any build.
(A push of such a build is in tests/test_push.py, which has a registry with the shared layers.)

GitHub is unreachable here: the zip is synthetic, with a stand-in shared library."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CI_SPEC, ca_bundle, docker, unique_name
from physx_helpers import LIBRARY, baked_zip, make_zip, sapien_spec

pytestmark = pytest.mark.docker

# What enable_gpu() loads, recorded instead of run: libcuda (absent without a GPU)
# and the C call are stubbed, the library itself is really loaded, a download fails.
ENABLE_GPU_PROBE = """
import ctypes, json, pathlib, requests, sapien.physx as physx
loaded, real = [], ctypes.CDLL
def cdll(name, *args):
    loaded.append(str(name))
    return None if name == "libcuda.so" else real(name, *args)
def no_download(*args, **kwargs):
    raise AssertionError("enable_gpu() tried to download")
ctypes.CDLL, requests.get = cdll, no_download
physx._enable_gpu = lambda: loaded.append("_enable_gpu")
physx.enable_gpu()
lib = pathlib.Path(loaded[1])
print(json.dumps({"version": physx.version(), "home": str(pathlib.Path.home()), "loaded": loaded,
                  "resolved": str(lib.resolve()), "standin": real(str(lib)).physx_standin()}))
"""


def imagebuild(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagebuild", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def baked(tmp_path_factory, test_base, built):
    """The SAPIEN image built with a synthetic linux-so.zip: (build JSON, zip, library)."""
    folder = tmp_path_factory.mktemp("physx")
    archive, library = baked_zip(folder)
    done = imagebuild("build", "--spec", sapien_spec(folder), "--base", test_base, "--physx-gpu",
                      archive, "--ca-cert", ca_bundle() or "/dev/null", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), archive, library


def run_as(image: str, user: str, script: str, *options: str) -> str:
    done = docker("run", "--rm", "-u", user, "--entrypoint", "bash", *options, image, "-c", script,
                  check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_sapien_itself_finds_the_baked_library_for_root_and_dev(baked):
    result, _, library = baked
    image = result["image"]
    digest = hashlib.sha256(library.read_bytes()).hexdigest()
    for user, home in (("root", "/root"), ("dev", "/home/dev")):
        probe = json.loads(run_as(image, user, f"/opt/venv/bin/python - <<'EOF'\n{ENABLE_GPU_PROBE}\nEOF")
                           .strip().splitlines()[-1])
        version = probe["version"]
        assert probe["home"] == home and version.startswith("105.")
        assert probe["loaded"] == ["libcuda.so", f"{home}/.sapien/physx/{version}/{LIBRARY}", "_enable_gpu"]
        assert probe["resolved"] == f"/usr/local/lib/sapien-physx/{version}/{LIBRARY}"
        assert probe["standin"] == 42
    # One copy in the image, the one from the zip; the zip itself is in no layer.
    found = run_as(image, "root", f"find / -xdev -name {LIBRARY} -type f -exec sha256sum {{}} +;"
                   " find / -xdev -name linux-so.zip | wc -l")
    *copies, zips = found.strip().splitlines()
    assert [line.split()[0] for line in copies] == [digest] and zips == "0"


def test_the_build_says_and_the_label_records_the_source(engine, baked, test_base):
    result, archive, _ = baked
    source = f"zip sha256:{hashlib.sha256(archive.read_bytes()).hexdigest()[:16]}"
    assert result["physx_gpu"] == source
    versions = json.loads(engine.labels(result["image"])["imagebuild.versions"])
    assert versions["sim"]["physx-gpu"] == source and versions["sim"]["physx-version"].startswith("105.")
    # The same build again reuses every layer and still says where the library came from.
    again = imagebuild("build", "--spec", archive.parent / "imagebuild.toml", "--base", test_base,
                       "--physx-gpu", archive)
    assert again.returncode == 0, again.stderr
    assert f"PhysX GPU library: {source}" in again.stderr
    assert again.stdout.strip() == result["image"]


def test_a_pod_of_the_baked_image_keeps_the_baked_library(baked):
    volume = unique_name("ib-physx-ws")
    try:
        done = docker("run", "--rm", "-v", f"{volume}:/workspace", baked[0]["image"], "bash", "-c",
                      "readlink -f /root/.sapien/physx/* /home/dev/.sapien/physx/*", check=False)
        out = done.stdout
    finally:
        docker("volume", "rm", "-f", volume, check=False)
    assert "sapien: PhysX GPU library baked in" in out
    links = [line for line in out.splitlines() if line.startswith("/")]
    assert len(links) == 2 and links[0] == links[1], out
    assert links[0].startswith("/usr/local/lib/sapien-physx/105."), out


def test_an_unreachable_release_download_falls_back_to_the_volume_in_one_line(baked):
    """The build's download path (GitHub is unreachable here: no network at all)."""
    out = run_as(baked[0]["image"], "root", "/usr/local/lib/imagebuild/bake-physx.sh download "
                 "/nonexistent /tmp/px; echo status=$?; ls /tmp/px | wc -l", "--network", "none")
    lines = out.strip().splitlines()
    assert lines[-2:] == ["status=0", "0"], out
    said = [line for line in lines if line.startswith("physx-gpu:")]
    assert len(said) == 1 and "not baked: the download of https://github.com/sapien-sim/" in said[0]
    assert "keep ~/.sapien on the volume (/workspace/.cache/sapien)" in said[0]


@pytest.mark.parametrize("case, expected", [
    ("corrupt", "not a readable zip archive"),
    ("truncated", "not a readable zip archive"),
    ("no-library", f"the zip has no {LIBRARY};"),
    ("nested", f"the zip has no {LIBRARY} (only as linux-so/{LIBRARY}, not at the top level)"),
    ("not-elf", f"its {LIBRARY} is not an ELF shared library"),
    ("missing", "cannot read it"),
])
def test_a_bad_zip_fails_the_build_in_one_line_naming_it(case, expected, tmp_path, test_base):
    library = b"\x7fELF" + os.urandom(4096)
    good = make_zip(tmp_path / "good.zip", {LIBRARY: library}).read_bytes()
    archive = tmp_path / f"{case}.zip"
    if case == "corrupt":
        archive.write_bytes(os.urandom(2048))
    elif case == "truncated":
        archive.write_bytes(good[: len(good) // 2])
    elif case == "no-library":
        make_zip(archive, {"libPhysX_64.so": library})
    elif case == "nested":
        make_zip(archive, {f"linux-so/{LIBRARY}": library})
    elif case == "not-elf":
        make_zip(archive, {LIBRARY: b"<html>rate limited</html>"})
    done = imagebuild("build", "--spec", sapien_spec(tmp_path), "--base", test_base,
                      "--physx-gpu", archive, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"imagebuild: error: PhysX GPU zip {archive}: {expected}")
    assert "pass SAPIEN's linux-so.zip" in done.stderr


def test_a_zip_for_a_spec_without_sapien_and_a_spec_key_relative_to_the_spec(tmp_path, test_base):
    archive = make_zip(tmp_path / "linux-so.zip", {LIBRARY: b"\x7fELF" + b"\0" * 64})
    done = imagebuild("build", "--spec", CI_SPEC, "--base", test_base, "--physx-gpu", archive, timeout=120)
    assert done.returncode == 2 and "install no SAPIEN (sapien or mani-skill)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    # simulators.physx_gpu names a zip beside the spec, wherever the command runs.
    spec = sapien_spec(tmp_path, 'physx_gpu = "broken.zip"')
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    done = imagebuild("render", "--spec", spec, "--out", tmp_path / "out", timeout=60)
    assert done.returncode == 2
    assert f"PhysX GPU zip {tmp_path / 'broken.zip'}: not a readable zip archive" in done.stderr


def test_an_offline_build_without_a_zip_leaves_it_to_the_volume(tmp_path, test_base, built):
    """The release download inside a real build: GitHub is unreachable from CI and
    developers' machines, so the build goes on and says so; its pods keep ~/.sapien
    of root and dev on the volume."""
    done = imagebuild("build", "--spec", sapien_spec(tmp_path), "--base", test_base,
                      "--ca-cert", ca_bundle() or "/dev/null")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "PhysX GPU library: none (download failed; volume fallback)" in done.stderr
    volume = unique_name("ib-physx-ws")
    try:
        out = docker("run", "--rm", "-v", f"{volume}:/workspace", done.stdout.strip(), "bash", "-c",
                     "readlink /root/.sapien /home/dev/.sapien; echo baked=$(ls /usr/local/lib/sapien-physx | wc -l)",
                     check=False).stdout
    finally:
        docker("volume", "rm", "-f", volume, check=False)
    assert "sapien: ~/.sapien of root and dev on the volume (/workspace/.cache/sapien)" in out
    assert [line for line in out.splitlines() if not line[:4].isdigit()] == [
        "/workspace/.cache/sapien", "/workspace/.cache/sapien", "baked=0"], out


def test_gpu_check_exports_what_the_image_carries_and_fails_without_a_gpu(baked, tmp_path):
    """scripts/gpu-check.sh: `export` copies out of the image its canary (the entrypoint
    package), vulkaninfo, the vendor files and the baked library; on a machine without an
    NVIDIA GPU the run (a GPU machine's, which needs one) fails the driver check and skips the
    rest, one line each, the SAPIEN image's own probes named."""
    image, library = baked[0]["image"], baked[2]
    scripts = Path(__file__).resolve().parent.parent / "scripts"
    carry = tmp_path / "carry"
    done = subprocess.run(["bash", str(scripts / "gpu-check.sh"), "export", image, str(carry)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    copied = sorted(str(p.relative_to(carry)) for p in carry.rglob("*") if p.is_file() and p.parts[-2] != "lib"
                    and "entrypoint" not in p.parts)
    assert copied[:5] == ["bin/vulkaninfo", "config.env", "files/10_nvidia.json", "files/nvidia_icd.json",
                          "files/nvidia_layers.json"], copied
    assert len(copied) == 6 and copied[5].startswith("physx/105.") and copied[5].endswith(f"/{LIBRARY}")
    assert (carry / copied[5]).read_bytes() == library.read_bytes()
    assert (carry / "entrypoint" / "bin" / "pod-gpu-probe").is_file()
    # Only scripts/ and the exported folder, as on the GPU machine.
    run = docker("run", "--rm", "--entrypoint", "bash", "-e", "PYTHON=/opt/venv/bin/python",
                 "-v", f"{scripts}:/repo/scripts:ro", "-v", f"{carry}:/carry:ro", image,
                 "-c", "bash /repo/scripts/gpu-check.sh /carry; echo status=$?", check=False)
    lines = run.stdout.strip().splitlines()
    checks = [line.split(":", 1)[0] for line in lines if line.startswith(("PASS", "FAIL", "SKIP"))]
    assert checks == ["FAIL driver"] + [f"SKIP {name}" for name in (
        "gpu-count", "torch", "vulkan", "egl", "physx")] + ["FAIL pod-canary"] + [f"SKIP {name}" for name in (
        "mujoco-egl", "sapien-vulkan", "maniskill-cpu", "maniskill-gpu")], run.stdout
    assert "the pod needs one" in lines[1], run.stdout
    assert lines[-1] == "status=1" and lines[-2].startswith("gpu-check: 1 check(s) failed: driver;"), run.stdout


def test_an_empty_physx_gpu_key_is_one_line(tmp_path):
    spec = sapien_spec(tmp_path, 'physx_gpu = " "')
    done = imagebuild("render", "--spec", spec, "--out", tmp_path / "out", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f'imagebuild: error: {spec}: simulators.physx_gpu: expected "download", "volume" or a path '
        'to linux-so.zip, got " "']
