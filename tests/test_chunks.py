"""Chunked package layers (issue 15): a small change ships a small layer, and the
same lock gives the same layers.

The docker tests build a spec heavier than ci.toml (scipy on top of its simulators)
up to the sim layer, add one small package, and compare the layers by diff ID.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest

from imagebuild.errors import SpecError
from imagebuild.image.chunks import BUCKETS, bucket_count, plan_chunks
from imagebuild.image.render import plan_build
from imagebuild.image.spec import load_spec
from tests.conftest import CI_SPEC, ca_bundle
from tests.lockdata import pin, sample_lock

SPEC = load_spec(CI_SPEC).spec
SMALL_CHANGE_LIMIT = 50_000_000  # the target: one small package ships at most 50 MB


def _packages(*names: str) -> dict:
    return {name: pin("1.0") for name in names}


def _requirements(chunks) -> dict[str, str]:
    return {chunk.name: chunk.requirements() for chunk in chunks}


def test_every_package_lands_in_exactly_one_chunk_in_a_stable_order():
    names = ["torch", "nvidia-cublas-cu12", "nvidia-cudnn-cu12", "triton", "numpy", "mani-skill",
             "sapien", "toolz", "tqdm", "rich", "Farama_Notifications", *[f"small-{i}" for i in range(40)]]
    chunks = plan_chunks("sim", _packages(*names))
    placed = [name for chunk in chunks for name in chunk.packages]
    assert sorted(placed) == sorted(names)
    assert [c.name for c in chunks[:4]] == ["torch", "cuda-blas", "cuda-dnn", "pkg-triton"]
    assert all(len(c.packages) == 1 for c in chunks if not c.name.startswith("rest-"))
    assert len([c for c in chunks if c.name.startswith("rest-")]) <= BUCKETS
    assert _requirements(plan_chunks("sim", _packages(*reversed(names)))) == _requirements(chunks)


def test_the_cuda_wheels_torch_pins_share_a_few_chunks_by_library():
    # torch 2.15's CUDA 13 pins, and CUDA 12's names for the same libraries.
    cu13 = ["nvidia-cublas", "nvidia-cuda-cccl", "nvidia-cuda-cupti", "nvidia-cuda-nvrtc", "nvidia-cuda-runtime",
            "nvidia-cudnn-cu13", "nvidia-cufft", "nvidia-cufile", "nvidia-cusolver", "nvidia-cusparse",
            "nvidia-cusparselt-cu13", "nvidia-ml-py", "nvidia-nccl-cu13", "nvidia-nvjitlink",
            "nvidia-nvshmem-cu13", "nvidia-nvtx", "cuda-bindings", "cuda-pathfinder", "cuda-toolkit"]
    cu12 = ["nvidia-cublas-cu12", "nvidia-cudnn-cu12", "nvidia-cufft-cu12", "nvidia-curand-cu12",
            "nvidia-cusolver-cu12", "nvidia-nccl-cu12", "nvidia-cuda-runtime-cu12", "nvidia-nvjitlink-cu12"]
    for gpu in (cu13, cu12):
        chunks = plan_chunks("sim", _packages("torch", "triton", "numpy", *gpu))
        assert chunks[0].name == "torch"
        assert {c.name for c in chunks} <= {"torch", "pkg-triton", "pkg-numpy", "cuda-runtime", "cuda-blas",
                                            "cuda-dnn", "cuda-solvers", "cuda-sparse", "cuda-comm"}
        assert sorted(n for c in chunks for n in c.names) == sorted(["torch", "triton", "numpy", *gpu])
    by_chunk = {c.name: c.names for c in plan_chunks("sim", _packages(*cu13))}
    # The two largest (0.6 and 0.9 GB) stay alone: no layer over 1.5 GB.
    assert by_chunk["cuda-dnn"] == ["nvidia-cudnn-cu13"] and by_chunk["cuda-blas"] == ["nvidia-cublas"]
    # A CUDA library no group names (a new one, perhaps large) gets a chunk of its own.
    assert sorted((c.name, c.names) for c in plan_chunks("sim", _packages("nvidia-npp-cu12", "nvidia-nvtx-cu12"))) \
        == [("cuda-runtime", ["nvidia-nvtx-cu12"]), ("pkg-nvidia-npp-cu12", ["nvidia-npp-cu12"])]


def test_adding_one_package_changes_exactly_one_chunk():
    names = ["numpy", "scipy", "mujoco", "gymnasium", *[f"dep-{i}" for i in range(30)]]
    before = _requirements(plan_chunks("sim", _packages(*names)))
    after = _requirements(plan_chunks("sim", _packages(*names, "toolz")))
    changed = {name for name in after if before.get(name) != after[name]}
    assert len(changed) == 1 and "toolz==1.0" in after[changed.pop()]
    bumped = _requirements(plan_chunks("sim", {**_packages(*names), "dep-7": pin("2.0")}))
    assert len({name for name in bumped if before[name] != bumped[name]}) == 1


def test_a_lockstep_family_is_one_chunk_and_few_small_packages_one_bucket():
    chunks = plan_chunks("sim", _packages("mujoco-studio", "mujoco", "mujoco-core", "numpy", "glfw", "toolz"))
    assert [(c.name, c.names) for c in chunks] == [
        ("pkg-mujoco", ["mujoco", "mujoco-core", "mujoco-studio"]), ("pkg-numpy", ["numpy"]),
        ("rest-0", ["glfw", "toolz"])]
    # A part of the family without the rest still goes first, in a chunk of its own.
    assert [c.name for c in plan_chunks("sim", _packages("mujoco-core", "toolz"))] == ["pkg-mujoco-core", "rest-0"]


@pytest.mark.parametrize(("small", "buckets"), [(1, 1), (16, 1), (17, 2), (48, 2), (49, BUCKETS), (400, BUCKETS)])
def test_the_bucket_count_grows_with_the_small_packages_in_tiers(small, buckets):
    assert bucket_count(small) == buckets
    chunks = plan_chunks("python", _packages(*[f"dep-{i}" for i in range(small)]))
    assert len(chunks) <= buckets and sum(len(c.packages) for c in chunks) == small


@pytest.mark.parametrize("name", ["numpy;touch /tmp/owned", "a b", "$(id)", "../x", "-r", "NumPy"])
def test_a_hand_edited_package_name_is_refused_in_one_line(name):
    with pytest.raises(SpecError) as caught:
        plan_chunks("sim", _packages("numpy", name))
    message = str(caught.value)
    assert "\n" not in message and "imagebuild lock" in message and "[sim.packages]" in message


def test_locked_layers_install_one_chunk_per_run_step():
    lock = sample_lock(SPEC)
    plan = plan_build(SPEC, lock=lock)
    for layer in ("python", "sim"):
        rendered = plan.layer(layer).layer
        chunks = plan_chunks(layer, lock.packages(layer))
        assert rendered.dockerfile.count("--no-deps --require-hashes \\\n        -r /tmp/context/chunk.txt") \
            == len(chunks) > 0
        for chunk in chunks:
            assert rendered.files[chunk.requirements_file] == chunk.requirements().encode()
            assert f": {chunk.marker} " in rendered.dockerfile
        # uv's own bytecode step would recompile every earlier chunk into this layer.
        assert "UV_COMPILE_BYTECODE=0 uv pip install" in rendered.dockerfile
    assert "uv pip check" in plan.layer("sim").layer.dockerfile
    # The download stage: the sim layer only (the python layer's parent has no uv yet).
    assert "chunks/sim-prefetch.txt" in plan.layer("sim").layer.files
    assert "AS prefetch" in plan.layer("sim").layer.dockerfile
    assert not any("prefetch" in path for path in plan.layer("python").layer.files)
    assert "prefetch" not in plan.layer("python").layer.dockerfile


def test_the_unlocked_render_keeps_one_install_step():
    sim = plan_build(SPEC).layer("sim").layer
    assert "imagebuild-chunk=" not in sim.dockerfile and "mujoco" in sim.dockerfile


# ---- real builds -------------------------------------------------------------------------

def _with_simulators(spec, packages):
    return spec.model_copy(update={"simulators": spec.simulators.model_copy(
        update={"packages": packages})})


def _sim_layers(engine, image):
    from imagebuild.image.layers import inventory

    return inventory(engine, image)


@pytest.fixture(scope="module")
def heavy(engine, ci_spec):
    """(engine, image before, image after, locks) of a scipy spec before/after adding toolz."""
    from imagebuild.image.builder import Builder
    from imagebuild.image.progress import PlainReporter
    from imagebuild.image.resolve import resolve_lock

    before_spec = _with_simulators(ci_spec, [*ci_spec.simulators.packages, "scipy"])
    after_spec = _with_simulators(before_spec, [*before_spec.simulators.packages, "toolz"])
    builder = Builder(engine, reporter=PlainReporter())
    before_lock = resolve_lock(before_spec, engine, ca_cert=ca_bundle())
    after_lock = resolve_lock(after_spec, engine, previous=before_lock, ca_cert=ca_bundle())
    before = builder.build(before_spec, ca_cert=ca_bundle(), up_to="sim", lock=before_lock)
    after = builder.build(after_spec, ca_cert=ca_bundle(), up_to="sim", lock=after_lock)
    return engine, before, after, before_lock, after_lock


@pytest.mark.docker
@pytest.mark.slow
def test_adding_one_small_package_ships_one_small_layer(heavy):
    engine, before, after, before_lock, after_lock = heavy
    assert {k: v for k, v in after_lock.packages("sim").items() if k != "toolz"} \
        == before_lock.packages("sim")  # the same pins plus toolz: the test's premise
    old = _sim_layers(engine, before.image)
    new = _sim_layers(engine, after.image)
    old_ids = {layer.diff_id for layer in old}
    shipped = [layer for layer in new if layer.diff_id not in old_ids]
    assert sum(layer.size for layer in old) > 300_000_000  # heavy enough to show the effect
    assert sum(layer.size for layer in shipped) <= SMALL_CHANGE_LIMIT
    # toolz's chunk and the versions record; every other layer is byte-identical.
    assert len(shipped) == 2, [(la.step, la.chunk) for la in shipped]
    assert any("toolz" in layer.packages for layer in shipped)
    gone = [layer for layer in old if layer.diff_id not in {la.diff_id for la in new}]
    assert len(gone) <= 2 and len(new) == len(old) - len(gone) + len(shipped)
    assert max(layer.size for layer in new) < 1_500_000_000


@pytest.mark.docker
@pytest.mark.slow
def test_the_chunked_environment_is_complete_and_each_chunk_holds_only_its_packages(heavy):
    engine, _, after, _, _ = heavy
    script = ("import scipy.linalg, toolz, mujoco, gymnasium, numpy, wandb; "
              "import importlib.metadata as m; "
              "assert all(d.files for d in m.distributions()), 'a package lost its RECORD'")
    done = subprocess.run(["docker", "run", "--rm", "--entrypoint", "/opt/venv/bin/python", after.image,
                           "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    by_chunk = {layer.chunk: layer for layer in _sim_layers(engine, after.image) if layer.chunk}
    # numpy's chunk is numpy alone: ~tens of MB, not the environment up to it.
    assert 10_000_000 < by_chunk["sim/pkg-numpy"].size < 150_000_000
    assert by_chunk["sim/pkg-scipy"].size > by_chunk["sim/pkg-numpy"].size


@pytest.mark.docker
@pytest.mark.slow
def test_a_rebuild_without_cache_gives_the_same_layer_digests(heavy, tmp_path):
    """The sim layer built again with BuildKit's cache off: every diff ID equal."""
    from imagebuild.engine import buildkit
    from imagebuild.image.render import BuildPlan, write_plan

    engine, before, _, _, _ = heavy
    sim_plan = before.plan.layer("sim")
    write_plan(BuildPlan(spec=before.plan.spec, layers=[sim_plan]), tmp_path)
    again = f"imagebuild-test/chunks-repro:{uuid.uuid4().hex[:8]}"
    secrets = {"ca_bundle": ca_bundle()} if ca_bundle() else {}
    buildkit.build(buildkit.find_cli(), tmp_path / "1-sim", again, secrets, {}, no_cache=True,
                   extra_args=[])
    try:
        first = [layer.diff_id for layer in _sim_layers(engine, sim_plan.image)]
        second = [layer.diff_id for layer in _sim_layers(engine, again)]
        assert len(first) > 10 and second == first
    finally:
        subprocess.run(["docker", "rmi", again], capture_output=True, timeout=120)


