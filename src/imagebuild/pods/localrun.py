"""Local pods: a pod image run on the local engine with RunPod's semantics.

A local pod NAME is the container ``imagebuild-NAME`` with the named volume
``imagebuild-NAME-workspace`` at /workspace, both labelled ``imagebuild.pod=NAME``;
sshd (22) and Jupyter (8888) are published on 127.0.0.1 on random ports. Stopping
and starting the container is RunPod's stop/resume; removing it and creating a new
one on the same volume (:func:`recreate`) is what a RunPod pod gets after a stop,
a fresh container disk. Other modules address a local pod as ``local:NAME`` and
use :func:`find`, :func:`ssh_endpoint`, :func:`stop` and :func:`remove`.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagebuild import checks, contract, imageref
from imagebuild.engine import Engine
from imagebuild.errors import UserError
from imagebuild.pods.ssh import Endpoint, forget_host_key

LABEL = "imagebuild.pod"
CONTAINER_PREFIX = "imagebuild-"
VOLUME_SUFFIX = "-workspace"
SSH_PORT = "22/tcp"
JUPYTER_PORT = "8888/tcp"
HOST = "127.0.0.1"
# docker stop waits this long before SIGKILL; the entrypoint's stop hooks and
# pod-save get POD_STOP_BUDGET of it.
STOP_TIMEOUT = 30
STOP_BUDGET = 25
READY_TIMEOUT = 60.0

def container_name(name: str) -> str:
    return f"{CONTAINER_PREFIX}{name}"


def volume_name(name: str) -> str:
    return f"{CONTAINER_PREFIX}{name}{VOLUME_SUFFIX}"


def default_name(image: str) -> str:
    """A pod name from an image reference: ``ghcr.io/you/research-pod:tag`` → research-pod."""
    name = re.sub(r"[^a-z0-9-]+", "-", imageref.parse(image).name.lower()).strip("-")[:42].strip("-")
    return name or "pod"


@dataclass(frozen=True)
class LocalPod:
    name: str
    container: str
    container_id: str
    volume: str
    image: str
    status: str  # docker's: created, running, exited, ...
    ssh: Endpoint | None  # direct, as root (dev works the same way)
    jupyter_port: int | None

    @property
    def running(self) -> bool:
        return self.status == "running"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "container": self.container,
            "volume": self.volume,
            "status": self.status,
            "ssh": self.ssh.to_json() if self.ssh else None,
        }


def _host_port(ports: Mapping[str, Any] | None, key: str) -> int | None:
    for binding in (ports or {}).get(key) or []:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def _pod(container: Any) -> LocalPod:
    attrs = container.attrs
    name = (attrs["Config"].get("Labels") or {}).get(LABEL) or container.name.removeprefix(CONTAINER_PREFIX)
    ports = attrs.get("NetworkSettings", {}).get("Ports")
    ssh_port = _host_port(ports, SSH_PORT)
    return LocalPod(
        name=name,
        container=container.name,
        container_id=container.id,
        volume=volume_name(name),
        image=attrs["Config"].get("Image", ""),
        status=attrs.get("State", {}).get("Status", "unknown"),
        ssh=Endpoint("direct", HOST, ssh_port, "root") if ssh_port else None,
        jupyter_port=_host_port(ports, JUPYTER_PORT),
    )


def _container(engine: Engine, name: str) -> Any | None:
    import docker.errors

    try:
        container = engine.client.containers.get(container_name(name))
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as error:
        raise UserError(f"docker engine error looking up pod {name}: {error.explanation}") from None
    if (container.labels or {}).get(LABEL) != name:
        raise UserError(f"container {container.name} exists but is not the imagebuild pod {name}; "
                        "remove it or pick another --name")
    return container


def wait_canary(engine: Engine, pod: LocalPod, timeout: float | None = None):
    """The GPU canary of a started local pod, once it finished (a CPU pod skips in a second)."""
    from imagebuild.pods import canary

    container = engine.client.containers.get(pod.container_id)
    return canary.wait(lambda: canary.read_container(container), timeout or canary.WAIT_TIMEOUT)


def find(engine: Engine, name: str) -> LocalPod | None:
    """The local pod NAME (running or not), or None."""
    container = _container(engine, name)
    return _pod(container) if container is not None else None


def ssh_endpoint(engine: Engine, name: str) -> Endpoint:
    """Where the running pod NAME answers SSH (as root; dev works the same way)."""
    pod = find(engine, name)
    if pod is None:
        raise UserError(f"no local pod {name}; start one with `imagebuild run --name {name}`")
    if not pod.running or pod.ssh is None:
        raise UserError(f"local pod {name} is {pod.status}; start it with `imagebuild run --name {name}`")
    return pod.ssh


def pod_env(engine: Engine, name: str) -> dict[str, str]:
    """The variables pod NAME was started with, without those its image sets itself."""
    container = _container(engine, name)
    if container is None:
        return {}
    image = engine.image(container.attrs["Config"].get("Image", ""))
    image_env = set((image.attrs.get("Config") or {}).get("Env") or []) if image is not None else set()
    env: dict[str, str] = {}
    for item in container.attrs["Config"].get("Env") or []:
        if item not in image_env:
            key, _, value = item.partition("=")
            env[key] = value
    return env


def runpod_env(name: str) -> dict[str, str]:
    """The variables RunPod gives a pod, with local values."""
    return {
        "RUNPOD_POD_ID": name,
        "RUNPOD_POD_HOSTNAME": name,
        "RUNPOD_PUBLIC_IP": HOST,
        "RUNPOD_GPU_COUNT": "0",
        "RUNPOD_CPU_COUNT": str(os.cpu_count() or 1),
        contract.STOP_BUDGET_ENV: str(STOP_BUDGET),
        contract.LOCAL_POD_VAR: "1",  # not RunPod: ending the container is its stop
    }


def _ensure_volume(engine: Engine, name: str) -> None:
    import docker.errors

    try:
        volume = engine.client.volumes.get(volume_name(name))
    except docker.errors.NotFound:
        engine.client.volumes.create(volume_name(name), labels={LABEL: name})
        # New volume, new host keys (they live on /workspace): an earlier pod of this
        # name left its key in known_hosts, and ssh would call the new one an impostor.
        forget_host_key(container_name(name))
        return
    if (volume.attrs.get("Labels") or {}).get(LABEL) != name:
        raise UserError(f"volume {volume.name} exists but is not the workspace of pod {name}; "
                        "pick another --name")


def _ensure_image(engine: Engine, image: str) -> None:
    import docker.errors

    if engine.exists(image):
        return
    try:
        engine.client.images.pull(image)
    except docker.errors.DockerException:
        raise UserError(f"image {image} is not in the local engine and cannot be pulled; "
                        "build it (imagebuild build) or log in to its registry") from None


def _remove_container(container: Any) -> None:
    """Stop (SIGTERM: the pod's stop hooks run) and remove; the volume stays."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        if container.status == "running":
            container.stop(timeout=STOP_TIMEOUT)
        container.remove(force=True)


def _image_env(engine: Engine, image: str) -> dict[str, str]:
    """The image's reference, digest and the engine's id of it, for the provenance record."""
    from imagebuild.pods.podenv import image_env

    return image_env(image, engine.client.images.get(image).id)


def _create(engine: Engine, name: str, image: str, env: Mapping[str, str]) -> Any:
    import docker.errors

    # The low-level API: the high-level create() cannot set StopTimeout, which
    # lets a plain `docker stop` give the stop hooks their budget too.
    api = engine.client.api
    try:
        host_config = api.create_host_config(
            binds={volume_name(name): {"bind": contract.WORKSPACE, "mode": "rw"}},
            port_bindings={22: (HOST,), 8888: (HOST,)},
        )
        created = api.create_container(
            image,
            name=container_name(name),
            hostname=name,
            labels={LABEL: name, "imagebuild.volume": volume_name(name)},
            environment={**env, **_image_env(engine, image)},
            ports=[22, 8888],
            host_config=host_config,
            stop_signal="SIGTERM",
            stop_timeout=STOP_TIMEOUT,
            detach=True,
        )
        return engine.client.containers.get(created["Id"])
    except docker.errors.APIError as error:
        raise UserError(f"cannot create the container of pod {name}: {error.explanation}") from None


def _entrypoint_status(container: Any) -> str:
    """The one word the entrypoint wrote to its status file's first line ("" before it
    did; the canary's line follows). An image from before the status file says ready by
    its marker alone."""
    script = (f"head -n1 {contract.STATUS_FILE} 2>/dev/null || "
              f"{{ test -e {contract.READY_MARKER} && echo {contract.STATUS_READY}; }}")
    found = container.exec_run(["sh", "-c", script])
    return found.output.decode("utf-8", "replace").strip() if found.exit_code == 0 else ""


def wait_ready(container: Any, timeout: float = READY_TIMEOUT) -> None:
    """Until the entrypoint's status file says ready (sshd accepts connections)."""
    started = time.monotonic()
    while True:
        container.reload()
        if container.status not in ("running", "created", "restarting"):
            code = container.attrs.get("State", {}).get("ExitCode")
            raise UserError(f"pod container {container.name} exited during start (code {code}); "
                            f"see `docker logs {container.name}`")
        if container.status == "running":
            status = _entrypoint_status(container)
            if status == contract.STATUS_READY:
                return
            if status == contract.STATUS_NO_SSH:
                raise UserError(f"pod container {container.name} started without SSH (sshd did not "
                                f"come up); see `docker logs {container.name}`")
        if time.monotonic() - started > timeout:
            raise UserError(f"pod container {container.name} not ready after {timeout:.0f} s; "
                            f"see `docker logs {container.name}`")
        time.sleep(0.1)


def start(engine: Engine, name: str, image: str, env: Mapping[str, str], *,
          recreate: bool = False, timeout: float = READY_TIMEOUT) -> LocalPod:
    """Run pod NAME: create it, start it if stopped, or (``recreate``) replace its
    container with a new one of ``image`` on the same volume. Returns once ready."""
    checks.pod_name(name)  # also the container's hostname
    container = _container(engine, name)
    if container is not None and recreate:
        _remove_container(container)
        container = None
    if container is None:
        _ensure_image(engine, image)
        _ensure_volume(engine, name)
        container = _create(engine, name, image, env)
    if container.status != "running":
        container.start()
    wait_ready(container, timeout)
    container.reload()
    return _pod(container)


def recreate(engine: Engine, name: str, image: str | None = None,
             env: Mapping[str, str] | None = None, timeout: float = READY_TIMEOUT) -> LocalPod:
    """What a RunPod stop/start does: a new container (fresh container disk) on the
    same volume, with the pod's previous image and variables unless given."""
    pod = find(engine, name)
    if pod is None:
        raise UserError(f"no local pod {name} to recreate; start one with `imagebuild run --name {name}`")
    previous = pod_env(engine, name)
    return start(engine, name, image or pod.image, {**previous, **(env or {})},
                 recreate=True, timeout=timeout)


def stop(engine: Engine, name: str) -> LocalPod:
    """SIGTERM the pod (its stop hooks run), keeping container and volume."""
    container = _container(engine, name)
    if container is None:
        raise UserError(f"no local pod {name}")
    if container.status == "running":
        container.stop(timeout=STOP_TIMEOUT)
    container.reload()
    return _pod(container)


def remove(engine: Engine, name: str, volume: bool = False) -> None:
    """Remove pod NAME's container; with ``volume`` its /workspace too (data lost)."""
    import docker.errors

    container = _container(engine, name)
    if container is not None:
        _remove_container(container)
    if volume:
        with contextlib.suppress(docker.errors.NotFound):
            engine.client.volumes.get(volume_name(name)).remove(force=True)
