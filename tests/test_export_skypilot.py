"""`imagebuild export skypilot`: every task written is read back by SkyPilot's own
`sky.Task.from_yaml` (in a separate venv, tests/skypilot_venv.py), with no cloud
credentials. Hostile input is one line, exit 2, and nothing written."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import docker, record_push, unique_name
from skypilot_venv import ensure_venv, load_tasks, runpod_launch

from imagebuild.export import skypilot as sky
from imagebuild.export.skypilot_gpus import SKYPILOT_GPUS, accelerators

IMAGE = "registry.example/you/research-pod@sha256:" + "0123456789abcdef" * 4
SECRET_VALUES = {  # in the exporting shell: none of them may reach a file or an error
    "WANDB_API_KEY": "wandb-s3cr3t-4f1c",
    "GITHUB_TOKEN": "ghp_s3cr3tT0k3n9",
    "SKYPILOT_DOCKER_USERNAME": "robot-user-77",
    "SKYPILOT_DOCKER_PASSWORD": "registry-pa55-word",
    "SKYPILOT_DOCKER_SERVER": "login.registry.example:5000",
}


@pytest.fixture(scope="session")
def sky_python() -> Path:
    try:
        return ensure_venv()
    except (RuntimeError, subprocess.SubprocessError, OSError) as error:
        pytest.fail(f"cannot set up SkyPilot for the export tests: {error}")


def export(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **SECRET_VALUES, **(env or {})}
    return subprocess.run([sys.executable, "-m", "imagebuild", "export", "skypilot", *args],
                          capture_output=True, text=True, cwd=cwd, env=full_env, timeout=120)


def exported(tmp_path: Path, *args: str) -> list[Path]:
    out = tmp_path / "out"
    done = export("--out", str(out), *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return sorted(out.glob("*.yaml")) if out.is_dir() else [out]


def assert_no_secret(paths: list[Path], *texts: str) -> None:
    for value in SECRET_VALUES.values():
        for path in paths:
            assert value not in path.read_text(), f"{value} written into {path}"
        for text in texts:
            assert value not in text


def test_task_is_what_skypilot_reads(sky_python, tmp_path):
    paths = exported(tmp_path, "--image", IMAGE, "--gpu", "4090", "--env", "LR=0.001",
                     "--env", "TOKENIZERS_PARALLELISM=false",
                     "--secret", "WANDB_API_KEY", "--secret", "GITHUB_TOKEN", "--idle-minutes", "30",
                     "--project", "robot-arm", "--results-to", "mybucket:pods/results",
                     "--", "python", "train.py", "--seed", "$SEED")
    [task] = load_tasks(sky_python, paths, tmp_path / "home")["tasks"]
    assert task["name"] == "research-pod"
    assert task["cloud"] == "RunPod"
    assert task["accelerators"] == {"RTX4090": 1}
    assert task["image"] == IMAGE
    assert task["autostop"] == {"idle_minutes": 30, "down": True}
    assert task["envs"] == {"LR": "0.001", "TOKENIZERS_PARALLELISM": "false"}
    assert task["secrets"] == {}
    assert task["secret_refs"] == ["WANDB_API_KEY", "GITHUB_TOKEN"]
    assert task["run"] == sky.run_script("python train.py --seed $SEED", "robot-arm", "mybucket:pods/results")
    run = task["run"]
    assert '[[sync]]\npath = "results"\nremote = "mybucket:pods/results"\n' in run
    assert ". /workspace/.bashrc_pod" in run and "proj robot-arm" in run
    assert "RESULTS_DIR=/workspace/results" in run
    assert run.index("python train.py") < run.index("if ! pod-save"), "pod-save must run after the command"
    assert_no_secret(paths)


def test_registry_login_is_a_reference_filled_at_launch(sky_python, tmp_path):
    paths = exported(tmp_path, "--image", IMAGE, "--gpu", "a6000", "--private-registry", "--", "true")
    text = paths[0].read_text()
    for name in sky.DOCKER_LOGIN_SECRETS:
        assert f"{name}: null" in text
    assert_no_secret(paths)
    login = {name: SECRET_VALUES[name] for name in sky.DOCKER_LOGIN_SECRETS}
    [task] = load_tasks(sky_python, paths, tmp_path / "home", secrets=login)["tasks"]
    assert task["secret_refs"] == list(sky.DOCKER_LOGIN_SECRETS)
    # `sky launch --secret ...` turns the references into SkyPilot's registry login.
    assert task["login"] == {"username": "robot-user-77", "password": "registry-pa55-word",
                             "server": "login.registry.example:5000"}


def test_sweep_is_one_task_per_combination(sky_python, tmp_path):
    paths = exported(tmp_path, "--image", IMAGE, "--gpu", "h100:8", "--sweep", "SEED=1,2,3",
                     "--sweep", "LR=0.1,0.01", "--env", "STEPS=1000", "--secret", "WANDB_API_KEY",
                     "--", "python", "train.py")
    assert len(paths) == 6
    tasks = load_tasks(sky_python, paths, tmp_path / "home")["tasks"]
    combos = {(t["envs"]["SEED"], t["envs"]["LR"]) for t in tasks}
    assert combos == {(s, lr) for s in ("1", "2", "3") for lr in ("0.1", "0.01")}
    assert len({t["name"] for t in tasks}) == 6
    for task in tasks:
        assert task["accelerators"] == {"H100": 8}
        assert task["envs"]["STEPS"] == "1000"
        assert task["image"] == IMAGE
        assert task["secret_refs"] == ["WANDB_API_KEY"]
    assert_no_secret(paths)


def test_cloud_any_and_a_gpu_list_leave_the_choice_to_skypilot(sky_python, tmp_path):
    paths = exported(tmp_path, "--image", IMAGE, "--cloud", "any", "--gpu", "4090,a6000", "--", "true")
    [task] = load_tasks(sky_python, paths, tmp_path / "home")["tasks"]
    assert task["cloud"] is None
    assert task["accelerators"] == {"RTX4090": 1, "RTXA6000": 1}


def test_hostile_values_come_back_unchanged(sky_python, tmp_path):
    values = ["yes", "null", "0123", "1e3", "a: b # c", "{x}", "'quoted\"", "line1\nline2", "ünï", "~", ""]
    args = []
    for number, value in enumerate(values):
        args += ["--env", f"V{number}={value}"]
    paths = exported(tmp_path, "--image", IMAGE, "--gpu", "4090", *args, "--",
                     "echo", "'$V0'", "&&", "printf", "'%s\\n'", '"a|b"')
    [task] = load_tasks(sky_python, paths, tmp_path / "home")["tasks"]
    assert task["envs"] == {f"V{n}": v for n, v in enumerate(values)}
    assert "echo '$V0' && printf '%s\\n' \"a|b\"" in task["run"]


def test_default_image_is_the_pushed_digest(sky_python, tmp_path):
    (tmp_path / "imagebuild.toml").write_text('[image]\nname = "registry.example/you/pod"\n'
                                              '[pod]\ngpu = "4090,l40s"\ngpu_count = 2\n')
    refused = export("--", "true", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"imagebuild: error: --image: nothing pushed from {tmp_path / 'imagebuild.toml'} yet; "
                                      "run `imagebuild push` first or pass --image")
    record_push(tmp_path, image=IMAGE)
    paths = exported(tmp_path, "--", "true")
    [task] = load_tasks(sky_python, paths, tmp_path / "home")["tasks"]
    assert task["image"] == IMAGE
    assert task["accelerators"] == {"RTX4090": 2, "L40S": 2}


def test_gpu_names_are_skypilots(sky_python, tmp_path):
    """The copied table is SkyPilot's: a rename there fails here."""
    gpu_map = load_tasks(sky_python, [], tmp_path / "home")["gpu_name_map"]
    assert {name: gpu_map.get(name) for name in SKYPILOT_GPUS} == SKYPILOT_GPUS


