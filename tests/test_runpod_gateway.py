"""Pods without a public IP: readiness, save and `pod ssh` through RunPod's SSH gateway.

The gateway is a real sshd (fake_runpod.gateway) with RunPod's manners: a PTY only,
commands on stdin, command arguments ignored, and its own host key.
"""

from __future__ import annotations

import time

import pytest
from conftest import unique_name
from fake_runpod import FakeRunPod
from fake_runpod.gateway import NO_PTY, Gateway, available
from fake_runpod.state import proxy_user
from ssh_helpers import SshHome, make_ssh_home

from imagebuild.pods import remote
from imagebuild.pods.ssh import Endpoint

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


@pytest.fixture(scope="module")
def gateway():
    with Gateway() as gw:
        yield gw


@pytest.fixture(scope="module")
def ssh_home(tmp_path_factory) -> SshHome:
    return make_ssh_home(tmp_path_factory.mktemp("gateway"))


@pytest.fixture
def host_pod(gateway, ssh_home):
    """A gateway login whose shell is a shell on this machine."""
    user = proxy_user(unique_name("gw"))
    gateway.open(user, ["/bin/bash", "--norc", "--noprofile", "-i"], [ssh_home.public_key])
    yield Endpoint("proxy", gateway.host, gateway.port, user)
    gateway.shut(user)


def test_the_fake_gateway_ignores_command_arguments_and_wants_a_pty(host_pod, ssh_home):
    import subprocess

    argv = [str(ssh_home.ssh), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
            "-p", str(host_pod.port), f"{host_pod.username}@{host_pod.host}"]
    done = subprocess.run([*argv, "echo", "ran"], capture_output=True, text=True, timeout=30, check=False)
    assert "ran" not in done.stdout and NO_PTY in done.stdout


def test_transport_runs_a_long_script_through_the_gateway(host_pod, ssh_home):
    # Longer than a PTY's 4 KiB input line, with quotes, and a failing exit status.
    script = "\n".join(["x='it''s'", *(f"echo line{i} \"$x\"" for i in range(400)), "echo oops >&2",
                        "exit 3"])
    out = remote.run(host_pod, script, timeout=60, ssh=str(ssh_home.ssh),
                     options=["-o", "StrictHostKeyChecking=accept-new"])
    assert out.error is None and out.exit_code == 3, out
    lines = out.text.splitlines()
    assert lines[:2] == ["line0 its", "line1 its"] and "line399 its" in lines and "oops" in lines
    assert not out.ok


def test_transport_says_why_the_gateway_refused(host_pod, tmp_path):
    stranger = make_ssh_home(tmp_path)  # a key the gateway does not know
    out = remote.run(host_pod, "true", timeout=60, ssh=str(stranger.ssh),
                     options=["-o", "StrictHostKeyChecking=accept-new"])
    assert out.text is None and "Permission denied" in out.error, out


# -- pod create against the fake, pods without a public IP ----------------------------


@pytest.fixture
def fake(gateway):
    with FakeRunPod(gateway=gateway) as server:
        server.state.public_ip = False  # a community host without one
        yield server
    assert server.mismatches == [], server.mismatches


@pytest.fixture
def cli(fake, ssh_home, tmp_path):
    from fake_runpod.fixtures import PodCli

    runner = PodCli(fake, ssh_home.home, tmp_path / "project")
    runner.workdir.mkdir()
    runner.env["PATH"] = f"{ssh_home.bin}:{runner.env['PATH']}"
    runner.env["IMAGEBUILD_GATEWAY_GRACE"] = "3"
    return runner


def test_create_without_public_ip_gets_ready_through_the_gateway(cli, fake, ssh_home):
    name = unique_name("nopub")
    began = time.monotonic()
    result = cli("pod", "create", "--image", "img:1", "--gpu", "4090", "--name", name,
                 "--public-key", ssh_home.public_key.strip(), "--timeout", "25")
    assert result.code == 0, result.output
    assert time.monotonic() - began < 20
    assert "gateway" in result.output
    [pod] = fake.pods.values()
    assert fake.billing() == [pod.id]  # ready: kept
    # The gateway's host key sits under its own name, never the pod's.
    assert f"runpod-{pod.id}" not in ssh_home.known()


def test_create_gives_up_early_when_the_gateway_refuses_the_key(cli, fake, tmp_path):
    # The pod gets a key nobody here holds: the gateway lets this machine nowhere in.
    stranger = make_ssh_home(tmp_path / "stranger")
    began = time.monotonic()
    result = cli("pod", "create", "--image", "img:1", "--gpu", "4090", "--name", unique_name("nokey"),
                 "--public-key", stranger.public_key.strip(), "--timeout", "120")
    took = time.monotonic() - began
    assert result.code == 1, result.output
    assert took < 60, took
    assert "no public IP" in result.stderr and "Permission denied" in result.stderr, result.stderr
    assert "terminated" in result.stderr and fake.billing() == []


@pytest.mark.docker
def test_save_through_the_gateway_then_direct_keeps_both_host_keys(engine, pod_image, gateway, ssh_home,
                                                                   tmp_path):
    """A real pod: saved through the gateway while it has no public IP, then through its
    own sshd once it has one. The two host keys differ; neither may refuse the other."""
    from fake_runpod import ContainerBackend
    from fake_runpod.fixtures import PodCli

    with FakeRunPod(backend=ContainerBackend(engine), gateway=gateway) as fake:
        fake.state.public_ip = False
        cli = PodCli(fake, ssh_home.home, tmp_path)
        cli.env["PATH"] = f"{ssh_home.bin}:{cli.env['PATH']}"
        name = unique_name("gwsave")
        created = cli("pod", "create", "--image", pod_image, "--gpu", "4090", "--name", name,
                      "--public-key", ssh_home.public_key.strip(), "--timeout", "120")
        assert created.code == 0, created.output
        [pod_id] = list(fake.pods)

        through_gateway = cli("pod", "save", name)
        assert through_gateway.code == 0 and "everything is saved" in through_gateway.stdout, \
            through_gateway.output
        ran = cli("pod", "ssh", name, "--", "echo", "$RUNPOD_POD_ID")
        assert ran.code == 0 and pod_id in ran.stdout, ran.output

        fake.state.public_ip = True  # the pod's own sshd is published now
        direct = cli("pod", "save", name)
        assert direct.code == 0 and "everything is saved" in direct.stdout, direct.output
        known = ssh_home.known()
        assert f"runpod-{pod_id}" in known and any(k.startswith("runpod-gateway.") for k in known), known

        # An update resets the running pod: saved first, then a new container (the volume kept).
        container = ContainerBackend.name(pod_id)
        engine.client.containers.get(f"imagebuild-{container}").exec_run(
            ["sh", "-c", "touch /root/outside && mkdir -p /workspace/.cache && touch /workspace/.cache/inside"])
        updated = cli("pod", "update", name, "--image", pod_image, "--yes")
        assert updated.code == 0 and "everything is saved" in updated.stdout, updated.output
        assert fake.pods[pod_id].resets == 1
        deadline = time.monotonic() + 60
        while fake.pods[pod_id].status != "RUNNING" or fake.pods[pod_id].endpoint is None:
            assert time.monotonic() < deadline and fake.billing()
            time.sleep(0.2)
        after = engine.client.containers.get(f"imagebuild-{container}").exec_run(
            ["sh", "-c", "ls /root/outside /workspace/.cache/inside 2>&1"]).output.decode()
        assert "/workspace/.cache/inside" in after and "No such file" in after, after

        assert cli("pod", "terminate", name, "--yes").code == 0
        assert fake.billing() == []
    assert fake.mismatches == []
