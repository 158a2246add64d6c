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

Before compiling, the diet: files of the chunk's packages a research pod never loads
leave the layer (a later step deleting them would save nothing: the bytes stay in
this layer). Each rule has a name the spec's `[python] keep` lists to turn it off:
  static-archives   *.a files (linked when compiling, never loaded by Python);
  package-tests     a package's own tests/ folders (numpy/_core/tests/) that no other
                    file of the package imports;
  package-docs      doc/ and docs/ folders inside a package with no .py in them (nothing
                    importable: mujoco/doc/ is .rst);
  pyc-duplicates    .opt-1/.opt-2.pyc a wheel shipped (Python loads them only under -O);
  cuda-duplicates   a CUDA wheel's library identical, byte for byte, to the base's copy
                    (/usr/local/cuda): a symlink to it instead.
Usage: compile-chunk.py REQUIREMENTS_FILE [--keep RULE,...]
       (build-env.sh exports IMAGEBUILD_STEP_MARKER)
"""

import concurrent.futures
import contextlib
import filecmp
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


RULES = ("static-archives", "package-tests", "package-docs", "pyc-duplicates", "cuda-duplicates")
# Where a CUDA base image keeps the libraries torch's nvidia-* wheels also carry.
BASE_CUDA_DIRS = ("/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib")
_OPT_PYC = re.compile(r"/__pycache__/[^/]+\.opt-[12]\.pyc$")
_CUDA_LIBRARY = re.compile(r"/nvidia/[^/]+/lib/lib[^/]+\.so[.0-9]*$")


def _folders_named(files, library, names):
    """Folders below a top-level package (``numpy/_core/tests``) named one of ``names``."""
    found = set()
    for path in files:
        parts = os.path.relpath(path, library).split(os.sep)
        for depth in range(1, len(parts) - 1):
            if parts[depth] in names and not parts[0].startswith(".."):
                found.add(os.path.join(library, *parts[:depth + 1]))
                break
    return found


_IMPORTS_TESTS = re.compile(r"^\s*(from\s+[\w.]*\btests\b|import\s+[\w.]*\btests\b|"
                            r"from\s+[\w.]+\s+import\s+[^\n]*\btests\b)", re.MULTILINE)


def _imports_tests(sources):
    """Whether any of these .py files imports a tests module (then the package keeps
    its tests: something outside them may need them)."""
    for path in sources:
        with contextlib.suppress(OSError, UnicodeDecodeError), open(path, encoding="utf-8") as handle:
            if _IMPORTS_TESTS.search(handle.read()):
                return True
    return False


def diet(files, libraries, keep=(), cuda_dirs=BASE_CUDA_DIRS):
    """Remove (or link) what the rules not in ``keep`` name; the paths gone."""
    gone = set()
    if "static-archives" not in keep:
        gone |= {path for path in files if path.endswith(".a")}
    if "pyc-duplicates" not in keep:
        gone |= {path for path in files if _OPT_PYC.search(path)}
    for library in libraries:
        inside = [path for path in files if path.startswith(os.path.join(library, ""))]
        if "package-tests" not in keep:
            folders = _folders_named(inside, library, ("tests",))
            tests = {path for path in inside if any(path.startswith(f + os.sep) for f in folders)}
            for package in {os.path.relpath(f, library).split(os.sep)[0] for f in folders}:
                mine = [path for path in inside if path.startswith(os.path.join(library, package, ""))]
                if not _imports_tests([p for p in mine if p.endswith(".py") and p not in tests]):
                    gone |= tests.intersection(mine)
        if "package-docs" not in keep:
            for folder in _folders_named(inside, library, ("doc", "docs")):
                under = [path for path in inside if path.startswith(folder + os.sep)]
                if not any(path.endswith(".py") for path in under):
                    gone |= set(under)
    for path in sorted(gone):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    for folder in sorted({os.path.dirname(path) for path in gone}, key=len, reverse=True):
        with contextlib.suppress(OSError):  # not empty: something else lives there
            os.removedirs(folder)
    if "cuda-duplicates" not in keep:
        gone |= link_base_cuda(files, cuda_dirs)
    return gone


def link_base_cuda(files, cuda_dirs):
    """A CUDA wheel's library that the base has, byte for byte, becomes a symlink to the
    base's copy (the same file; the loader follows it). Not measured here: no CUDA base."""
    linked = set()
    for path in files:
        if not _CUDA_LIBRARY.search(path) or os.path.islink(path):
            continue
        for folder in cuda_dirs:
            twin = os.path.join(folder, os.path.basename(path))
            if os.path.isfile(twin) and os.path.getsize(twin) == os.path.getsize(path) \
                    and filecmp.cmp(twin, path, shallow=False):
                os.remove(path)
                os.symlink(os.path.realpath(twin), path)
                linked.add(path)
                break
    return linked


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


def main(requirements, keep=()):
    files = sorted(set(installed_files(requirements)))
    # Modules only: a script in bin/ is not imported, so pip does not compile it either.
    libraries = {sysconfig.get_path(kind) for kind in ("purelib", "platlib")}
    removed = diet(files, sorted(libraries), keep)
    compile_all([path for path in files if path.endswith(".py") and path not in removed
                 and path.startswith(tuple(os.path.join(lib, "") for lib in libraries))])
    prefix = os.path.normpath(sys.prefix)
    started = os.stat(os.environ["IMAGEBUILD_STEP_MARKER"]).st_mtime
    # The venv's own entries too: uv locks the venv with a .lock file at every install.
    paths = written_paths(files, prefix) | set(new_trees([prefix, *libraries], started))
    stamp(paths, started, int(os.environ.get("SOURCE_DATE_EPOCH", "0")))


if __name__ == "__main__":
    keep = sys.argv[3].split(",") if sys.argv[2:3] == ["--keep"] and len(sys.argv) > 3 else ()
    main(sys.argv[1], [rule for rule in keep if rule])
