"""`imagebuild pod ...` end to end: the real CLI in a subprocess against the fake RunPod.

Every run also checks that the API key never shows up in the output (see
``fake_runpod.fixtures.PodCli``) and the fake fails the test on any request or
response off RunPod's OpenAPI spec.
"""

from __future__ import annotations

import io
import json
import math
import stat
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from conftest import record_push
from fake_runpod import CAPACITY_TEXT, BannerBackend, FakeRunPod

from imagebuild.runpod import pods
from imagebuild.runpod.client import Client
from imagebuild.runpod.credentials import ApiKey

if TYPE_CHECKING:
    from fake_runpod.fixtures import PodCli

pytest_plugins = ["fake_runpod.fixtures"]

IMAGE = "registry.example/you/research-pod@sha256:" + "ab" * 32
RTX4090 = "NVIDIA GeForce RTX 4090"
A6000 = "NVIDIA RTX A6000"


@pytest.fixture
def cli(pod_cli: PodCli) -> PodCli:
    """The CLI in a project folder that has pushed IMAGE (CUDA 12.6)."""
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    return pod_cli


def created(fake: FakeRunPod) -> list[dict]:
    return [r.body for r in fake.calls("POST", "/v2/pods")]


def api(fake: FakeRunPod) -> httpx.Client:
    return httpx.Client(base_url=fake.url, headers={"Authorization": f"Bearer {fake.api_key}"})


# -- create -------------------------------------------------------------------


def test_create_waits_until_ssh_answers(cli, fake_runpod):
    result = cli("pod", "create", "--gpu", "4090", "--name", "exp")
    assert result.code == 0, result.output
    assert "pod exp (" in result.stdout and "ready" in result.stdout
    (pod,) = fake_runpod.pods.values()
    assert pod.status == "RUNNING"
    # It polled past PROVISIONING and STARTING rather than trusting the create answer.
    assert len(fake_runpod.calls("GET", f"/v2/pods/{pod.id}")) >= 2
    assert "pod exp: provisioning (" in result.stderr


def test_create_sends_the_spec_defaults_the_pushed_image_and_its_cuda_floor(cli, fake_runpod):
    assert cli("pod", "create", "--gpu", "4090", "--name", "exp", "--no-wait").code == 0
    (body,) = created(fake_runpod)
    key = (cli.home / ".ssh" / "id_ed25519.pub").read_text().strip()
    assert body == {
        "name": "exp",
        "image": IMAGE,
        "gpu": {"id": RTX4090, "count": 1, "minCudaVersion": "12.6"},
        "cloud": "SECURE",
        "disk": 30,
        "mounts": {"persistent": {"size": 50, "path": "/workspace"}},
        "ports": ["22/tcp", "8888/http"],
        # No PUBLIC_KEY: RunPod injects the account's keys (startSsh). What the host knows
        # of the image, for the pod's provenance record (an image cannot know its digest).
        "env": {"POD_IMAGE_REF": IMAGE, "POD_IMAGE_DIGEST": IMAGE.partition("@")[2]},
        "startSsh": True,
    }
    # The local key was registered on the account instead, so the gateway knows it too.
    assert fake_runpod.account.ssh_keys == [key]
    (pod,) = fake_runpod.pods.values()
    assert pod.request["env"]["PUBLIC_KEY"] == key
    assert pod.host_cuda == "12.6"  # the fake places it on a host new enough, not the oldest (12.4)


def test_spec_pod_table_sets_defaults_and_flags_override(cli, fake_runpod):
    (cli.workdir / "imagebuild.toml").write_text(
        '[image]\nname = "registry.example/you/sim"\n\n'
        '[pod]\ngpu = "a6000"\ngpu_count = 2\nvolume_gb = 100\ndisk_gb = 40\ncloud = "community"\n'
        'ports = ["8888/http"]\ndatacenter = ["EU-RO-1"]\nenv = { WANDB_PROJECT = "sim", MODE = "spec" }\n'
    )
    result = cli("pod", "create", "--no-wait", "--disk-gb", "60", "--env", "MODE=flag", "--datacenter", "US-TX-3")
    assert result.code == 0, result.output
    (body,) = created(fake_runpod)
    assert body["gpu"] == {"id": A6000, "count": 2, "minCudaVersion": "12.6"}
    assert (body["cloud"], body["disk"], body["mounts"]["persistent"]["size"]) == ("COMMUNITY", 60, 100)
    assert body["ports"] == ["22/tcp", "8888/http"]  # SSH is always published
    assert body["dataCenterIds"] == ["US-TX-3"]
    assert body["env"]["WANDB_PROJECT"] == "sim" and body["env"]["MODE"] == "flag"
    assert body["name"].startswith("sim-")
    # Without the flag, the spec's data centers apply.
    assert cli("pod", "create", "--no-wait", "--name", "dc").code == 0
    assert created(fake_runpod)[-1]["dataCenterIds"] == ["EU-RO-1"]


