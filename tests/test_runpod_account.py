"""What a first day on real RunPod needs: createPod's error table, the account's SSH
keys, RUNPOD_API_URL as the spec writes it, private images, `pod update`, `pod logs`,
proxy URLs and port forwarding. Against the spec-validated fake RunPod.
"""

from __future__ import annotations

import base64
import json
import math
import time
from typing import TYPE_CHECKING

import pytest
from conftest import record_push
from fake_runpod import BannerBackend
from test_runpod_cli import fake_ssh

from imagebuild.errors import UserError
from imagebuild.runpod import pods, sshkeys
from imagebuild.runpod.client import Client
from imagebuild.runpod.credentials import ApiKey
from imagebuild.runpod.pods import CreateOptions

if TYPE_CHECKING:
    from fake_runpod.fixtures import PodCli

pytest_plugins = ["fake_runpod.fixtures"]

IMAGE = "ghcr.io/lab/research-pod@sha256:" + "12" * 32
NEW_IMAGE = "ghcr.io/lab/research-pod@sha256:" + "34" * 32
RTX4090, A6000, L40S = "NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000", "NVIDIA L40S"
PASSWORD = "ghp_S3cretRegistryPassw0rd_do_not_leak"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly0000000000000000000"


@pytest.fixture
def cli(pod_cli: PodCli) -> PodCli:
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    return pod_cli


@pytest.fixture
def client(fake_runpod):
    with Client(fake_runpod.url, ApiKey(fake_runpod.api_key), backoff=0.01, listing_lag=1.0) as c:
        yield c


def options(*gpus: str) -> CreateOptions:
    return CreateOptions(name="t", image=IMAGE, gpu_ids=list(gpus))


# -- createPod's error table -----------------------------------------------------------


def test_403_skips_the_candidate_and_the_next_one_is_created(client, fake_runpod):
    fake_runpod.inject("status", status=403, gpu_ids=[RTX4090], method="POST", path="/v2/pods",
                       detail="account cannot access pool ADA_24")
    seen: list[str] = []
    pod = pods.create_pod(client, options(RTX4090, A6000), seen.append)
    assert pod["gpu"]["id"] == A6000
    assert seen == [f"{RTX4090}: this account cannot use its pool (account cannot access pool ADA_24); "
                    f"trying {A6000}"]


def test_402_stops_at_once(client, fake_runpod):
    fake_runpod.inject("status", status=402, method="POST", path="/v2/pods", times=math.inf,
                       detail="insufficient balance")
    with pytest.raises(UserError, match="insufficient balance .* add credit"):
        pods.create_pod(client, options(RTX4090, A6000, L40S))
    assert len(fake_runpod.calls("POST", "/v2/pods")) == 1 and fake_runpod.pods == {}


def test_422_is_never_retried(client, fake_runpod):
    fake_runpod.inject("status", status=422, method="POST", path="/v2/pods", times=math.inf)
    with pytest.raises(UserError, match="malformed .* not retried"):
        pods.create_pod(client, options(RTX4090, A6000))
    assert len(fake_runpod.calls("POST", "/v2/pods")) == 1


def test_final_message_names_each_candidates_own_reason(client, fake_runpod):
    fake_runpod.inject("status", status=403, gpu_ids=[RTX4090], method="POST", path="/v2/pods")
    fake_runpod.inject("capacity", gpu_ids=[A6000])
    with pytest.raises(UserError) as caught:
        pods.create_pod(client, options(RTX4090, A6000))
    message = str(caught.value)
    assert f"{RTX4090}: this account cannot use its pool" in message
    assert f"{A6000}: no capacity" in message and "--cloud community" in message


def test_a_rule_broken_everywhere_is_reported_as_the_requests_fault(client, fake_runpod):
    body_rule = CreateOptions(name="t", image=IMAGE, gpu_ids=[RTX4090, A6000], gpu_count=9)
    with pytest.raises(UserError, match="refused the pod for every GPU tried .*at most 8 GPUs"):
        pods.create_pod(client, body_rule)


def test_5xx_retries_the_same_candidate(client, fake_runpod):
    fake_runpod.inject("status", status=503, method="POST", path="/v2/pods")
    pod = pods.create_pod(client, options(RTX4090, A6000))
    assert pod["gpu"]["id"] == RTX4090 and len(fake_runpod.pods) == 1


