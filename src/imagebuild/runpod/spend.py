"""What pods cost: the hourly total, a pod's cost so far, pods idling on a GPU.

RunPod reports a pod's billed rate (``cost``, $/h), its uptime and its GPUs'
utilisation *now* (``runtime.gpus[].util``) - no history. To tell a pod that has
sat at 0 % GPU for over an hour, `pod list` remembers since when it first saw
each pod at 0 % (``~/.cache/imagebuild/gpu-idle.json``: pod ids and times only)
and forgets a pod as soon as it reads above 0 %.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

IDLE_WARN_S = 3600


def hourly_total(pods: list[dict]) -> float:
    return round(sum(float(pod.get("cost") or 0.0) for pod in pods), 4)


def cost_so_far(pod: dict) -> float | None:
    """The billed rate times the time since the container started (this run)."""
    uptime = (pod.get("runtime") or {}).get("uptime")
    if uptime is None:
        return None
    return float(pod.get("cost") or 0.0) * uptime / 3600


def gpu_at_zero(pod: dict) -> bool:
    gpus = (pod.get("runtime") or {}).get("gpus") or []
    return pod.get("status") == "RUNNING" and bool(gpus) and all(g.get("util", 0) == 0 for g in gpus)


def history_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "imagebuild" / "gpu-idle.json"


def idle_for(pods: list[dict], path: Path | None = None, now: float | None = None) -> dict[str, int]:
    """Seconds each pod has been seen at 0 % GPU (never more than its uptime);
    records the readings for the next call."""
    path = path or history_path()
    now = time.time() if now is None else now
    try:
        seen = json.loads(path.read_text())
        seen = seen if isinstance(seen, dict) else {}
    except (OSError, ValueError):
        seen = {}
    since: dict[str, float] = {}
    for pod in pods:
        if not gpu_at_zero(pod):
            continue
        first = seen.get(pod["id"])
        first = float(first) if isinstance(first, (int, float)) else now
        uptime = (pod.get("runtime") or {}).get("uptime")
        since[pod["id"]] = max(first, now - uptime) if isinstance(uptime, int) else first
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(since))
    except OSError:
        pass  # a read-only home loses the history, not the listing
    return {pod_id: int(now - first) for pod_id, first in since.items()}
