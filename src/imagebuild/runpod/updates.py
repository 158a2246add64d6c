"""`pod update`: a new image for an existing pod (``PATCH /v2/pods/{id}``).

The volume stays; the container is made from the new image when the pod next
starts. A running pod keeps running its current container until then, so the
answer says which it is: now (a stopped pod: at its next start) or after a
stop and start.
"""

from __future__ import annotations

from imagebuild.errors import UserError
from imagebuild.runpod.client import RunPodError
from imagebuild.runpod.pods import get_pod, label


def _applied(client, pod_id: str, image: str) -> dict | None:
    fresh = get_pod(client, pod_id)
    return fresh if fresh.get("image") == image else None


def update_image(client, pod: dict, image: str, registry: str | None) -> tuple[dict, str]:
    """(the updated pod, when the new image takes effect)."""
    body: dict = {"image": image}
    if registry:
        body["registry"] = registry
    try:
        updated = client.request("PATCH", f"/pods/{pod['id']}", json=body,
                                 recover=lambda: _applied(client, pod["id"], image))
    except RunPodError as error:
        if error.status == 409:
            raise UserError(f"pod {label(pod)} belongs to a cluster: RunPod only changes it through "
                            f"its cluster ({error.detail})") from None
        if error.status in (400, 422):
            raise UserError(f"RunPod refused the new image for pod {label(pod)}: "
                            f"{error.detail or error}") from None
        raise
    if updated.get("status") == "RUNNING":
        when = (f"the running container is unchanged until the next start: `imagebuild pod stop "
                f"{pod['id']} --save` then `imagebuild pod start {pod['id']}`")
    else:
        when = f"it takes effect at the next start: `imagebuild pod start {pod['id']}`"
    return updated, when