def test_env_values_arrive_intact(cli, fake_runpod):
    tricky = ' say "hi" & it\'s $HOME\nsecond line\twith tab — ünïcödé ✓ 🚀\n'
    env_file = cli.workdir / "pod.env"
    env_file.write_text(
        "# comment\n"
        "export FROM_FILE='single $quoted \"value\"'\n"
        'MULTI="line one\nline two"\n'
        "PLAIN=a=b=c\n"
        'SPACED="  padded  "\n',
        encoding="utf-8",
    )
    result = cli("pod", "create", "--no-wait", "--name", "env", "--env", f"TRICKY={tricky}",
                 "--env", "EMPTY=", "--env-file", str(env_file))
    assert result.code == 0, result.output
    (body,) = created(fake_runpod)
    env = body["env"]
    assert env["TRICKY"] == tricky
    assert env["EMPTY"] == ""
    assert env["FROM_FILE"] == 'single $quoted "value"'
    assert env["MULTI"] == "line one\nline two"
    assert env["PLAIN"] == "a=b=c"
    assert env["SPACED"] == "  padded  "
    # ...and they are what the pod reports back.
    (pod,) = fake_runpod.pods.values()
    with api(fake_runpod) as http:
        assert http.get(f"/pods/{pod.id}").json()["env"]["TRICKY"] == tricky


def test_explicit_public_key_and_a_missing_one(cli, fake_runpod):
    pub = cli.workdir / "runpod.pub"
    pub.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExplicitKey runpod\n")
    assert cli("pod", "create", "--no-wait", "--name", "a", "--public-key", str(pub)).code == 0
    for path in (cli.home / ".ssh").glob("*.pub"):
        path.unlink()
    result = cli("pod", "create", "--no-wait", "--name", "b")
    assert result.code == 0 and "registered with your RunPod account" in result.stderr
    first, second = created(fake_runpod)
    assert "PUBLIC_KEY" not in first["env"] and "PUBLIC_KEY" not in second["env"]
    assert fake_runpod.account.ssh_keys == ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExplicitKey runpod"]
    assert second["startSsh"] is True


def test_create_json_prints_the_pod_shape_with_runpods_object_under_raw(cli, fake_runpod):
    result = cli("pod", "create", "--name", "j", "--json")
    assert result.code == 0, result.output
    pod = json.loads(result.stdout)
    assert (pod["format"], pod["kind"], pod["name"], pod["status"]) == (1, "runpod", "j", "running")
    assert pod["ssh"]["kind"] == "direct" and pod["ssh"]["port"] > 0 and pod["ssh"]["user"] == "root"
    assert pod["raw"]["status"] == "RUNNING" and pod["raw"]["ssh"]["direct"]["port"] == pod["ssh"]["port"]


def test_without_a_pushed_image_create_says_to_push(pod_cli, fake_runpod):
    result = pod_cli("pod", "create", "--gpu", "4090")
    assert result.code == 2
    assert "imagebuild push" in result.stderr and "--image" in result.stderr
    assert created(fake_runpod) == []


