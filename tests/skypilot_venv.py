"""SkyPilot itself, for the export tests: a separate venv, created once and reused.

`skypilot[runpod]` is ~560 MB and 146 packages (about 2 minutes to install on CI's
2 cores) with pins of its own: too heavy for the test extras, so the tests load
tasks with SkyPilot's `sky.Task.from_yaml` in this venv, in a subprocess.
$IMAGEBUILD_SKYPILOT_VENV points at another one.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

SKYPILOT = "skypilot[runpod]==0.14.1"


def venv_dir() -> Path:
    explicit = os.environ.get("IMAGEBUILD_SKYPILOT_VENV")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "imagebuild-tests" / ("skypilot-" + SKYPILOT.rsplit("==", 1)[1])


def ensure_venv() -> Path:
    """The venv's python, installing SkyPilot first if needed (under a lock)."""
    root = venv_dir()
    python = root / "bin" / "python"
    ready = root / ".imagebuild-ready"
    if ready.exists():
        return python
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True, timeout=300)
            done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                   SKYPILOT], capture_output=True, text=True, timeout=1200)
            if done.returncode != 0:
                raise RuntimeError(f"pip install {SKYPILOT} failed:\n{done.stderr[-3000:]}")
            ready.write_text(SKYPILOT + "\n")
    return python


# Loads each task file with SkyPilot and prints what it understood, as JSON.
LOAD_TASKS = r"""
import json, sys
import sky
from sky.provision.runpod import utils as runpod_utils

args = json.loads(sys.argv[1])
out = {"gpu_name_map": runpod_utils.GPU_NAME_MAP, "tasks": []}
for path in args["paths"]:
    task = sky.Task.from_yaml(path)
    every = list(task.resources)  # one per accelerator SkyPilot may choose
    res = every[0]
    same = {(str(r.cloud), r.extract_docker_image(), str(r.autostop_config)) for r in every}
    assert len(same) == 1, same
    accelerators = {name: count for r in every for name, count in (r.accelerators or {}).items()}
    login = None
    if args.get("secrets"):  # what `sky launch --secret NAME=...` hands over
        import yaml
        config = yaml.safe_load(open(path))
        launched = sky.Task.from_yaml_config(config, secrets_overrides=list(args["secrets"].items()))
        cfg = list(launched.resources)[0]._docker_login_config
        login = cfg and {"username": cfg.username, "password": cfg.password, "server": cfg.server}
    autostop = res.autostop_config
    out["tasks"].append({
        "name": task.name,
        "cloud": str(res.cloud) if res.cloud else None,
        "accelerators": accelerators,
        "image": res.extract_docker_image(),
        "autostop": autostop and {"idle_minutes": autostop.idle_minutes, "down": autostop.down},
        "envs": task.envs,
        "secrets": task.secrets,
        "secret_refs": [ref.name for ref in task.managed_secret_refs],
        "run": task.run,
        "login": login,
    })
print(json.dumps(out))
"""


def load_tasks(python: Path, paths: list[Path], home: Path, secrets: dict[str, str] | None = None) -> dict:
    """SkyPilot's reading of the task files (HOME is a fresh folder: no cloud credentials)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    done = subprocess.run([str(python), "-c", LOAD_TASKS,
                           json.dumps({"paths": [str(p) for p in paths], "secrets": secrets})],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"sky.Task.from_yaml failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# SkyPilot's RunPod launch with the RunPod SDK stubbed: the container command
# (docker_args) SkyPilot would give the pod, for the image tests to run for real.
CAPTURE_RUNPOD_LAUNCH = r"""
import json, sys
from unittest import mock
from sky.provision.runpod import utils

args = json.loads(sys.argv[1])
with mock.patch.object(utils, "runpod") as sdk:
    sdk.runpod.get_gpu.return_value = {"memoryInGb": 24}
    sdk.runpod.create_pod.return_value = {"id": "pod-1"}
    utils.launch(cluster_name="sky-test", node_type="head", instance_type="1x_RTX4090_SECURE",
                 region="US", zone="US-TX-3", disk_size=50, image_name=args["image"], ports=None,
                 public_key=args["public_key"], preemptible=False, bid_per_gpu=0.0,
                 docker_login_config=None)
    params = sdk.runpod.create_pod.call_args.kwargs
print(json.dumps({"image_name": params["image_name"], "docker_args": params["docker_args"],
                  "ports": params["ports"]}))
"""


def runpod_launch(python: Path, image: str, public_key: str, home: Path) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    done = subprocess.run([str(python), "-c", CAPTURE_RUNPOD_LAUNCH,
                           json.dumps({"image": image, "public_key": public_key})],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, f"SkyPilot's RunPod launch failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])
