"""Private images: a RunPod registry credential made from the credentials `push` uses.

RunPod pulls a pod's image itself, so a private image needs a registry
credential stored on the account (``POST /v2/registries``, write-only) whose id
the pod names in ``registry``. A credential cannot be edited (the spec has GET,
POST and DELETE for registries, no PATCH) and cannot be read back, so the name
carries a short hash of the password: ``imagebuild-<registry>-<user>-<hash>``.
The same secret finds the same credential; a rotated token makes a new one, and
the stale ones (of that registry and user) are deleted unless a pod still names
one. A stale credential left in use would make every new pod fail its pull and
sit in ERROR, billing. The password goes to RunPod in that one request body and
nowhere else: not in output, logs, errors, names or state files (the name holds
12 hex digits of a salted SHA-256, not the password).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from imagebuild import imageref
from imagebuild.errors import SpecError, UserError
from imagebuild.runpod.client import RunPodError, listed


def registry_of(image: str) -> str:
    """``ghcr.io`` for ``ghcr.io/you/pod@sha256:...``; ``docker.io`` for ``you/pod:v1``."""
    return imageref.parse(image).registry


def local_credentials(registry: str, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(username, password) as `imagebuild push` finds them: the environment, else `docker login`."""
    from docker.auth import load_config

    from imagebuild.image.registry_auth import credentials

    auth = credentials(dict(environ) if environ is not None else None)
    if auth:
        return auth["username"], auth["password"]
    try:
        found = load_config().resolve_authconfig(registry) or {}
    except Exception:  # noqa: BLE001 - an unreadable docker config means no credentials
        return None
    username = found.get("Username") or found.get("username")
    password = found.get("Password") or found.get("password")
    return (username, password) if username and password else None


def _base_name(registry: str, username: str) -> str:
    return "imagebuild-" + re.sub(r"[^A-Za-z0-9._-]+", "-", f"{registry}-{username}")


def credential_name(registry: str, username: str, password: str) -> str:
    """The name for this exact secret: a new secret, a new name (a changed one is
    never reused, as RunPod cannot update it)."""
    digest = hashlib.sha256(f"imagebuild-registry\0{registry}\0{username}\0{password}".encode()).hexdigest()
    return f"{_base_name(registry, username)}-{digest[:12]}"


def _listed(client) -> list[dict]:
    return listed(client.get("/registries"), "registries", "GET /registries")


def _find(client, name: str) -> dict | None:
    for registry in _listed(client):
        if registry.get("name") == name:
            return registry
    return None


def _stale(listed: list[dict], registry: str, username: str, current: str) -> list[dict]:
    """Credentials imagebuild made for this registry and user before (older secrets,
    and the unhashed name earlier versions used), other than ``current``."""
    ours = re.compile(re.escape(_base_name(registry, username)) + r"(-[0-9a-f]{12})?")
    return [r for r in listed if r.get("name") != current and ours.fullmatch(str(r.get("name", "")))]


def _remove_stale(client, stale: list[dict]) -> list[str]:
    """Delete the stale credentials no pod names; notes on the ones kept."""
    from imagebuild.runpod.pods import label, list_pods

    if not stale:
        return []
    users: dict[str, list[dict]] = {}
    for pod in list_pods(client):
        users.setdefault(pod.get("registry") or "", []).append(pod)
    notes = []
    for credential in stale:
        holders = users.get(credential["id"], [])
        if holders:
            named = ", ".join(label(pod) for pod in holders)
            notes.append(f"old RunPod credential {credential['name']} kept: {named} still pulls with it "
                         f"(`imagebuild pod update POD` gives a stopped pod the new one)")
            continue
        try:
            client.request("DELETE", f"/registries/{credential['id']}")
        except RunPodError as error:
            if error.status != 404:
                notes.append(f"could not remove old RunPod credential {credential['name']} ({error})")
                continue
        notes.append(f"removed old RunPod credential {credential['name']} (a previous secret)")
    return notes


def ensure(client, image: str, environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """The credential id for ``image`` (None: no local credentials) and a note saying what was done."""
    registry = registry_of(image)
    found = local_credentials(registry, environ)
    if found is None:
        return None, (f"no credentials for {registry} (docker login or IMAGEBUILD_REGISTRY_*): "
                      "the image must be public")
    username, password = found
    name = credential_name(registry, username, password)
    listed = _listed(client)
    existing = next((r for r in listed if r.get("name") == name), None)
    if existing is not None:
        note = f"pulling {registry} images with RunPod credential {name}"
    else:
        body = {"name": name, "username": username, "password": password}
        try:
            existing = client.request("POST", "/registries", json=body, recover=lambda: _find(client, name))
        except RunPodError as error:
            message = str(error).replace(password, "***")
            raise UserError(f"cannot store the {registry} credential on RunPod: {message}") from None
        note = f"stored RunPod credential {name} for {registry} (used for later pods too)"
    # Made (or found) first, then the old ones go: a failure here never leaves none.
    extra = _remove_stale(client, _stale(listed, registry, username, name))
    return existing["id"], "; ".join([note, *extra])


def check_given(client, credential_id: str) -> None:
    """``--registry-auth ID``: it must exist on the account."""
    try:
        client.get(f"/registries/{credential_id}")
    except RunPodError as error:
        if error.status == 404:
            raise SpecError(f"--registry-auth: no RunPod registry credential {credential_id}; "
                            "drop the flag to make one from your docker login") from None
        raise
