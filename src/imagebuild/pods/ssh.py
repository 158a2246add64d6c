"""SSH to a pod: which endpoint to use, the ssh argv, a readiness probe, and
forgetting the host key of a pod that is gone.

A pod has up to two endpoints (``pod["ssh"]``):
- ``direct``: the pod's own sshd on its published 22/tcp port. Full SSH: remote
  commands, scp, port forwarding.
- ``proxy``: RunPod's gateway. It only carries an interactive shell: it needs a
  forced PTY (``-tt``) and ignores a remote command, so commands are fed on stdin
  followed by ``exit``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "direct" or "proxy"
    host: str
    port: int
    username: str

    def __str__(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"

    def to_json(self) -> dict:
        return {"host": self.host, "port": self.port, "user": self.username}

    def command(self, alias: str | None = None, identity: str | None = None) -> list[str]:
        """A direct endpoint's ssh command line to show a user; ``alias`` keys
        known_hosts by pod, not by a port that changes."""
        argv = ["ssh", "-p", str(self.port)]
        if identity:
            argv += ["-i", identity]
        if alias:
            argv += ["-o", f"HostKeyAlias={alias}"]
        return argv + [f"{self.username}@{self.host}"]


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    stdin: str | None  # text to feed ssh (the gateway's way to run commands)
    endpoint: Endpoint


def endpoint(pod: dict, kind: str | None = None) -> Endpoint | None:
    """The direct endpoint when published, else the proxy (or exactly ``kind``)."""
    ssh = pod.get("ssh") or {}
    for name in [kind] if kind else ["direct", "proxy"]:
        entry = ssh.get(name)
        if entry:
            return Endpoint(name, entry["host"], int(entry["port"]), entry["username"])
    return None


def invocation(
    target: Endpoint,
    command: Sequence[str] = (),
    *,
    identity: str | None = None,
    ssh: str = "ssh",
    options: Sequence[str] = (),
) -> Invocation:
    """ssh to any endpoint (a RunPod pod's or a local pod's); ``options`` go before the host."""
    argv = [ssh]
    if identity:
        argv += ["-i", identity]
    # Pods are short-lived and their host keys new: trust on first use, never
    # prompt (a prompt would hang a scripted `pod ssh POD -- cmd`).
    argv += ["-o", "StrictHostKeyChecking=accept-new", "-o", "ServerAliveInterval=30", *options]
    if target.kind == "direct":
        argv += ["-p", str(target.port), "--", f"{target.username}@{target.host}", *command]
        return Invocation(argv, None, target)
    argv += ["-tt", "-p", str(target.port), "--", f"{target.username}@{target.host}"]
    stdin = f"{' '.join(command)}\nexit\n" if command else None
    return Invocation(argv, stdin, target)


def probe(host: str, port: int, timeout: float = 5.0) -> tuple[bool, str]:
    """Whether an SSH server answers at host:port, and what was seen.

    A published port can accept TCP before sshd is up (docker-proxy does), so
    only the server's ``SSH-`` banner counts as ready.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 256:
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
    except ConnectionRefusedError:
        return False, "refused the connection"
    except TimeoutError:
        return False, f"sent no SSH banner within {timeout:g} s"
    except OSError as error:
        return False, f"could not be reached ({error.strerror or error})"
    if data.startswith(b"SSH-"):
        return True, data.split(b"\n", 1)[0].strip().decode("ascii", "replace")
    if not data:
        return False, "closed the connection without an SSH banner"
    return False, f"answered without an SSH banner ({data[:40]!r})"


def forwards(specs: Sequence[str], target: Endpoint) -> list[str]:
    """``-L`` options for ``--forward 8888`` or ``--forward 9000:8888`` (local:pod)."""
    options: list[str] = []
    for spec in specs:
        local, _, remote = spec.partition(":")
        remote = remote or local
        if not (local.isdigit() and remote.isdigit() and 0 < int(local) < 65536
                and 0 < int(remote) < 65536):
            from imagebuild.errors import SpecError

            raise SpecError(f"--forward: expected a port like 8888 or LOCAL:REMOTE, got {spec!r}")
        options += ["-L", f"127.0.0.1:{local}:localhost:{remote}"]
    if options and target.kind != "direct":
        from imagebuild.errors import UserError

        raise UserError("--forward needs the pod's direct SSH port (22/tcp); RunPod's gateway cannot "
                        "forward ports - use the pod's https://<pod>-<port>.proxy.runpod.net URL")
    return options


def forget_host_key(alias: str) -> None:
    """A terminated pod's host key: a later pod under the same alias gets new keys,
    and a stale one would make ssh refuse it as an impostor."""
    keygen = shutil.which("ssh-keygen")
    known = os.path.expanduser("~/.ssh/known_hosts")
    if keygen and os.path.isfile(known):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([keygen, "-R", alias, "-f", known], capture_output=True,
                           timeout=10, check=False)
