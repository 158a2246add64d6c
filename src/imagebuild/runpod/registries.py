"""Private images: a RunPod registry credential made from the credentials `push` uses.

RunPod pulls a pod's image itself, so a private image needs a registry
credential stored on the account (``POST /v2/registries``, write-only) whose id
the pod names in ``registry``. It is made once per registry and user, named
``imagebuild-<registry>-<user>``, and reused by that name afterwards. The
password goes to RunPod in that one request body and nowhere else: not in
output, logs, errors or state files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from imagebuild.errors import SpecError, UserError
from imagebuild.runpod.client import RunPodError


def registry_of(image: str) -> str:
    """``ghcr.io`` for ``ghcr.io/you/pod@sha256:...``; ``docker.io`` for ``you/pod:v1``."""
    from docker.auth import resolve_repository_name

    repository = image.split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:  # a tag, not a registry port
        repository = repository[: len(repository) - len(last)] + last.split(":", 1)[0]
    return resolve_repository_name(repository)[0]


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


def credential_name(registry: str, username: str) -> str:
    return "imagebuild-" + re.sub(r"[^A-Za-z0-9._-]+", "-", f"{registry}-{username}")


def _find(client, name: str) -> dict | None:
    for registry in client.get("/registries").get("registries", []):
        if registry.get("name") == name:
            return registry
    return None


def ensure(client, image: str, environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """The credential id for ``image`` (None: no local credentials) and a note saying what was done."""
    registry = registry_of(image)
    found = local_credentials(registry, environ)
    if found is None:
        return None, (f"no credentials for {registry} (docker login or IMAGEBUILD_REGISTRY_*): "
                      "the image must be public")
    username, password = found
    name = credential_name(registry, username)
    existing = _find(client, name)
    if existing is not None:
        return existing["id"], f"pulling {registry} images with RunPod credential {name}"
    body = {"name": name, "username": username, "password": password}
    try:
        made = client.request("POST", "/registries", json=body, recover=lambda: _find(client, name))
    except RunPodError as error:
        message = str(error).replace(password, "***")
        raise UserError(f"cannot store the {registry} credential on RunPod: {message}") from None
    return made["id"], f"stored RunPod credential {name} for {registry} (used for later pods too)"


def check_given(client, credential_id: str) -> None:
    """``--registry-auth ID``: it must exist on the account."""
    try:
        client.get(f"/registries/{credential_id}")
    except RunPodError as error:
        if error.status == 404:
            raise SpecError(f"--registry-auth: no RunPod registry credential {credential_id}; "
                            "drop the flag to make one from your docker login") from None
        raise
