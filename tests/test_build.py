"""Real BuildKit builds of the test pod on the local Debian base, and what is inside.

The session fixture ``built`` (conftest) builds all five layers once; these tests
run real containers from it and rebuild variants to check layer reuse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
from conftest import CI_SPEC, ca_bundle, run_in_image
from image.probes import MUJOCO_FRAME

from imagebuild.image.builder import Builder
from imagebuild.image.layerscan import history_text, scan_image
from imagebuild.image.render import LAYER_NAMES

pytestmark = pytest.mark.docker



def imagebuild(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagebuild", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_all_five_layers_are_built(built):
    assert [layer.name for layer in built.layers] == list(LAYER_NAMES)
    assert built.image.startswith("imagebuild-test/pod:")


def test_tools_are_baked_in(pod_image):
    done = run_in_image(pod_image, "uv --version && python --version && node --version "
                        "&& npm --version && claude --version")
    assert done.returncode == 0, done.stderr
    uv, python, node, npm, claude = done.stdout.split("\n")[:5]
    assert uv.startswith("uv 0.") and python.startswith("Python 3.11")
    assert node.startswith("v22.") and claude.endswith("(Claude Code)")


def test_simulators_import_and_mujoco_renders_on_cpu(pod_image):
    done = run_in_image(pod_image, f"python - <<'EOF'\n{MUJOCO_FRAME}\nEOF",
                        env={"MUJOCO_GL": "osmesa"})
    assert done.returncode == 0, done.stderr
    frame = json.loads(done.stdout.strip().splitlines()[-1])
    assert frame["shape"] == [64, 64, 3]
    assert frame["red"] > frame["blue"]  # a lit red sphere, not a black or grey frame


def test_nvidia_vendor_files_and_vulkan_loader(pod_image):
    script = """
set -e
python3 -c 'import json,sys; [json.load(open(p)) for p in sys.argv[1:]]' \
    /usr/share/vulkan/icd.d/nvidia_icd.json \
    /usr/share/glvnd/egl_vendor.d/10_nvidia.json \
    /etc/vulkan/implicit_layer.d/nvidia_layers.json