# -- SSH keys and the API URL ---------------------------------------------------------


def test_local_key_is_appended_to_the_accounts_keys_once(client, fake_runpod):
    other = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQOtherDevice laptop"
    fake_runpod.account.ssh_keys = [other]
    assert sshkeys.register(client, [KEY + " me@here"]) == [KEY + " me@here"]
    assert fake_runpod.account.ssh_keys == [other, KEY + " me@here"]  # never drops the laptop's
    # Known already (the comment does not matter): no second PUT.
    assert sshkeys.register(client, [KEY + " renamed"]) == []
    assert len(fake_runpod.calls("PUT", "/v2/account/ssh-keys")) == 1


def test_api_url_as_the_spec_writes_it(cli, fake_runpod):
    server = fake_runpod.url.removesuffix("/v2")
    for url in (server, server + "/", fake_runpod.url + "/"):
        result = cli("pod", "list", env={"RUNPOD_API_URL": url})
        assert result.code == 0 and "no pods" in result.stdout, result.output


def test_ssh_keys_known_hosts_by_pod_id_and_forwards_a_port(cli, fake_runpod):
    assert cli("pod", "create", "--name", "fw").code == 0
    (pod,) = fake_runpod.pods.values()
    bin_dir = fake_ssh(cli.workdir / "bin")
    path = {"PATH": f"{bin_dir}:{cli.env['PATH']}"}
    assert cli("pod", "ssh", "fw", "-L", "8888", "-L", "9000:6006", env=path).code == 7
    argv = (bin_dir / "argv").read_text().splitlines()
    assert f"HostKeyAlias=runpod-{pod.id}" in argv
    assert "127.0.0.1:8888:localhost:8888" in argv and "127.0.0.1:9000:localhost:6006" in argv
    bad = cli("pod", "ssh", "fw", "-L", "jupyter", env=path)
    assert bad.code == 2 and "--forward: expected a port like 8888" in bad.stderr


def test_status_shows_proxy_urls_of_http_ports(cli, fake_runpod):
    assert cli("pod", "create", "--name", "web", "--ports", "22/tcp,8888/http,6006/http", "--no-wait").code == 0
    (pod,) = fake_runpod.pods.values()
    out = cli("pod", "status", "web").stdout
    assert f"https://{pod.id}-8888.proxy.runpod.net" in out and f"https://{pod.id}-6006.proxy.runpod.net" in out


# -- private images --------------------------------------------------------------------


def test_private_image_gets_a_registry_credential_made_once(cli, fake_runpod):
    env = {"IMAGEBUILD_REGISTRY_USERNAME": "lab-bot", "IMAGEBUILD_REGISTRY_PASSWORD": PASSWORD}
    first = cli("pod", "create", "--name", "p1", "--no-wait", env=env)
    second = cli("pod", "create", "--name", "p2", "--no-wait", env=env, )
    assert first.code == 0 and second.code == 0, first.output + second.output
    (made,) = [r.body for r in fake_runpod.calls("POST", "/v2/registries")]
    assert made["name"].startswith("imagebuild-ghcr.io-lab-bot-") and PASSWORD not in made["name"]
    assert {k: made[k] for k in ("username", "password")} == {"username": "lab-bot", "password": PASSWORD}
    (credential,) = fake_runpod.account.registries
    assert [b.body["registry"] for b in fake_runpod.calls("POST", "/v2/pods")] == [credential, credential]
    for result in (first, second):
        assert PASSWORD not in result.output
    assert PASSWORD not in "".join(p.read_text() for p in cli.workdir.rglob("*") if p.is_file())
    listed = cli("pod", "list", "--json")
    assert PASSWORD not in listed.stdout


def test_docker_login_credentials_are_used_too(cli, fake_runpod):
    auth = base64.b64encode(f"lab-bot:{PASSWORD}".encode()).decode()
    docker_dir = cli.home / ".docker"
    docker_dir.mkdir()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {"ghcr.io": {"auth": auth}}}))
    result = cli("pod", "create", "--name", "dl", "--no-wait")
    assert result.code == 0 and PASSWORD not in result.output, result.output
    assert [r.body["username"] for r in fake_runpod.calls("POST", "/v2/registries")] == ["lab-bot"]


