"""The byte diet (image/files/compile-chunk.py) on a real folder tree, and the size
report by kind (`imagebuild layers --by kind`) on the built test pod.

The diet's functions run here as the chunk step runs them in the image; what the
image then still imports and simulates is the image suite's (tests/image) and
test_build.py's MuJoCo test, on the image built with the diet.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_in_image

from imagebuild.errors import SpecError
from imagebuild.image.kinds import KINDS, kind_of, tally
from imagebuild.image.spec import DIET_RULES, parse_spec

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "src" / "imagebuild" / "image" / "files" / "compile-chunk.py"


@pytest.fixture(scope="module")
def chunk():
    return runpy.run_path(str(SCRIPT), run_name="compile_chunk")


def tree(root: Path, files: dict[str, str | bytes]) -> list[str]:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return sorted(str(root / name) for name in files)


def present(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


PACKAGE = {
    "site/pkg/__init__.py": "from .core import run\n",
    "site/pkg/core.py": "def run(): return 1\n",
    "site/pkg/libpkg.a": b"!<arch>\n",
    "site/pkg/libpkg.so": b"\x7fELF",
    "site/pkg/sub/tests/__init__.py": "",
    "site/pkg/sub/tests/test_core.py": "import pkg\n",
    "site/pkg/doc/index.rst": "docs\n",
    "site/pkg/__pycache__/core.cpython-311.opt-1.pyc": b"o1",
    "site/pkg/__pycache__/core.cpython-311.pyc": b"plain",
    "site/tests/__init__.py": "",  # a top-level `tests` package: a module users may import
}


def test_the_script_and_the_spec_name_the_same_rules(chunk):
    assert chunk["RULES"] == DIET_RULES


def test_diet_removes_archives_tests_docs_and_opt_pyc(chunk, tmp_path):
    files = tree(tmp_path, PACKAGE)
    gone = chunk["diet"](files, [str(tmp_path / "site")], cuda_dirs=())
    assert present(tmp_path) == {"site/pkg/__init__.py", "site/pkg/core.py", "site/pkg/libpkg.so",
                                 "site/pkg/__pycache__/core.cpython-311.pyc", "site/tests/__init__.py"}
    assert not (tmp_path / "site/pkg/sub").exists(), "an emptied folder stays behind"
    assert str(tmp_path / "site/pkg/sub/tests/test_core.py") in gone


def test_keep_turns_each_rule_off(chunk, tmp_path):
    files = tree(tmp_path, PACKAGE)
    chunk["diet"](files, [str(tmp_path / "site")], keep=list(DIET_RULES), cuda_dirs=())
    assert present(tmp_path) == set(PACKAGE)


def test_tests_a_package_imports_and_docs_with_code_stay(chunk, tmp_path):
    files = tree(tmp_path, {
        "site/pkg/__init__.py": "",
        "site/pkg/testing.py": "from pkg.sub.tests.helpers import fixture\n",
        "site/pkg/sub/tests/helpers.py": "fixture = 1\n",
        "site/pkg/docs/__init__.py": "",  # importable: pkg.docs
        "site/pkg/docs/guide.md": "guide\n",
        "site/other/tests/test_x.py": "",
    })
    chunk["diet"](files, [str(tmp_path / "site")], cuda_dirs=())
    assert present(tmp_path) == {"site/pkg/__init__.py", "site/pkg/testing.py",
                                 "site/pkg/sub/tests/helpers.py", "site/pkg/docs/__init__.py",
                                 "site/pkg/docs/guide.md"}


def test_a_cuda_library_the_base_has_identically_becomes_a_link(chunk, tmp_path):
    base = tmp_path / "usr/local/cuda/lib64"
    tree(base, {"libcublas.so.12": b"same bytes", "libcufft.so.11": b"base build"})
    files = tree(tmp_path, {"site/nvidia/cublas/lib/libcublas.so.12": b"same bytes",
                            "site/nvidia/cufft/lib/libcufft.so.11": b"wheel build"})
    linked = chunk["diet"](files, [str(tmp_path / "site")], cuda_dirs=[str(base)])
    wheel = tmp_path / "site/nvidia/cublas/lib/libcublas.so.12"
    assert linked == {str(wheel)}
    assert wheel.is_symlink() and wheel.read_bytes() == b"same bytes"
    assert not (tmp_path / "site/nvidia/cufft/lib/libcufft.so.11").is_symlink(), "other bytes: kept"


BIG = 64 * 1024


def test_identical_files_become_hardlinks_of_one(chunk, tmp_path):
    """triton's libcupti.so, .so.12 and .so.2025.1.1 are three byte-identical copies."""
    body, other = b"\x7fELF" + b"c" * BIG, b"\x7fELF" + b"d" * BIG
    files = tree(tmp_path, {"lib/libcupti.so": body, "lib/libcupti.so.12": body,
                            "lib/libcupti.so.2025": body, "lib/libother.so": other,
                            "lib/script.sh": body, "lib/a.txt": b"small", "lib/b.txt": b"small"})
    (tmp_path / "lib/script.sh").chmod(0o755)  # same bytes, other mode: its own inode
    chunk["diet"](files, [str(tmp_path / "site")], cuda_dirs=())
    inode = {name: (tmp_path / "lib" / name).stat().st_ino for name in
             ("libcupti.so", "libcupti.so.12", "libcupti.so.2025", "libother.so", "script.sh",
              "a.txt", "b.txt")}
    assert inode["libcupti.so"] == inode["libcupti.so.12"] == inode["libcupti.so.2025"]
    assert len({inode[n] for n in ("libcupti.so", "libother.so", "script.sh", "a.txt", "b.txt")}) == 5
    assert (tmp_path / "lib/libcupti.so.12").read_bytes() == body
    assert (tmp_path / "lib/script.sh").stat().st_mode & 0o777 == 0o755
    assert not list(tmp_path.rglob("*.imagebuild-link"))


