"""A containerd of its own for tests and benches: Debian's containerd with an empty root,
state and socket in a temporary folder and no config file, so it shares nothing with the
one dockerd runs. `ctr` talks to it. No pytest here: bench/ uses it too.

containerd 1.5+ pulls zstd layers (Docker Engine 20.10 does not): this is how the zstd
variant of a pushed image is checked here.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import daemons

NAMESPACE = "imagebuild-test"


def available() -> bool:
    return bool(shutil.which("containerd") and shutil.which("ctr"))


@contextmanager
def containerd(parent: Path | None = None) -> Iterator[Path]:
    """Start it; yield its socket; stop it and delete everything it wrote."""
    root = Path(tempfile.mkdtemp(prefix="imagebuild-containerd-", dir=parent))
    sock = root / "containerd.sock"
    log = (root / "containerd.log").open("w")
    daemon = subprocess.Popen(["containerd", "--config", "/dev/null", "--root", str(root / "root"),
                               "--state", str(root / "state"), "--address", str(sock)],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        for _ in range(200):
            if ctr(sock, "version").returncode == 0:
                break
            if daemon.poll() is not None:
                raise RuntimeError(f"containerd exited: {(root / 'containerd.log').read_text()[-2000:]}")
            time.sleep(0.05)
        else:
            raise RuntimeError("containerd did not answer in 10 s")
        yield sock
    finally:
        daemons.stop(daemon, log, root, root / "state")


def ctr(sock: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ctr", "-a", str(sock), "-n", NAMESPACE, *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)


def pull(sock: Path, reference: str, username: str, password: str) -> subprocess.CompletedProcess:
    """`ctr images pull` (and unpack) from a plain-http loopback registry. The test registry's
    throwaway password goes on ctr's command line: ctr reads it nowhere else."""
    return ctr(sock, "images", "pull", "--plain-http", "--user", f"{username}:{password}", reference)