def test_registry_auth_flags(cli, fake_runpod):
    env = {"IMAGEBUILD_REGISTRY_USERNAME": "lab-bot", "IMAGEBUILD_REGISTRY_PASSWORD": PASSWORD}
    unknown = cli("pod", "create", "--name", "u", "--no-wait", "--registry-auth", "nosuch", env=env)
    assert unknown.code == 2 and "--registry-auth: no RunPod registry credential nosuch" in unknown.stderr
    assert cli("pod", "create", "--name", "n", "--no-wait", "--no-registry-auth", env=env).code == 0
    assert "registry" not in fake_runpod.calls("POST", "/v2/pods")[-1].body
    assert fake_runpod.calls("POST", "/v2/registries") == []
    public = cli("pod", "create", "--name", "pub", "--no-wait")  # no credentials at all
    assert public.code == 0 and "the image must be public" in public.stderr


# -- pod update and pod logs -----------------------------------------------------------


def test_update_points_the_pod_at_the_pushed_image(cli, fake_runpod):
    assert cli("pod", "create", "--name", "up", "--image", "ghcr.io/lab/old:v1").code == 0
    (pod,) = fake_runpod.pods.values()
    record_push(cli.workdir, image=NEW_IMAGE, cuda="12.6")
    assert cli("pod", "stop", "up").code == 0
    stopped = cli("pod", "update", "up", "--json")
    assert stopped.code == 0, stopped.output
    assert json.loads(stopped.stdout)["image"] == NEW_IMAGE
    (patch,) = [r.body for r in fake_runpod.calls("PATCH", f"/v2/pods/{pod.id}")]
    # The pod's own record of its image follows it; PATCH replaces env, so the rest goes back too.
    assert patch["image"] == NEW_IMAGE and patch["env"]["POD_IMAGE_REF"] == NEW_IMAGE
    assert patch["env"]["POD_IMAGE_DIGEST"] == NEW_IMAGE.partition("@")[2]
    assert {k: v for k, v in patch["env"].items() if not k.startswith("POD_IMAGE_")} == {
        k: v for k, v in pod.request["env"].items() if not k.startswith("POD_IMAGE_")}
    assert pod.status == "EXITED"  # changed, and left stopped
    said = cli("pod", "update", "up", "--image", "ghcr.io/lab/other:v2")
    assert said.code == 0 and "takes effect at the next start" in said.stdout, said.output
    assert pod.status == "EXITED"
    missing = cli("pod", "update", "nope")
    assert missing.code == 1 and 'no pod with id or name "nope"' in missing.stderr


def test_update_of_a_running_pod_says_it_restarts_it_and_saves_first(cli, fake_runpod):
    """RunPod resets a running pod on PATCH (a new container: the job and everything
    outside /workspace gone), so this is a restart, announced, confirmed, saved first."""
    assert cli("pod", "create", "--name", "up", "--image", "ghcr.io/lab/old:v1").code == 0
    (pod,) = fake_runpod.pods.values()
    patches = lambda: fake_runpod.calls("PATCH", f"/v2/pods/{pod.id}")  # noqa: E731

    unasked = cli("pod", "update", "up", "--image", NEW_IMAGE)  # stdin is no terminal
    assert unasked.code == 2 and "--yes" in unasked.stderr and "restarts" in unasked.stderr, unasked.output
    assert patches() == []
    # The fake's pods have no sshd behind their banner: pod-save cannot run.
    unsaved = cli("pod", "update", "up", "--image", NEW_IMAGE, "--yes")
    assert unsaved.code == 1 and "not updated" in unsaved.stderr and "--force" in unsaved.stderr, \
        unsaved.output
    assert patches() == [] and pod.status == "RUNNING"
    declined = cli("pod", "update", "up", "--image", NEW_IMAGE, "--force", tty="n\n")
    assert declined.code == 1 and "not updated" in declined.stderr and patches() == []

    forced = cli("pod", "update", "up", "--image", NEW_IMAGE, "--yes", "--force")
    assert forced.code == 0, forced.output
    assert "restarts the pod now" in forced.stderr and "outside /workspace" in forced.stderr
    assert [r.body["image"] for r in patches()] == [NEW_IMAGE]
    assert pod.resets == 1  # the fake recreated its container
    assert "restarted" in forced.stdout