@pytest.mark.docker
@pytest.mark.slow
def test_a_changed_download_list_reruns_the_download_stage_but_no_chunk_step(heavy, tmp_path):
    """The chunk steps wait on the download stage's marker, keyed by its content: a
    changed lock reruns the stage, yet the chunk steps stay cached (else every change
    would reinstall the whole layer)."""
    from imagebuild.engine import buildkit
    from imagebuild.image.chunks import prefetch_file
    from imagebuild.image.render import BuildPlan, write_plan

    engine, before, _, _, _ = heavy
    sim_plan = before.plan.layer("sim")
    write_plan(BuildPlan(spec=before.plan.spec, layers=[sim_plan]), tmp_path)
    downloads = tmp_path / "1-sim" / prefetch_file("sim")
    downloads.write_text(downloads.read_text() + f"# {uuid.uuid4().hex}\n")  # new content, same wheels
    again = f"imagebuild-test/chunks-prefetch:{uuid.uuid4().hex[:8]}"
    cli = buildkit.find_cli()
    secrets = ["--secret", f"id=ca_bundle,src={ca_bundle()}"] if ca_bundle() else []
    done = subprocess.run([*cli.build_argv(), "--progress=plain", *secrets, "--tag", again,
                           str(tmp_path / "1-sim")], env=cli.env(), capture_output=True, text=True, timeout=600)
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        headers = dict(re.findall(r"^#(\d+) \[[^\]]*\] (.*)$", done.stderr, flags=re.M))
        cached = set(re.findall(r"^#(\d+) CACHED$", done.stderr, flags=re.M))
        downloading = [step for step, text in headers.items() if "uv pip install --quiet" in text]
        chunk_steps = [step for step, text in headers.items() if "imagebuild-chunk=" in text]
        assert len(downloading) == 1 and downloading[0] not in cached  # the stage ran again
        assert len(chunk_steps) > 3 and set(chunk_steps) <= cached, done.stderr[-3000:]
        assert [la.diff_id for la in _sim_layers(engine, again)] == \
            [la.diff_id for la in _sim_layers(engine, sim_plan.image)]
    finally:
        subprocess.run(["docker", "rmi", again], capture_output=True, timeout=120)


