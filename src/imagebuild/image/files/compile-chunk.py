"""Byte-compile only the packages of one chunk (hash-based .pyc: no timestamps).

`uv pip install --compile-bytecode` would recompile the whole site-packages and so
copy every earlier chunk's .pyc files into this chunk's layer.
Usage: compile-chunk.py REQUIREMENTS_FILE
"""

import contextlib
import importlib.metadata
import py_compile
import re
import sys


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def main(requirements):
    with open(requirements, encoding="utf-8") as handle:
        wanted = {_normalise(line.split("==", 1)[0]) for line in handle if "==" in line}
    mode = py_compile.PycInvalidationMode.CHECKED_HASH
    for dist in importlib.metadata.distributions():
        if _normalise(dist.metadata["Name"]) not in wanted:
            continue
        for entry in dist.files or ():
            if entry.suffix == ".py" and not str(entry).startswith(".."):
                source = str(entry.locate())
                # A template or a Python-2 file shipped as .py: pip skips it too.
                with contextlib.suppress(py_compile.PyCompileError, OSError):
                    py_compile.compile(source, doraise=True, invalidation_mode=mode)


if __name__ == "__main__":
    main(sys.argv[1])