def test_a_layer_tar_holds_a_hardlinked_body_once(tmp_path):
    """What BuildKit's layer tar does with the diet's links (tarfile writes the same
    hardlink entries; the built image's figure is in bench/README.md)."""
    import tarfile

    first = tmp_path / "libcupti.so"
    first.write_bytes(b"x" * BIG)
    (tmp_path / "libcupti.so.12").hardlink_to(first)
    with tarfile.open(tmp_path / "layer.tar", "w") as layer:
        layer.add(first, "libcupti.so")
        layer.add(tmp_path / "libcupti.so.12", "libcupti.so.12")
    with tarfile.open(tmp_path / "layer.tar") as layer:
        assert [m.size for m in layer if m.isfile()] == [BIG]
        assert layer.getmember("libcupti.so.12").islnk()


TRITON = {
    "site/triton/__init__.py": "",
    "site/triton/backends/__init__.py": "",
    "site/triton/backends/nvidia/compiler.py": "",
    "site/triton/backends/amd/compiler.py": "",
    "site/triton/backends/amd/lib/libtriton_amd_codegen.so": b"\x7fELF amd",
    "site/triton-3.5.0.dist-info/entry_points.txt":
        "[console_scripts]\nproton = triton.profiler.proton:main\n\n"
        "[triton.backends]\namd = triton.backends.amd\nnvidia = triton.backends.nvidia\n",
    "site/triton-3.5.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: triton\nVersion: 3.5.0\n",
}


def test_tritons_amd_backend_goes_with_its_entry_point(chunk, tmp_path):
    """triton imports every backend its entry points list: the amd line must go too."""
    import base64
    import hashlib
    import importlib.metadata

    record = "".join(f"{name.removeprefix('site/')},sha256=x,1\n" for name in TRITON)
    files = tree(tmp_path, {**TRITON, "site/triton-3.5.0.dist-info/RECORD": record})
    chunk["diet"](files, [str(tmp_path / "site")], cuda_dirs=())
    assert not (tmp_path / "site/triton/backends/amd").exists()
    assert (tmp_path / "site/triton/backends/nvidia/compiler.py").exists()
    dist = next(importlib.metadata.distributions(path=[str(tmp_path / "site")]))
    assert {ep.name for ep in dist.entry_points} == {"proton", "nvidia"}
    entry_points = (tmp_path / "site/triton-3.5.0.dist-info/entry_points.txt").read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(entry_points).digest()).rstrip(b"=").decode()
    assert f"triton-3.5.0.dist-info/entry_points.txt,sha256={digest},{len(entry_points)}\n" \
        in (tmp_path / "site/triton-3.5.0.dist-info/RECORD").read_text()


def test_keep_leaves_tritons_amd_backend_and_duplicate_files(chunk, tmp_path):
    files = tree(tmp_path, {**TRITON, "site/a.so": b"x" * BIG, "site/b.so": b"x" * BIG})
    chunk["diet"](files, [str(tmp_path / "site")], keep=["triton-amd", "file-duplicates"], cuda_dirs=())
    assert present(tmp_path) == {*TRITON, "site/a.so", "site/b.so"}
    assert (tmp_path / "site/a.so").stat().st_ino != (tmp_path / "site/b.so").stat().st_ino
    assert "amd = " in (tmp_path / "site/triton-3.5.0.dist-info/entry_points.txt").read_text()


