"""One JSON shape for a pod, local (``local:NAME``) or RunPod: what `pod list --json`,
`pod status --json`, `pod create/start/stop/update --json` and `run --json` print.

Versioned (``format``), snake_case, the same keys for both kinds; ``status`` is one
lowercase enum for both (``STATUSES``); what each backend says itself is under ``raw``
(RunPod's pod object with env values masked, or the local container's details).
A key a kind does not have is null, never missing (``container``: a local pod's docker
container; ``gpu``: a RunPod pod's type and count).
"""

from __future__ import annotations

from typing import Any

FORMAT = 1

# The lowercase status both kinds share.
STATUSES = ("running", "starting", "stopped", "terminated", "error", "other")

# RunPod's desiredStatus values (openapi-v2 Pod.desiredStatus) and docker's State.Status.
_RUNPOD = {"RUNNING": "running", "PROVISIONING": "starting", "STARTING": "starting",
           "EXITED": "stopped", "TERMINATED": "terminated", "ERROR": "error"}
_DOCKER = {"running": "running", "restarting": "starting", "created": "stopped",
           "exited": "stopped", "paused": "stopped", "removing": "terminated", "dead": "error"}

KEYS = ("format", "kind", "id", "name", "ref", "status", "image", "gpu", "cost_per_hr",
        "ssh", "volume", "volume_kept", "container", "raw")


def shape(*, kind: str, id: str, name: str, ref: str, status: str, image: str | None,
          gpu: dict | None, cost_per_hr: float, ssh: dict | None, volume: str | None,
          volume_kept: bool, raw: dict[str, Any], container: str | None = None) -> dict[str, Any]:
    return {"format": FORMAT, "kind": kind, "id": id, "name": name, "ref": ref, "status": status,
            "image": image, "gpu": gpu, "cost_per_hr": cost_per_hr, "ssh": ssh, "volume": volume,
            "volume_kept": volume_kept, "container": container, "raw": raw}


def runpod_status(status: str) -> str:
    return _RUNPOD.get(str(status).upper(), "other")


def docker_status(status: str) -> str:
    return _DOCKER.get(str(status).lower(), "other")


def endpoint_json(endpoint) -> dict | None:
    """An SSH endpoint (pods.ssh.Endpoint): how to reach the pod."""
    if endpoint is None:
        return None
    return {"kind": endpoint.kind, "host": endpoint.host, "port": endpoint.port,
            "user": endpoint.username}


def local(pod) -> dict[str, Any]:
    """A local pod (``localrun.LocalPod``)."""
    return shape(kind="local", id=pod.container_id, name=pod.name, ref=f"local:{pod.name}",
                 status=docker_status(pod.status), image=pod.image, gpu=None, cost_per_hr=0.0,
                 ssh=endpoint_json(pod.ssh) if pod.running else None, volume=pod.volume,
                 volume_kept=False, container=pod.container, raw=pod.to_json())