def test_two_specs_in_one_folder_each_run_their_own_push(pod_cli, fake_runpod):
    """`push --spec other.toml` records other.toml's image, never the folder's: a pod of
    imagebuild.toml does not run it."""
    other_image = "registry.example/you/other@sha256:" + "cd" * 32
    for name in ("imagebuild", "other"):
        (pod_cli.workdir / f"{name}.toml").write_text(f'[image]\nname = "registry.example/you/{name}"\n')
    record_push(pod_cli.workdir, "other.toml", image=other_image, cuda="12.6")
    refused = pod_cli("pod", "create", "--no-wait", "--gpu", "4090", "--spec", "imagebuild.toml")
    assert refused.code == 2 and "nothing pushed from" in refused.stderr, refused.output
    assert "imagebuild.toml yet" in refused.stderr and created(fake_runpod) == []
    assert pod_cli("pod", "create", "--no-wait", "--gpu", "4090", "--spec", "other.toml").code == 0
    (body,) = created(fake_runpod)
    assert body["image"] == other_image and body["gpu"]["minCudaVersion"] == "12.6"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--gpu", "h100"], '"h100" is ambiguous'),
        (["--gpu", "4090,a7000"], 'no GPU "a7000"'),
        (["--env", "1BAD=x"], "--env: expected NAME=VALUE"),
        (["--env", "NOEQUALS"], "without '='"),
        (["--volume-gb", "5"], "--volume-gb: input should be greater than or equal to 10, got 5"),
        (["--ports", "22"], "--ports"),
        (["--cloud", "moon"], "--cloud"),
        (["--env-file", "missing.env"], "--env-file"),
        (["--env", "POD_IMAGE_DIGEST=sha256:0"], "POD_IMAGE_DIGEST"),
    ],
)
def test_bad_create_flags_are_one_line_and_create_nothing(cli, fake_runpod, flags, expected):
    result = cli("pod", "create", "--no-wait", *flags)
    assert result.code == 2, result.output
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert created(fake_runpod) == []


# Each [pod] key out of bounds, as a flag and as the spec's key: one set of bounds (the
# spec's model), one line naming where the value came from, no pod.
POD_KEYS_OUT_OF_BOUNDS = [
    ("gpu_count", "0", "input should be greater than or equal to 1, got 0"),
    ("gpu_count", "9", "input should be less than or equal to 8, got 9"),
    ("volume_gb", "5", "input should be greater than or equal to 10, got 5"),
    ("volume_gb", "4001", "input should be less than or equal to 4000, got 4001"),
    ("disk_gb", "4", "input should be greater than or equal to 5, got 4"),
    ("disk_gb", "1001", "input should be less than or equal to 1000, got 1001"),
    ("cloud", "moon", "expected 'secure' or 'community', got \"moon\""),
    ("ports", "22", 'expected ports like "22/tcp'),
    ("idle_stop", "5s", "expected at least 10s, got '5s'"),
    ("idle_stop", "soon", "expected a duration like 45m, 2h or 1h30m, got 'soon'"),
]


@pytest.mark.parametrize(("key", "value", "expected"), POD_KEYS_OUT_OF_BOUNDS)
def test_pod_keys_share_one_set_of_bounds_as_flags_and_in_the_spec(pod_cli, fake_runpod, key, value,
                                                                     expected):
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    flag = pod_cli("pod", "create", "--no-wait", f"--{key.replace('_', '-')}", value)
    spec_value = f'["{value}"]' if key == "ports" else value if value.isdigit() else f'"{value}"'
    (pod_cli.workdir / "imagebuild.toml").write_text(f"[pod]\n{key} = {spec_value}\n")
    spec = pod_cli("pod", "create", "--no-wait")
    for result, where in ((flag, f"--{key.replace('_', '-')}"), (spec, f"imagebuild.toml: pod.{key}")):
        assert result.code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"imagebuild: error: {where}: "), result.stderr
        assert expected in lines[0], result.stderr
    assert created(fake_runpod) == []


@pytest.mark.docker
def test_cuda_floor_from_a_local_images_label(cli, fake_runpod, engine):
    tag = f"imagebuild-test/cuda-label:{uuid.uuid4().hex[:8]}"
    dockerfile = io.BytesIO(b"FROM scratch\nLABEL imagebuild.cuda=12.8.1\n")
    engine.client.images.build(fileobj=dockerfile, tag=tag, rm=True)
    try:
        result = cli("pod", "create", "--no-wait", "--name", "lbl", "--image", tag)
    finally:
        engine.client.images.remove(tag, force=True)
    assert result.code == 0, result.output
    (body,) = created(fake_runpod)
    assert body["image"] == tag and body["gpu"]["minCudaVersion"] == "12.8"


