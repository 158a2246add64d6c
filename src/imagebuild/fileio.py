"""Writes that never leave a half-written file: a temp file beside the target, then
rename. On any failure (a full disk, Ctrl-C) the temp file is removed and the old
file, if any, is untouched."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


def write_atomic(path: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def all_or_none(paths: list[Path]) -> Iterator[list[Path]]:
    """Files written into ``paths`` inside the block are removed again if it fails:
    a batch (a sweep's tasks) is written whole or not at all."""
    try:
        yield paths
    except BaseException:
        _remove(paths)
        raise


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()
