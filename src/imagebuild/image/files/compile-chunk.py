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
                    (/usr/local/cuda): a symlink to it instead;
  file-duplicates   byte-identical regular files of the chunk (64 KiB or more, same mode:
                    triton's three libcupti copies) become hardlinks of one (a layer tar
                    stores a hardlink's body once);
  triton-amd        triton's AMD backend (triton/backends/amd, its entry point too): the
                    pod's GPU is NVIDIA (render adds the rule to keep for a ROCm torch);
  unused-cuda-libs  CUDA front-end libraries (cuSOLVERMg, NVBLAS, cuFFTW) whose name no
                    other file of the venv holds (no DT_NEEDED, no dlopen string); a
                    later chunk naming one fails its step, saying to keep the rule.
Usage: compile-chunk.py REQUIREMENTS_FILE [--keep RULE,...]
       (build-env.sh exports IMAGEBUILD_STEP_MARKER)
"""

import base64
import concurrent.futures
import contextlib
import filecmp
import hashlib
import importlib.metadata
import importlib.util
import mmap
import os
import py_compile
import re
import stat
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


RULES = ("static-archives", "package-tests", "package-docs", "pyc-duplicates", "cuda-duplicates",
         "file-duplicates", "triton-amd", "unused-cuda-libs")
# Where a CUDA base image keeps the libraries torch's nvidia-* wheels also carry.
BASE_CUDA_DIRS = ("/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib")
_OPT_PYC = re.compile(r"/__pycache__/[^/]+\.opt-[12]\.pyc$")
_CUDA_LIBRARY = re.compile(r"/nvidia/[^/]+/lib/lib[^/]+\.so[.0-9]*$")
_LINK_FROM = 64 * 1024  # smaller duplicates save little and cost a hash each
_TRITON_AMD = re.compile(r"/triton/backends/amd/")
# Front ends an application links itself (multi-GPU cuSOLVER, BLAS drop-in, FFTW API):
# torch loads none of them. Searched for by their bare name ("cusolverMg"), as a loader
# asks for them (cuda.pathfinder.load_nvidia_dynamic_lib("cusolverMg")).
_FRONT_END = re.compile(r"/nvidia/[^/]+/lib/lib(cusolverMg|nvblas|cufftw)\.so[.0-9]*$")
# Files that name every CUDA library without loading any: headers, CMake find modules
# (torch's FindCUDAToolkit.cmake), cuda-pathfinder's catalog of what it can load
# (measured on ManiSkill's venv: the only files naming the three front ends).
_NAMES_ALL = re.compile(r"\.(h|hpp|cuh|cmake)$|/cuda/pathfinder/_dynamic_libs/(__pycache__/)?"
                        r"descriptor_catalog[.a-z0-9-]*py[c]?$")


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


def diet(files, libraries, keep=(), cuda_dirs=BASE_CUDA_DIRS, venv=None):
    """Remove (or link) what the rules not in ``keep`` name; the paths gone (removed or
    symlinked; hardlinked files stay files). ``venv``: where to look for a file naming a
    CUDA front end (the running Python's)."""
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
    _remove(gone)
    if "triton-amd" not in keep:
        gone |= drop_triton_amd(files)
    if "unused-cuda-libs" not in keep:
        check_removed_cuda_unnamed([path for path in files if path not in gone], libraries)
        gone |= drop_unused_cuda(files, [venv or os.path.normpath(sys.prefix)])
    if "cuda-duplicates" not in keep:
        gone |= link_base_cuda(files, cuda_dirs)
    if "file-duplicates" not in keep:
        link_duplicates([path for path in files if path not in gone])
    return gone


def _remove(paths):
    for path in sorted(paths):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    for folder in sorted({os.path.dirname(path) for path in paths}, key=len, reverse=True):
        with contextlib.suppress(OSError):  # not empty: something else lives there
            os.removedirs(folder)


def _digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def link_duplicates(files):
    """Byte-identical regular files (same size, mode and SHA-256) become hardlinks of the
    first by name: one inode, so one body in the layer tar. The paths relinked."""
    by_shape = {}
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and info.st_size >= _LINK_FROM:
                by_shape.setdefault((info.st_size, info.st_mode), []).append(path)
    linked = set()
    for group in (paths for paths in by_shape.values() if len(paths) > 1):
        by_digest = {}
        for path in sorted(group):
            by_digest.setdefault(_digest(path), []).append(path)
        for first, *rest in by_digest.values():
            for path in rest:
                if os.stat(path).st_ino != os.stat(first).st_ino:
                    os.link(first, path + ".imagebuild-link")
                    os.replace(path + ".imagebuild-link", path)
                    linked.add(path)
    if linked:
        _say(f"linked {len(linked)} duplicate files ({sum(map(os.path.getsize, linked)) / 1e6:.1f} MB): "
             f"{', '.join(sorted(map(os.path.basename, linked)))}")
    return linked


def _say(line):
    print(f"compile-chunk diet: {line}", file=sys.stderr, flush=True)


def drop_triton_amd(files):
    """triton/backends/amd's files, and its line in triton's entry points (triton imports
    every backend listed there), RECORD updated to match. The paths removed."""
    amd = {path for path in files if _TRITON_AMD.search(path)}
    if not amd:
        return amd
    for path in files:
        if path.endswith(".dist-info/entry_points.txt"):
            with open(path, encoding="utf-8") as handle:
                lines = handle.readlines()
            kept = [line for line in lines if not re.match(r"\s*amd\s*=\s*triton\.backends\.amd\s*$", line)]
            if kept != lines:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.writelines(kept)
                _rerecord(os.path.dirname(path), path)
    _remove(amd)
    _say(f"removed triton's AMD backend ({len(amd)} files)")
    return amd


def _rerecord(dist_info, changed):
    """RECORD's hash and size of ``changed``, as the file now is."""
    record = os.path.join(dist_info, "RECORD")
    name = os.path.relpath(changed, os.path.dirname(dist_info))
    with open(changed, "rb") as handle:
        data = handle.read()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    with open(record, encoding="utf-8") as handle:
        lines = handle.read().splitlines(keepends=True)
    with open(record, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(f"{name},sha256={digest},{len(data)}\n" if line.split(",", 1)[0] == name else line)


def _names_any(path, needles):
    """The needles (bytes) found in the file at ``path``."""
    with contextlib.suppress(OSError, ValueError), open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return {needle for needle in needles if data.find(needle) >= 0}
    return set()


def _may_load(path):
    """Whether the file at ``path`` naming a library means something may load it: not
    package metadata (RECORD lists every file), not a file that names every CUDA library
    (_NAMES_ALL), not a link (its target is looked at itself)."""
    return (".dist-info" + os.sep not in path and not _NAMES_ALL.search(path)
            and not os.path.islink(path) and os.path.isfile(path))


def _venv_files(roots, skip):
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not d.endswith(".dist-info")]  # not walked at all
            for name in names:
                path = os.path.join(folder, name)
                if path not in skip and _may_load(path):
                    yield path


def _stem(path):
    """``libcusolverMg.so.12`` → b"cusolverMg"."""
    return os.path.basename(path).split(".so", 1)[0].removeprefix("lib").encode()


def drop_unused_cuda(files, roots):
    """The chunk's front-end CUDA libraries whose name (``libcusolverMg``) no other file
    under ``roots`` holds. The paths removed."""
    candidates = {path for path in files if _FRONT_END.search(path) and not os.path.islink(path)
                  and os.path.isfile(path)}
    if not candidates:
        return set()
    wanted = {_stem(path) for path in candidates}
    named = set()
    for path in _venv_files(roots, candidates):
        named |= _names_any(path, wanted - named)
        if named == wanted:
            break
    unused = {path for path in candidates if _stem(path) not in named}
    if unused:
        _say(f"removed CUDA libraries nothing names ({sum(map(os.path.getsize, unused)) / 1e6:.1f} MB): "
             f"{', '.join(sorted(map(os.path.basename, unused)))}")
    _remove(unused)
    return unused


def check_removed_cuda_unnamed(files, path=None):
    """A step after the diet removed a front-end library: none of this chunk's files may
    name it (a later package needing it would fail at run time, not here)."""
    missing = {}
    for dist in importlib.metadata.distributions(path=path or sys.path):
        for entry in dist.files or ():
            if _FRONT_END.search("/" + str(entry)) and not os.path.lexists(entry.locate()):
                missing[_stem(str(entry))] = dist.metadata["Name"]
    if not missing:
        return
    for file in filter(_may_load, files):
        for stem in _names_any(file, set(missing)):
            raise SystemExit(f"compile-chunk diet: {file} names {stem.decode()}, which the diet removed "
                             f"from {missing[stem]}: add \"unused-cuda-libs\" to [python] keep in the "
                             "spec and build again")


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
