"""A second Docker engine on this machine, with an empty data root: no image, no build
snapshot and no BuildKit cache mount (so apt, uv and npm download everything again), as
a second machine building the same lock would. For `bench/lock.py --second-engine`.

It runs beside the project's engine: its own socket, exec root, pid file and bridge
(`imagebuild1`, 172.31.250.1/24), so neither sees the other's state. Needs root and
Debian's dockerd (scripts/start-docker.sh installs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import daemons  # noqa: E402  (tests/daemons.py)

BRIDGE = "imagebuild1"
BRIDGE_ADDRESS = "172.31.250.1/24"


def _bridge_up() -> None:
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        return
    for argv in (["ip", "link", "add", "name", BRIDGE, "type", "bridge"],
                 ["ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE],
                 ["ip", "link", "set", BRIDGE, "up"]):
        subprocess.run(argv, check=True)


def _drop_rules() -> None:
    """Remove the firewall rules the second dockerd added for its bridge (it leaves them)."""
    subnet = BRIDGE_ADDRESS.rsplit(".", 1)[0]
    for table in ("filter", "nat"):
        listed = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout
        for rule in listed.splitlines():
            if rule.startswith("-A ") and (BRIDGE in rule or subnet in rule):
                subprocess.run(["iptables", "-t", table, "-D", *rule.split()[1:]], capture_output=True)


def _answers(host: str) -> bool:
    return subprocess.run(["/usr/bin/docker", "-H", host, "version"], capture_output=True).returncode == 0


@contextmanager
def second_engine(images: list[str]) -> Iterator[str]:
    """Start the engine, copy ``images`` (the base) into it, yield its DOCKER_HOST;
    stop it and delete its data root afterwards."""
    root = Path(tempfile.mkdtemp(prefix="imagebuild-engine2-", dir="/var/lib"))
    host = f"unix://{root}/docker.sock"
    _bridge_up()
    log = (root / "dockerd.log").open("w")
    daemon = subprocess.Popen(
        ["dockerd", "--host", host, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "docker.pid"), "--bridge", BRIDGE, "--iptables=true"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(60):
            if _answers(host):
                break
            if daemon.poll() is not None:
                raise RuntimeError(f"the second dockerd exited; see {root / 'dockerd.log'}")
            time.sleep(1)
        else:
            raise RuntimeError(f"the second dockerd did not answer in 60 s; see {root / 'dockerd.log'}")
        if images:  # none: an engine as empty as a new host's (bench/cold_start.py)
            save = subprocess.Popen(["/usr/bin/docker", "save", *images], stdout=subprocess.PIPE)
            subprocess.run(["/usr/bin/docker", "-H", host, "load", "--quiet"], stdin=save.stdout, check=True,
                           capture_output=True)
            if save.wait() != 0:
                raise RuntimeError(f"docker save {' '.join(images)} failed")
        yield host
    finally:
        daemons.stop(daemon, log, root, root / "exec")
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
        _drop_rules()


@contextmanager
def docker_host(host: str) -> Iterator[None]:
    """Point the SDK and the docker CLI (both read DOCKER_HOST) at ``host`` for a while."""
    before = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = before
