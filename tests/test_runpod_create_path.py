"""`pod create` against RunPod as it really behaves (issue 22, the create path).

The fake plays what RunPod does and our client once assumed it did not: a create
that made the pod but answered 5xx, dropped or timed out, with the pod listed only
seconds later; image pulls that fail and leave a pod in ERROR (billing, no stop);
stock per data center; network volumes on Secure Cloud only; registry credentials
that cannot be edited; at most 50 env vars; tcp and http ports only. Each test ran
red on the code before this change.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import httpx
import pytest
from conftest import record_push
from fake_runpod import CAPACITY_TEXT, BannerBackend, FakeRunPod

if TYPE_CHECKING:
    from fake_runpod.fixtures import PodCli

pytest_plugins = ["fake_runpod.fixtures"]

IMAGE = "ghcr.io/lab/research-pod@sha256:" + "ef" * 32
RTX4090 = "NVIDIA GeForce RTX 4090"
RTX3090 = "NVIDIA GeForce RTX 3090"
A6000 = "NVIDIA RTX A6000"
LAG_S = 1.0  # how late the fake lists a new pod
MATRIX_LAG_S = 0.5  # the same, in the fault matrix (14 cases: each second of waiting counts)
FAST = {"IMAGEBUILD_RUNPOD_LISTING_LAG": "4", "IMAGEBUILD_RUNPOD_TIMEOUT": "1.5"}


@pytest.fixture
def cli(pod_cli: PodCli) -> PodCli:
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    pod_cli.env.update(FAST)
    return pod_cli


def api(fake: FakeRunPod) -> httpx.Client:
    return httpx.Client(base_url=fake.url, headers={"Authorization": f"Bearer {fake.api_key}"})


def posted(fake: FakeRunPod) -> list[dict]:
    return [r.body for r in fake.calls("POST", "/v2/pods")]


def pods_ever(fake: FakeRunPod) -> set[str]:
    return {pod_id for pod_id, _ in fake.state.ledger}


def volume(fake: FakeRunPod, name: str, where: str) -> str:
    fake.account.volumes["vol" + name] = {"id": "vol" + name, "name": name, "size": 20,
                                          "dataCenter": where, "type": "STANDARD"}
    return "vol" + name


def existing_pod(fake: FakeRunPod, name: str, stopped: bool = True, **body) -> str:
    with api(fake) as http:
        pod = http.post("/pods", json={"name": name, "image": IMAGE, "gpu": {"id": A6000},
                                       "ports": ["22/tcp"], "startSsh": True, **body}).json()
        while http.get(f"/pods/{pod['id']}").json()["status"] != "RUNNING":
            time.sleep(0.05)
        if stopped:
            assert http.post(f"/pods/{pod['id']}/action", json={"action": "stop"}).status_code == 200
    return pod["id"]


# -- one create, one pod ---------------------------------------------------------------

SEQUENCES = [
    ["error_after_create"],
    ["drop_after_create"],
    ["timeout_after_create"],
    ["rate_limit", "error_after_create"],
    ["server_error", "drop_after_create"],
    ["rate_limit", "server_error", "timeout_after_create"],
    ["server_error", "server_error", "server_error", "error_after_create"],  # the last try made it
]


@pytest.mark.parametrize("ready", [True, False], ids=["ready", "never-ready"])
@pytest.mark.parametrize("answers", SEQUENCES, ids=["+".join(s) for s in SEQUENCES])
def test_fault_matrix_one_pod_and_none_left_billing(cli, fake_runpod, answers, ready):
    # A lag shorter than LAG_S and a look-up window to match: a lost create is still listed
    # only after the client's first look (a single look sends a second create), while each
    # 5xx that made nothing waits out 2 s of window instead of 4. A never-ready pod's wait
    # is cut to 1 s: any timeout gets it terminated.
    fake_runpod.state.listing_lag_s = MATRIX_LAG_S
    fake_runpod.script("POST", "/v2/pods", answers)
    if not ready:
        fake_runpod.state.backend = BannerBackend(banner=None)
    result = cli("pod", "create", "--gpu", "4090", "--name", "once", "--timeout", "3" if ready else "1",
                 env={"IMAGEBUILD_RUNPOD_LISTING_LAG": str(4 * MATRIX_LAG_S)})
    made = pods_ever(fake_runpod)
    assert len(made) == 1, (answers, fake_runpod.state.ledger, result.output)  # never two pods
    if ready:
        assert result.code == 0, result.output
        (pod_id,) = made
        assert fake_runpod.billing() == [pod_id] and pod_id in result.stdout
    else:
        assert result.code == 1, result.output
        assert fake_runpod.billing() == [] and fake_runpod.pods == {}  # terminated, not stopped
        assert "terminat" in result.stderr


def test_a_create_that_never_happened_is_sent_again_after_the_window(cli, fake_runpod):
    """The other side of the bargain: a plain 5xx (nothing made) still gets its retry."""
    fake_runpod.script("POST", "/v2/pods", ["server_error"])
    result = cli("pod", "create", "--name", "retry", "--no-wait",
                 env={"IMAGEBUILD_RUNPOD_LISTING_LAG": "1"})
    assert result.code == 0, result.output
    assert [r.status for r in fake_runpod.calls("POST", "/v2/pods")] == [500, 201]
    assert len(fake_runpod.pods) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_while_the_create_is_in_flight_finds_and_terminates_the_pod(cli, fake_runpod, sig):
    fake_runpod.state.listing_lag_s = LAG_S
    fake_runpod.inject("timeout_after_create", seconds=30)  # the answer never comes in time
    env = cli.full_env({"IMAGEBUILD_RUNPOD_TIMEOUT": "60"})
    process = subprocess.Popen(cli.argv("pod", "create", "--name", "cut", "--timeout", "30"),
                               cwd=cli.workdir, env=env, text=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not fake_runpod.pods and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the create is made and its answer held: the pod is not listed yet
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert process.returncode == (130 if sig == signal.SIGINT else 143), stderr  # 128 + signal
    assert fake_runpod.pods == {} and fake_runpod.billing() == [], (fake_runpod.state.ledger, stderr)
    assert "terminating pod cut" in stderr


# -- nothing half-made keeps billing ---------------------------------------------------


def test_a_never_ready_pod_is_terminated_after_its_log_is_read(cli, fake_runpod):
    fake_runpod.state.backend = BannerBackend(banner=None)
    result = cli("pod", "create", "--name", "mute", "--timeout", "2")
    assert result.code == 1, result.output
    assert "not ready after 2 s" in result.stderr and "terminating pod mute" in result.stderr
    assert "container started" in result.stderr  # its log, read before it went
    assert fake_runpod.pods == {} and fake_runpod.billing() == []
    assert len([r for r in fake_runpod.requests if r.method == "DELETE"]) == 1
    assert [r for r in fake_runpod.requests if r.path.endswith("/action")] == []  # never a stop


def test_a_never_ready_pod_on_a_network_volume_goes_and_the_volume_stays(cli, fake_runpod):
    vol = volume(fake_runpod, "keep", "US-TX-3")
    fake_runpod.state.backend = BannerBackend(banner=None)
    result = cli("pod", "create", "--name", "nvmute", "--volume", "keep", "--timeout", "2")
    assert result.code == 1, result.output
    assert f"network volume {vol} is kept" in result.stderr
    assert fake_runpod.pods == {} and vol in fake_runpod.account.volumes


@pytest.mark.parametrize("reason", ["manifest unknown", "pull access denied"])
def test_an_image_pull_failure_goes_error_and_the_new_pod_is_terminated(cli, fake_runpod, reason):
    fake_runpod.state.pull_failures["*missing*"] = reason
    result = cli("pod", "create", "--name", "bad", "--image", "ghcr.io/lab/missing:v1", "--timeout", "20")
    assert result.code == 1, result.output
    assert "ERROR" in result.stderr and reason in result.stderr
    assert fake_runpod.pods == {} and fake_runpod.billing() == []
    statuses = [status for _, status in fake_runpod.state.ledger]
    assert "ERROR" in statuses and statuses[-1] == "TERMINATED"
    assert len(result.stderr.splitlines()) < 40  # it gave up at ERROR, not after --timeout


def test_the_fake_error_pod_bills_and_refuses_a_stop(fake_runpod):
    fake_runpod.state.pull_failures["*"] = "manifest unknown"
    with api(fake_runpod) as http:
        pod = http.post("/pods", json={"name": "e", "image": IMAGE, "gpu": {"id": A6000}}).json()
        while http.get(f"/pods/{pod['id']}").json()["status"] != "ERROR":
            time.sleep(0.05)
        got = http.get(f"/pods/{pod['id']}").json()
        assert got["actions"] == ["start", "terminate"] and got["cost"] > 0
        assert http.post(f"/pods/{pod['id']}/action", json={"action": "stop"}).status_code == 409
    assert fake_runpod.billing() == [pod["id"]]


def test_an_existing_pod_that_goes_error_on_start_is_reported_never_terminated(cli, fake_runpod):
    pod_id = existing_pod(fake_runpod, "mine")
    fake_runpod.state.pull_failures["*"] = "unauthorized: authentication required"
    result = cli("pod", "start", pod_id, "--timeout", "20")
    assert result.code == 1, result.output
    assert "unauthorized: authentication required" in result.stderr  # the reason, from its log
    assert "$0.49/h" in result.stderr  # what it costs while it sits in ERROR
    command = f"imagebuild pod terminate {pod_id} --force"
    assert command in result.stderr
    assert fake_runpod.pods[pod_id].status == "ERROR"
    assert [r for r in fake_runpod.requests if r.method == "DELETE"] == []
    # The exact command does end it (after saying what is lost).
    ended = cli(*command.split()[1:], "--yes")
    assert ended.code == 0, ended.output
    assert fake_runpod.pods == {} and fake_runpod.billing() == []


# -- volumes and data centers --------------------------------------------------------------


def test_community_cloud_with_a_network_volume_is_refused_before_any_request(cli, fake_runpod):
    volume(fake_runpod, "work", "EU-RO-1")
    result = cli("pod", "create", "--cloud", "community", "--volume", "work", "--no-wait")
    assert result.code == 2, result.output
    assert "Secure Cloud only" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert fake_runpod.requests == []


def test_candidates_follow_the_volume_datacenters_stock(cli, fake_runpod):
    volume(fake_runpod, "work", "EU-RO-1")
    fake_runpod.state.dc_stock[("EU-RO-1", RTX4090)] = "NONE"  # plenty elsewhere, none here
    del fake_runpod.state.dc_stock[("EU-RO-1", RTX3090)]  # not offered here at all
    result = cli("pod", "create", "--gpu", "4090,3090,a6000", "--volume", "work", "--no-wait")
    assert result.code == 0, result.output
    assert [b["gpu"]["id"] for b in posted(fake_runpod)] == [A6000]
    assert "EU-RO-1" in result.stderr and "RTX 3090" in result.stderr


def test_a_volume_datacenter_without_any_of_the_gpus_is_one_line(cli, fake_runpod):
    volume(fake_runpod, "work", "EU-RO-1")
    for gpu in (RTX4090, RTX3090):
        del fake_runpod.state.dc_stock[("EU-RO-1", gpu)]
    result = cli("pod", "create", "--gpu", "4090,3090", "--volume", "work", "--no-wait")
    assert result.code == 2 and "EU-RO-1" in result.stderr and "--gpu" in result.stderr, result.output
    assert posted(fake_runpod) == []


def test_no_capacity_with_a_volume_advises_only_what_is_possible(cli, fake_runpod):
    volume(fake_runpod, "work", "EU-RO-1")
    for gpu in (RTX4090, A6000):
        fake_runpod.state.dc_stock[("EU-RO-1", gpu)] = "NONE"
    result = cli("pod", "create", "--gpu", "4090,a6000", "--volume", "work", "--no-wait")
    assert result.code == 1 and CAPACITY_TEXT in result.stderr, result.output
    assert "--cloud community" not in result.stderr and "--datacenter" not in result.stderr
    assert "EU-RO-1" in result.stderr and len(posted(fake_runpod)) == 2


def test_a_failed_start_of_a_network_volume_pod_advises_terminate_and_create(cli, fake_runpod):
    vol = volume(fake_runpod, "work", "US-KS-2")
    pod_id = existing_pod(fake_runpod, "nvpod", mounts={"network": [{"volumeId": vol, "path": "/workspace"}]},
                          dataCenterIds=["US-KS-2"])
    fake_runpod.inject("start_capacity")
    result = cli("pod", "start", pod_id)
    assert result.code == 1, result.output
    assert f"imagebuild pod terminate {pod_id}" in result.stderr
    assert "imagebuild pod create --volume work" in result.stderr
    assert "copy" not in result.stderr


# -- credentials and secrets ---------------------------------------------------------------

OLD, NEW = "ghp_oldOldOldOldOldOldOldOldOldOldOld1", "ghp_newNewNewNewNewNewNewNewNewNewNew2"


def test_a_rotated_registry_secret_gets_a_new_credential_and_the_stale_one_goes(cli, fake_runpod):
    fake_runpod.account.registries["regold"] = {"name": "imagebuild-ghcr.io-lab-bot",
                                                "username": "lab-bot", "password": OLD}
    fake_runpod.state.registry_logins["ghcr.io"] = ("lab-bot", NEW)  # the token was rotated
    env = {"IMAGEBUILD_REGISTRY_USERNAME": "lab-bot", "IMAGEBUILD_REGISTRY_PASSWORD": NEW}
    result = cli("pod", "create", "--name", "rot", "--timeout", "20", env=env)
    assert result.code == 0, result.output  # pulled with the new secret: RUNNING, not ERROR
    (made,) = [r.body for r in fake_runpod.calls("POST", "/v2/registries")]
    assert made["name"].startswith("imagebuild-ghcr.io-lab-bot-") and made["password"] == NEW
    assert NEW not in made["name"] and OLD not in made["name"]
    assert "regold" not in fake_runpod.account.registries  # no pod used it: removed
    (credential,) = fake_runpod.account.registries
    assert posted(fake_runpod)[0]["registry"] == credential
    again = cli("pod", "create", "--name", "rot2", "--no-wait", env=env)
    assert again.code == 0 and len(fake_runpod.calls("POST", "/v2/registries")) == 1  # reused
    for output in (result.output, again.output):
        assert NEW not in output and OLD not in output


def test_a_stale_credential_a_pod_still_names_is_kept(cli, fake_runpod):
    fake_runpod.account.registries["regold"] = {"name": "imagebuild-ghcr.io-lab-bot",
                                                "username": "lab-bot", "password": OLD}
    holder = existing_pod(fake_runpod, "holder", registry="regold")
    env = {"IMAGEBUILD_REGISTRY_USERNAME": "lab-bot", "IMAGEBUILD_REGISTRY_PASSWORD": NEW}
    result = cli("pod", "create", "--name", "rot", "--no-wait", env=env)
    assert result.code == 0, result.output
    assert "regold" in fake_runpod.account.registries and len(fake_runpod.account.registries) == 2
    assert f"holder ({holder})" in result.stderr and "pod update" in result.stderr


def test_secret_flag_sends_runpods_secret_template(cli, fake_runpod):
    result = cli("pod", "create", "--name", "s", "--no-wait", "--secret", "HF_TOKEN",
                 "--secret", "WANDB_API_KEY=wandb_key")
    assert result.code == 0, result.output
    (body,) = posted(fake_runpod)
    assert body["env"]["HF_TOKEN"] == "{{ RUNPOD_SECRET_HF_TOKEN }}"
    assert body["env"]["WANDB_API_KEY"] == "{{ RUNPOD_SECRET_wandb_key }}"
    bad = cli("pod", "create", "--name", "s2", "--no-wait", "--secret", "NO SPACES")
    assert bad.code == 2 and "--secret" in bad.stderr


TOKENS = {
    "HF_TOKEN": "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
    "GITHUB_TOKEN": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "ANTHROPIC_API_KEY": "sk-ant-api03-" + "x1Y2" * 20,
    "RUNPOD_API_KEY": "rpa_" + "Q" * 40,
    "SLACK": "xoxb-1234567890-1234567890-AbCdEfGhIjKlMnOpQrStUvWx",
    "DB_PASSWORD": "correct-horse-battery-staple",
}


@pytest.mark.parametrize("name", sorted(TOKENS))
@pytest.mark.parametrize("where", ["flag", "env-file", "spec"])
def test_token_looking_env_values_are_refused_in_clear(cli, fake_runpod, name, where):
    value = TOKENS[name]
    args = ["pod", "create", "--name", "t", "--no-wait"]
    if where == "flag":
        args += ["--env", f"{name}={value}"]
    elif where == "env-file":
        (cli.workdir / "pod.env").write_text(f"{name}={value}\n")
        args += ["--env-file", "pod.env"]
    else:
        (cli.workdir / "imagebuild.toml").write_text(
            f'[image]\nname = "r.example/you/sim"\n\n[pod]\nenv = {{ {name} = {json.dumps(value)} }}\n')
    result = cli(*args)
    assert result.code == 2, result.output
    assert name in result.stderr and "--secret" in result.stderr and "--allow-plain-secret" in result.stderr
    assert value not in result.output and len(result.stderr.strip().splitlines()) == 1
    assert posted(fake_runpod) == []
    allowed = cli(*args, "--allow-plain-secret")
    assert allowed.code == 0, allowed.output
    assert posted(fake_runpod)[0]["env"][name] == value and value not in allowed.output


def test_ordinary_env_values_are_not_taken_for_tokens(cli, fake_runpod):
    plain = {"WANDB_MODE": "offline", "HF_HOME": "/workspace/.cache/hf", "CUDA": "12.8",
             "GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567", "MUJOCO_GL": "osmesa",
             "HF_TOKEN": "{{ RUNPOD_SECRET_hf }}", "RUN_NAME": "ppo-ant-v4-seed3"}
    args = [a for key, value in plain.items() for a in ("--env", f"{key}={value}")]
    result = cli("pod", "create", "--name", "p", "--no-wait", *args)
    assert result.code == 0, result.output
    assert {k: posted(fake_runpod)[0]["env"][k] for k in plain} == plain


def test_too_many_env_vars_or_a_udp_port_is_refused_before_any_request(cli, fake_runpod):
    many = [a for i in range(51) for a in ("--env", f"V{i}=x")]
    result = cli("pod", "create", "--name", "m", "--no-wait", *many)
    assert result.code == 2 and "50" in result.stderr, result.output
    udp = cli("pod", "create", "--name", "u", "--no-wait", "--ports", "22/tcp,9000/udp")
    assert udp.code == 2 and "9000/udp" in udp.stderr and "tcp" in udp.stderr, udp.output
    (cli.workdir / "imagebuild.toml").write_text('[image]\nname = "r.example/you/sim"\n\n[pod]\nports = ["53/udp"]\n')
    spec_udp = cli("pod", "create", "--name", "u", "--no-wait")
    assert spec_udp.code == 2 and "[pod] ports" in spec_udp.stderr, spec_udp.output
    assert fake_runpod.requests == []
    fifty = [a for i in range(50) for a in ("--env", f"V{i}=x")]
    (cli.workdir / "imagebuild.toml").unlink()
    full = cli("pod", "create", "--name", "f", "--no-wait", *fifty)
    # The user's 50 come first; imagebuild's own image names give way, and say so.
    assert full.code == 0 and "no room under RunPod's 50 variables for POD_IMAGE_REF" in full.stderr, full.output
    assert len(posted(fake_runpod)[-1]["env"]) == 50


def test_no_ssh_key_anywhere_refuses_before_creating(cli, fake_runpod):
    for path in (cli.home / ".ssh").glob("*.pub"):
        path.unlink()
    result = cli("pod", "create", "--name", "nokey", "--no-wait")
    assert result.code == 2, result.output
    assert "ssh-keygen" in result.stderr and "--public-key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and posted(fake_runpod) == []
    fake_runpod.account.ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAccountKey phone"]
    assert cli("pod", "create", "--name", "acct", "--no-wait").code == 0  # the account's key will do