def test_unknown_image_gets_no_cuda_floor(cli, fake_runpod):
    result = cli("pod", "create", "--no-wait", "--name", "x", "--image", "ghcr.io/nobody/unknown:1",
                 env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.code == 0, result.output
    assert "minCudaVersion" not in created(fake_runpod)[0]["gpu"]
    assert "no CUDA version known" in result.stderr


# -- create under faults --------------------------------------------------------


def test_fallback_gpu_is_tried_when_capacity_is_short(cli, fake_runpod):
    fake_runpod.inject("capacity", gpu_ids=[RTX4090])
    result = cli("pod", "create", "--gpu", "4090,a6000", "--name", "fb", "--no-wait")
    assert result.code == 0, result.output
    assert [b["gpu"]["id"] for b in created(fake_runpod)] == [RTX4090, A6000]
    assert [p.request["gpu"]["id"] for p in fake_runpod.pods.values()] == [A6000]
    assert f"{RTX4090}: no capacity; trying {A6000}" in result.stderr


def test_no_capacity_anywhere_quotes_runpod_and_says_what_to_do(cli, fake_runpod):
    fake_runpod.inject("capacity", times=math.inf)
    result = cli("pod", "create", "--gpu", "4090,a6000", "--name", "none")
    assert result.code == 1
    assert CAPACITY_TEXT in result.stderr
    assert "--cloud community" in result.stderr and "--datacenter" in result.stderr
    assert len(created(fake_runpod)) == 2 and fake_runpod.pods == {}


def test_dropped_response_after_create_makes_one_pod(cli, fake_runpod):
    fake_runpod.inject("drop_after_create")
    result = cli("pod", "create", "--name", "once")
    assert result.code == 0, result.output
    assert len(created(fake_runpod)) == 1
    assert [p.request["name"] for p in fake_runpod.pods.values()] == ["once"]


def test_server_error_on_create_looks_up_the_name_before_retrying(cli, fake_runpod):
    fake_runpod.inject("server_error", method="POST", path="/v2/pods")
    result = cli("pod", "create", "--name", "retry", "--no-wait")
    assert result.code == 0, result.output
    sequence = [(r.method, r.status) for r in fake_runpod.requests if r.path == "/v2/pods"]
    # name check, create (500), look-ups by name over the listing-lag window (not
    # there), create again
    assert sequence[:2] == [("GET", 200), ("POST", 500)] and sequence[-1] == ("POST", 201)
    lookups = sequence[2:-1]
    assert len(lookups) >= 2 and set(lookups) == {("GET", 200)}
    posts = fake_runpod.calls("POST", "/v2/pods")
    assert posts[1].at - posts[0].at >= 1.0  # the whole window (IMAGEBUILD_RUNPOD_LISTING_LAG=1)
    assert len(fake_runpod.pods) == 1


def test_create_keeps_failing_gives_up_boundedly_with_one_pod_at_most(cli, fake_runpod):
    fake_runpod.inject("server_error", times=math.inf, method="POST", path="/v2/pods")
    result = cli("pod", "create", "--name", "down", "--no-wait")
    assert result.code == 1
    assert "gave up after 4 attempts" in result.stderr
    assert len(created(fake_runpod)) == 4 and fake_runpod.pods == {}


def test_existing_name_is_refused(cli, fake_runpod):
    assert cli("pod", "create", "--name", "dup", "--no-wait").code == 0
    result = cli("pod", "create", "--name", "dup", "--no-wait")
    assert result.code == 1 and 'a pod named "dup" already exists' in result.stderr
    assert len(fake_runpod.pods) == 1


def test_readiness_timeout_says_what_it_saw_and_terminates_the_pod(cli, fake_runpod):
    fake_runpod.state.backend = BannerBackend(banner=None)  # sshd never comes up
    result = cli("pod", "create", "--name", "mute", "--timeout", "2")
    assert result.code == 1
    assert "not ready after 2 s; last seen: RUNNING, SSH at 127.0.0.1:" in result.stderr
    assert "refused the connection" in result.stderr and "terminating pod mute" in result.stderr
    # Terminated, not stopped: a stopped pod's volume would bill on, and nothing was on it.
    assert fake_runpod.pods == {} and len([r for r in fake_runpod.requests if r.method == "DELETE"]) == 1


def test_slow_provisioning_times_out_on_provisioning(cli, fake_runpod):
    fake_runpod.inject("slow_provisioning", seconds=60)
    result = cli("pod", "create", "--name", "slow", "--timeout", "1")
    assert result.code == 1 and "last seen: PROVISIONING" in result.stderr
    assert fake_runpod.pods == {} and fake_runpod.billing() == []


# -- API-wide faults ---------------------------------------------------------------


def test_rate_limit_waits_for_retry_after(cli, fake_runpod):
    fake_runpod.inject("rate_limit", retry_after=1, method="GET", path="/v2/pods")
    result = cli("pod", "list")
    assert result.code == 0, result.output
    first, second = fake_runpod.calls("GET", "/v2/pods")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0


def test_persistent_server_errors_fail_after_bounded_retries(cli, fake_runpod):
    fake_runpod.inject("server_error", times=math.inf)
    result = cli("pod", "list")
    assert result.code == 1
    assert len(fake_runpod.calls("GET", "/v2/pods")) == 4
    *retries, error = result.stderr.strip().splitlines()
    assert "500 Internal Server Error" in error and "try again later" in error
    # Each pause is said as it starts (never a silent wait), then one error line.
    assert [line.split(" in ")[0] for line in retries] == [
        f"imagebuild: RunPod: retry {n}/4" for n in (2, 3, 4)], result.stderr


def test_rejected_key(cli, fake_runpod):
    result = cli("pod", "list", env={"RUNPOD_API_KEY": "rpa_NOT_THE_KEY"})
    assert result.code == 1
    assert result.stderr.startswith("imagebuild: error: RunPod rejected the API key (401 Unauthorized")
    assert "rpa_NOT_THE_KEY" not in result.output


def test_echoed_key_is_masked(cli, fake_runpod):
    fake_runpod.inject("echo_key")
    result = cli("pod", "list")  # the runner fails the test if the key shows
    assert result.code == 1 and "***" in result.stderr


def test_key_from_runpodctl_config_file(cli, fake_runpod):
    (cli.home / ".runpod").mkdir()
    (cli.home / ".runpod" / "config.toml").write_text(f'apikey = "{fake_runpod.api_key}"\n')
    assert cli("pod", "list", env={"RUNPOD_API_KEY": None}).code == 0


def test_no_key_at_all(cli):
    result = cli("pod", "list", env={"RUNPOD_API_KEY": None})
    assert result.code == 2 and "RUNPOD_API_KEY" in result.stderr


# -- list, status ------------------------------------------------------------------


def test_list_table_and_json(cli, fake_runpod):
    assert cli("pod", "list").stdout.strip() == "no pods"
    assert cli("pod", "create", "--name", "alpha", "--gpu", "4090").code == 0
    assert cli("pod", "create", "--name", "beta", "--gpu", "a6000", "--gpu-count", "2", "--no-wait").code == 0
    table = cli("pod", "list", env={"COLUMNS": "200"}).stdout
    header, *rows = table.strip().splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "GPU", "$/H", "UPTIME", "SSH"]
    alpha = next(r for r in rows if "alpha" in r)
    beta = next(r for r in rows if "beta" in r)
    assert "RUNNING" in alpha and "RTX 4090" in alpha and "0.69" in alpha and "root@127.0.0.1 -p" in alpha
    assert "2 x RTX A6000" in beta and "0.98" in beta
    listed = json.loads(cli("pod", "list", "--json").stdout)
    assert sorted(p["name"] for p in listed) == ["alpha", "beta"]
    assert {p["id"] for p in listed} == set(fake_runpod.pods)


