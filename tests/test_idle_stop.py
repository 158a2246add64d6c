"""Idle stop on real containers of the test image: pods with a 20 s limit, side by
side. The idle one saves and stops itself with its volume intact; one with an SSH
session, a CPU-busy tmux job, a pod-keepalive lease or a sleeping `pod run` job
(pod-job) keeps running past the limit
and stops once that ends; a failing save stops the pod anyway unless the save is
required; with an API key the stop reaches the fake RunPod API as a spec-valid
`POST /v2/pods/{id}/action` (and a container still up after it, or one whose stop
RunPod refused, ends itself); bad input to the watcher and pod-keepalive."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from datetime import datetime

import pytest
from conftest import docker
from fake_runpod import FakeRunPod
from image.pod import Pod
from test_entrypoint import keys  # noqa: F401 - keys is a fixture
from test_run import imagebuild, key, names, run_json  # noqa: F401 - key, names are fixtures

from imagebuild.contract import LOCAL_POD_VAR
from imagebuild.runpod import pods as rp_pods
from imagebuild.runpod.client import Client
from imagebuild.runpod.credentials import ApiKey

pytestmark = pytest.mark.docker

LIMIT_S = 20
WATCH = {"POD_IDLE_STOP": f"{LIMIT_S}s", "POD_IDLE_INTERVAL": "2", "POD_IDLE_SAVE_BUDGET": "30"}
IDLE_LOG = "/workspace/.pod/logs/idle.log"
FAILING_SAVE = ("mkdir -p /workspace/.pod/hooks/save.d && printf '#!/bin/sh\\nexit 1\\n' "
                ">/workspace/.pod/hooks/save.d/10-fails && chmod +x /workspace/.pod/hooks/save.d/10-fails")
BUSY_LOOP = "tmux new-session -d -s job 'timeout 120 sh -c \"while :; do :; done\"'"


def bridge_address() -> str:
    """The host's address on docker's default bridge: where a container reaches it."""
    config = json.loads(docker("network", "inspect", "bridge", "-f", "{{json .IPAM.Config}}").stdout)[0]
    # Docker leaves Gateway out when it picked the default: the subnet's first address.
    return config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


def state(pod: Pod) -> str:
    return docker("inspect", "-f", "{{.State.Status}}", pod.name).stdout.strip()


def idle_log(pod: Pod) -> str:
    """The watcher's log, read off the volume (works on a stopped pod too)."""
    return pod.on_volume(f"cat {IDLE_LOG}").stdout


def stamp(log: str, text: str) -> float:
    """The time of the first log line with ``text`` (seconds since the epoch)."""
    line = next(line for line in log.splitlines() if text in line)
    return datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S").timestamp()


def wait_until(check, timeout: float, what: str) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"{what} not within {timeout:.0f} s")


@pytest.fixture(scope="module")
def fake():
    with FakeRunPod(host=bridge_address()) as server:
        yield server


