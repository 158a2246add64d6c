"""Byte-compile only the packages of one chunk (hash-based .pyc: no timestamps).

`uv pip install --compile-bytecode` would recompile the whole site-packages and so
copy every earlier chunk's .pyc files into this chunk's layer. Large chunks compile
on every core, as uv does: a .pyc's bytes do not depend on which worker wrote it.
Usage: compile-chunk.py REQUIREMENTS_FILE
"""

import concurrent.futures
import contextlib
import importlib.metadata
import os
import py_compile
import re
import sys

_PARALLEL_FROM = 200  # files; below this a worker pool costs more than it saves


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


_CHECKED_HASH = py_compile.PycInvalidationMode.CHECKED_HASH


def _compile(source):
    # A template or a Python-2 file shipped as .py: pip skips it too.
    with contextlib.suppress(py_compile.PyCompileError, OSError):
        py_compile.compile(source, doraise=True, invalidation_mode=_CHECKED_HASH)


def sources(requirements):
    with open(requirements, encoding="utf-8") as handle:
        wanted = {_normalise(line.split("==", 1)[0]) for line in handle if "==" in line}
    for dist in importlib.metadata.distributions():
        if _normalise(dist.metadata["Name"]) in wanted:
            for entry in dist.files or ():
                if entry.suffix == ".py" and not str(entry).startswith(".."):
                    yield str(entry.locate())


def main(requirements):
    files = sorted(sources(requirements))
    workers = min(os.cpu_count() or 1, 8)
    if len(files) < _PARALLEL_FROM or workers == 1:
        for source in files:
            _compile(source)
        return
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        for _ in pool.map(_compile, files, chunksize=32):
            pass


if __name__ == "__main__":
    main(sys.argv[1])