def test_json_and_views_never_show_env_values(cli, fake_runpod):
    token = "hf_" + "Q" * 34
    plain = "--allow-plain-secret"  # a token in clear is refused without it (test_runpod_create_path)
    assert cli("pod", "create", "--name", "sec", "--env", f"HF_TOKEN={token}", "--env", "MODE=x", plain).code == 0
    outputs = [cli("pod", "create", "--name", "sec2", "--env", f"HF_TOKEN={token}", "--json", plain),
               cli("pod", "list", "--json"), cli("pod", "status", "sec", "--json"),
               cli("pod", "list"), cli("pod", "status", "sec")]
    for result in outputs:
        assert result.code == 0 and token not in result.output, result.output
    status = json.loads(outputs[2].stdout)
    assert status["raw"]["env"] == {"HF_TOKEN": "***", "MODE": "***", "PUBLIC_KEY": "***", "POD_IMAGE_REF": "***",
                                    "POD_IMAGE_DIGEST": "***"}
    assert all(pod["raw"]["env"]["HF_TOKEN"] == "***" for pod in json.loads(outputs[1].stdout))
    (pod,) = [p for p in fake_runpod.pods.values() if p.request["name"] == "sec"]
    assert pod.request["env"]["HF_TOKEN"] == token  # masked on screen, not in what RunPod got


