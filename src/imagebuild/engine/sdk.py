"""Engine work: existence, inspect, tag, reading files.

Inspecting and tagging images (all a no-op rebuild asks of the engine) go over the
engine's own HTTP API on its unix socket with the standard library: importing the
docker SDK (with requests) costs more than the whole no-op build may take. Everything
else, and an engine that is not on a unix socket, goes through the docker SDK, made on
first use. Building goes through the docker CLI (BuildKit, see ``buildkit``).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import socket
import tarfile
from typing import Any
from urllib.parse import quote, urlencode

from imagebuild import imageref
from imagebuild.errors import UserError

_DEFAULT_HOST = "unix:///var/run/docker.sock"
# `docker save` (dockerd 20.10) writes the whole export to disk before its first byte:
# 8.3 GB took longer than the 120 s every other call may wait. Only a stall this long
# (no byte at all) fails a save.
SAVE_STALL_S = 1800.0


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or _DEFAULT_HOST


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class LocalImage:
    """An image's inspect data: what callers read of the SDK's ``Image`` (id, attrs,
    labels, history), without the SDK."""

    def __init__(self, attrs: dict[str, Any], engine: Engine):
        self.attrs = attrs
        self._engine = engine

    @property
    def id(self) -> str:
        return self.attrs["Id"]

    @property
    def labels(self) -> dict[str, str]:
        return (self.attrs.get("Config") or {}).get("Labels") or {}

    def history(self) -> list[dict[str, Any]]:
        return self._engine.api("GET", f"/images/{quote(self.id, safe='')}/history") or []


class Engine:
    """A connected Docker engine. Construct with :func:`connect`."""

    def __init__(self, client: Any = None, socket_path: str | None = None, timeout: float = 120):
        self._client = client
        self.socket_path = socket_path  # None: every call goes through the SDK
        self.timeout = timeout

    @property
    def client(self) -> Any:
        """The docker SDK's client, made on first use."""
        if self._client is None:
            import docker

            self._client = docker.from_env(timeout=int(self.timeout))
        return self._client

    def api(self, method: str, path: str, query: dict[str, str] | None = None) -> Any | None:
        """One engine API call over the unix socket: its JSON, or None on 404."""
        connection = _UnixConnection(self.socket_path or "", self.timeout)
        try:
            connection.request(method, path + (f"?{urlencode(query)}" if query else ""))
            response = connection.getresponse()
            body = response.read()
        except OSError:
            raise UserError(f"no Docker engine answers at {_engine_address()}: start dockerd "
                            "(or Docker Desktop) or set DOCKER_HOST, then retry") from None
        finally:
            connection.close()
        if response.status == 404:
            return None
        if response.status >= 300:
            try:
                message = json.loads(body).get("message", "")
            except ValueError:
                message = body.decode("utf-8", "replace").strip()
            raise UserError(f"docker engine error ({method} {path}): {message or response.status}")
        return json.loads(body) if body.strip() and body.lstrip()[:1] in (b"{", b"[") else {}

    def image(self, reference: str) -> Any | None:
        """The local image ``reference`` (its id, attrs, labels, history), or None."""
        if self.socket_path is not None:
            if not reference:
                return None
            attrs = self.api("GET", f"/images/{quote(reference, safe='/:@')}/json")
            return LocalImage(attrs, self) if attrs else None
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
        ref = imageref.parse(target)
        if self.socket_path is not None:
            if self.api("POST", f"/images/{quote(source, safe='/:@')}/tag",
                        {"repo": ref.repository, "tag": ref.tag or "latest"}) is None:
                raise UserError(f"image {source} is not in the local engine; build it first")
            return
        import docker.errors

        try:
            tagged = self.client.images.get(source).tag(ref.repository, ref.tag)
        except docker.errors.ImageNotFound:
            raise UserError(f"image {source} is not in the local engine; build it first") from None
        except docker.errors.APIError as error:
            raise UserError(f"docker could not tag {source} as {target}: {error.explanation}") from None
        if not tagged:
            raise UserError(f"could not tag {source} as {target}")

    @contextlib.contextmanager
    def save(self, reference: str, stall_s: float = SAVE_STALL_S):
        """`docker save` of ``reference`` as a readable byte stream (a tar), nothing on
        disk here; the engine may take minutes before the first byte (``SAVE_STALL_S``)."""
        if self.socket_path is None:
            import docker

            client = docker.from_env(timeout=int(stall_s))
            chunks = client.api.get_image(reference, chunk_size=1 << 20)
            yield _ChunkReader(chunks)
            return
        connection = _UnixConnection(self.socket_path, self.timeout)
        try:
            connection.connect()
            connection.sock.settimeout(stall_s)  # connected within the usual timeout
            connection.request("GET", f"/images/{quote(reference, safe='/:@')}/get")
            response = connection.getresponse()
            if response.status >= 300:
                message = response.read().decode("utf-8", "replace").strip()
                raise UserError(f"docker engine error saving {reference}: {message or response.status}")
            yield response
        except OSError as error:
            raise UserError(f"docker save of {reference} failed ({error}): check that the engine "
                            f"at {_engine_address()} is up, then retry") from None
        finally:
            connection.close()

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


class _ChunkReader:
    """A read()-able file over an iterator of byte chunks (the SDK's save stream)."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def base_unavailable(reference: str) -> UserError:
    return UserError(f"cannot pull the base image {reference} (registry unreachable or image "
                     "unknown): pass --base IMAGE with an image the engine has, e.g. "
                     "`imagebuild build --base my/local-base:tag`")


def connect() -> Engine:
    """Connect to the engine, or fail with one line saying how to fix it."""
    address = _engine_address()
    if address.startswith("unix://"):
        engine = Engine(socket_path=address[len("unix://"):])
        engine.api("GET", "/_ping")  # OK: not JSON, read as {}
        return engine
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
