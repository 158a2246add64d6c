"""On a GPU machine (a self-hosted runner labelled `gpu`, or IMAGEBUILD_GPU=1): the
driver reaches the pod and the NVIDIA Vulkan/EGL paths the image sets up work.
Without a GPU every test here skips, saying why (the `gpu` fixture)."""

from __future__ import annotations

import pytest

from .probes import MANISKILL_STEP, MUJOCO_FRAME, last_json, python_over_ssh

pytestmark = [pytest.mark.docker, pytest.mark.gpu]


def test_nvidia_smi_over_ssh(pod, gpu):
    out = pod.sh("nvidia-smi --query-gpu=name,driver_version --format=csv,noheader")
    assert out.strip(), "nvidia-smi listed no GPU"
    assert len(out.strip().splitlines()) == len(gpu.strip().splitlines())


def test_vulkan_sees_the_gpu_through_the_nvidia_icd(pod, gpu):
    # Only the NVIDIA ICD: a CPU device (lavapipe) must not make this pass.
    out = pod.sh("VK_DRIVER_FILES=/usr/share/vulkan/icd.d/nvidia_icd.json "
                 "VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/nvidia_icd.json vulkaninfo --summary")
    assert "DRIVER_ID_NVIDIA_PROPRIETARY" in out, out[-2000:]
    assert "llvmpipe" not in out


def test_mujoco_renders_with_egl(pod, gpu, image_versions):
    if "mujoco" not in image_versions.get("packages", {}):
        pytest.skip("the image has no mujoco")
    frame = last_json(python_over_ssh(pod, MUJOCO_FRAME, env="MUJOCO_GL=egl"))
    assert frame["shape"] == [64, 64, 3] and frame["red"] > frame["blue"], frame


def test_maniskill_env_steps_and_renders(pod, gpu, image_versions):
    if "mani-skill" not in image_versions.get("packages", {}):
        pytest.skip("the image has no mani-skill")
    result = last_json(python_over_ssh(pod, MANISKILL_STEP))
    assert result["frame"][-1] == 3 and result["max"] > 0, result


def test_vulkan_lists_each_gpu_once(pod, gpu):
    """The loader's own search (no override): where the runtime injected the driver's
    vendor files, the entrypoint hid the image's copies, so no GPU shows twice."""
    out = pod.sh("vulkaninfo --summary 2>/dev/null | grep -c 'driverID.*DRIVER_ID_NVIDIA_PROPRIETARY'")
    assert int(out.strip()) == len(gpu.strip().splitlines()), pod.sh(
        "grep vendor-files /workspace/.pod/logs/entrypoint.log")


def test_maniskill_gpu_physics_256_envs_with_rgb(pod, gpu, image_versions):
    """sim_backend="physx_cuda": needs the PhysX GPU library the sim layer baked
    (without it enable_gpu() downloads it into the volume first: minutes, or fails offline)."""
    if "mani-skill" not in image_versions.get("packages", {}):
        pytest.skip("the image has no mani-skill")
    # The image's probe (scripts/gpu-check.sh runs it too): it fails if enable_gpu() tries to download.
    result = last_json(pod.sh("pod-gpu-probe maniskill-gpu"))
    assert "skip" not in result, result["skip"]
    assert result["rgb"][0] == 256 and result["rgb"][-1] == 3, result
    # Reported, not asserted: speed targets live in bench/ (figures in bench/README.md).
    print(f"\nphysx_cuda PickCube-v1, 256 envs, RGB obs: {result['env_steps_per_s']} env-steps/s")


def test_the_gpu_canary_passes_within_30_s(pod, gpu):
    """pod-canary, as the entrypoint ran it at this start and run again now: on a GPU
    host every check passes (or skips what the image does not bake), within 30 s."""
    import json

    report = json.loads(pod.sh("POD_REQUIRE_GPU=1 pod-canary --json || true"))
    failed = [f"{check['name']}: {check['figure']}" for check in report["checks"] if check["verdict"] == "fail"]
    assert report["verdict"] == "pass" and failed == [], failed
    assert report["seconds"] <= 30, report["seconds"]
    assert pod.sh("sed -n 2p /run/pod-status").strip() == "canary: pass"
    print("\n" + pod.sh("pod-canary"))  # the figures and times, for bench/README.md