grep -q libGLX_nvidia.so.0 /usr/share/vulkan/icd.d/nvidia_icd.json
grep -q libEGL_nvidia.so.0 /usr/share/glvnd/egl_vendor.d/10_nvidia.json
ldconfig -p | grep -q 'libvulkan.so.1 '
echo "caps=$NVIDIA_DRIVER_CAPABILITIES"
# The loader itself works: Mesa's lavapipe (CPU) is the only device without a GPU.
VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json vulkaninfo --summary 2>/dev/null | grep -i llvmpipe
"""
    done = run_in_image(pod_image, script)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "caps=all" in done.stdout
    assert "llvmpipe" in done.stdout


def test_image_labels_record_spec_hash_and_resolved_versions(engine, built, ci_spec):
    labels = engine.labels(built.image)
    assert labels["imagebuild.spec-hash"] == ci_spec.digest()
    versions = json.loads(labels["imagebuild.versions"])
    assert versions["python"]["uv"] == ci_spec.python.uv
    assert versions["node"]["node"].startswith("v22.")
    assert {"mujoco", "gymnasium", "wandb"} <= set(versions["packages"])


def test_no_workspace_and_sshd_has_no_baked_host_keys(pod_image):
    done = run_in_image(pod_image, "test ! -e /workspace && ! ls /etc/ssh/ssh_host_* 2>/dev/null "
                        "&& id -u dev")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "1000"


def test_rebuild_without_change_builds_nothing(engine, built, tmp_path):
    spec = tmp_path / "ci.toml"  # the lock and build record the CLI writes land beside it
    shutil.copy(CI_SPEC, spec)
    done = imagebuild("build", "--spec", str(spec), "--base", os.environ.get(
        "IMAGEBUILD_TEST_BASE", "imagebuild-test/debian:bookworm"), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["image"] == built.image
    assert [layer["cached"] for layer in result["layers"]] == [True] * 5
    assert [layer["name"] for layer in result["layers"]] == list(LAYER_NAMES)
    sizes = result["sizes"]  # per filesystem layer: size, new, chunk
    assert len(sizes) == len(engine.image(built.image).attrs["RootFS"]["Layers"])
    assert all(isinstance(s["size"], int) and isinstance(s["new"], bool) for s in sizes)
    assert {"python/pkg-wandb", "sim/pkg-mujoco"} <= {s["chunk"] for s in sizes}


def test_simulator_change_reuses_system_python_node(engine, built, ci_spec):
    changed = ci_spec.model_copy(update={"simulators": ci_spec.simulators.model_copy(
        update={"packages": ["mujoco"]})})
    builder = Builder(engine)
    for layer in builder.plan(changed).layers[3:]:  # an earlier run may have built them
        if engine.exists(layer.image):
            engine.client.images.remove(layer.image, noprune=True)
    result = builder.build(changed, ca_cert=ca_bundle())
    cached = {layer.name: layer.cached for layer in result.layers}
    assert cached == {"system": True, "python": True, "node": True, "sim": False, "runtime": False}
    assert [layer.image for layer in result.layers[:3]] == [layer.image for layer in built.layers[:3]]
    done = run_in_image(result.image, "python -c 'import mujoco; print(mujoco.__version__)'")
    assert done.returncode == 0, done.stderr


def test_layers_hold_no_caches_and_no_secrets(engine, built, ci_spec, tmp_path, test_base):
    """A build given a CA bundle and a token: neither appears in any layer or in
    the history, and no apt/pip/uv/npm cache is left in a layer. Built from the lock
    of the session's image, with no cache: every layer has the same bytes (diff ID)."""
    marker = f"imagebuild-secret-{uuid.uuid4().hex}"
    token = f"tok-{uuid.uuid4().hex}"
    ca = tmp_path / "ca.pem"
    source = ca_bundle()
    # Text outside BEGIN/END blocks is ignored by TLS libraries but easy to find.
    ca.write_text((source.read_text() if source else "") + f"\n# {marker}\n")
    spec = ci_spec.model_copy(update={"build": ci_spec.build.model_copy(
        update={"secrets": ["IMAGEBUILD_FAKE_TOKEN"]})})
    # no_cache: every step really runs with these secret values mounted.
    result = Builder(engine).build(spec, ca_cert=ca, secrets={"IMAGEBUILD_FAKE_TOKEN": token},
                                   no_cache=True, lock=built.plan.lock)
    assert not any(layer.cached for layer in result.layers)
    layers = [engine.client.images.get(image).attrs["RootFS"]["Layers"]
              for image in (built.image, result.image)]
    # Same lock, same bits. A mismatch: `bench/lock.py` names the files and fields that differ.
    assert layers[0] == layers[1]

    scan = scan_image(engine, result.image, markers=[marker, token, "VK_LAYER_NV_optimus"],
                      skip_base=test_base)
    assert len(scan.layers) >= 5
    assert scan.found("VK_LAYER_NV_optimus"), "the scan must see files the build added"
    assert scan.found(marker) == [] and scan.found(token) == []
    leftovers = [path for layer in scan.layers for path in layer.cache_paths]
    assert scan.cache_bytes == 0 and leftovers == [], leftovers[:10]
    history = "\n".join(history_text(engine, result.image))
    assert marker not in history and token not in history


