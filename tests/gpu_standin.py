#!/usr/bin/env python3
"""A stand-in GPU host for pod-canary's fault-injection tests, stdlib only: copied into
a container under the names of the tools a GPU host provides, it answers from a
scenario file (JSON, beside it) and hands every question the scenario does not answer
to the real tool of the image (so a lavapipe-only scenario gets the image's real
lavapipe, and a probe of what the image does not bake gets the real "skip").

  nvidia-smi     the driver: "gpus", "driver", "cuda" (no "gpus" key: no driver at all)
  vulkaninfo     "vulkan": the loader's physical devices (`--summary`)
  pod-gpu-probe  "probes": NAME -> the JSON report a GPU host's probe would print
                 ("seconds": NAME -> how long it takes: a slow host)

``install(folder, scenario)`` writes the folder a test mounts and puts first on PATH.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

TOOLS = ("nvidia-smi", "vulkaninfo", "pod-gpu-probe")
REAL = {"vulkaninfo": "/usr/bin/vulkaninfo", "pod-gpu-probe": "/usr/local/bin/pod-gpu-probe"}

# A healthy one-GPU host (the H200 of bench/README.md "GPU check").
H200 = {"name": "NVIDIA H200", "uuid": "GPU-5e2c1a4b-7d1f-4c3e-9a8b-0f1e2d3c4b5a", "memory_mib": 143771}
HEALTHY = {
    "gpus": [H200],
    "driver": "580.159.04",
    "cuda": "13.0",
    "vulkan": [{"deviceName": "NVIDIA H200", "deviceType": "PHYSICAL_DEVICE_TYPE_DISCRETE_GPU",
                "vendorID": "0x10de", "deviceUUID": "5e2c1a4b-7d1f-4c3e-9a8b-0f1e2d3c4b5a"},
               {"deviceName": "llvmpipe (LLVM 15.0.6, 256 bits)", "deviceType": "PHYSICAL_DEVICE_TYPE_CPU",
                "vendorID": "0x10005", "deviceUUID": "6d657361-3135-2e30-2e31-000000000000"}],
    "probes": {"egl": {"vendor": "NVIDIA", "version": "1.5", "devices": 1, "baked": ["mujoco"]},
               "mujoco": {"version": "3.3.0", "renderer": "NVIDIA H200/PCIe/SSE2", "values": 185}},
}


def install(folder: Path, scenario: dict) -> Path:
    """``folder`` with this script, its tool names and ``scenario.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "gpu_standin.py"
    script.write_text(Path(__file__).read_text())
    script.chmod(0o755)
    for tool in TOOLS:
        (folder / tool).unlink(missing_ok=True)
        (folder / tool).symlink_to("gpu_standin.py")
    (folder / "scenario.json").write_text(json.dumps(scenario))
    folder.chmod(0o755)
    return folder


def nvidia_smi(scenario: dict, argv: list[str]) -> int:
    gpus = scenario["gpus"]
    if any(arg.startswith("--query-gpu") for arg in argv):
        for index, gpu in enumerate(gpus):
            print(f"{index}, {gpu['name']}, {gpu['uuid']}, {scenario['driver']}, {gpu['memory_mib']}")
        return 0
    print(f"| NVIDIA-SMI {scenario['driver']}   Driver Version: {scenario['driver']}   "
          f"CUDA Version: {scenario['cuda']}     |")
    for index, gpu in enumerate(gpus):
        print(f"|   {index}  {gpu['name']}   On  |")
    return 0


def vulkaninfo(devices: list[dict]) -> int:
    print("Devices:\n========")
    for index, device in enumerate(devices):
        print(f"GPU{index}:")
        for key, value in device.items():
            print(f"\t{key:<18} = {value}")
    return 0


def main() -> int:
    tool = os.path.basename(sys.argv[0])
    scenario = json.loads((Path(__file__).resolve().parent / "scenario.json").read_text())
    if tool == "nvidia-smi" and "gpus" in scenario:
        return nvidia_smi(scenario, sys.argv[1:])
    if tool == "vulkaninfo" and "vulkan" in scenario:
        return vulkaninfo(scenario["vulkan"])
    probe = sys.argv[1] if len(sys.argv) > 1 else ""
    if tool == "pod-gpu-probe" and probe in scenario.get("probes", {}):
        time.sleep(scenario.get("seconds", {}).get(probe, 0))
        print(json.dumps(scenario["probes"][probe]))
        return 0
    if tool in REAL:
        os.execv(REAL[tool], [REAL[tool], *sys.argv[1:]])
    print(f"{tool}: command not found (the stand-in host has no driver)", file=sys.stderr)
    return 127


if __name__ == "__main__":
    sys.exit(main())