@pytest.mark.parametrize(("alias", "expected"), [
    ("4090", {"RTX4090": 1}), ("rtx 4090:2", {"RTX4090": 2}), ("a6000", {"RTXA6000": 1}),
    ("h100", {"H100": 1}), ("h100 sxm:8", {"H100-SXM": 8}), ("A100-80GB", {"A100-80GB": 1}),
    ("6000 ada", {"RTX6000-Ada": 1}), ("4090,l40s:2", {"RTX4090": 1, "L40S": 2}), ("3090 ti", {"RTX3090Ti": 1}),
])
def test_gpu_aliases(alias, expected):
    assert accelerators(alias) == expected


STATE = {"image": IMAGE}


@pytest.mark.parametrize(("args", "message"), [
    (["--gpu", "4091", "--", "true"], '--gpu: SkyPilot offers no GPU "4091"; nearest:'),
    (["--gpu", "a100", "--", "true"], '--gpu: "a100" is ambiguous'),
    (["--gpu", "4090:0", "--", "true"], "--gpu: expected ALIAS[:N] with N from 1 to 99"),
    (["--gpu", "4090", "--cloud", "aws", "--", "true"], '--cloud: expected runpod or any, got "aws"'),
    (["--gpu", "4090"], "COMMAND: give the command to run after --"),
    (["--gpu", "4090", "--env", "WANDB_API_KEY=wandb-s3cr3t-4f1c", "--", "true"],
     "--env: WANDB_API_KEY looks like a credential and would be written into the task file"),
    (["--gpu", "4090", "--env", "HF_TOKEN", "--", "true"], '--env: expected K=V, got "HF_TOKEN"'),
    (["--gpu", "4090", "--env", "aws_secret_access_key=x", "--", "true"],
     "--env: aws_secret_access_key looks like a credential"),
    (["--gpu", "4090", "--sweep", "HF_TOKEN=a,b", "--", "true"], "--sweep: HF_TOKEN looks like a credential"),
    (["--gpu", "4090", "--env", "1X=2", "--", "true"], '--env: "1X" is not a variable name'),
    (["--gpu", "4090", "--env", "SKYPILOT_DOCKER_PASSWORD=registry-pa55-word", "--", "true"],
     "--env: SKYPILOT_DOCKER_PASSWORD is the registry login: pass --private-registry"),
    (["--gpu", "4090", "--secret", "GITHUB_TOKEN=ghp_s3cr3tT0k3n9", "--", "true"],
     "--secret: pass the name only (GITHUB_TOKEN)"),
    (["--gpu", "4090", "--sweep", "SEED=1,,2", "--", "true"], "--sweep: expected K=V1,V2,... with non-empty"),
    (["--gpu", "4090", "--sweep", "SEED=1,1", "--", "true"], "--sweep: SEED repeats a value"),
    (["--gpu", "4090", "--sweep", "SEED=1,2", "--env", "SEED=3", "--", "true"],
     "--sweep: SEED is also given with --env"),
    (["--gpu", "4090", "--sweep", "A=" + ",".join(map(str, range(40))), "--sweep",
      "B=" + ",".join(map(str, range(30))), "--", "true"], "--sweep: 1200 combinations; at most 1000"),
    (["--gpu", "4090", "--name", "-rm -rf", "--", "true"], '--name: "-rm -rf" is not a SkyPilot task name'),
    (["--gpu", "4090", "--project", "../../etc", "--", "true"], "--project: expected a project under"),
    (["--gpu", "4090", "--image", "bad ref", "--", "true"], '--image "bad ref": not an image reference'),
    (["--gpu", "4090", "--image", "robot-user-77:registry-pa55-word@registry.example/pod", "--", "true"],
     "--image: not an image reference"),
    (["--gpu", "4090", "--typo", "--", "true"], "unknown option --typo (put COMMAND after --)"),
    (["--gpu", "4090", "--results-to", ":sftp,user=me,pass=rclone-pa55-word:results", "--", "true"],
     "--results-to: expected an rclone remote"),
    (["--gpu", "4090", "--results-to", 'x"\n[[sync]]', "--", "true"], "--results-to: expected an rclone remote"),
    (["--gpu", "4090", "--idle-minutes", "0", "--", "true"], None),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    record_push(tmp_path, **STATE)
    out = tmp_path / "out"
    done = export("--out", str(out), *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    if message:  # (typer's own usage errors are several lines: only exit 2 is ours to check)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith("imagebuild: error: " + message), done.stderr
    assert not out.exists() and done.stdout == ""
    assert_no_secret([], done.stderr)


def test_sweep_out_must_be_a_folder(tmp_path):
    (tmp_path / "tasks.yaml").write_text("keep me\n")
    done = export("--image", IMAGE, "--gpu", "4090", "--sweep", "SEED=1,2", "--out", "tasks.yaml",
                  "--", "true", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("imagebuild: error: --out: tasks.yaml is a file; a sweep writes one "
                                   "task per file into a folder")
    assert (tmp_path / "tasks.yaml").read_text() == "keep me\n"


def test_a_sweep_of_one_value_is_still_a_folder(tmp_path):
    done = export("--image", IMAGE, "--gpu", "4090", "--sweep", "SEED=7", "--", "true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "skypilot/research-pod-seed-7.yaml"
    assert "SEED: '7'" in (tmp_path / "skypilot" / "research-pod-seed-7.yaml").read_text()


def test_stdout_without_out(tmp_path):
    done = export("--image", IMAGE, "--gpu", "4090", "--", "nvidia-smi", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("name: research-pod\nresources:\n  cloud: runpod\n")
    assert list(tmp_path.iterdir()) == []


# SkyPilot's RunPod start command runs `apt update; apt install openssh-server rsync curl
# patch`. Containers here reach no package mirror, and the packages must be in the image
# anyway (an install at every launch is slow): this stub checks that instead.
APT_STUB = """#!/bin/sh
[ "$1" = install ] || exit 0
shift
missing=""
for package in "$@"; do
    case $package in -*) continue ;; esac
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
echo "$missing" >/run/apt-missing
exit 100
"""

TASK_COMMAND = ('echo "seed=$SEED venv=${VIRTUAL_ENV:-none} cwd=$PWD" | tee "$RESULTS_DIR/seed-$SEED.txt"; '
                'exit "${EXIT_WITH:-0}"')


def ssh_argv(key: Path, port: str) -> list[str]:
    return ["ssh", "-i", str(key), "-p", port, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "root@127.0.0.1"]


@pytest.fixture
def container(engine):
    names = []

    def start(*args: str) -> str:
        names.append(unique_name("imagebuild-sky"))
        docker("run", "-d", "--name", names[-1], *args)
        return names[-1]

    yield start
    for name in names:
        docker("rm", "-f", "-v", name, check=False)


def wait_for_ssh(argv: list[str], name: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run([*argv, "true"], capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(1)
    logs = docker("logs", "--tail", "40", name, check=False)
    pytest.fail(f"no SSH login with SkyPilot's key after {timeout:.0f}s:\n{logs.stdout}{logs.stderr}")


@pytest.mark.docker
@pytest.mark.slow
def test_skypilots_runpod_launch_and_the_task_run_on_the_pod_image(sky_python, pod_image, container,
                                                                  tmp_path):
    """SkyPilot's own RunPod start command (sshd setup, its key) on the image; then the
    exported run over SSH: the pod's way, results, pod-save, exit statuses."""
    key = tmp_path / "sky-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    launch = runpod_launch(sky_python, pod_image, key.with_suffix(".pub").read_text().strip(),
                           tmp_path / "home")
    assert launch["image_name"] == pod_image and launch["ports"].startswith("22/tcp,")
    stub = tmp_path / "apt"
    stub.write_text(APT_STUB)
    stub.chmod(0o755)
    # RunPod passes docker_args to the image's entrypoint as its command.
    name = container("-p", "127.0.0.1::22", "-v", f"{stub}:/usr/local/sbin/apt:ro", pod_image,
                     *shlex.split(launch["docker_args"]))
    port = docker("port", name, "22").stdout.strip().splitlines()[0].rsplit(":", 1)[1]
    ssh = ssh_argv(key, port)
    wait_for_ssh(ssh, name)
    checks = subprocess.run([*ssh, "cat /run/apt-missing 2>/dev/null; test -e /run/pod-ready && echo ready; "
                             "pgrep -x sshd >/dev/null && echo sshd"], capture_output=True, text=True)
    assert checks.stdout.split() == ["ready", "sshd"], f"packages missing or pod not ready: {checks.stdout}"

    # Results go to an rclone remote (a local path here) through the task's save.toml.
    script = sky.run_script(TASK_COMMAND, "demo", "/tmp/sky-results")
    # SkyPilot's synced workdir with the project's venv: `proj demo` finds it as /workspace/code/demo.
    subprocess.run([*ssh, "python3 -m venv ~/sky_workdir/.venv && cat > /tmp/task.sh"], input=script,
                   text=True, check=True)

    def run(env: str) -> subprocess.CompletedProcess:  # as SkyPilot runs it: bash, in the workdir
        return subprocess.run([*ssh, f"cd ~/sky_workdir && {env} bash /tmp/task.sh"],
                              capture_output=True, text=True, timeout=180)

    done = run("SEED=3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seed=3 venv=/root/sky_workdir/.venv cwd=/workspace/code/demo" in done.stdout
    assert "the command exited with status 0; saving with pod-save" in done.stderr
    saved = subprocess.run([*ssh, "cat /tmp/sky-results/seed-3.txt"], capture_output=True, text=True)
    assert saved.stdout.startswith("seed=3 "), saved.stderr

    failed = run("SEED=4 EXIT_WITH=7")
    assert failed.returncode == 7, failed.stderr
    assert "the command exited with status 7; saving with pod-save" in failed.stderr

    # Work pod-save cannot push: the task fails even though the command succeeded.
    subprocess.run([*ssh, "cd /workspace/code && git init -q unpushed && cd unpushed && "
                    "git -c user.name=t -c user.email=t@t commit -q --allow-empty -m work && "
                    "git remote add origin /nonexistent/remote.git"], check=True, capture_output=True)
    unsaved = run("SEED=5")
    assert unsaved.returncode == 1, unsaved.stdout + unsaved.stderr
    assert "pod-save failed: not everything was pushed" in unsaved.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_other_clouds_start_the_image_with_bash_as_entrypoint(pod_image, engine):
    """SkyPilot's docker path (AWS, GCP, ...): `docker run --entrypoint=/bin/bash`, so the
    pod's start steps never ran; the run does them before the command."""
    command = "type proj >/dev/null && " + TASK_COMMAND
    script = sky.run_script(command, None, "/tmp/sky-results") + "cat /tmp/sky-results/seed-9.txt\n"
    done = docker("run", "--rm", "--entrypoint=/bin/bash", "-e", "SEED=9", pod_image, "-c",
                  script.replace('exit "$status"', '[ "$status" -eq 0 ] || exit "$status"'),
                  check=False, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seed=9 venv=/opt/venv" in done.stdout
    assert "saving with pod-save" in done.stderr
    assert done.stdout.count("seed=9 venv=/opt/venv") == 2, done.stdout  # printed, then read back from the remote
    # Without --results-to, results exist only on the machine SkyPilot deletes: the task fails, naming them.
    lost = docker("run", "--rm", "--entrypoint=/bin/bash", "-e", "SEED=9", pod_image, "-c",
                  sky.run_script(command, None), check=False, timeout=180)
    assert lost.returncode == 1, lost.stdout + lost.stderr
    assert "NOT SAVED  results" in lost.stdout + lost.stderr