def test_logs_and_logs_while_create_waits(cli, fake_runpod):
    fake_runpod.state.backend = BannerBackend(banner=None)  # it waits: the log says why
    fake_runpod.state.log_hold_s = 3
    waited = cli("pod", "create", "--name", "lg0", "--timeout", "2")
    assert "log: [system] pulling image" in waited.stderr, waited.stderr
    assert fake_runpod.pods == {}  # it never got ready: terminated, its log read first
    created = cli("pod", "create", "--name", "lg", "--no-wait")
    assert created.code == 0, created.output
    (pod,) = fake_runpod.pods.values()
    deadline = time.monotonic() + 10
    while pod.status != "RUNNING":  # billing() moves the fake's clock-driven statuses on
        assert time.monotonic() < deadline and fake_runpod.billing()
        time.sleep(0.1)
    shown = cli("pod", "logs", "lg")
    assert shown.code == 0 and "container started" in shown.stdout
    assert shown.stdout.splitlines()[0] == f"[system] pulling image {IMAGE}"
    gone = cli("pod", "logs", "local:nothing")
    assert gone.code == 1 and "docker logs" in gone.stderr


def test_logs_follow_resumes_from_the_last_event_when_the_stream_drops(cli, fake_runpod):
    import subprocess

    assert cli("pod", "create", "--name", "fl", "--no-wait").code == 0
    (pod,) = fake_runpod.pods.values()
    state = fake_runpod.state
    with state.lock:
        for i in range(3):
            state.log(pod, "container", f"early {i}")
    state.log_hold_s = 0.3  # every stream ends 0.3 s after its last line: a drop, to the client
    state.log_drops = [1, 0, 2]  # and these three end mid-way
    follower = subprocess.Popen(cli.argv("pod", "logs", "fl", "--follow"), cwd=cli.workdir,
                                env=cli.full_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        time.sleep(3)
        for i in range(3):
            with state.lock:
                state.log(pod, "container", f"late {i}")
            time.sleep(0.7)
        time.sleep(2)
        assert follower.poll() is None  # still following
        fake_runpod.state.terminate(pod.id)  # the pod is gone: the log ends
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        follower.kill()
    shown = stdout.splitlines()
    # Every line of the pod's log, once, in order (the late ones came while following).
    assert shown == [f"[system] {e['line']}" if e["source"] == "system" else e["line"] for e in pod.logs]
    assert shown[-3:] == ["late 0", "late 1", "late 2"] and "early 0" in shown, (shown, stderr)
    assert len(fake_runpod.calls("GET", f"/v2/pods/{pod.id}/logs")) >= 5  # it reconnected


def test_malformed_local_key_lines_are_not_sent(client, fake_runpod):
    assert sshkeys.register(client, ["ssh-ed25519", "ssh-ed25519  ", KEY]) == [KEY]
    assert fake_runpod.account.ssh_keys == [KEY]


def test_registry_password_echoed_in_an_error_is_masked(cli, fake_runpod):
    fake_runpod.inject("status", status=400, method="POST", path="/v2/registries",
                       detail=f"password {PASSWORD} rejected by upstream")
    env = {"IMAGEBUILD_REGISTRY_USERNAME": "lab-bot", "IMAGEBUILD_REGISTRY_PASSWORD": PASSWORD}
    result = cli("pod", "create", "--name", "echo", "--no-wait", env=env)
    assert result.code == 1 and "cannot store the ghcr.io credential" in result.stderr
    assert PASSWORD not in result.output and "***" in result.stderr
    assert fake_runpod.pods == {}  # nothing created with half a configuration


def test_volume_create_after_a_5xx_makes_one_volume(client, fake_runpod):
    from imagebuild.runpod.volumes import ensure_volume

    fake_runpod.inject("server_error", method="POST", path="/v2/network-volumes")
    volume, made = ensure_volume(client, "once", 10, "US-KS-2")
    assert made and list(fake_runpod.account.volumes) == [volume["id"]]
    assert ensure_volume(client, "once", 10, "US-KS-2") == (volume, False)
