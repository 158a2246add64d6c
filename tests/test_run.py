"""`imagebuild run` and the local-pod library on real containers of the test image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CI_SPEC, docker, unique_name

pytestmark = pytest.mark.docker

CLI = [sys.executable, "-m", "imagebuild"]


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run-ssh")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "id")], check=True)
    return folder / "id"


@pytest.fixture
def names(engine):
    """Pod names for a test; their containers and volumes are removed afterwards."""
    from imagebuild.pods import localrun

    made: list[str] = []

    def make() -> str:
        made.append(unique_name("ibrun"))
        return made[-1]

    yield make
    for name in made:
        localrun.remove(engine, name, volume=True)


def imagebuild(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def run_json(*args: str, **kwargs) -> dict:
    done = imagebuild("run", *args, "--json", **kwargs)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def ssh(endpoint: dict, key: Path, command: str, known_hosts: Path, alias: str) -> str:
    done = subprocess.run(
        ["ssh", "-i", str(key), "-p", str(endpoint["port"]), "-o", f"UserKnownHostsFile={known_hosts}",
         "-o", f"HostKeyAlias={alias}", "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes",
         "-o", "LogLevel=ERROR", f"{endpoint['user']}@{endpoint['host']}", command],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_run_recreate_keeps_the_volume_and_host_key(pod_image, names, key, tmp_path):
    name = names()
    env_file = tmp_path / "pod.env"
    env_file.write_text("WANDB_PROJECT=residual-rl\nexport HF_HUB_OFFLINE='1'\n")
    first = run_json("--image", pod_image, "--name", name, "--public-key", f"{key}.pub",
                     "--env-file", str(env_file))
    assert first["container"] == f"imagebuild-{name}" and first["volume"] == f"imagebuild-{name}-workspace"
    assert first["ssh"]["host"] == "127.0.0.1" and first["ssh"]["user"] == "root"
    container_id = docker("inspect", "-f", "{{.Id}}", first["container"]).stdout.strip()
    # Published on loopback only, SSH and Jupyter.
    ports = docker("port", first["container"]).stdout
    assert "22/tcp -> 127.0.0.1:" in ports and "8888/tcp -> 127.0.0.1:" in ports and "0.0.0.0" not in ports
    known_hosts = tmp_path / "known_hosts"
    out = ssh(first["ssh"], key, "echo $RUNPOD_POD_ID $WANDB_PROJECT $HF_HUB_OFFLINE > /workspace/mark; "
              "cat /workspace/mark", known_hosts, first["container"])
    assert out.split() == [name, "residual-rl", "1"]

    # Running it again is idempotent: same container.
    again = run_json("--name", name, "--public-key", f"{key}.pub")
    assert docker("inspect", "-f", "{{.Id}}", again["container"]).stdout.strip() == container_id

    # --recreate: a new container on the same volume, same host key (strict check
    # against the alias recorded above), the pod's variables kept.
    done = imagebuild("run", "--image", pod_image, "--name", name, "--public-key", f"{key}.pub",
                      "--recreate")
    assert done.returncode == 0, done.stderr
    assert docker("inspect", "-f", "{{.Id}}", f"imagebuild-{name}").stdout.strip() != container_id
    port = docker("port", f"imagebuild-{name}", "22/tcp").stdout.strip().rsplit(":", 1)[1]
    assert f"ssh -p {port} -i {key} -o HostKeyAlias=imagebuild-{name} root@127.0.0.1" in done.stdout
    strict = subprocess.run(
        ["ssh", "-i", str(key), "-p", port, "-o", f"UserKnownHostsFile={known_hosts}",
         "-o", f"HostKeyAlias=imagebuild-{name}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
         "root@127.0.0.1", "cat /workspace/mark; echo $WANDB_PROJECT; test -f /run/pod-ready && echo ready"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert strict.returncode == 0, strict.stderr
    assert strict.stdout.split() == [name, "residual-rl", "1", "residual-rl", "ready"]

    # Without --image or a spec in the folder, --recreate keeps the pod's image.
    empty = tmp_path / "no-spec-here"
    empty.mkdir()
    kept = run_json("--name", name, "--public-key", f"{key}.pub", "--recreate", cwd=empty)
    assert kept["image"] == pod_image and kept["volume"] == first["volume"]


def test_library_find_stop_start_and_endpoint(engine, pod_image, names, key, tmp_path, monkeypatch):
    from imagebuild.errors import UserError
    from imagebuild.pods import localrun

    name = names()
    env = {**localrun.runpod_env(name), "PUBLIC_KEY": Path(f"{key}.pub").read_text()}
    pod = localrun.start(engine, name, pod_image, env)
    assert pod.running and pod.ssh is not None
    assert localrun.ssh_endpoint(engine, name) == pod.ssh
    assert localrun.find(engine, name).name == name
    assert localrun.pod_env(engine, name)["RUNPOD_POD_ID"] == name
    assert "PATH" not in localrun.pod_env(engine, name)  # the image's own variables stay the image's

    stopped = localrun.stop(engine, name)
    assert stopped.status == "exited"
    assert docker("inspect", "-f", "{{.State.ExitCode}}", stopped.container).stdout.strip() == "0"
    with pytest.raises(UserError, match="is exited"):
        localrun.ssh_endpoint(engine, name)
    again = localrun.start(engine, name, pod_image, env)
    assert again.container_id == pod.container_id and again.running

    fresh = localrun.recreate(engine, name)
    assert fresh.container_id != pod.container_id and fresh.image == pod_image
    localrun.remove(engine, name, volume=True)
    assert localrun.find(engine, name) is None
    assert docker("volume", "inspect", localrun.volume_name(name), check=False).returncode != 0

    # The next pod of this name has a fresh volume, so new host keys: the old key is forgotten.
    known = tmp_path / "home" / ".ssh" / "known_hosts"
    known.parent.mkdir(parents=True)
    key_type, key_data = Path(f"{key}.pub").read_text().split()[:2]
    other = f"other-host {key_type} {key_data}"
    known.write_text(f"{localrun.container_name(name)} {key_type} {key_data}\n{other}\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    localrun.start(engine, name, pod_image, env)
    assert known.read_text().splitlines() == [other]


def test_default_image_is_the_pushed_one_else_the_local_build(engine, built, pod_image, names, key,
                                                              tmp_path):
    from imagebuild.image.lock import write_lock
    from imagebuild.image.spec import load_spec
    from imagebuild.project import Project

    spec = tmp_path / "imagebuild.toml"
    shutil.copy(CI_SPEC, spec)
    write_lock(tmp_path / "imagebuild.lock", built.plan.lock)
    project = Project(load_spec(spec))  # the local build, recorded as `imagebuild build` does
    project.record_build(built.plan.spec, built.image, [r.image for r in built.layers],
                         built.plan.lock)
    base = os.environ.get("IMAGEBUILD_TEST_BASE")
    args = ["--spec", str(spec), "--public-key", f"{key}.pub"]
    if base is None:  # the fixture's image is this spec's build
        assert run_json(*args, "--name", names())["image"] == pod_image
    pushed = f"imagebuild-test/pushed:{unique_name('t')}"
    docker("tag", pod_image, pushed)
    try:
        project.record_push(None, {"image": pushed})
        assert run_json(*args, "--name", names())["image"] == pushed
    finally:
        docker("rmi", pushed, check=False)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--image", "x", "--spec", "y.toml"], 2, "pass --image or --spec, not both"),
    (["--name", "Bad_Name"], 2, "--name 'Bad_Name': expected lowercase letters"),
    (["--env-file", "/nonexistent/pod.env"], 2, "--env-file: /nonexistent/pod.env does not exist"),
    (["--public-key", "/nonexistent/id.pub"], 2, "--public-key: expected a public key or a .pub file"),
    # --idle-stop goes through pod create's [pod] settings, --save-every through its checks.
    (["--idle-stop", "45"], 2, "--idle-stop: '45' has no unit"),
    (["--idle-stop", "0s"], 2, "--idle-stop: expected at least 10s"),
    (["--idle-stop", "-5m"], 2, "--idle-stop: expected a duration like 45m"),
    (["--idle-stop", "nan"], 2, "--idle-stop: expected a duration like 45m"),
    (["--idle-stop", " "], 2, "--idle-stop: empty"),
    (["--save-every", "45"], 2, "--save-every: '45' has no unit"),
    (["--save-every", "1e9h"], 2, "--save-every: expected a duration like 45m"),
    (["--save-every", ""], 2, "--save-every: empty"),
])
def test_bad_flags_are_one_line_errors(args, code, message, key):
    extra = [] if "--public-key" in args else ["--public-key", f"{key}.pub"]
    done = imagebuild("run", *args, *extra)
    assert done.returncode == code, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_no_key_and_no_image_are_one_line_errors(engine, tmp_path, key):
    done = imagebuild("run", "--image", "x", env={"HOME": str(tmp_path)})
    assert done.returncode == 2 and "no SSH public key in ~/.ssh: pass --public-key FILE" in done.stderr
    spec = tmp_path / "imagebuild.toml"
    spec.write_text(CI_SPEC.read_text().replace('name = "imagebuild-test/pod"',
                                                'name = "imagebuild-test/never-built"'))
    done = imagebuild("run", "--spec", str(spec), "--public-key", f"{key}.pub")
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and f"no image of {spec} here: build it with" in done.stderr


@pytest.mark.parametrize(("script", "outcome"), [
    ("echo starting > /run/pod-status; sleep 1; echo ready > /run/pod-status", "ready"),
    ("echo no-ssh > /run/pod-status", "started without SSH"),
    # An image from before the status file: its ready marker alone.
    ("touch /run/pod-ready", "ready"),
    ("echo starting > /run/pod-status", "not ready after 3 s"),
])
def test_readiness_comes_from_the_entrypoint_status_file(engine, pod_image, script, outcome):
    """What the entrypoint writes in /run/pod-status decides, not its log lines."""
    from imagebuild import contract
    from imagebuild.errors import UserError
    from imagebuild.pods import localrun

    assert contract.STATUS_FILE == "/run/pod-status" and contract.READY_MARKER == "/run/pod-ready"
    container = engine.client.containers.run(
        pod_image, ["-c", f"{script}; echo 'pod not ready: decoy' >&2; sleep 30"], entrypoint="bash",
        detach=True, name=unique_name("ibready"))
    try:
        if outcome == "ready":
            localrun.wait_ready(container, timeout=20)
        else:
            with pytest.raises(UserError, match=outcome):
                localrun.wait_ready(container, timeout=3)
    finally:
        container.remove(force=True)


def test_pod_save_of_a_local_pod_finds_the_key_it_was_started_with(pod_image, names, tmp_path):
    # A key under a name ssh never tries by itself: only the pod's own PUBLIC_KEY
    # can lead `pod save` to it (issue 11: local pods without -i).
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "lab-pod"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    name = names()
    run_json("--image", pod_image, "--name", name, "--public-key", f"{key}.pub")
    env = {"HOME": str(home)}
    saved = imagebuild("pod", "save", f"local:{name}", "--json", env=env)
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert json.loads(saved.stdout)["ok"] is True

    # The control: the same command fails once that key is gone (no -i to fall back on).
    key.rename(home / "elsewhere")
    refused = imagebuild("pod", "save", f"local:{name}", "--json", env=env)
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
