"""The canary's checks: each takes the shared facts and its time limit and returns a
verdict ("pass", "fail", "skip") and a figure, one line saying what it saw."""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass

from podcanary import facts
from podcanary.facts import ProbeError

NO_GPU = "no NVIDIA GPU"


@dataclass
class Context:
    image: facts.Image
    driver: facts.Driver
    expected: int | None
    required: bool


def check_driver(ctx: Context, limit: float) -> tuple[str, str]:
    drv = ctx.driver
    if not drv.present:
        why = "the pod needs one (POD_REQUIRE_GPU or RUNPOD_GPU_COUNT)" if ctx.required else "a CPU-only pod"
        return ("fail" if ctx.required else "skip"), f"{NO_GPU} (no nvidia-smi, no /dev/nvidia*): {why}"
    if drv.error:
        return "fail", drv.error
    if not drv.cuda:
        return "fail", f"driver {drv.version}: nvidia-smi names no CUDA version"
    figure = f"driver {drv.version}, CUDA {drv.cuda}"
    if not ctx.image.cuda:
        return "pass", f"{figure} (the image names no CUDA version)"
    if facts.version_tuple(drv.cuda) < facts.version_tuple(ctx.image.cuda):
        return "fail", (f"{figure} is older than the image's CUDA {ctx.image.cuda}: "
                        "CUDA programs fail on this host; take another host")
    return "pass", f"{figure} >= the image's CUDA {ctx.image.cuda}"


def check_gpu_count(ctx: Context, limit: float) -> tuple[str, str]:
    found = len(ctx.driver.gpus)
    names = ", ".join(gpu.name for gpu in ctx.driver.gpus)
    if ctx.expected is None:
        return ("pass" if found else "fail"), f"{found} GPU(s) {names} (the pod's GPU count is not given)"
    if found != ctx.expected:
        return "fail", (f"nvidia-smi lists {found} GPU(s) ({names or 'none'}); "
                        f"the pod was given {ctx.expected}")
    return "pass", f"{found} GPU(s): {names}"


def check_torch(ctx: Context, limit: float) -> tuple[str, str]:
    report = facts.probe("torch", limit)
    if "skip" in report:
        return "skip", report["skip"]
    seen = report.get("devices", [])
    figure = f"torch {report.get('version')} (CUDA {report.get('cuda')}) sees {len(seen)} GPU(s)"
    if report.get("error"):
        return "fail", f"{figure}: {report['error']}"
    if len(seen) != len(ctx.driver.gpus):
        return "fail", f"{figure}; nvidia-smi lists {len(ctx.driver.gpus)}"
    times = ", ".join(f"{device['name']} {device['ms']:.0f} ms" for device in seen)
    return "pass", f"{figure}; a 1024x1024 matmul on each: {times}"


def vulkan_devices(limit: float) -> list[dict[str, str]]:
    """The loader's physical devices, from `vulkaninfo --summary` (every image has it)."""
    command = shutil.which("vulkaninfo")
    if not command:
        raise ProbeError("vulkaninfo is not on PATH (the image's vulkan-tools)")
    text = facts.run([command, "--summary"], limit)
    devices: list[dict[str, str]] = []
    for line in text.splitlines():
        if re.match(r"^GPU\d+:", line.strip()):
            devices.append({})
        match = re.match(r"^\s+(\w+)\s*=\s*(.*)$", line)
        if match and devices:
            devices[-1].setdefault(match.group(1), match.group(2).strip())
    return devices


def _software(device: dict[str, str]) -> bool:
    return device.get("deviceType", "").endswith("_CPU") or "llvmpipe" in device.get("deviceName", "")


def check_vulkan(ctx: Context, limit: float) -> tuple[str, str]:
    icds = facts.nvidia_files(facts.vendor_files(facts.VULKAN_ICD_VARIABLES, facts.VULKAN_ICD_DIRS))
    if len(icds) > 1:
        return "fail", (f"{len(icds)} Vulkan ICD files load the NVIDIA driver ({', '.join(icds)}): "
                        "the loader lists each GPU that many times")
    if not icds:
        return "fail", "no Vulkan ICD file loads the NVIDIA driver: only CPU rendering (lavapipe) is left"
    devices = vulkan_devices(limit)
    gpus = [device for device in devices if not _software(device)]
    software = [device.get("deviceName", "?") for device in devices if _software(device)]
    if not gpus:
        return "fail", f"Vulkan lists no GPU, only {', '.join(software) or 'nothing'} (CPU rendering)"
    names = [device.get("deviceName", "?") for device in gpus]
    uuids = [device.get("deviceUUID", name) for device, name in zip(gpus, names, strict=True)]
    if len(set(uuids)) < len(uuids):
        return "fail", f"Vulkan lists the same GPU more than once: {', '.join(names)}"
    if len(gpus) != len(ctx.driver.gpus):
        return "fail", (f"Vulkan lists {len(gpus)} GPU(s) ({', '.join(names)}); "
                        f"nvidia-smi {len(ctx.driver.gpus)}")
    also = f" (also {', '.join(software)}, not used for rendering)" if software else ""
    return "pass", f"each GPU once: {', '.join(names)}{also}"


def check_egl(ctx: Context, limit: float) -> tuple[str, str]:
    deadline = time.monotonic() + limit  # two probes, one limit
    vendors = facts.nvidia_files(facts.vendor_files(facts.EGL_VENDOR_VARIABLES, facts.EGL_VENDOR_DIRS))
    if not vendors:
        return "fail", ("no EGL vendor file loads the NVIDIA driver (glvnd egl_vendor.d): "
                        "EGL rendering falls back to software")
    report = facts.probe("egl", limit)
    if "NVIDIA" not in report.get("vendor", ""):
        return "fail", f"EGL context from {report.get('vendor') or 'no vendor'}, not NVIDIA's"
    figure = (f"EGL {report.get('version')} context from {report['vendor']} "
              f"({report.get('devices')} device(s))")
    if "mujoco" not in report.get("baked", []):
        return "pass", figure
    frame = facts.probe("mujoco", deadline - time.monotonic(), env={**os.environ, "MUJOCO_GL": "egl"})
    if "NVIDIA" not in frame.get("renderer", "") or frame.get("values", 0) <= 10:
        return "fail", f"{figure}; MuJoCo rendered on {frame.get('renderer')} ({frame.get('values')} values)"
    return "pass", f"{figure}; MuJoCo {frame.get('version')} frame on {frame['renderer']}"


def check_physx(ctx: Context, limit: float) -> tuple[str, str]:
    report = facts.probe("physx", limit)
    if "skip" in report:
        return "skip", report["skip"]
    return "pass", report["figure"]


# name, function, time limit (seconds): together they fit the canary's 30 s.
CHECKS = (
    ("driver", check_driver, 10.0),
    ("gpu-count", check_gpu_count, 1.0),
    ("torch", check_torch, 25.0),
    ("vulkan", check_vulkan, 10.0),
    ("egl", check_egl, 15.0),
    ("physx", check_physx, 25.0),
)
GPU_CHECKS = {"gpu-count", "torch", "vulkan", "egl", "physx"}  # skipped without a driver