def test_status_by_name_or_id(cli, fake_runpod):
    assert cli("pod", "create", "--name", "st").code == 0
    (pod_id,) = fake_runpod.pods
    by_name = cli("pod", "status", "st")
    assert by_name.code == 0 and f"st ({pod_id})" in by_name.stdout and "RUNNING" in by_name.stdout
    assert "allowed now: stop, restart, terminate" in by_name.stdout
    assert json.loads(cli("pod", "status", pod_id, "--json").stdout)["id"] == pod_id
    missing = cli("pod", "status", "nope")
    assert missing.code == 1 and 'no pod with id or name "nope"' in missing.stderr


def test_local_pods_are_not_runpod_pods(cli, fake_runpod):
    name = f"none-{uuid.uuid4().hex[:8]}"
    result = cli("pod", "status", f"local:{name}")
    assert result.code == 1 and f"no local pod {name}; start one with `imagebuild run --name {name}`" in result.stderr
    assert fake_runpod.requests == []  # local:NAME never asks RunPod


# -- stop, start -----------------------------------------------------------------


def test_stop_start_cycle_and_what_each_status_allows(cli, fake_runpod):
    assert cli("pod", "create", "--name", "cyc").code == 0
    stopped = cli("pod", "stop", "cyc")
    assert stopped.code == 0 and "stopped" in stopped.stdout
    (pod,) = fake_runpod.pods.values()
    assert pod.status == "EXITED"
    again = cli("pod", "stop", "cyc")
    assert again.code == 1
    assert "it is EXITED (already stopped); RunPod allows start, terminate now" in again.stderr
    started = cli("pod", "start", "cyc")
    assert started.code == 0 and "ready" in started.stdout
    assert pod.status == "RUNNING"


def test_start_without_a_free_gpu_explains(cli, fake_runpod):
    assert cli("pod", "create", "--name", "busy", "--no-wait").code == 0
    assert cli("pod", "stop", "busy").code == 0
    fake_runpod.inject("start_capacity")
    result = cli("pod", "start", "busy")
    assert result.code == 1
    assert CAPACITY_TEXT in result.stderr and "Retry `imagebuild pod start" in result.stderr
    (pod,) = fake_runpod.pods.values()
    assert pod.status == "EXITED"


def test_409_from_runpod_is_explained_with_the_pods_status(fake_runpod):
    """A pod read before someone else stopped it: RunPod's 409 turns into what is allowed."""
    with Client(fake_runpod.url, ApiKey(fake_runpod.api_key)) as client, api(fake_runpod) as http:
        pod = http.post("/pods", json={"name": "race", "image": "i", "gpu": {"id": RTX4090}}).json()
        http.post(f"/pods/{pod['id']}/action", json={"action": "stop"})
        with pytest.raises(Exception) as error:
            pods.stop_pod(client, pod)  # still lists "stop" among its actions
    assert "it is EXITED (already stopped); RunPod allows start, terminate now" in str(error.value)
    assert [r.status for r in fake_runpod.calls("POST", f"/v2/pods/{pod['id']}/action")] == [200, 409]


# -- ssh ---------------------------------------------------------------------------


def fake_ssh(directory: Path) -> Path:
    """An `ssh` that records its argv and stdin, then exits 7."""
    directory.mkdir(exist_ok=True)
    script = directory / "ssh"
    script.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$@" > "$(dirname "$0")/argv"\n'
        'cat > "$(dirname "$0")/stdin"\n'
        "exit 7\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def test_ssh_direct_runs_the_command(cli, fake_runpod):
    assert cli("pod", "create", "--name", "sh").code == 0
    bin_dir = fake_ssh(cli.workdir / "bin")
    result = cli("pod", "ssh", "sh", "--", "ls", "-la", "/workspace",
                 env={"PATH": f"{bin_dir}:{cli.env['PATH']}"})
    assert result.code == 7  # ssh's own exit status
    argv = (bin_dir / "argv").read_text().splitlines()
    (pod,) = fake_runpod.pods.values()
    assert argv[-7:] == ["-p", str(pod.endpoint[1]), "--", "root@127.0.0.1", "ls", "-la", "/workspace"]
    assert "-tt" not in argv


