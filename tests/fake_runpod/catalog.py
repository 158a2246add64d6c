"""The fake's GPU catalog: real RunPod GPU ids, names and roughly real prices."""

from __future__ import annotations

# (id, name, pool, memory GB, $/h secure, $/h community, host CUDA versions)
_GPUS = [
    ("NVIDIA GeForce RTX 4090", "RTX 4090", "ADA_24", 24, 0.69, 0.34, ["12.4", "12.6", "12.8"]),
    ("NVIDIA GeForce RTX 3090", "RTX 3090", "AMPERE_24", 24, 0.46, 0.22, ["12.2", "12.4"]),
    ("NVIDIA GeForce RTX 5090", "RTX 5090", "ADA_32_PRO", 32, 0.94, 0.69, ["12.8", "12.9"]),
    ("NVIDIA RTX A6000", "RTX A6000", "AMPERE_48", 48, 0.49, 0.33, ["12.4", "12.8"]),
    ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada", "ADA_48_PRO", 48, 0.77, 0.74, ["12.6", "12.8"]),
    ("NVIDIA L40S", "L40S", "ADA_48_PRO", 48, 0.86, 0.79, ["12.4", "12.8"]),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe", "AMPERE_80", 80, 1.64, 1.19, ["12.2", "12.8"]),
    ("NVIDIA A100-SXM4-80GB", "A100 SXM", "AMPERE_80", 80, 1.74, 1.39, ["12.4", "12.8"]),
    ("NVIDIA H100 PCIe", "H100 PCIe", "HOPPER_141", 80, 2.39, 1.99, ["12.4", "12.8"]),
    ("NVIDIA H100 80GB HBM3", "H100 SXM", "HOPPER_141", 80, 2.69, 2.69, ["12.6", "12.8"]),
    ("NVIDIA H100 NVL", "H100 NVL", None, 94, 2.59, 2.79, ["12.8"]),
]


def gpu_types() -> list[dict]:
    """GpuType objects as ``GET /v2/catalog/gpus`` returns them (no availability)."""
    return [
        {
            "id": gpu_id,
            "name": name,
            "pool": pool,
            "manufacturer": "NVIDIA",
            "memory": memory,
            "secure": True,
            "community": True,
            "price": {"secure": secure, "community": community},
            "maxCount": {"secure": 8, "community": 4},
        }
        for gpu_id, name, pool, memory, secure, community, _ in _GPUS
    ]


# Stock per cloud for one GPU; tests change it through ``RunPodState.stock``.
_STOCK = {
    "NVIDIA GeForce RTX 4090": ("HIGH", "MEDIUM"),
    "NVIDIA GeForce RTX 3090": ("LOW", "HIGH"),
    "NVIDIA GeForce RTX 5090": ("MEDIUM", "LOW"),
    "NVIDIA H100 NVL": ("LOW", "LOW"),
}


# Data centers (listDataCenters' ids) and the region each is in.
DATACENTERS = ("US-KS-2", "US-TX-3", "EU-RO-1", "EU-SE-1", "CA-MTL-1")
DATACENTER_NAMES = {"US-KS-2": "US Kansas 2", "US-TX-3": "US Texas 3", "EU-RO-1": "EU Romania 1",
                    "EU-SE-1": "EU Sweden 1", "CA-MTL-1": "CA Montreal 1"}
REGIONS = {"US-KS-2": "NORTH_AMERICA", "US-TX-3": "NORTH_AMERICA", "EU-RO-1": "EUROPE",
           "EU-SE-1": "EUROPE", "CA-MTL-1": "NORTH_AMERICA"}


def default_dc_stock() -> dict[tuple[str, str], str]:
    """``{(data center, GPU id): level}``: every data center offers every GPU at its
    Secure Cloud stock level; tests change or delete entries for one data center."""
    secure = {gpu: level for (gpu, cloud), level in default_stock().items() if cloud == "SECURE"}
    return {(dc, gpu): level for dc in DATACENTERS for gpu, level in secure.items()}


def default_stock() -> dict[tuple[str, str], str]:
    """``{(gpu id, "SECURE"|"COMMUNITY"): level}`` for every GPU (HIGH unless listed)."""
    stock = {}
    for gpu in _GPUS:
        secure, community = _STOCK.get(gpu[0], ("HIGH", "HIGH"))
        stock[(gpu[0], "SECURE")] = secure
        stock[(gpu[0], "COMMUNITY")] = community
    return stock


def with_availability(gpu: dict, level: str, floor: str | None) -> dict:
    """The GpuType as ``include=AVAILABILITY`` returns it: overall level, the one
    data center that has it, the host CUDA versions at or above ``floor``."""
    versions = host_cuda_versions(gpu["id"])
    if floor:
        versions = [v for v in versions if cuda_key(v) >= cuda_key(floor)]
    if not versions:
        level = "NONE"
    gpu = {**gpu, "availability": level}
    if level != "NONE":
        gpu["dataCenters"] = [{"id": "US-KS-2", "name": "US Kansas 2", "availability": level}]
    if versions:
        gpu["cudaVersions"] = [{"version": v, "available": level != "NONE"} for v in versions]
    return gpu


def host_cuda_versions(gpu_id: str) -> list[str]:
    for gpu in _GPUS:
        if gpu[0] == gpu_id:
            return list(gpu[6])
    return []


def cuda_key(version: str) -> tuple[int, ...]:
    """Numeric order, as RunPod compares them: 12.11 is above 12.2."""
    return tuple(int(part) for part in version.split("."))
