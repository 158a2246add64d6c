"""What a GPU costs and whether RunPod has it now: the catalog with availability.

``GET /v2/catalog/gpus?include=AVAILABILITY&product=POD`` adds the stock level
(NONE, LOW, MEDIUM, HIGH) for one cloud and GPU count; prices are per GPU and
hour, so a pod of ``count`` GPUs costs ``count`` times that. Stock differs by
cloud, so a table of both clouds asks once per cloud. ``imagebuild gpus`` prints
these offers; ``pod create`` orders its fallback list by stock and says the
price before it creates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from imagebuild.errors import SpecError
from imagebuild.runpod.client import listed
from imagebuild.runpod.gpus import resolve_gpu

CLOUDS = ("secure", "community")
STOCK_RANK = {"HIGH": 3, "MEDIUM": 2, "LOW": 1, "NONE": 0}


def fetch_catalog(
    client: Any, cloud: str, count: int = 1, min_cuda: str | None = None
) -> list[dict]:
    """GpuTypes with ``availability`` for pods of ``count`` GPUs on ``cloud``,
    counting only hosts whose CUDA is at least ``min_cuda``."""
    params: dict[str, Any] = {
        "include": "AVAILABILITY",
        "product": "POD",
        "count": count,
        "cloud": cloud.upper(),
    }
    if min_cuda:
        params["minCudaVersion"] = min_cuda
    return listed(client.get("/catalog/gpus", params=params), "gpus", "GET /catalog/gpus")


def stock(gpu: dict) -> str:
    """The stock level; a GPU type without one (unavailable everywhere) is NONE."""
    return str(gpu.get("availability") or "NONE")


@dataclass(frozen=True)
class Offer:
    """One GPU type for a pod of ``count`` GPUs: hourly prices per cloud (None:
    not offered there, or not that many on one machine) and stock per cloud."""

    id: str
    name: str
    alias: str
    memory: int
    count: int
    price: dict[str, float | None]
    stock: dict[str, str]

    def cheapest(self, clouds: tuple[str, ...] = CLOUDS) -> float | None:
        prices = [self.price[c] for c in clouds if self.price.get(c) is not None]
        return min(prices) if prices else None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "alias": self.alias, "memory": self.memory,
            "count": self.count, "price": self.price, "stock": self.stock,
        }


def offers(catalogs: dict[str, list[dict]], count: int) -> list[Offer]:
    """Offers from one catalog per cloud asked (``{"secure": [...], ...}``)."""
    first = next(iter(catalogs.values()), [])
    by_cloud = {cloud: {g["id"]: g for g in gpus} for cloud, gpus in catalogs.items()}
    result = []
    for gpu in first:
        price: dict[str, float | None] = {}
        levels: dict[str, str] = {}
        for cloud in catalogs:
            entry = by_cloud[cloud].get(gpu["id"], gpu)
            fits = entry.get(cloud) and (entry.get("maxCount") or {}).get(cloud, count) >= count
            price[cloud] = round(entry["price"][cloud] * count, 4) if fits else None
            levels[cloud] = stock(entry) if fits else "NONE"
        result.append(Offer(gpu["id"], gpu.get("name", gpu["id"]), alias_for(gpu, first),
                            int(gpu.get("memory") or 0), count, price, levels))
    return result


def select(
    found: list[Offer], max_price: float | None = None, min_vram: int | None = None
) -> list[Offer]:
    """Offered on some asked cloud, within the filters, cheapest first."""
    priced = [(o.cheapest(tuple(o.price)), o) for o in found]
    kept = [
        (price, o) for price, o in priced
        if price is not None
        and (max_price is None or price <= max_price)
        and (min_vram is None or o.memory >= min_vram)
    ]
    return [o for _, o in sorted(kept, key=lambda item: (item[0], -item[1].memory, item[1].id))]


def alias_for(gpu: dict, catalog: list[dict]) -> str:
    """The shortest words of the GPU's name that `--gpu` resolves to exactly it."""
    words = gpu.get("name", gpu["id"]).lower().split()
    # Model numbers first: "4090" reads better than "rtx".
    words.sort(key=lambda w: (not any(c.isdigit() for c in w), len(w)))
    for size in range(1, len(words) + 1):
        for combo in itertools.combinations(words, size):
            alias = " ".join(combo)
            try:
                if resolve_gpu(alias, catalog)["id"] == gpu["id"]:
                    return alias
            except SpecError:
                continue
    return gpu["id"]


def order_by_stock(gpu_ids: list[str], catalog: list[dict]) -> list[str]:
    """The user's fallback list with GPUs that are out of stock now moved last;
    otherwise the user's order stands (a stable sort)."""
    return order_by_levels(gpu_ids, {g["id"]: stock(g) for g in catalog})


def order_by_levels(gpu_ids: list[str], levels: dict[str, str]) -> list[str]:
    """``gpu_ids`` with those out of stock (or absent from ``levels``) moved last, in a
    stable sort: the global catalog's stock or one data center's alike."""
    return sorted(gpu_ids, key=lambda gpu_id: levels.get(gpu_id, "NONE") == "NONE")


def price_note(gpu_ids: list[str], catalog: list[dict], count: int, cloud: str) -> str:
    """`pod create`'s line before it creates: the hourly price of each choice."""
    by_id = {g["id"]: g for g in catalog}
    parts = []
    for gpu_id in gpu_ids:
        gpu = by_id.get(gpu_id)
        if gpu is None:
            continue
        hourly = gpu["price"][cloud.lower()] * count
        parts.append(f"{count} x {gpu.get('name', gpu_id)} ${hourly:.2f}/h (stock {stock(gpu).lower()})")
    where = f"on {cloud.lower()} cloud"
    return f"price {where}: " + ("; then ".join(parts) if parts else "unknown")


def datacenter_stock(client: Any, datacenter: str) -> dict[str, str]:
    """``{GPU id: stock level}`` in one data center (GPUs it does not offer are absent):
    ``GET /v2/catalog/datacenters?include=GPU_AVAILABILITY``, which the createPod
    description names for "stock per data center"."""
    found = client.get("/catalog/datacenters", params={"include": "GPU_AVAILABILITY"})
    for dc in found.get("dataCenters", []):
        if dc.get("id") == datacenter:
            return {g["id"]: str(g.get("availability") or "NONE") for g in dc.get("gpuAvailability") or []}
    return {}