def test_spec_keeps_tritons_amd_backend_for_a_rocm_torch():
    plain = parse_spec({"python": {"keep": ["package-tests"]}}, "t")
    rocm = parse_spec({"python": {"keep": ["package-tests"]},
                       "simulators": {"torch_backend": "rocm6.4"}}, "t")
    assert plain.diet_keep == ["package-tests"]
    assert rocm.diet_keep == ["package-tests", "triton-amd"]


CUDA = {
    "site/nvidia/cu13/lib/libcusolver.so.12": b"\x7fELF solver",
    "site/nvidia/cu13/lib/libcusolverMg.so.12": b"\x7fELF needs libcusolver.so.12",
    "site/nvidia/cu13/lib/libnvblas.so.13": b"\x7fELF nvblas",
    "site/nvidia/cu13/lib/libcufftw.so.12": b"\x7fELF fftw",
    "site/nvidia/cu13/include/cusolverMg.h": "/* cusolverMg */",
}


def test_a_cuda_front_end_nothing_names_goes(chunk, tmp_path):
    """cuSOLVERMg goes: only its header, torch's CMake module and cuda-pathfinder's
    catalog name it; NVBLAS stays (a library holds its name, as a dlopen would);
    cuFFTW stays (a .py asks for it by its bare name)."""
    tree(tmp_path, {"venv/bin/python": b"", "venv/" + "site/torch/lib/libtorch_cuda.so": b"libcusolver.so.12",
                    "venv/site/torch/share/cmake/FindCUDAToolkit.cmake": "cusolverMg nvblas cufftw",
                    "venv/site/cuda/pathfinder/_dynamic_libs/descriptor_catalog.py": "'cusolverMg'",
                    "venv/site/app/blas.so": b"dlopen libnvblas.so.13",
                    "venv/site/app/fft.py": "load_nvidia_dynamic_lib('cufftw')"})
    files = tree(tmp_path / "venv", CUDA)
    gone = chunk["diet"](files, [str(tmp_path / "venv/site")], cuda_dirs=(), venv=str(tmp_path / "venv"))
    lib = tmp_path / "venv/site/nvidia/cu13/lib"
    assert gone == {str(lib / "libcusolverMg.so.12")}
    assert sorted(p.name for p in lib.iterdir()) == ["libcufftw.so.12", "libcusolver.so.12", "libnvblas.so.13"]
    kept = tree(tmp_path / "kept", CUDA)
    assert not chunk["diet"](kept, [str(tmp_path / "kept/site")], keep=["unused-cuda-libs"], cuda_dirs=(),
                             venv=str(tmp_path / "kept"))


def test_a_later_package_naming_a_removed_front_end_fails_its_step(chunk, tmp_path):
    site = tmp_path / "site"
    tree(site, {"nvidia_cusolver-12.0.dist-info/METADATA": "Name: nvidia-cusolver\nVersion: 12.0\n",
                "nvidia_cusolver-12.0.dist-info/RECORD": "nvidia/cu13/lib/libcusolverMg.so.12,,\n"})
    later = tree(site, {"multigpu/solve.so": b"dlopen libcusolverMg.so.12", "multigpu/x.h": "cusolverMg"})
    with pytest.raises(SystemExit, match=r"solve\.so names cusolverMg.*nvidia-cusolver.*"
                                         r"\"unused-cuda-libs\" to \[python\] keep"):
        chunk["diet"](later, [str(site)], cuda_dirs=(), venv=str(tmp_path))
    chunk["diet"](later[1:], [str(site)], cuda_dirs=(), venv=str(tmp_path))  # a header: fine


def test_keep_names_only_known_rules():
    assert parse_spec({"python": {"keep": ["package-tests"]}}, "t").python.keep == ["package-tests"]
    with pytest.raises(SpecError, match=r"python\.keep.*static-archives"):
        parse_spec({"python": {"keep": ["tests"]}}, "imagebuild.toml")


@pytest.mark.parametrize(("path", "kind"), [
    ("opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn.so.9", "CUDA libraries"),
    ("usr/local/cuda-12.8/lib64/libcublas.so.12", "CUDA libraries"),
    ("usr/lib/x86_64-linux-gnu/libcurl.so.4", "apt"),
    ("opt/venv/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so", "torch/triton"),
    ("opt/venv/lib/python3.11/site-packages/torch/include/ATen/ATen.h", "headers"),
    ("opt/venv/lib/python3.11/site-packages/triton/_C/libtriton.so", "torch/triton"),
    ("opt/venv/lib/python3.11/site-packages/torchgen/model.py", "torch/triton"),
    ("opt/venv/lib/python3.11/site-packages/numpy/_core/tests/test_api.py", "tests/docs in packages"),
    ("opt/venv/lib/python3.11/site-packages/tests/__init__.py", "other wheels"),
    ("opt/venv/lib/python3.11/site-packages/numpy/__pycache__/x.cpython-311.pyc", ".pyc"),
    ("usr/lib/gcc/x86_64-linux-gnu/12/libstdc++.a", "static archives (*.a)"),
    ("usr/local/lib/node_modules/npm/index.js", "node"),
    ("usr/local/bin/uv", "other"),
])
def test_kind_of_a_path(path, kind):
    assert kind_of(path) == kind


