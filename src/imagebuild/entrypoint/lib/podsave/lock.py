"""One pod-save at a time: a second run waits for the first (within its budget) and
then does its own, complete run, instead of both pushing the same refs at once."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time

from .config import Config

DEFAULT_WAIT = 900.0  # seconds without --budget


def _lock_path(cfg: Config) -> str:
    pod_dir = os.path.join(cfg.workspace, ".pod")
    if os.access(pod_dir, os.W_OK):
        return os.path.join(pod_dir, "save.lock")
    key = hashlib.sha256(cfg.workspace.encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"pod-save-{key}.lock")


@contextlib.contextmanager
def held(cfg: Config):
    """Yields True once the lock is ours, False when the budget ran out waiting."""
    path = _lock_path(cfg)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        limit = time.monotonic() + (cfg.time_left(DEFAULT_WAIT) if cfg.deadline
                                    else DEFAULT_WAIT)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= limit:
                    yield False
                    return
                time.sleep(0.2)
        yield True
    finally:
        os.close(fd)
