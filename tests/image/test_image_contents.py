"""What a user finds on the pod over SSH: tools, simulators, offscreen rendering, the
NVIDIA vendor files. Versions are checked against the image's own label, so the
same tests hold for the CI test pod and the CUDA images built on GitHub."""

from __future__ import annotations

import json

import pytest

from .probes import IMPORT_AND_REPORT, MUJOCO_FRAME, last_json, python_over_ssh

pytestmark = pytest.mark.docker

# Distribution name (as `uv pip freeze` writes it) -> module to import.
SIMULATORS = {"mujoco": "mujoco", "gymnasium": "gymnasium", "mani-skill": "mani_skill",
              "stable-baselines3": "stable_baselines3"}


def test_ssh_login_with_the_public_key_as_root(pod):
    """PUBLIC_KEY from the environment lets the user in, as on RunPod."""
    assert pod.sh("id -un; pwd").split() == ["root", "/root"]


def test_tools_match_the_versions_label(pod, image_versions):
    out = pod.sh("for tool in uv python node npm claude; do "
                 'printf "%s=%s\\n" "$tool" "$($tool --version 2>&1 | head -n1)"; done')
    found = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    python, node = image_versions["python"], image_versions["node"]
    assert found["uv"].startswith(f"uv {python['uv']}"), found
    assert found["python"] == f"Python {python['python']}", found
    assert found["node"] == node["node"], found
    assert found["npm"] == node["npm"], found
    if node.get("claude_code"):
        assert found["claude"] == f"{node['claude_code']} (Claude Code)", found


def test_python_is_the_baked_environment(pod):
    assert pod.sh("command -v python uv").split()[0] == "/opt/venv/bin/python"


def test_simulators_import_at_their_labelled_versions(pod, image_versions):
    packages = image_versions.get("packages", {})
    modules = [module for dist, module in SIMULATORS.items() if dist in packages]
    assert modules, f"no simulator in the image's label: {sorted(packages)}"
    wanted = json.dumps({"modules": modules, "dists": sorted(packages)})
    out = python_over_ssh(pod, IMPORT_AND_REPORT, wanted, env="MUJOCO_GL=osmesa")
    assert last_json(out) == packages


def test_mujoco_renders_offscreen_on_cpu(pod, image_versions):
    if "mujoco" not in image_versions.get("packages", {}):
        pytest.skip("the image has no mujoco")
    frame = last_json(python_over_ssh(pod, MUJOCO_FRAME, env="MUJOCO_GL=osmesa"))
    assert frame["shape"] == [64, 64, 3]
    # Diffuse light shows the sphere's red; specular highlights alone would be grey.
    assert frame["red"] > frame["blue"], f"expected a lit red sphere, got {frame}"


def test_nvidia_vulkan_and_egl_vendor_files(pod, image_config):
    """What the NVIDIA Container Toolkit does not mount: ManiSkill's documented
    ICD, EGL vendor and implicit-layer files, and the loaders they need."""
    out = pod.sh("""
set -e
for f in /usr/share/vulkan/icd.d/nvidia_icd.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json \
         /etc/vulkan/implicit_layer.d/nvidia_layers.json; do
    python3 -c 'import json, sys; print(sys.argv[1], json.dumps(json.load(open(sys.argv[1]))))' "$f"
done
ldconfig -p | grep -oE 'lib(vulkan|EGL|GLX)\\.so\\.[0-9]+ ' | sort -u
""")
    assert '"library_path": "libGLX_nvidia.so.0"' in out
    assert '"library_path": "libEGL_nvidia.so.0"' in out
    assert "VK_LAYER_NV_optimus" in out
    for library in ("libvulkan.so.1", "libEGL.so.1", "libGLX.so.0"):
        assert library in out, f"{library} is not in ld.so's cache"
    env = dict(item.split("=", 1) for item in image_config.get("Env") or [])
    assert env.get("NVIDIA_DRIVER_CAPABILITIES") == "all", "graphics needs all driver capabilities"


def test_the_canary_ran_at_this_start(pod):
    """The entrypoint ran pod-canary after ready: a verdict in the status file's second line
    and the report (on a machine without a GPU every check skips; tests/image/test_image_gpu
    requires a pass on a GPU runner)."""
    import time

    deadline = time.monotonic() + 90
    while (line := pod.sh("sed -n 2p /run/pod-status").strip()) in ("", "canary: running") \
            and time.monotonic() < deadline:
        time.sleep(1)
    report = json.loads(pod.sh("cat /run/pod-canary.json"))
    assert line.startswith(f"canary: {report['verdict']}"), (line, report["verdict"])
    assert report["verdict"] in ("pass", "skip"), report
    assert [check["name"] for check in report["checks"]] == ["driver", "gpu-count", "torch", "vulkan", "egl",
                                                             "physx"]
