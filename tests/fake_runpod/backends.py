"""What stands behind a fake pod's ``ssh.direct`` endpoint.

A backend is told when a pod's container should run and when it stops; it
answers with the (host, port) where the pod's sshd listens, or None. The default
``BannerBackend`` is a TCP listener per pod that greets like sshd, which is all
the readiness check looks at. A backend that runs the real image in a local
container (its 22/tcp published on 127.0.0.1) fits the same three methods.
Calls come from the fake's request threads while it holds its lock, so they
should return promptly.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Protocol


class PodBackend(Protocol):
    def start(self, pod_id: str, image: str, env: dict[str, str]) -> tuple[str, int] | None:
        """Run the pod's container; return where its sshd listens (None: no SSH)."""

    def stop(self, pod_id: str) -> None:
        """Stop the container (the pod was stopped); it may be started again."""

    def shell(self, pod_id: str) -> list[str]:
        """The argv of an interactive shell in the running pod (what the gateway runs)."""

    def reset(self, pod_id: str) -> None:
        """The stopped container is thrown away (its volume kept): the next start makes
        a new one from the pod's current image and env."""

    def remove(self, pod_id: str) -> None:
        """The pod was terminated: remove everything of it."""

    def close(self) -> None:
        """The fake is shutting down."""


class BannerBackend:
    """Each running pod gets a listener on 127.0.0.1 that sends an SSH banner.

    ``banner=None`` publishes a port nobody listens on (connection refused),
    ``banner=b""`` a listener that accepts and stays silent.
    """

    def __init__(self, banner: bytes | None = b"SSH-2.0-OpenSSH_9.6p1 fake-runpod\r\n"):
        self.banner = banner
        self._listeners: dict[str, _Listener] = {}

    def start(self, pod_id: str, image: str, env: dict[str, str]) -> tuple[str, int] | None:
        self.stop(pod_id)
        if self.banner is None:
            return "127.0.0.1", _unused_port()
        listener = _Listener(self.banner)
        self._listeners[pod_id] = listener
        return "127.0.0.1", listener.port

    def stop(self, pod_id: str) -> None:
        listener = self._listeners.pop(pod_id, None)
        if listener:
            listener.close()

    def remove(self, pod_id: str) -> None:
        self.stop(pod_id)

    def reset(self, pod_id: str) -> None:
        self.stop(pod_id)

    def shell(self, pod_id: str) -> list[str]:
        # No container: a shell on this machine stands in for the pod's.
        return ["/bin/bash", "--norc", "--noprofile", "-i"]

    def close(self) -> None:
        for pod_id in list(self._listeners):
            self.stop(pod_id)


class _Listener:
    def __init__(self, banner: bytes):
        self._banner = banner
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self._banner:
                try:
                    conn.sendall(self._banner)
                finally:
                    conn.close()
            else:
                self._held.append(conn)  # silent: keep it open, say nothing

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        self._sock.close()
        for conn in self._held:
            conn.close()


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ContainerBackend:
    """Each fake pod is a real local pod (``imagebuild.pods.localrun``) of the pod image:
    its sshd answers on ``ssh.direct``, stop is a real SIGTERM (stop hooks, pod-save),
    terminate removes the container and its /workspace volume.

    ``env`` is added to every pod's variables (e.g. PUBLIC_KEY, pod-save timeouts);
    the pod's own request env comes on top. The local pod of fake pod ID is
    ``name(ID)``. Starting waits until the pod is ready (a second or two), which
    holds the fake's lock for that long: other requests wait, none fails.
    """

    def __init__(self, engine, env: dict[str, str] | None = None):
        self.engine = engine
        self.env = dict(env or {})
        self.started: set[str] = set()

    @staticmethod
    def name(pod_id: str) -> str:
        return f"rp-{pod_id.lower()}"

    def start(self, pod_id: str, image: str, env: dict[str, str]) -> tuple[str, int] | None:
        from imagebuild.pods import localrun

        name = self.name(pod_id)
        self.started.add(pod_id)
        from imagebuild import contract

        # A RunPod pod, not a local one: without the local mark (see pod-idle-watch).
        local = {k: v for k, v in localrun.runpod_env(name).items() if k != contract.LOCAL_POD_VAR}
        pod_env = {**local, **self.env, **env, "RUNPOD_POD_ID": pod_id}
        pod = localrun.start(self.engine, name, image, pod_env)
        return (pod.ssh.host, pod.ssh.port) if pod.ssh else None

    def stop(self, pod_id: str) -> None:
        from imagebuild.pods import localrun

        if localrun.find(self.engine, self.name(pod_id)) is not None:
            localrun.stop(self.engine, self.name(pod_id))

    def shell(self, pod_id: str) -> list[str]:
        import os
        import shutil

        from imagebuild.pods import localrun

        docker = ["env", f"DOCKER_HOST={os.environ['DOCKER_HOST']}"] if os.environ.get("DOCKER_HOST") else []
        return [*docker, shutil.which("docker") or "docker", "exec", "-it",
                localrun.container_name(self.name(pod_id)), "bash", "-l"]

    def reset(self, pod_id: str) -> None:
        from imagebuild.pods import localrun

        localrun.remove(self.engine, self.name(pod_id), volume=False)

    def remove(self, pod_id: str) -> None:
        from imagebuild.pods import localrun

        localrun.remove(self.engine, self.name(pod_id), volume=True)
        self.started.discard(pod_id)

    def close(self) -> None:
        for pod_id in list(self.started):
            self.remove(pod_id)