@pytest.fixture(scope="module")
def scene(pod_image, keys, fake):  # noqa: F811 - keys is the fixture
    """Six pods started together; each test looks at its own. Busy ones get busy
    right after readiness, long before the 20 s limit."""
    with Client(fake.url, ApiKey(fake.api_key)) as client:
        remote = rp_pods.create_pod(client, rp_pods.CreateOptions(
            name="idle-api", image=pod_image, gpu_ids=["NVIDIA GeForce RTX 4090"]))
        wait_until(lambda: rp_pods.get_pod(client, remote["id"])["status"] == "RUNNING", 30,
                   "the fake pod RUNNING")
    api_env = {**WATCH, "RUNPOD_API_URL": fake.url, "RUNPOD_API_KEY": fake.api_key,
               "RUNPOD_POD_ID": remote["id"], "POD_IDLE_API_GRACE": "5"}

    def watched(env: dict[str, str]) -> Pod:
        return Pod(pod_image, keys["a"], keys["known_hosts"], env=env)

    pods = {
        "idle": watched(WATCH),
        "ssh": watched(WATCH),
        "tmux": watched(WATCH),
        "keepalive": watched(WATCH),
        "job": watched(WATCH),
        "requires-save": watched({**WATCH, "POD_IDLE_REQUIRES_SAVE": "1"}),
        "api": watched(api_env),
        # RunPod refuses the stop (no such pod): on RunPod the watcher retries, never ending
        # the container (RunPod would restart it on the same billing GPU)...
        "api-refused": watched({**api_env, "RUNPOD_POD_ID": "no-such-pod", "POD_IDLE_API_RETRY": "2"}),
        # ...while a local pod (marked so by `imagebuild run`) still goes down.
        "local-refused": watched({**api_env, "RUNPOD_POD_ID": "no-such-pod", LOCAL_POD_VAR: "1"}),
        "bad-duration": watched({**WATCH, "POD_IDLE_STOP": "soon"}),
    }
    # A download pod-save's default policy lets go (datasets/*): the save succeeds, the volume keeps it.
    pods["idle"].prepare_volume("mkdir -p /workspace/datasets/d && echo kept > /workspace/datasets/d/run.txt")
    pods["requires-save"].prepare_volume(FAILING_SAVE)
    pods["api"].prepare_volume(FAILING_SAVE)
    scene = {"pods": pods, "remote": remote}
    busy = {
        "ssh": lambda pod: scene.update(session=subprocess.Popen(
            pod.ssh_argv("root", "sleep 300"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)),
        "tmux": lambda pod: pod.exec(BUSY_LOOP, user="dev"),
        "keepalive": lambda pod: scene.update(lease=pod.exec("pod-keepalive 5m downloading", user="dev")),
        # A job of `imagebuild pod run` that sleeps: no CPU, no session; the job itself is busy.
        "job": lambda pod: pod.exec("pod-job start waits-for-data -- sleep 300"),
    }
    try:
        for pod in pods.values():
            pod.create(start=False)
        for pod in pods.values():
            pod.start(wait=False)
        for which, pod in pods.items():  # each busy as soon as it is up
            pod.wait_ready()
            busy.get(which, lambda _: None)(pod)
        scene["started"] = time.monotonic()
        yield scene
    finally:
        if "session" in scene:
            scene["session"].kill()
        for pod in pods.values():
            pod.destroy()


def test_an_idle_pod_saves_then_stops_itself_keeping_its_volume(scene):
    pod = scene["pods"]["idle"]
    wait_until(lambda: state(pod) == "exited", LIMIT_S + 40, "the idle pod's stop")
    assert docker("inspect", "-f", "{{.State.ExitCode}}", pod.name).stdout.strip() == "0"
    log = idle_log(pod)
    watched, stopped = (stamp(log, text) for text in ("watch: the pod stops after 20s idle", "stop:"))
    assert stopped - watched >= LIMIT_S, log
    lines = log.splitlines()
    said = [next(i for i, line in enumerate(lines) if text in line) for text in (
        "idle for", "save: running pod-save", "save: pod-save ok", "stop: no RUNPOD_API_KEY",
        "stop: ending the container")]
    assert said == sorted(said), log  # in this order: idle, saved, then stopped
    assert pod.on_volume("cat /workspace/datasets/d/run.txt").stdout == "kept\n"


@pytest.mark.parametrize(("which", "reason"), [
    ("ssh", "1 SSH session(s) open"),
    ("tmux", "% of a core"),
    ("keepalive", "1 pod-keepalive lease(s) held"),
    ("job", "1 job(s) running (pod-job)"),
])
def test_a_busy_pod_keeps_running_past_the_limit(scene, which, reason):
    pod = scene["pods"][which]
    left = scene["started"] + LIMIT_S + 12 - time.monotonic()
    if left > 0:
        time.sleep(left)
    assert state(pod) == "running", idle_log(pod)
    log = idle_log(pod)
    assert f"busy: {reason}" in log or (which == "tmux" and "busy: processes used" in log), log
    assert "stop:" not in log
    assert log.count("busy:") <= 3, log  # one line per change of cause, not one per check (16)


def test_a_failed_save_stops_the_pod_only_when_the_save_is_not_required(scene):
    kept = scene["pods"]["requires-save"]
    wait_until(lambda: "not stopping: the save failed" in idle_log(kept), LIMIT_S + 40,
               "the required save's refusal")
    assert state(kept) == "running"
    assert "pod-save exited with status" in idle_log(kept)


def test_with_an_api_key_the_stop_reaches_runpod_as_a_valid_action(scene, fake):
    pod, remote = scene["pods"]["api"], scene["remote"]
    path = f"/v2/pods/{remote['id']}/action"
    wait_until(lambda: fake.calls("POST", path), LIMIT_S + 40, "the stop action")
    (call,) = fake.calls("POST", path)
    assert call.body == {"action": "stop"} and call.status == 200
    assert not fake.mismatches, fake.mismatches
    assert fake.pods[remote["id"]].status == "EXITED"
    log = idle_log(pod)
    assert "pod-save exited with status" in log  # a failed save does not keep it running
    assert "RunPod accepted the stop (HTTP 200)" in log
    # Nothing here stops this container as RunPod would: 5 s later the watcher says so,
    # and leaves it (ending PID 1 on RunPod restarts the container, still billing).
    wait_until(lambda: "waiting for RunPod (not ending it)" in idle_log(pod), 30, "the grace's end")
    assert state(pod) == "running" and "stop: ending the container" not in idle_log(pod)
    assert fake.api_key not in idle_log(pod) + pod.logs()


def test_a_refused_api_stop_on_runpod_is_retried_and_never_ends_the_container(scene, fake):
    pod = scene["pods"]["api-refused"]
    wait_until(lambda: len(fake.calls("POST", "/v2/pods/no-such-pod/action")) >= 4, LIMIT_S + 60,
               "the retried stops")
    log = idle_log(pod)
    assert "RunPod did not accept the stop (HTTP 404); not ending the container" in log
    assert "stop: retrying in 2 s" in log and "stop: retrying in 4 s" in log, log  # backing off
    assert state(pod) == "running" and "stop: ending the container" not in log
    assert fake.api_key not in log + pod.logs()


def test_a_refused_api_stop_ends_a_local_pod_instead(scene, fake):
    pod = scene["pods"]["local-refused"]
    wait_until(lambda: state(pod) == "exited", LIMIT_S + 40, "the pod's own stop")
    log = idle_log(pod)
    assert "RunPod did not accept the stop (HTTP 404)" in log and "stop: ending the container" in log
    assert fake.api_key not in log + pod.logs()


def test_a_bad_duration_is_logged_and_leaves_the_pod_alone(scene):
    pod = scene["pods"]["bad-duration"]
    assert "POD_IDLE_STOP: expected a duration like 45m or 2h; idle stop is off" in idle_log(pod)
    left = scene["started"] + LIMIT_S + 5 - time.monotonic()
    if left > 0:
        time.sleep(left)
    assert state(pod) == "running"


def test_pod_keepalive_refuses_bad_input_and_holds_a_lease_while_a_command_runs(scene):
    pod = scene["pods"]["keepalive"]
    for args, message in ((["soon"], "DURATION: expected a duration like 30m"),
                          (["--release", "nope"], "--release: no lease nope"),
                          (["--"], "--: expected a command")):
        done = docker("exec", "-u", "dev", pod.name, "pod-keepalive", *args, check=False)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done
    held = pod.exec("pod-keepalive -- sh -c 'pod-keepalive --list; exit 3' || echo status $?", user="dev")
    assert "while pid" in held and "while: sh" in held and held.endswith("status 3\n")
    assert "while pid" not in pod.exec("pod-keepalive --list", user="dev")  # gone with the command
    assert "downloading" in pod.exec("pod-keepalive --list", user="dev")  # the 5 m lease stays
    # A second watcher started by hand leaves at once: one watcher per pod.
    assert docker("exec", pod.name, "timeout", "10", "pod-idle-watch", check=False).returncode == 0
    assert "another pod-idle-watch is running; this one exits" in idle_log(pod)


def test_busy_pods_stop_once_nothing_keeps_them_busy(scene):
    pods = scene["pods"]
    scene["session"].kill()
    pods["tmux"].exec("tmux kill-server", user="dev")
    lease = scene["lease"].split()[2]  # "pod-keepalive: lease ID keeps ..."
    pods["keepalive"].exec(f"pod-keepalive --release {lease}", user="dev")
    for which in ("ssh", "tmux", "keepalive"):
        wait_until(lambda p=pods[which]: state(p) == "exited", LIMIT_S + 40, f"the {which} pod's stop")
        assert "save: pod-save ok" in idle_log(pods[which])


def test_run_idle_stop_reaches_the_local_pod_and_pod_status_shows_the_watcher(
        pod_image, names, key, tmp_path):  # noqa: F811 - fixtures
    name = names()
    env_file = tmp_path / "pod.env"
    env_file.write_text("POD_IDLE_INTERVAL=1\n")
    pod = run_json("--image", pod_image, "--name", name, "--public-key", f"{key}.pub",
                   "--env-file", str(env_file), "--idle-stop", "1h", "--idle-stop-requires-save")
    assert pod["status"] == "running"
    env = docker("inspect", "-f", "{{json .Config.Env}}", pod["container"]).stdout
    assert "POD_IDLE_STOP=1h" in env and "POD_IDLE_REQUIRES_SAVE=1" in env
    time.sleep(3)  # a check or two
    done = imagebuild("pod", "status", f"local:{name}")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("idle"))
    assert "stops after 1h idle (pod-save first: required) by ending the container" in line
    assert "; now idle for" in line or "; now busy:" in line, line
