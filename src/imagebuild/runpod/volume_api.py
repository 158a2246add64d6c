"""The network-volume shapes of RunPod's API that pods and volumes both read: the
volumes list, and a pod body's ``mounts``. Apart from ``volumes`` so that ``pods``
(creating a pod on a volume) and ``volumes`` (the pods that use one) need not import
each other."""

from __future__ import annotations

from imagebuild.runpod.client import listed


def list_volumes(client) -> list[dict]:
    return listed(client.get("/network-volumes"), "networkVolumes", "GET /network-volumes")


def network_volume_id(pod: dict) -> str | None:
    network = (pod.get("mounts") or {}).get("network") or []
    return network[0].get("volumeId") if network else None


def mounts(volume_id: str, path: str) -> dict:
    return {"network": [{"volumeId": volume_id, "path": path}]}
