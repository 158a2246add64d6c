"""pod-canary on real containers of the test image, with a stand-in GPU host
(tests/gpu_standin.py): each injected fault fails its named check, a healthy host passes,
and a pod without a GPU skips unless it needs one."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import docker, unique_name
from gpu_standin import HEALTHY, install

STANDIN = "/opt/gpu-standin"
IMAGE_CUDA = {"CUDA_VERSION": "12.8.1"}  # what an nvidia/cuda base sets (the test image's spec names none)


def canary(image: str, scenario: dict | None, *, env: dict[str, str] | None = None,
           mounts: tuple[str, ...] = (), tmp_path=None, args: str = "--json") -> tuple[int, dict | str]:
    """pod-canary in a throwaway container; the stand-in's tools first on PATH."""
    argv = ["run", "--rm", "--entrypoint", "bash"]
    if scenario is not None:
        argv += ["-v", f"{install(tmp_path / 'standin', scenario)}:{STANDIN}:ro"]
    for mount in mounts:
        argv += ["--mount", mount]
    for key, value in {**IMAGE_CUDA, **(env or {})}.items():
        argv += ["-e", f"{key}={value}"]
    done = docker(*argv, image, "-c", f'PATH={STANDIN}:$PATH exec pod-canary {args}', check=False, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    if "--json" not in args:
        return done.returncode, done.stdout
    return done.returncode, json.loads(done.stdout)


def verdicts(report: dict) -> dict[str, str]:
    return {check["name"]: check["verdict"] for check in report["checks"]}


def figure(report: dict, name: str) -> str:
    return next(check["figure"] for check in report["checks"] if check["name"] == name)


def test_a_healthy_host_passes_every_check_within_30_s(pod_image, tmp_path):
    code, report = canary(pod_image, HEALTHY, tmp_path=tmp_path)
    assert code == 0 and report["verdict"] == "pass", report
    assert verdicts(report) == {"driver": "pass", "gpu-count": "pass", "torch": "skip", "vulkan": "pass",
                                "egl": "pass", "physx": "skip"}, report
    assert "CUDA 13.0 >= the image's CUDA 12.8" in figure(report, "driver")
    assert "NVIDIA H200/PCIe/SSE2" in figure(report, "egl")  # MuJoCo is baked into the test image
    assert report["seconds"] < 30 and all(check["seconds"] <= check["limit_s"] for check in report["checks"])
    assert report["gpus"][0]["uuid"] == HEALTHY["gpus"][0]["uuid"]


def test_the_lines_name_each_check_and_its_time(pod_image, tmp_path):
    code, text = canary(pod_image, HEALTHY, tmp_path=tmp_path, args="")
    lines = text.splitlines()
    assert code == 0 and lines[-1].startswith("pod-canary: pass in "), text
    assert lines[0].startswith("PASS  driver ") and "limit 10 s)" in lines[0], text
    assert len(lines) == 7, text


def _with(**changes) -> dict:
    scenario = copy.deepcopy(HEALTHY)
    scenario.update(changes)
    return scenario


TWICE = [HEALTHY["vulkan"][0], HEALTHY["vulkan"][0]]
DRIVER_ICD = '{"file_format_version": "1.0.0", "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "1.4.312"}}'


@pytest.mark.parametrize(("fault", "scenario", "env", "extra_icd", "mounts", "failed", "words"), [
    ("an old driver", _with(driver="520.61.05", cuda="11.8"), {}, False, (), "driver",
     "CUDA 11.8 is older than the image's CUDA 12.8"),
    ("a missing GPU", HEALTHY, {"RUNPOD_GPU_COUNT": "2"}, False, (), "gpu-count",
     "nvidia-smi lists 1 GPU(s) (NVIDIA H200); the pod was given 2"),
    ("a duplicate Vulkan ICD file", HEALTHY, {}, True, (), "vulkan", "2 Vulkan ICD files load the NVIDIA driver"),
    ("a GPU listed twice", _with(vulkan=TWICE), {}, False, (), "vulkan", "the same GPU more than once"),
    ("lavapipe-only Vulkan (the image's real loader)", {k: v for k, v in HEALTHY.items() if k != "vulkan"},
     {}, False, (), "vulkan", "Vulkan lists no GPU, only llvmpipe"),
    ("EGL from Mesa (the image's real EGL)", _with(probes={}), {}, False, (), "egl",
     "EGL context from Mesa Project, not NVIDIA's"),
    ("a missing EGL vendor file", HEALTHY, {}, False, ("type=tmpfs,destination=/usr/share/glvnd/egl_vendor.d",),
     "egl", "no EGL vendor file loads the NVIDIA driver"),
])
def test_each_fault_fails_its_named_check(pod_image, tmp_path, fault, scenario, env, extra_icd, mounts,
                                          failed, words):
    if extra_icd:  # the runtime injected the driver's own file; the image's copy is still there
        icd = tmp_path / "nvidia_icd.json"
        icd.write_text(DRIVER_ICD)
        mounts = (*mounts, f"type=bind,source={icd},destination=/etc/vulkan/icd.d/nvidia_icd.json,readonly")
    code, report = canary(pod_image, scenario, env=env, mounts=mounts, tmp_path=tmp_path)
    assert code == 1 and report["verdict"] == "fail", (fault, report)
    assert [name for name, verdict in verdicts(report).items() if verdict == "fail"] == [failed], (fault, report)
    assert words in figure(report, failed), (fault, figure(report, failed))


def test_a_check_with_two_probes_stays_within_its_one_limit(pod_image, tmp_path):
    """egl asks two probes (the EGL context, then MuJoCo's frame): a slow host's second
    probe gets what is left of egl's 15 s, not 15 s of its own."""
    slow = _with(seconds={"egl": 12, "mujoco": 6})
    code, report = canary(pod_image, slow, tmp_path=tmp_path, args="--json --check egl")
    (check,) = report["checks"]
    assert code == 1 and check["verdict"] == "fail" and "timed out" in check["figure"], report
    assert check["seconds"] <= check["limit_s"] + 1, check


def test_a_pod_without_a_gpu_skips_unless_it_needs_one(pod_image, tmp_path):
    code, report = canary(pod_image, None, env={"RUNPOD_GPU_COUNT": "0"})
    assert code == 0 and report["verdict"] == "skip", report
    assert set(verdicts(report).values()) == {"skip"} and "no NVIDIA GPU" in figure(report, "driver")
    code, report = canary(pod_image, None, env={"POD_REQUIRE_GPU": "1"})
    assert code == 1 and verdicts(report)["driver"] == "fail", report
    assert "the pod needs one" in figure(report, "driver")


# -- at every start: the entrypoint, `imagebuild run`, `pod status` -------------------------

PATH = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _wait_for(container: str, script: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = docker("exec", container, "sh", "-c", script, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout
        time.sleep(1)
    raise AssertionError(f"{script!r} gave nothing within {timeout} s:\n" + docker("logs", container).stdout)


DIGEST = "sha256:" + "d" * 64  # what `pod create` knows of a pushed image


def test_every_start_runs_the_canary_after_ready_and_keeps_a_provenance_record(pod_image, tmp_path):
    """A pod on a host whose Vulkan lists the GPU twice: SSH is ready first, then the
    canary's verdict lands in the status file, the log, a login line, the volume's record."""
    name, volume = unique_name("ib-canary"), unique_name("ib-canary-ws")
    standin = install(tmp_path / "standin", _with(vulkan=TWICE))
    env = {**IMAGE_CUDA, "PATH": f"{STANDIN}:{PATH}", "RUNPOD_POD_ID": "canary-pod", "RUNPOD_DC_ID": "EU-RO-1",
           "RUNPOD_GPU_COUNT": "1", "POD_IMAGE_REF": f"ghcr.io/lab/pod@{DIGEST}", "POD_IMAGE_DIGEST": DIGEST}
    argv = ["run", "-d", "--name", name, "-v", f"{volume}:/workspace", "-v", f"{standin}:{STANDIN}:ro"]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    docker(*argv, pod_image)
    try:
        status = _wait_for(name, "sed -n 2p /run/pod-status | grep -v running")
        assert status.splitlines() == ["canary: fail: vulkan"], status
        assert docker("exec", name, "head", "-n1", "/run/pod-status").stdout.strip() == "ready"
        log = docker("exec", name, "cat", "/workspace/.pod/logs/entrypoint.log").stdout
        assert log.index("pod ready in") < log.index("canary: ") < log.index("canary: FAIL  vulkan"), log
        assert "canary: a GPU check failed" in log
        report = json.loads(docker("exec", name, "cat", "/run/pod-canary.json").stdout)
        assert verdicts(report)["vulkan"] == "fail" and verdicts(report)["driver"] == "pass"
        login = docker("exec", name, "bash", "-ic", "true", check=False)
        assert "pod-canary: the GPU check FAILED at this start (vulkan: " in login.stderr, login.stderr
        assert "FAILED" not in docker("exec", name, "bash", "-c", "true").stderr  # scripts stay quiet
        (record,) = [json.loads(line) for line in
                     docker("exec", name, "cat", "/workspace/.pod/provenance.jsonl").stdout.splitlines()]
        assert record["gpus"] == [{"name": "NVIDIA H200", "uuid": HEALTHY["gpus"][0]["uuid"]}]
        assert record["driver"] == "580.159.04" and record["cuda"] == "13.0"
        assert record["runpod"] == {"pod_id": "canary-pod", "data_center": "EU-RO-1", "gpu_count": "1"}
        assert record["canary"]["verdict"] == "fail" and record["canary"]["checks"]["vulkan"] == "fail"
        assert record["canary"]["seconds"] == report["seconds"]  # how long this host's canary took
        assert record["image"]["name"] == "imagebuild-test/pod" and len(record["image"]["lock_sha256"]) == 64
        assert (record["image"]["ref"], record["image"]["digest"]) == (f"ghcr.io/lab/pod@{DIGEST}", DIGEST)
        # Every shell carries it for W&B; a real wandb.init (offline) takes it as the run's notes.
        notes = docker("exec", name, "bash", "-lc", 'echo "$WANDB_NOTES"').stdout.strip()
        assert notes.startswith(f"pod-provenance: image ghcr.io/lab/pod@{DIGEST} ({DIGEST}, lock "), notes
        assert "NVIDIA H200, driver 580.159.04, CUDA 13.0; RunPod pod_id canary-pod" in notes
        assert wandb_notes(notes, tmp_path) == notes
    finally:
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", "-f", volume, check=False)


def wandb_notes(notes: str, tmp_path) -> str:
    """A run's notes: wandb.init (offline) with WANDB_NOTES as a pod's shell sets it."""
    pytest.importorskip("wandb")
    script = "import wandb; run = wandb.init(config={'lr': 0.1}); print(run.notes); run.finish()"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "WANDB_MODE": "offline",
           "WANDB_DIR": str(tmp_path), "WANDB_NOTES": notes, "WANDB_SILENT": "true"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_imagebuild_run_and_pod_status_show_the_canary(pod_image, engine, tmp_path):
    from imagebuild.pods import localrun

    name = unique_name("ibcanary")
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    try:
        done = imagebuild("run", "--image", pod_image, "--name", name, "--public-key", f"{key}.pub")
        assert done.returncode == 0, done.stderr
        assert "canary   skip (no NVIDIA GPU" in done.stdout, done.stdout  # a CPU-only local pod
        shown = imagebuild("pod", "status", f"local:{name}")
        assert shown.returncode == 0 and "canary   skip (no NVIDIA GPU" in shown.stdout, shown.stdout + shown.stderr
        found = json.loads(imagebuild("pod", "status", f"local:{name}", "--json").stdout)["canary"]
        assert found["status"].startswith("skip") and found["report"]["verdict"] == "skip"
        assert found["provenance"]["runpod"]["pod_id"] == name and found["provenance"]["gpus"] == []
        # The host set what it knows of the image: a local pod's is the engine's image id.
        assert found["provenance"]["image"]["id"] == engine.client.images.get(pod_image).id
        assert found["provenance"]["image"]["ref"] == pod_image
    finally:
        localrun.remove(engine, name, volume=True)


def imagebuild(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagebuild", *args], capture_output=True, text=True,
                          timeout=240, stdin=subprocess.DEVNULL)


def test_a_pod_whose_image_has_no_canary_is_not_waited_for(engine, test_base):
    """An image built before pod-canary: `imagebuild run` and `pod create` go on at once."""
    from imagebuild.pods import canary

    container = engine.client.containers.run(test_base, ["sleep", "120"], detach=True, remove=True)
    try:
        started = time.monotonic()
        found = canary.wait(lambda: canary.read_container(container), timeout=60)
        assert found.line == "none" and found.finished and time.monotonic() - started < 20, found
        assert canary.status_lines(found) == ["canary   - (this image has no pod-canary: rebuild it with "
                                              "this imagebuild)"]
    finally:
        container.kill()


def test_the_device_run_from_the_images_files_skips_every_gpu_check_without_a_gpu(pod_image, tmp_path):
    """scripts/gpu-canary-device.sh dry-run: what a lent GPU machine runs (the image's own
    pod-canary and probes, copied out of it), here with no GPU: every check is a skip named
    "no NVIDIA GPU", and the table and JSON land in OUT."""
    scripts = Path(__file__).resolve().parent.parent / "scripts"
    carry, out = tmp_path / "carry", tmp_path / "out"
    exported = subprocess.run(["bash", str(scripts / "gpu-check.sh"), "export", pod_image, str(carry)],
                              capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    done = subprocess.run(["bash", str(scripts / "gpu-canary-device.sh"), "dry-run", str(carry)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OUT": str(out)})
    assert done.returncode == 0 and "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    rows = json.loads((out / "results.json").read_text())
    assert [row["name"] for row in rows] == ["driver", "gpu-count", "torch", "vulkan", "egl", "physx", "pod-canary",
                                             "mujoco-egl", "sapien-vulkan", "maniskill-cpu", "maniskill-gpu"]
    assert {row["verdict"] for row in rows} == {"skip"}, rows
    assert all(row["figure"].startswith("no NVIDIA GPU") for row in rows if row["name"] != "pod-canary"), rows
    assert json.loads((out / "pod-canary.json").read_text())["verdict"] == "skip"
    assert (out / "table.md").read_text().startswith("| check | verdict | seconds | limit | figure |")
    assert done.stdout.strip().splitlines()[-1].startswith("gpu-check: 0 check(s) failed")
