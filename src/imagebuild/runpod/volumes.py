"""Network volumes: a /workspace that outlives its pod and is not tied to one host.

A pod's own (persistent) volume lives on its host: a stopped pod whose host has
no free GPU cannot restart, and terminate deletes it. A network volume lives in
a data center; any pod created there can mount it, and terminating a pod keeps
it. Volume names are ours to keep unique (RunPod does not): create is
idempotent by name.
"""

from __future__ import annotations

from imagebuild.errors import SpecError, UserError
from imagebuild.runpod.client import RunPodError
from imagebuild.runpod.volume_api import list_volumes, mounts, network_volume_id  # noqa: F401 (re-exported)

MIN_GB, MAX_GB = 10, 4096  # the spec's bounds for a network volume


def find_by_name(client, name: str) -> dict | None:
    named = [v for v in list_volumes(client) if v.get("name") == name]
    return named[0] if named else None


def find_volume(client, ref: str) -> dict:
    """The volume whose id or name is ``ref``."""
    from imagebuild.runpod.pods import by_id_or_name

    found = by_id_or_name(list_volumes(client), ref, "network volumes")
    if found is None:
        raise UserError(
            f'no network volume with id or name "{ref}"; `imagebuild volume list` shows them, '
            f"`imagebuild volume create {ref} --size GB --datacenter DC` makes one"
        )
    return found


def ensure_volume(client, name: str, size_gb: int, datacenter: str) -> tuple[dict, bool]:
    """The volume named ``name``, created when missing; (volume, created)."""
    if not name.strip():
        raise SpecError("volume create: NAME must not be empty")
    if not MIN_GB <= size_gb <= MAX_GB:
        raise SpecError(f"--size: a network volume holds {MIN_GB} to {MAX_GB} GB, got {size_gb}")
    if not datacenter.strip():
        raise SpecError("--datacenter: name the data center, e.g. US-KS-2")
    existing = find_by_name(client, name)
    if existing is not None:
        if existing["dataCenter"] != datacenter:
            raise UserError(
                f'network volume "{name}" already exists in {existing["dataCenter"]} ({existing["id"]}), '
                f"not in {datacenter}; pick another name or use that data center"
            )
        return existing, False
    body = {"name": name, "size": size_gb, "dataCenter": datacenter}
    try:
        created = client.request("POST", "/network-volumes", json=body,
                                 recover=lambda: find_by_name(client, name))
    except RunPodError as error:
        if error.status in (400, 422):
            raise UserError(f'RunPod refused network volume "{name}" in {datacenter}: '
                            f"{error.detail or error}") from None
        raise
    return created, True


def users(client, volume_id: str) -> list[dict]:
    """The pods that mount this volume (any status: a stopped pod still holds it)."""
    from imagebuild.runpod.pods import list_pods

    return [pod for pod in list_pods(client) if network_volume_id(pod) == volume_id]


def remove_volume(client, volume: dict) -> None:
    """Delete a volume no pod uses; a 404 means it is gone already."""
    from imagebuild.runpod.pods import label

    holders = users(client, volume["id"])
    if holders:
        named = ", ".join(label(pod) for pod in holders)
        raise UserError(
            f'network volume "{volume["name"]}" ({volume["id"]}) is used by {named}; '
            "terminate those pods first (the volume is kept when they go)"
        )
    try:
        client.request("DELETE", f"/network-volumes/{volume['id']}")
    except RunPodError as error:
        if error.status != 404:
            raise
