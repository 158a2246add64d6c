"""The one pod of the tests: a container of the image with a volume at /workspace.

Used by the image suite (this folder), tests/test_entrypoint.py, tests/test_idle_stop.py
and tests/test_safe_terminate.py. It must stay standalone (stdlib and the docker CLI:
GitHub Actions runs tests/image against pushed images), so it imports nothing of
imagebuild or of tests/.

Where the container comes from is its backend: ``Run`` (``docker create`` here, or
a container something else started: attach by name) or ``Compose`` (a compose
service, as the image suite runs it). Everything else is one API: wait_ready on
the entrypoint's ready marker and sshd's banner, exec/run as root or dev, ssh/sh
over SSH, restart/recreate, logs and diagnostics, scripts on the volume, cleanup.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

SSH_PORT = 22
READY_FILE = "/run/pod-ready"  # imagebuild.contract.READY_MARKER (not importable here)
ENTRYPOINT_LOG = "/workspace/.pod/logs/entrypoint.log"


def docker(*args: str, check: bool = True, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout, **kwargs)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def answers_ssh(host: str, port: int) -> bool:
    """Whether an SSH server greets on host:port (its version banner)."""
    try:
        with socket.create_connection((host, port), timeout=2) as conn:
            conn.settimeout(3)
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


@dataclass
class Run:
    """A container made with ``docker create`` (or attached to by name)."""

    name: str

    def container(self) -> str:
        return self.name

    def create(self, pod: Pod) -> None:
        argv = ["create", "--name", self.name, "-p", f"127.0.0.1::{SSH_PORT}"]
        if pod.mount:
            argv += ["-v", f"{pod.volume}:/workspace:{pod.mount}"]
        for key, value in pod.env.items():
            argv += ["-e", f"{key}={value}"]
        docker(*argv, *pod.extra, pod.image)

    def start(self) -> None:
        docker("start", self.name)

    def restart(self) -> None:
        docker("restart", "-t", "10", self.name)

    def recreate(self, pod: Pod) -> None:
        """A new container on the same volume: what a RunPod stop/start gives."""
        docker("stop", self.name)
        self.remove()
        self.name = unique("ib-pod")
        self.create(pod)
        self.start()

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


@dataclass(frozen=True)
class Compose:
    """A compose service: the project pytest-docker brought up (so no ``create``),
    addressed with the same command, files and project name."""

    command: str  # "docker compose" (v2) or "docker-compose" (v1)
    files: tuple[str, ...]
    project: str
    service: str = "pod"

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        argv = shlex.split(self.command)
        for path in self.files:
            argv += ["-f", path]
        argv += ["-p", self.project, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def check(self, *args: str, timeout: float = 180) -> str:
        done = self.run(*args, timeout=timeout)
        assert done.returncode == 0, f"compose {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
        return done.stdout

    def container(self) -> str:
        return self.check("ps", "-q", self.service).strip()

    def start(self) -> None:
        self.check("up", "-d", self.service)

    def restart(self) -> None:
        self.check("restart", self.service)

    def recreate(self, pod: Pod) -> None:
        self.check("stop", self.service)
        self.remove()
        self.start()

    def remove(self) -> None:
        self.check("rm", "-f", self.service)


class Pod:
    """A container of ``image`` with ``volume`` at /workspace, reached over SSH with
    ``identity`` (the pod gets its public half as PUBLIC_KEY unless ``env`` says)."""

    def __init__(self, image: str, identity: Path, known_hosts: Path, *, env: dict[str, str] | None = None,
                 volume: str | None = None, mount: str = "rw", extra: tuple[str, ...] = (),
                 backend: Run | Compose | None = None, host: str = "127.0.0.1"):
        self.image, self.identity, self.known_hosts = image, identity, known_hosts
        self.mount, self.extra, self.host = mount, extra, host
        self.backend = backend or Run(unique("ib-pod"))
        self.volume = volume or unique("ib-pod-ws")
        public = identity.with_suffix(".pub").read_text().strip()
        self.env = {"PUBLIC_KEY": public, "RUNPOD_POD_ID": "pod-under-test", **(env or {})}
        self.alias = self.volume  # one known_hosts entry per volume: the host keys live there

    # -- the container ----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The container's name or id, asked each time: a recreate changes it."""
        return self.backend.container()

    def create(self, start: bool = True) -> Pod:
        self.backend.create(self)
        if start:
            self.start()
        return self

    def start(self, wait: bool = True) -> float:
        """Seconds until ready (0 without ``wait``)."""
        self.backend.start()
        return self.wait_ready() if wait else 0.0

    def restart(self) -> float:
        self.backend.restart()
        return self.wait_ready()

    def recreate(self, **changes) -> Pod:
        for key, value in changes.items():
            setattr(self, key, value)
        self.backend.recreate(self)
        self.wait_ready()
        return self

    def running(self) -> bool:
        done = docker("inspect", "-f", "{{.State.Running}}", self.name, check=False)
        return done.returncode == 0 and done.stdout.strip() == "true"

    def exists(self) -> bool:
        return docker("inspect", self.name, check=False).returncode == 0

    def volume_exists(self) -> bool:
        return docker("volume", "inspect", self.volume, check=False).returncode == 0

    def remove(self) -> None:
        self.backend.remove()

    def destroy(self) -> None:
        """The container and its volume."""
        self.remove()
        docker("volume", "rm", "-f", self.volume, check=False)

    # -- readiness --------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The published sshd port; asked each time, as a restart may change it."""
        done = docker("port", self.name, f"{SSH_PORT}/tcp", check=False, timeout=60)
        endpoint = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
        if done.returncode != 0 or ":" not in endpoint:
            raise RuntimeError(f"no published port for {SSH_PORT}/tcp: {done.stderr.strip()}")
        return int(endpoint.rsplit(":", 1)[1])

    def ready(self) -> bool:
        """The entrypoint wrote the ready marker and sshd greets on the published port."""
        try:
            marked = self.run(f"test -e {READY_FILE}", timeout=30).returncode == 0
            return marked and answers_ssh(self.host, self.port)
        except (RuntimeError, subprocess.TimeoutExpired):
            return False

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds until ready; fails with the pod's logs when it never gets there."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.ready():
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"the pod did not get ready in {timeout:.0f} s (sshd banner and "
                             f"{READY_FILE}):\n{self.diagnostics()}")

    # -- commands in the container (no SSH) -------------------------------------------

    def run(self, script: str, user: str = "root", timeout: float = 120) -> subprocess.CompletedProcess:
        """``bash -c script`` in the container as ``user``, whatever its exit status."""
        return docker("exec", "-u", user, self.name, "bash", "-c", script, check=False, timeout=timeout)

    def exec(self, script: str, user: str = "root", timeout: float = 120) -> str:
        """``run`` that must succeed; its stdout."""
        done = self.run(script, user, timeout)
        assert done.returncode == 0, f"{script!r} failed: {done.stdout}{done.stderr}"
        return done.stdout

    def on_volume(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """``script`` in a throwaway container on the volume (entrypoint bypassed):
        before the first boot, or while the pod is stopped."""
        return docker("run", "--rm", "--entrypoint", "bash", "-v", f"{self.volume}:/workspace",
                      self.image, "-c", script, check=False, timeout=timeout)

    def prepare_volume(self, script: str) -> None:
        """Run ``script`` on the volume before the pod first boots."""
        done = self.on_volume(script)
        assert done.returncode == 0, f"preparing the volume: {script!r}\n{done.stdout}{done.stderr}"

    # -- SSH, the way users drive pods -------------------------------------------------

    def ssh_argv(self, user: str = "root", command: str | None = None, *, tty: bool = False,
                 identity: Path | None = None, strict: bool = False) -> list[str]:
        """HostKeyAlias pins the host key under one name whatever the port and container:
        a changed host key after a restart makes every later call fail loudly."""
        argv = ["ssh", "-i", str(identity or self.identity), "-p", str(self.port),
                "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", f"HostKeyAlias={self.alias}",
                "-o", "StrictHostKeyChecking=" + ("yes" if strict else "accept-new"),
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]
        argv += ["-tt"] if tty else []
        return argv + [f"{user}@{self.host}"] + ([command] if command else [])

    def ssh(self, user: str = "root", command: str | None = None, stdin: str = "",
            timeout: float = 300, **options) -> subprocess.CompletedProcess:
        """``command`` (or a session fed ``stdin``) over SSH; ``options`` go to ssh_argv."""
        return subprocess.run(self.ssh_argv(user, command, **options), input=stdin, capture_output=True,
                              text=True, timeout=timeout)

    def ssh_ok(self, user: str, command: str, **kwargs) -> str:
        """``ssh`` that must succeed; its stdout."""
        done = self.ssh(user, command, **kwargs)
        assert done.returncode == 0, (
            f"ssh {user} {command!r} (exit {done.returncode}):\n{done.stdout}{done.stderr}"
            f"{self.diagnostics() if done.returncode == 255 else ''}")
        return done.stdout

    def sh(self, script: str, user: str = "root", timeout: float = 300) -> str:
        """``script`` in a login shell over SSH, which must succeed; its stdout."""
        return self.ssh_ok(user, "bash -l -s", stdin=script, timeout=timeout)

    def host_key_fingerprints(self) -> set[str]:
        """SHA256 fingerprints of every host key sshd offers."""
        scan = subprocess.run(["ssh-keyscan", "-p", str(self.port), self.host],
                              capture_output=True, text=True, timeout=30)
        assert scan.stdout.strip(), f"ssh-keyscan got no host keys: {scan.stderr}"
        listed = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=scan.stdout,
                                capture_output=True, text=True, timeout=30, check=True)
        return {line.split()[1] for line in listed.stdout.splitlines()}

    def host_key(self) -> str:
        """The ed25519 host key sshd offers."""
        done = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(self.port), self.host],
                              capture_output=True, text=True, timeout=30)
        return done.stdout.split()[-1]

    # -- what happened ----------------------------------------------------------------

    def logs(self) -> str:
        """The container's output."""
        done = docker("logs", self.name, check=False, timeout=60)
        return done.stdout + done.stderr

    def log(self) -> str:
        """The entrypoint's log on the volume."""
        return self.exec(f"cat {ENTRYPOINT_LOG}")

    def diagnostics(self) -> str:
        """The container's output and the entrypoint's log, for failure messages."""
        log = self.run(f"tail -n 40 {ENTRYPOINT_LOG}", timeout=30)
        return (f"\n--- docker logs {self.name}\n{self.logs()[-4000:]}"
                f"--- {ENTRYPOINT_LOG}\n{log.stdout or log.stderr}")
