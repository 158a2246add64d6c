"""What `imagebuild pod ...` acts on: local pods (``local:NAME``) and `resolve`; the ``Target``
interface is :mod:`imagebuild.pods.protocol`'s.

RunPod pods implement it in :mod:`imagebuild.runpod.target` (imported lazily by
:func:`resolve`: pods never depend on runpod). Both answer the same questions
(status, where SSH answers) and take the same actions (start, stop, terminate),
so save-before-terminate is written once (:mod:`imagebuild.pods.lifecycle`).
``state`` folds each backend's statuses into running / stopped / starting / other.
"""

from __future__ import annotations

import contextlib
from typing import Any

from imagebuild.errors import UserError
from imagebuild.pods.protocol import Report, Target  # noqa: F401 (re-exported)
from imagebuild.pods.ssh import Endpoint, forget_host_key

LOCAL_PREFIX = "local:"

_DOCKER_STATES = {"running": "running", "exited": "stopped", "created": "stopped",
                  "restarting": "starting"}


def resolve(ref: str) -> Target:
    """The pod a POD argument names: ``local:NAME`` or a RunPod pod's id or name."""
    if ref.startswith(LOCAL_PREFIX):
        return LocalTarget.find(ref.removeprefix(LOCAL_PREFIX))
    from imagebuild.runpod.target import RunPodTarget  # pods never import runpod at load

    return RunPodTarget.find(ref)


class LocalTarget:
    """A pod started by `imagebuild run --name NAME` (see :mod:`imagebuild.pods.localrun`)."""

    def __init__(self, engine: Any, pod: Any):
        self.engine = engine
        self.pod = pod  # localrun.LocalPod

    @classmethod
    def find(cls, name: str) -> LocalTarget:
        from imagebuild.engine import connect
        from imagebuild.pods import localrun

        engine = connect()
        pod = localrun.find(engine, name)
        if pod is None:
            raise UserError(f"no local pod {name}; start one with `imagebuild run --name {name}`")
        return cls(engine, pod)

    @property
    def name(self) -> str:
        return self.pod.name

    @property
    def label(self) -> str:
        return f"{LOCAL_PREFIX}{self.name}"

    @property
    def ref(self) -> str:
        return self.label

    @property
    def status(self) -> str:
        return self.pod.status

    @property
    def state(self) -> str:
        return _DOCKER_STATES.get(self.status, "other")

    def endpoint(self) -> Endpoint | None:
        return self.pod.ssh if self.pod.running else None

    def ssh_options(self) -> list[str]:
        from pathlib import Path

        from imagebuild.pods import localrun
        from imagebuild.pods.podenv import PUBLIC_KEY, identities_for

        # The published port changes at every start: key known_hosts by pod instead.
        options = ["-o", f"HostKeyAlias={self.pod.container}"]
        # The keys it was started with: `pod save local:NAME` needs no -i.
        authorized = localrun.pod_env(self.engine, self.name).get(PUBLIC_KEY, "")
        for private in identities_for(authorized, Path("~/.ssh").expanduser()):
            options += ["-i", str(private)]
        return options

    def run(self, script: str, timeout: float):
        """In the pod's container (no SSH key needed); ``timeout`` is SSH's, not needed here."""
        from imagebuild.pods.remote import Output

        container = self.engine.client.containers.get(self.pod.container_id)
        found = container.exec_run(["bash", "-c", script])
        return Output(found.output.decode("utf-8", "replace"), found.exit_code, "", None, True)

    def workspace_kept(self) -> str | None:
        return None

    def refresh(self) -> None:
        from imagebuild.pods import localrun

        pod = localrun.find(self.engine, self.name)
        if pod is None:
            raise UserError(f"local pod {self.name} is gone")
        self.pod = pod

    def start(self, wait: bool, timeout: float, on_event: Report) -> None:
        from imagebuild.pods import localrun

        # The container exists, so its image and variables are its own (env unused).
        on_event("starting the container")
        self.pod = localrun.start(self.engine, self.name, self.pod.image, {}, timeout=timeout)

    def stop(self) -> None:
        from imagebuild.pods import localrun

        if not self.pod.running:
            raise UserError(f"cannot stop pod {self.label}: it is {self.status}")
        self.pod = localrun.stop(self.engine, self.name)

    def terminate(self) -> None:
        from imagebuild.pods import localrun

        # What RunPod's terminate does: the container and its /workspace volume.
        localrun.remove(self.engine, self.name, volume=True)
        forget_host_key(self.pod.container)

    def to_json(self) -> dict[str, Any]:
        from imagebuild.pods import podjson

        return podjson.local(self.pod)

    def status_lines(self) -> list[str]:
        from imagebuild.pods.idlestop import local_line

        ssh = self.pod.ssh
        return [
            f"pod      {self.label}",
            f"status   {self.status}",
            f"image    {self.pod.image}",
            f"disk     container {self.pod.container}, volume {self.pod.volume} at /workspace",
            f"ssh      {ssh.username}@{ssh.host} -p {ssh.port}" if ssh and self.pod.running
            else "ssh      - (not running)",
            f"idle     {local_line(self.engine, self.pod)}",
        ]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.engine.client.close()
