"""`pod update`: a new image for an existing pod (``PATCH /v2/pods/{id}``).

The volume stays. RunPod resets a running pod to apply a new image at once (a
new container: the job and everything outside /workspace gone; docs "Update a
Pod": "potentially triggering a reset"), so `pod update` saves and confirms
first (``lifecycle.update``); a stopped pod stays stopped and runs the image
from its next start.
"""

from __future__ import annotations

from imagebuild.errors import UserError
from imagebuild.runpod.client import RunPodError
from imagebuild.runpod.pods import get_pod, label


def _applied(client, pod_id: str, image: str) -> dict | None:
    fresh = get_pod(client, pod_id)
    return fresh if fresh.get("image") == image else None


def _image_vars(env: dict, image: str) -> dict | None:
    """The pod's variables with the host-set image names (contract.IMAGE_*_ENV) naming the
    new image, or None when the pod carries none (created before them, or elsewhere).
    PATCH replaces ``env`` whole, so every other variable goes back as it was."""
    from imagebuild import contract
    from imagebuild.pods.podenv import image_env

    names = {contract.IMAGE_REF_ENV, contract.IMAGE_DIGEST_ENV, contract.IMAGE_ID_ENV}
    if not names & set(env):
        return None
    return {**{key: value for key, value in env.items() if key not in names}, **image_env(image)}


def update_image(client, pod: dict, image: str, registry: str | None) -> tuple[dict, str]:
    """(the updated pod, when the new image takes effect)."""
    body: dict = {"image": image}
    env = _image_vars(pod.get("env") or {}, image)
    if env is not None:  # the provenance names the image the pod really runs
        body["env"] = env
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
    if pod.get("status") == "RUNNING":
        when = (f"RunPod restarted the pod with it (a new container, /workspace kept): "
                f"`imagebuild pod status {pod['id']}` shows when it is back")
    else:
        when = f"it takes effect at the next start: `imagebuild pod start {pod['id']}`"
    return updated, when
