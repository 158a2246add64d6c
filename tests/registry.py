"""A real registry for push tests and benches: Debian's `docker-registry` on
127.0.0.1 with htpasswd auth, storage in a temporary folder.

Docker treats 127.0.0.0/8 registries as insecure-allowed, so plain http works
without touching the engine's configuration. No pytest here: bench/ uses it too.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"

_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
auth:
  htpasswd:
    realm: imagebuild-test
    path: {htpasswd}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Registry:
    """One registry process; ``start``/``stop`` can be repeated on the same port."""

    def __init__(self, root: Path | None = None, username: str = "imagebuild"):
        if not Path(REGISTRY_BINARY).exists():
            raise RuntimeError("docker-registry is not installed (scripts/setup.sh installs it)")
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="imagebuild-registry-"))
        self.username = username
        # A fresh random password per registry: tests scan for it in outputs and files.
        self.password = "pw-" + secrets.token_hex(12)
        self.port = free_port()
        self.storage = self.root / "storage"
        self.storage.mkdir(parents=True, exist_ok=True)
        htpasswd = self.root / "htpasswd"
        subprocess.run(["htpasswd", "-Bbc", str(htpasswd), self.username, self.password],
                       check=True, capture_output=True)
        self.config = self.root / "config.yml"
        self.config.write_text(_CONFIG.format(storage=self.storage, port=self.port,
                                              secret=secrets.token_hex(16), htpasswd=htpasswd))
        self.log = self.root / "registry.log"
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> Registry:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([REGISTRY_BINARY, "serve", str(self.config)],
                                            stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited; log:\n{self.log.read_text()[-2000:]}")
            if self.answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.host} within {timeout}s")

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
        except urllib.error.HTTPError as error:
            return error.code == 401  # up, and asking for credentials
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def stored_bytes(self) -> int:
        """Bytes of blobs the registry holds (what pushes actually uploaded)."""
        return sum(p.stat().st_size for p in self.storage.rglob("*") if p.is_file())

    def __enter__(self):  # -> Registry, started
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def remove_repository_tags(engine, repository: str) -> None:
    """Untag every local ``repository:TAG``, and only those: an image also tagged
    in another repository (same content, another registry) keeps its other tags.
    Children go first, since an image with tagged children cannot be removed."""
    from docker.errors import APIError

    for _ in range(6):
        references = [ref for image in engine.client.images.list(name=repository)
                      for ref in image.tags if ref.rsplit(":", 1)[0] == repository]
        if not references:
            return
        for reference in references:
            try:
                engine.client.images.remove(reference)
            except APIError:  # a parent whose child is removed in this pass
                continue