def test_ssh_through_the_gateway_feeds_commands_on_stdin(cli, fake_runpod):
    with api(fake_runpod) as http:  # a pod without 22/tcp: only the gateway reaches it
        http.post("/pods", json={"name": "gw", "image": "i", "gpu": {"id": RTX4090}, "ports": ["8888/http"]})
    fake_runpod.state.provisioning_s = fake_runpod.state.starting_s = 0
    bin_dir = fake_ssh(cli.workdir / "bin")
    result = cli("pod", "ssh", "gw", "--", "nvidia-smi", env={"PATH": f"{bin_dir}:{cli.env['PATH']}"})
    assert result.code == 7, result.output
    argv = (bin_dir / "argv").read_text().splitlines()
    (pod,) = fake_runpod.pods.values()
    assert "-tt" in argv and argv[-1] == f"{pod.id}-64411eb2@ssh.runpod.io"
    assert (bin_dir / "stdin").read_text() == "nvidia-smi\nexit\n"


def test_ssh_to_a_stopped_pod_says_start_it(cli, fake_runpod):
    assert cli("pod", "create", "--name", "off", "--no-wait").code == 0
    assert cli("pod", "stop", "off").code == 0
    result = cli("pod", "ssh", "off")
    assert result.code == 1 and "imagebuild pod start off" in result.stderr


# -- terminate ---------------------------------------------------------------------


def test_terminate_asks_first(cli, fake_runpod):
    # These pods have no sshd to run pod-save on (see test_safe_terminate.py for
    # that): --force, which still asks before it deletes anything.
    assert cli("pod", "create", "--name", "bye", "--no-wait").code == 0
    declined = cli("pod", "terminate", "bye", "--force", tty="n\n")
    assert declined.code == 1 and "not terminated" in declined.stderr
    assert "--force: terminating pod bye" in declined.stderr  # says what is lost first
    assert len(fake_runpod.pods) == 1
    for stdin in ("", "y\n"):  # no terminal (closed or piped): refused up front, naming --yes
        no_answer = cli("pod", "terminate", "bye", "--force", input=stdin)
        assert no_answer.code == 2 and "add --yes" in no_answer.stderr, no_answer.output
        assert len(no_answer.stderr.strip().splitlines()) == 1 and "Aborted" not in no_answer.output
    assert len(fake_runpod.pods) == 1 and fake_runpod.calls("DELETE", f"/v2/pods/{next(iter(fake_runpod.pods))}") == []
    accepted = cli("pod", "terminate", "bye", "--force", tty="y\n")
    assert accepted.code == 0 and "terminated" in accepted.stdout
    assert fake_runpod.pods == {}


def test_terminate_refuses_a_pod_it_cannot_save(cli, fake_runpod):
    assert cli("pod", "create", "--name", "unsaved", "--no-wait").code == 0
    result = cli("pod", "terminate", "unsaved", "--yes")
    assert result.code == 1 and "not terminated" in result.stderr and "--force" in result.stderr
    assert len(fake_runpod.pods) == 1 and fake_runpod.calls("DELETE", f"/v2/pods/{next(iter(fake_runpod.pods))}") == []


def test_terminate_yes_then_the_pod_is_gone(cli, fake_runpod):
    assert cli("pod", "create", "--name", "gone", "--no-wait").code == 0
    (pod_id,) = fake_runpod.pods
    assert cli("pod", "terminate", pod_id, "--yes", "--force").code == 0
    with api(fake_runpod) as http:
        assert http.get(f"/pods/{pod_id}").status_code == 404
    again = cli("pod", "terminate", "gone", "--yes")
    assert again.code == 1 and 'no pod with id or name "gone"' in again.stderr


def test_terminate_pod_is_idempotent_after_a_lost_answer(fake_runpod):
    """The library call the save-before-terminate wrapper builds on."""
    with Client(fake_runpod.url, ApiKey(fake_runpod.api_key)) as client, api(fake_runpod) as http:
        pod = http.post("/pods", json={"name": "t", "image": "i", "gpu": {"id": RTX4090}}).json()
        pods.terminate_pod(client, pod)
        pods.terminate_pod(client, pod)  # already gone: not an error
    assert fake_runpod.pods == {}