def test_unknown_apt_package_is_one_line_before_anything_is_built(tmp_path, test_base):
    spec_file = tmp_path / "imagebuild.toml"
    spec_file.write_text(CI_SPEC.read_text().replace(
        'packages = ["mesa-vulkan-drivers", "htop"]', 'packages = ["imagebuild-no-such-package"]'))
    done = imagebuild("build", "--spec", str(spec_file), "--base", test_base,
                      "--ca-cert", str(ca_bundle() or "/dev/null"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("imagebuild: error: system.packages: apt inside ") and \
        "Unable to locate package imagebuild-no-such-package" in error, done.stderr


def test_failed_build_names_layer_step_and_output(engine, built, ci_spec):
    """A lock whose hash does not match the wheel (tampered, or a corrupted index):
    uv refuses it, and the error names the layer, the step and uv's own words."""
    from imagebuild.errors import UserError
    from imagebuild.image.lock import Lock

    lock = Lock(json.loads(json.dumps(built.plan.lock.data)))
    lock.data["python"]["packages"]["wandb"]["hashes"] = ["sha256:" + "0" * 64]
    with pytest.raises(UserError) as caught:
        Builder(engine).build(ci_spec, ca_cert=ca_bundle(), lock=lock, up_to="python")
    message = str(caught.value)
    assert "layer python failed at step [" in message and "RUN " in message
    assert "hash" in message.lower() and "wandb" in message, message


def test_unpullable_base_says_how_to_pass_base(tmp_path):
    shutil.copy(CI_SPEC, tmp_path / "ci.toml")
    done = imagebuild("build", "--spec", str(tmp_path / "ci.toml"), "--base", "registry.invalid/none/base:1")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "cannot pull the base image registry.invalid/none/base:1" in done.stderr
    assert "--base" in done.stderr


def test_missing_engine_is_one_clear_line():
    done = imagebuild("build", "--spec", str(CI_SPEC), env={"DOCKER_HOST": "unix:///nonexistent.sock"},
                      timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "imagebuild: error: no Docker engine answers at unix:///nonexistent.sock: start dockerd "
        "(or Docker Desktop) or set DOCKER_HOST, then retry"]


@pytest.mark.slow
def test_maniskill_imports_on_cpu(engine, built, ci_spec):
    """ManiSkill 3 (with torch, SAPIEN and OpenCV, which needs libglib2.0-0) imports
    and registers its envs. Creating an env needs a GPU Vulkan device: that check
    is in the image suite under the `gpu` marker."""
    spec = ci_spec.model_copy(update={"simulators": ci_spec.simulators.model_copy(
        update={"packages": [*ci_spec.simulators.packages, "mani-skill==3.0.1"]})})
    result = Builder(engine).build(spec, ca_cert=ca_bundle())
    assert [layer.cached for layer in result.layers[:3]] == [True, True, True]
    done = run_in_image(result.image, "python -c 'import torch, sapien, cv2, mani_skill.envs, "
                        "gymnasium as gym; print(\"PickCube-v1\" in gym.registry)'", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("True")
    # The diet's GPU-stack rules (compile-chunk.py): triton still finds its NVIDIA backend
    # without the AMD one, torch's CPU solvers and FFT run without the CUDA front ends,
    # and triton's copies of libcupti are one file.
    diet = run_in_image(result.image, "python -c 'import torch, triton, triton.backends as b; "
                        "print(sorted(b.backends), torch.linalg.svd(torch.eye(3)).S.sum().item(), "
                        "torch.fft.fft(torch.ones(4))[0].real.item())' && cd $(python -c "
                        "'import triton, os; print(os.path.dirname(triton.__file__))')/backends && "
                        "ls && stat -c %i nvidia/lib/cupti/libcupti.so* | sort -u | wc -l && "
                        "ls ../../nvidia/*/lib | grep -c -E \"lib(cusolverMg|nvblas|cufftw)\" || true",
                        timeout=300)
    assert diet.returncode == 0, diet.stderr[-2000:]
    lines = diet.stdout.split()
    assert lines[:3] == ["['nvidia']", "3.0", "4.0"], diet.stdout
    assert "amd" not in lines and "nvidia" in lines, diet.stdout
    assert lines[-2:] == ["1", "0"], diet.stdout  # one cupti inode; no front end left


def test_a_matching_plan_key_reuses_only_layers_the_engine_has(engine, built, ci_spec):
    """The no-op fast path: with the last build's plan key, its layer images are the
    tags (nothing rendered), but each is still looked for in the engine; one missing, or
    another key, and the plan is rendered as always."""
    from imagebuild.image.builder import base_id_for
    from imagebuild.image.render import plan_key

    lock = built.plan.lock
    key = plan_key(ci_spec, base_id_for(engine, ci_spec, lock), lock)
    images = [layer.image for layer in built.layers]
    reused = Builder(engine).build(ci_spec, lock=lock, known=(key, images))
    assert reused.plan is None and reused.image == built.image and reused.plan_key == key
    assert [layer.cached for layer in reused.layers] == [True] * 5
    gone = [*images[:-1], "imagebuild-test/pod:not-in-the-engine"]
    for known in ((key, gone), ("another key", images), (key, images[:-1])):
        again = Builder(engine).build(ci_spec, lock=lock, known=known)
        assert again.plan is not None and again.image == built.image, known


def test_render_shows_the_tags_build_makes_or_says_why_not(engine, built, tmp_path, test_base):
    """With the lock and the engine, render's tags are the built ones; without the lock,
    or without an engine to ask for the base's id, each is marked and a note says why."""
    from imagebuild.image.lock import write_lock

    spec = tmp_path / "ci.toml"
    shutil.copy(CI_SPEC, spec)
    render = ("render", "--spec", str(spec), "--base", test_base, "--out", str(tmp_path / "out"))
    done = imagebuild(*render)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("(may differ)") == 5 and "no lock beside the spec yet" in done.stderr
    write_lock(spec.with_suffix(".lock"), built.plan.lock)
    done = imagebuild(*render, "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert [layer["image"] for layer in plan["layers"]] == [layer.image for layer in built.layers]
    assert plan["tags_final"] is True and plan["tags_unknown_because"] is None
    done = imagebuild(*render, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("(may differ)") == 5 and "base's image id" in done.stderr
