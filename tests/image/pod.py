"""The pod under test: its compose project, SSH as a user would, and readiness.

pytest-docker starts and removes the compose project; this class runs the other
compose commands (port, exec, restart, ...) with the same command, files and
project name, and talks to the pod over SSH with the session's throwaway key.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVICE = "pod"
SSH_PORT = 22
READY_FILE = "/run/pod-ready"
ENTRYPOINT_LOG = "/workspace/.pod/logs/entrypoint.log"


@dataclass(frozen=True)
class Compose:
    command: str  # "docker compose" (v2) or "docker-compose" (v1)
    files: tuple[str, ...]
    project: str

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


def answers_ssh(host: str, port: int) -> bool:
    """Whether an SSH server greets on host:port (its version banner)."""
    try:
        with socket.create_connection((host, port), timeout=2) as conn:
            conn.settimeout(3)
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


class Pod:
    def __init__(self, compose: Compose, services, host: str, key: Path, known_hosts: Path):
        self.compose = compose
        self.services = services  # pytest-docker's Services (wait_until_responsive)
        self.host = host
        self.key = key
        self.known_hosts = known_hosts

    def port(self) -> int:
        """The published sshd port; asked each time, as a restart may change it."""
        done = self.compose.run("port", SERVICE, str(SSH_PORT), timeout=60)
        endpoint = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        if done.returncode != 0 or ":" not in endpoint:
            raise RuntimeError(f"no published port for {SERVICE}:{SSH_PORT}: {done.stderr.strip()}")
        return int(endpoint.rsplit(":", 1)[1])

    def container_id(self) -> str:
        return self.compose.check("ps", "-q", SERVICE).strip()

    def exec(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A command in the container as root, bypassing SSH (for diagnostics and probes)."""
        return self.compose.run("exec", "-T", SERVICE, *argv, timeout=timeout)

    def ready(self) -> bool:
        try:
            port = self.port()
        except (RuntimeError, subprocess.TimeoutExpired):
            return False
        return answers_ssh(self.host, port) and self.exec("test", "-e", READY_FILE).returncode == 0

    def wait_ready(self, timeout: float = 120) -> None:
        """Until sshd greets and the entrypoint wrote /run/pod-ready."""
        try:
            self.services.wait_until_responsive(check=self.ready, timeout=timeout, pause=0.5)
        except Exception:
            pytest.fail(f"the pod did not get ready in {timeout:.0f}s (sshd banner and "
                        f"{READY_FILE}):\n{self.diagnostics()}")

    def ssh(self, script: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``script`` in a login shell over SSH as root, the way users drive pods.

        HostKeyAlias pins the host key under one name whatever the port: a changed
        host key after a restart makes every later call fail loudly.
        """
        argv = ["ssh", "-i", str(self.key), "-p", str(self.port()),
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=accept-new",
                "-o", "HostKeyAlias=imagebuild-test-pod", "-o", "LogLevel=ERROR",
                f"root@{self.host}", "bash -l -s"]
        return subprocess.run(argv, input=script, capture_output=True, text=True, timeout=timeout)

    def sh(self, script: str, timeout: float = 300) -> str:
        """``ssh`` that must succeed; its stdout."""
        done = self.ssh(script, timeout=timeout)
        assert done.returncode == 0, (
            f"over SSH (exit {done.returncode}):\n{script.strip()}\n--- stdout\n{done.stdout}"
            f"--- stderr\n{done.stderr}{self.diagnostics() if done.returncode == 255 else ''}")
        return done.stdout

    def host_key_fingerprints(self) -> set[str]:
        """SHA256 fingerprints of every host key sshd offers."""
        scan = subprocess.run(["ssh-keyscan", "-p", str(self.port()), self.host],
                              capture_output=True, text=True, timeout=30)
        assert scan.stdout.strip(), f"ssh-keyscan got no host keys: {scan.stderr}"
        listed = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=scan.stdout,
                                capture_output=True, text=True, timeout=30, check=True)
        return {line.split()[1] for line in listed.stdout.splitlines()}

    def diagnostics(self) -> str:
        """The container's output and the entrypoint's log, for failure messages."""
        logs = self.compose.run("logs", "--no-color", "--tail", "40", SERVICE, timeout=60)
        log = self.exec("tail", "-n", "40", ENTRYPOINT_LOG, timeout=30)
        return (f"\n--- compose logs {SERVICE}\n{logs.stdout}{logs.stderr}"
                f"--- {ENTRYPOINT_LOG}\n{log.stdout or log.stderr}")
