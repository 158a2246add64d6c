"""Engine work through the docker SDK: existence, inspect, tag, reading files.

Building goes through the docker CLI (BuildKit, see ``dockercli``); everything
else talks to the engine API directly.
"""

from __future__ import annotations

import io
import os
import tarfile
from typing import Any

from imagebuild import imageref
from imagebuild.errors import UserError


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


class Engine:
    """A connected Docker engine. Construct with :func:`connect`."""

    def __init__(self, client: Any):
        self.client = client

    def image(self, reference: str) -> Any | None:
        """The local image ``reference``, or None."""
        import docker.errors

        try:
            return self.client.images.get(reference)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as error:
            if getattr(error, "status_code", None) == 404:
                return None
            raise UserError(f"docker engine error inspecting {reference}: {error.explanation}") from None

    def exists(self, reference: str) -> bool:
        return self.image(reference) is not None

    def image_id(self, reference: str) -> str | None:
        found = self.image(reference)
        return found.id if found is not None else None

    def labels(self, reference: str) -> dict[str, str]:
        found = self.image(reference)
        if found is None:
            raise UserError(f"image {reference} is not in the local engine; build or pull it first")
        return dict(found.labels or {})

    def pull(self, reference: str, auth: dict | None = None) -> bool:
        """Pull ``reference`` if a registry has it; False when it cannot be had
        (not there, no access, registry unreachable): the caller builds instead."""
        import docker.errors

        ref = imageref.parse(reference)
        try:
            self.client.images.pull(ref.repository, tag=ref.digest or ref.tag, auth_config=auth)
        except docker.errors.APIError:
            return False
        return self.exists(reference)

    def tag(self, source: str, target: str) -> None:
        import docker.errors

        ref = imageref.parse(target)
        try:
            tagged = self.client.images.get(source).tag(ref.repository, ref.tag)
        except docker.errors.ImageNotFound:
            raise UserError(f"image {source} is not in the local engine; build it first") from None
        except docker.errors.APIError as error:
            raise UserError(f"docker could not tag {source} as {target}: {error.explanation}") from None
        if not tagged:
            raise UserError(f"could not tag {source} as {target}")

    def read_files(self, reference: str, folder: str) -> dict[str, str]:
        """Text files directly under ``folder`` of an image (no container is started)."""
        import docker.errors

        container = self.client.containers.create(reference, command=["true"], entrypoint=[])
        try:
            try:
                stream, _ = container.get_archive(folder)
            except docker.errors.NotFound:
                return {}
            files: dict[str, str] = {}
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                for member in archive.getmembers():
                    handle = archive.extractfile(member) if member.isfile() else None
                    if handle is not None:
                        text = handle.read().decode("utf-8", "replace")
                        files[member.name.split("/", 1)[-1]] = text
            return files
        finally:
            container.remove(force=True)


def base_unavailable(reference: str) -> UserError:
    return UserError(f"cannot pull the base image {reference} (registry unreachable or image "
                     "unknown): pass --base IMAGE with an image the engine has, e.g. "
                     "`imagebuild build --base my/local-base:tag`")


def connect() -> Engine:
    """Connect to the engine, or fail with one line saying how to fix it."""
    try:
        import docker
        import docker.errors
    except ImportError:  # pragma: no cover - a dependency of the package
        raise UserError("the docker Python package is missing; reinstall imagebuild") from None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException:
        raise UserError(
            f"no Docker engine answers at {_engine_address()}: start dockerd "
            "(or Docker Desktop) or set DOCKER_HOST, then retry"
        ) from None
    return Engine(client)
