"""One pod-save at a time: a second run waits for the first (within its budget) and
then does its own, complete run, instead of both pushing the same refs at once."""

from __future__ import annotations

import contextlib
import datetime
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
    """Yields True once the lock is ours (and cfg.timestamp made unique: a run that
    waited must not reuse the first one's snapshot ref), False when the budget ran
    out waiting."""
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
        cfg.timestamp = _unique_timestamp(fd)
        yield True
    finally:
        os.close(fd)


def _unique_timestamp(fd: int) -> str:
    """Now, as a UTC timestamp that differs from the last run's (kept in the lock)."""
    os.lseek(fd, 0, os.SEEK_SET)
    last = os.read(fd, 64).decode(errors="replace").strip()
    while True:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        if now != last:
            break
        time.sleep(0.1)
    os.ftruncate(fd, 0)
    os.pwrite(fd, now.encode() + b"\n", 0)
    return now
