"""Byte-compile the packages of one chunk, then stamp what the step wrote.

`uv pip install --compile-bytecode` would recompile the whole site-packages and so
copy every earlier chunk's .pyc files into this chunk's layer: only the chunk's
packages are compiled (hash-based .pyc: no timestamps), on every core for large
chunks as uv does (a .pyc's bytes do not depend on which worker wrote it).

Then every file and folder the step wrote gets SOURCE_DATE_EPOCH as its time, as
normalise_layer does, without its walk of the whole venv (~0.3 s a step with
ManiSkill's 60,000 files, and a layer has dozens of chunk steps): what uv writes is
each package's RECORD (its files, scripts and .dist-info), the .pyc written here,
the folders holding them, uv's `.lock` in the venv, and whatever new top-level
folder a wheel made (empty ones are in no RECORD). Only what is newer than the step's start is touched, so the
layer holds exactly what the walk would have stamped; two --no-cache builds giving
equal diff IDs (tests/test_chunks.py, tests/test_build.py) prove nothing is missed.
Usage: compile-chunk.py REQUIREMENTS_FILE  (build-env.sh exports IMAGEBUILD_STEP_MARKER)
"""

import concurrent.futures
import contextlib
import importlib.metadata
import importlib.util
import os
import py_compile
import re
import sys
import sysconfig

_PARALLEL_FROM = 200  # files; below this a worker pool costs more than it saves
_CHECKED_HASH = py_compile.PycInvalidationMode.CHECKED_HASH


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _compile(source):
    # A template or a Python-2 file shipped as .py: pip skips it too.
    with contextlib.suppress(py_compile.PyCompileError, OSError):
        py_compile.compile(source, doraise=True, invalidation_mode=_CHECKED_HASH)


def installed_files(requirements):
    """Every file the chunk's packages installed (RECORD), as absolute paths."""
    with open(requirements, encoding="utf-8") as handle:
        wanted = {_normalise(line.split("==", 1)[0]) for line in handle if "==" in line}
    for dist in importlib.metadata.distributions():
        if _normalise(dist.metadata["Name"]) in wanted:
            for entry in dist.files or ():
                yield os.path.normpath(str(entry.locate()))


def compile_all(sources):
    workers = min(os.cpu_count() or 1, 8)
    if len(sources) < _PARALLEL_FROM or workers == 1:
        for source in sources:
            _compile(source)
        return
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        for _ in pool.map(_compile, sources, chunksize=32):
            pass


def written_paths(files, prefix):
    """The files, their .pyc and every folder holding them inside ``prefix``."""
    paths = set(files)
    for path in files:
        if path.endswith(".py"):
            paths.add(importlib.util.cache_from_source(path))
    for path in list(paths):
        folder = os.path.dirname(path)
        while folder.startswith(prefix + os.sep) and folder not in paths:
            paths.add(folder)
            folder = os.path.dirname(folder)
    paths.add(prefix)
    return paths


def new_trees(roots, started):
    """Everything under the entries of ``roots`` made by this step: a wheel's empty
    folders (``*.libs``) are in no RECORD."""
    for root in roots:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(root):
                if entry.stat(follow_symlinks=False).st_mtime <= started:
                    continue
                yield entry.path
                if entry.is_dir(follow_symlinks=False):
                    for folder, dirs, files in os.walk(entry.path):
                        yield from (os.path.join(folder, name) for name in [*dirs, *files])


def stamp(paths, started, epoch):
    for path in sorted(paths):
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(path).st_mtime > started:
                os.utime(path, (epoch, epoch), follow_symlinks=False)


def main(requirements):
    files = sorted(set(installed_files(requirements)))
    # Modules only: a script in bin/ is not imported, so pip does not compile it either.
    libraries = {sysconfig.get_path(kind) for kind in ("purelib", "platlib")}
    compile_all([path for path in files if path.endswith(".py")
                 and path.startswith(tuple(os.path.join(lib, "") for lib in libraries))])
    prefix = os.path.normpath(sys.prefix)
    started = os.stat(os.environ["IMAGEBUILD_STEP_MARKER"]).st_mtime
    # The venv's own entries too: uv locks the venv with a .lock file at every install.
    paths = written_paths(files, prefix) | set(new_trees([prefix, *libraries], started))
    stamp(paths, started, int(os.environ.get("SOURCE_DATE_EPOCH", "0")))


if __name__ == "__main__":
    main(sys.argv[1])