@pytest.mark.docker
@pytest.mark.slow
def test_layers_cli_lists_chunks_and_what_is_new(heavy):
    _, before, after, _, _ = heavy
    done = _imagebuild("layers", after.image, "--against", before.image, "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    new = [layer for layer in listed["layers"] if layer["new"]]
    assert listed["new_layers"] == len(new) == 2 and listed["new_bytes"] <= SMALL_CHANGE_LIMIT
    assert any("toolz" in layer["packages"] for layer in new)
    human = _imagebuild("layers", after.image)
    assert human.returncode == 0 and "sim/pkg-scipy: scipy" in human.stdout


@pytest.mark.docker
def test_layers_of_a_missing_image_is_one_line(engine):
    done = _imagebuild("layers", f"imagebuild-test/no-such:{uuid.uuid4().hex[:8]}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "not in the local engine" in done.stderr


def _imagebuild(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagebuild", *args], capture_output=True, text=True,
                          timeout=120)


def test_the_layer_table_marks_new_layers_largest_first():
    from imagebuild.image.layers import LayerInfo, table

    layers = [LayerInfo("sha256:a", 2_000, "RUN a"), LayerInfo("sha256:b", 9_000_000, "RUN b",
              chunk="sim/pkg-numpy", packages=["numpy"], new=True),
              LayerInfo("sha256:c", 300, "RUN c", new=False)]
    lines = table(layers)
    assert re.match(r"\s*9\.0 MB  new sim/pkg-numpy: numpy", lines[0])
    assert lines[-1] == "3 layers, 9.0 MB, largest 9.0 MB, 1 new (9.0 MB)"


def test_a_failing_step_of_a_many_chunk_layer_is_named():
    """Ten steps or more: BuildKit pads the step number ("[ 5/12]")."""
    from imagebuild.engine.buildkit import StepTracker

    tracker = StepTracker()
    for line in ["#7 [ 4/12] RUN : imagebuild-chunk=python/pkg-wandb packages=wandb",
                 "#7 0.43 error: hash mismatch for wandb", "#7 ERROR: exit code: 1"]:
        tracker.feed(line)
    step, output = tracker.failure()
    assert step.startswith("[4/12] RUN : imagebuild-chunk=python/pkg-wandb")
    assert "error: hash mismatch for wandb" in output
