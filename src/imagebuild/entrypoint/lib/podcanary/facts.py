"""What the pod knows before any check: the image (image.env beside contract.env), the
GPUs nvidia-smi reports, how many GPUs the pod was given, the loaders' vendor files."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field

from podsave import contract

IMAGE_ENV = os.path.join(os.path.dirname(contract.ENV_FILE), "image.env")
TRUE = ("1", "true", "yes", "on")

# The loaders' search folders (steps/gpu.sh uses the same), and the variables that replace them.
VULKAN_ICD_DIRS = ("/etc/xdg/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d",
                   "/usr/share/vulkan/icd.d")
VULKAN_ICD_VARIABLES = ("VK_DRIVER_FILES", "VK_ICD_FILENAMES")
EGL_VENDOR_DIRS = ("/etc/glvnd/egl_vendor.d", "/usr/share/glvnd/egl_vendor.d")
EGL_VENDOR_VARIABLES = ("__EGL_VENDOR_LIBRARY_FILENAMES",)


class ProbeError(Exception):
    """A command or probe that did not answer: its message is the check's figure."""


def run(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    """stdout of argv; ProbeError with its last stderr line when it fails or times out
    (a ``timeout`` used up before the start is a time-out too)."""
    if timeout <= 0:
        raise ProbeError(f"{os.path.basename(argv[0])}: no time left of the check's limit")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        raise ProbeError(f"{os.path.basename(argv[0])} timed out after {timeout:.0f} s") from None
    except OSError as error:
        raise ProbeError(f"cannot run {argv[0]}: {error.strerror}") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise ProbeError(lines[-1].strip() if lines else f"{argv[0]} exited with {done.returncode}")
    return done.stdout


def probe(name: str, timeout: float, env: dict[str, str] | None = None) -> dict:
    """One `pod-gpu-probe NAME`: its last output line, a JSON object."""
    command = shutil.which("pod-gpu-probe")
    if not command:
        raise ProbeError("pod-gpu-probe is not on PATH")
    lines = run([command, name], timeout, env).strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ProbeError(f"pod-gpu-probe {name} printed no report") from None


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


@dataclass
class Image:
    name: str = ""
    cuda: str = ""  # "12.8"; "" when the image names none
    spec_hash: str = ""
    lock_sha256: str = ""


def image() -> Image:
    """The image's facts; an nvidia/cuda base's CUDA_VERSION when the spec named no CUDA."""
    found = contract.names(IMAGE_ENV)
    cuda = found.get("POD_IMAGE_CUDA") or os.environ.get("CUDA_VERSION", "")
    return Image(found.get("POD_IMAGE_NAME", ""), ".".join(map(str, version_tuple(cuda))),
                 found.get("POD_IMAGE_SPEC_HASH", ""), found.get("POD_IMAGE_LOCK_SHA256", ""))


@dataclass
class Gpu:
    index: str
    name: str
    uuid: str
    memory_mib: str


@dataclass
class Driver:
    """What nvidia-smi says; ``present`` False when the pod has no NVIDIA driver at all."""

    present: bool
    version: str = ""
    cuda: str = ""  # the newest CUDA the driver supports
    gpus: list[Gpu] = field(default_factory=list)
    error: str = ""  # the driver is there but nvidia-smi failed


def driver(timeout: float) -> Driver:
    """Two nvidia-smi calls within ``timeout`` together (a hung driver hangs nvidia-smi)."""
    deadline = time.monotonic() + timeout
    command = shutil.which("nvidia-smi")
    if not command:
        present = os.path.exists("/proc/driver/nvidia/version") or bool(glob.glob("/dev/nvidia[0-9]*"))
        return Driver(present, error="the driver is loaded but nvidia-smi is missing" if present else "")
    try:
        rows = run([command, "--query-gpu=index,name,uuid,driver_version,memory.total",
                    "--format=csv,noheader,nounits"], timeout)
        header = run([command], deadline - time.monotonic())
    except ProbeError as error:
        return Driver(True, error=f"nvidia-smi failed: {error}")
    gpus, version = [], ""
    for line in rows.splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) >= 5:
            gpus.append(Gpu(cells[0], cells[1], cells[2], cells[4]))
            version = cells[3]
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", header)
    return Driver(True, version, cuda.group(1) if cuda else "", gpus)


def expected_gpus() -> int | None:
    """How many GPUs the pod was given: RunPod's RUNPOD_GPU_COUNT, else an explicit
    NVIDIA_VISIBLE_DEVICES list; None when nothing says."""
    count = os.environ.get("RUNPOD_GPU_COUNT", "").strip()
    if count.isdigit():
        return int(count)
    visible = os.environ.get("NVIDIA_VISIBLE_DEVICES", "").strip()
    if visible and visible not in ("all", "void", "none"):
        return len([item for item in visible.split(",") if item.strip()])
    return None


def gpu_required() -> bool:
    """The pod must have a GPU: POD_REQUIRE_GPU, or it was given one."""
    return os.environ.get("POD_REQUIRE_GPU", "").strip().lower() in TRUE or (expected_gpus() or 0) > 0


def vendor_files(variables: tuple[str, ...], dirs: tuple[str, ...]) -> list[str]:
    """The vendor JSON files a loader reads: those a variable names, else its folders'."""
    for name in variables:
        if os.environ.get(name):
            return [path for path in os.environ[name].split(":") if path]
    return [path for folder in dirs for path in sorted(glob.glob(os.path.join(folder, "*.json")))]


def library_of(path: str) -> str:
    """The driver library a vendor file loads (ICD.library_path or library_path)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return ""
    section = data.get("ICD") or data
    return os.path.basename(str(section.get("library_path", ""))) if isinstance(section, dict) else ""


def nvidia_files(paths: list[str]) -> list[str]:
    return [path for path in paths if "nvidia" in library_of(path).lower()]