def test_tally_counts_shadowed_bytes():
    report = tally([[("usr/bin/a", 10), ("usr/lib/d/x", 5)],
                    [("usr/bin/a", 3), ("usr/lib/d/", -1)]])
    assert report.bytes["apt"] == 18 and report.shadowed == 15
    assert set(report.bytes) == set(KINDS)


def _by_kind(image: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "imagebuild", "layers", image, "--by", "kind",
                           "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["total"] == sum(k["bytes"] for k in report["kinds"].values())
    return report["kinds"]


@pytest.mark.docker
def test_layers_by_kind_reads_every_layer_of_an_image(test_base):
    """The test base (Debian, ~120 MB: a few seconds; the pod's 1.8 GB take ~45 s)."""
    kinds = _by_kind(test_base)
    assert kinds["apt"]["bytes"] > 50e6 and kinds["apt"]["files"] > 1000
    assert kinds["other wheels"]["files"] == kinds["node"]["files"] == 0


@pytest.mark.docker
def test_save_streams_past_the_engines_call_timeout(test_base):
    """dockerd 20.10 writes the whole export to disk before the first byte of `docker
    save` (8.3 GB of ManiSkill outlasted the SDK's 120 s): the stream waits
    SAVE_STALL_S, not the timeout of every other call (here 1 ms)."""
    from imagebuild.engine import connect
    from imagebuild.engine.sdk import Engine
    from imagebuild.image.layerscan import each_layer

    engine = connect()
    if engine.socket_path is None:
        pytest.skip("the engine is not on a unix socket")
    impatient = Engine(socket_path=engine.socket_path, timeout=0.001)
    found = each_layer(impatient, test_base, lambda layer: sum(1 for _ in layer))
    assert list(found) == engine.image(test_base).attrs["RootFS"]["Layers"]
    assert all(files > 0 for files, _ in found.values())


@pytest.mark.docker
def test_the_built_venv_has_no_archives_package_tests_or_docs(pod_image):
    """numpy ships tests/ folders and two .a files, MuJoCo an .rst doc/ folder (measured
    before the diet: 9.2 MB of tests/docs, 0.12 MB of .a in the test pod's venv)."""
    found = run_in_image(pod_image, "cd /opt/venv/lib/python3.11/site-packages && "
                         "ls -d numpy/_core numpy/doc/ufuncs.py mujoco && find . -name '*.a' -o "
                         "-path './numpy/*/tests' -o -path './mujoco/doc' -o -name '*.opt-1.pyc'")
    assert found.returncode == 0, found.stderr
    # numpy/doc holds a module (numpy.doc.ufuncs): importable, so it stays.
    assert found.stdout.split() == ["mujoco", "numpy/_core", "numpy/doc/ufuncs.py"], found.stdout[:2000]


def test_layers_by_kind_refuses_a_bad_flag():
    done = subprocess.run([sys.executable, "-m", "imagebuild", "layers", "x", "--by", "size"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--by: expected layer or kind" in done.stderr
    assert "Traceback" not in done.stderr


def test_keep_reaches_every_chunk_step_and_the_layer_tags():
    from imagebuild.image.render import plan_build
    from imagebuild.image.spec import load_spec
    from tests.conftest import CI_SPEC
    from tests.lockdata import sample_lock

    spec = load_spec(CI_SPEC).spec
    kept = spec.model_copy(update={"python": spec.python.model_copy(
        update={"keep": ["package-tests", "static-archives"]})})
    lock = sample_lock(spec)
    plain, keeping = plan_build(spec, lock=lock), plan_build(kept, lock=lock)
    for layer in ("python", "sim"):
        dockerfile = keeping.layer(layer).layer.dockerfile
        steps = dockerfile.count("compile-chunk.py /tmp/context/chunk.txt")
        assert steps and dockerfile.count("chunk.txt --keep package-tests,static-archives") == steps
        assert "--keep" not in plain.layer(layer).layer.dockerfile
        assert keeping.layer(layer).tag != plain.layer(layer).tag, "other files, same tag"
    assert kept.digest() != spec.digest()
