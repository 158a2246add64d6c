"""imagebuild's GPU aliases ("4090", "a6000", "h100 sxm") as SkyPilot accelerator names.

SkyPilot names accelerators its own way ("RTX4090", "H100-SXM") and maps them to
RunPod's GPU ids in sky/provision/runpod/utils.py (GPU_NAME_MAP, copied here from
skypilot 0.14.1; tests/test_export_skypilot.py checks it against the installed
SkyPilot). An alias is matched as `pod create --gpu` matches RunPod's catalog: each
word of the alias is a word of SkyPilot's name or of RunPod's id.
"""

from __future__ import annotations

import re

from imagebuild.errors import SpecError
from imagebuild.runpod.gpus import resolve_gpu

# SkyPilot accelerator name -> RunPod GPU id.
SKYPILOT_GPUS = {
    "MI300X": "AMD Instinct MI300X OAM",
    "A100-80GB": "NVIDIA A100 80GB PCIe",
    "A100-80GB-SXM": "NVIDIA A100-SXM4-80GB",
    "A30": "NVIDIA A30",
    "A40": "NVIDIA A40",
    "B200": "NVIDIA B200",
    "RTX3070": "NVIDIA GeForce RTX 3070",
    "RTX3080": "NVIDIA GeForce RTX 3080",
    "RTX3080Ti": "NVIDIA GeForce RTX 3080 Ti",
    "RTX3090": "NVIDIA GeForce RTX 3090",
    "RTX3090Ti": "NVIDIA GeForce RTX 3090 Ti",
    "RTX4070Ti": "NVIDIA GeForce RTX 4070 Ti",
    "RTX4080": "NVIDIA GeForce RTX 4080",
    "RTX4080SUPER": "NVIDIA GeForce RTX 4080 SUPER",
    "RTX4090": "NVIDIA GeForce RTX 4090",
    "RTX5080": "NVIDIA GeForce RTX 5080",
    "RTX5090": "NVIDIA GeForce RTX 5090",
    "H100-SXM": "NVIDIA H100 80GB HBM3",
    "H100-NVL": "NVIDIA H100 NVL",
    "H100": "NVIDIA H100 PCIe",
    "H200-SXM": "NVIDIA H200",
    "L4": "NVIDIA L4",
    "L40": "NVIDIA L40",
    "L40S": "NVIDIA L40S",
    "RTX2000-Ada": "NVIDIA RTX 2000 Ada Generation",
    "RTX4000-Ada": "NVIDIA RTX 4000 Ada Generation",
    "RTX4000-Ada-SFF": "NVIDIA RTX 4000 SFF Ada Generation",
    "RTX5000-Ada": "NVIDIA RTX 5000 Ada Generation",
    "RTX6000-Ada": "NVIDIA RTX 6000 Ada Generation",
    "RTXA2000": "NVIDIA RTX A2000",
    "RTXA4000": "NVIDIA RTX A4000",
    "RTXA4500": "NVIDIA RTX A4500",
    "RTXA5000": "NVIDIA RTX A5000",
    "RTXA6000": "NVIDIA RTX A6000",
    "RTXPRO4500": "NVIDIA RTX PRO 4500 Blackwell",
    "RTXPRO6000": "NVIDIA RTX PRO 6000 Blackwell Server Edition",
    "RTXPRO6000-WK": "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
    "V100-16GB-FHHL": "Tesla V100-FHHL-16GB",
    "V100-16GB-SXM2": "Tesla V100-SXM2-16GB",
}

_CATALOG = [{"id": name, "name": runpod_id} for name, runpod_id in SKYPILOT_GPUS.items()]
_COUNT = re.compile(r"[1-9][0-9]?\Z")


def accelerator(value: str) -> tuple[str, int]:
    """``ALIAS[:N]`` as (SkyPilot accelerator name, count); a SpecError names --gpu."""
    alias, _, count = value.partition(":")
    if count and not _COUNT.match(count):
        raise SpecError(f'--gpu: expected ALIAS[:N] with N from 1 to 99, like 4090:2, got "{value}"')
    try:
        name = resolve_gpu(alias, _CATALOG, offered_by="SkyPilot")["id"]
    except SpecError as error:
        if "nearest:" in str(error) or "ambiguous" in str(error):
            raise
        raise SpecError(f'--gpu: SkyPilot offers no GPU "{alias.strip()}"; its names: '
                        f"{', '.join(SKYPILOT_GPUS)}") from None
    return name, int(count or 1)


def accelerators(value: str) -> dict[str, int]:
    """``ALIAS[:N][,ALIAS[:N]...]``: SkyPilot may launch any of them."""
    chosen: dict[str, int] = {}
    for item in value.split(","):
        name, count = accelerator(item.strip())
        chosen[name] = count
    return chosen
