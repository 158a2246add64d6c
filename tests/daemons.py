"""Stopping a daemon a test or bench started with a scratch root of its own (a second
dockerd, a containerd): no pytest here, bench/ uses it too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import IO


def stop(daemon: subprocess.Popen, log: IO, root: Path, mounted: Path) -> None:
    """Terminate it (killed after 60 s), unmount what it left under ``mounted``, and delete
    ``root``."""
    daemon.terminate()
    try:
        daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
    log.close()
    subprocess.run(["umount", "-R", str(mounted)], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)
