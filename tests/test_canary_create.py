"""`pod create` moves on from a host whose GPU canary fails: against the fake RunPod with
real pods of the test image behind it (its ContainerBackend), reached over real SSH."""

from __future__ import annotations

import contextlib

import pytest
from conftest import unique_name
from fake_runpod import ContainerBackend, FakeRunPod
from ssh_helpers import make_ssh_home

pytestmark = pytest.mark.docker

# A host whose GPU does not work, as pod-canary sees it: the pod was given a GPU, the
# driver does not answer (issue 24; runpodctl #253, SkyPilot #8408: hosts whose driver
# is older than the image's CUDA). The container backend has no GPU at all, so the pod
# is told it needs one; a good host is a CPU container, where the canary skips.
BAD_HOST = {"POD_REQUIRE_GPU": "1"}


class Hosts(ContainerBackend):
    """Each pod started lands on the next host of ``hosts`` (its extra variables); once
    they run out, on good hosts. RunPod places a new pod on any machine with capacity,
    so a create after a terminate may land elsewhere (createPod: "This endpoint places
    one specific GPU type. It does not search for capacity")."""

    def __init__(self, engine, env: dict[str, str], hosts: list[dict[str, str]]):
        super().__init__(engine, env)
        self.hosts = list(hosts)

    def start(self, pod_id: str, image: str, env: dict[str, str]):
        from imagebuild.pods import localrun

        host = self.hosts.pop(0) if self.hosts else {}
        name = self.name(pod_id)
        if host and localrun.find(self.engine, name) is not None:
            # A resumed pod whose host changed while it was stopped (a driver update, a GPU
            # lost): the container is made again with the host's variables, on the same volume.
            pod_env = {**localrun.runpod_env(name), **self.env, **env, **host, "RUNPOD_POD_ID": pod_id}
            pod = localrun.recreate(self.engine, name, image, pod_env)
            return (pod.ssh.host, pod.ssh.port) if pod.ssh else None
        return super().start(pod_id, image, {**env, **host})


@pytest.fixture(scope="module")
def ssh_wrapper(tmp_path_factory):
    """An ssh that uses a key of its own (ssh reads the real home's ~/.ssh, not $HOME's)."""
    home = make_ssh_home(tmp_path_factory.mktemp("canary-ssh"))
    return home.bin, home.public_key.strip()


@contextlib.contextmanager
def _fake(engine, ssh_wrapper, tmp_path, hosts):
    """The fake RunPod on ``hosts``, and the CLI (its ssh uses the wrapper's key)."""
    from fake_runpod.fixtures import PodCli

    with FakeRunPod(backend=Hosts(engine, {}, hosts)) as fake:
        cli = PodCli(fake, tmp_path / "home", tmp_path)
        cli.env["PATH"] = f"{ssh_wrapper[0]}:{cli.env['PATH']}"
        yield fake, cli
        assert fake.mismatches == [], fake.mismatches


def _create(engine, pod_image, ssh_wrapper, tmp_path, hosts, *flags: str):
    with _fake(engine, ssh_wrapper, tmp_path, hosts) as (fake, cli):
        result = cli("pod", "create", "--image", pod_image, "--gpu", "4090,3090", "--name", unique_name("canary"),
                     "--public-key", ssh_wrapper[1], "--timeout", "120", *flags, timeout=600)
        kept = {pod_id: pod.status for pod_id, pod in fake.pods.items()}
        ledger = list(fake.state.ledger)
        gpus = [recorded.body["gpu"]["id"] for recorded in fake.requests
                if recorded.method == "POST" and recorded.path.endswith("/pods")]
    return result, kept, ledger, gpus


def _terminated(ledger) -> list[str]:
    return [pod_id for pod_id, status in ledger if status == "TERMINATED"]


def test_a_bad_host_is_terminated_and_the_pod_made_again(engine, pod_image, ssh_wrapper, tmp_path):
    result, kept, ledger, gpus = _create(engine, pod_image, ssh_wrapper, tmp_path, [BAD_HOST])
    assert result.code == 0, result.output
    (bad,) = _terminated(ledger)
    assert (bad, "EXITED") not in ledger  # terminated, not stopped: a stopped pod bills its disk
    assert list(kept.values()) == ["RUNNING"] and bad not in kept  # only the good pod bills
    assert gpus[:2] == ["NVIDIA GeForce RTX 4090"] * 2, gpus
    assert "terminating pod canary-" in result.stderr and "its GPU check failed: driver: no NVIDIA GPU" \
        in result.stderr, result.stderr
    assert "creating pod" in result.stderr and "again on NVIDIA GeForce RTX 4090 (attempt 2)" in result.stderr


def test_each_attempt_is_named_when_no_host_passes(engine, pod_image, ssh_wrapper, tmp_path):
    """Same GPU type once more, then the next choice; then one line per attempt."""
    result, kept, ledger, gpus = _create(engine, pod_image, ssh_wrapper, tmp_path, [BAD_HOST] * 4)
    assert result.code == 1, result.output
    assert kept == {} and len(_terminated(ledger)) == 4  # nothing left billing
    assert gpus == ["NVIDIA GeForce RTX 4090"] * 2 + ["NVIDIA GeForce RTX 3090"] * 2, gpus
    lines = [line for line in result.stderr.splitlines() if line.startswith("  pod ")]
    assert len(lines) == 4 and all(": driver: no NVIDIA GPU" in line for line in lines), result.stderr
    assert "on NVIDIA GeForce RTX 3090 (" in lines[3] and "Traceback" not in result.output


def test_canary_warn_keeps_the_pod_and_says_what_failed(engine, pod_image, ssh_wrapper, tmp_path):
    result, kept, ledger, _ = _create(engine, pod_image, ssh_wrapper, tmp_path, [BAD_HOST], "--canary", "warn")
    assert result.code == 0 and list(kept.values()) == ["RUNNING"] and _terminated(ledger) == []
    assert "warning: the GPU check failed on pod" in result.stderr and "(--canary warn)" in result.stderr


def test_pod_start_on_a_bad_host_says_what_failed_and_the_choices(engine, pod_image, ssh_wrapper, tmp_path):
    with _fake(engine, ssh_wrapper, tmp_path, [{}, BAD_HOST]) as (fake, cli):
        name = unique_name("canary")
        created = cli("pod", "create", "--image", pod_image, "--gpu", "4090", "--name", name,
                      "--public-key", ssh_wrapper[1], "--timeout", "120", timeout=600)
        assert created.code == 0, created.output
        assert cli("pod", "stop", name).code == 0
        started = cli("pod", "start", name, timeout=300)
        assert started.code == 1, started.output
        assert "is running, but its GPU check failed on this host: driver: no NVIDIA GPU" in started.stderr
        (pod_id,) = fake.pods
        assert f"`imagebuild pod terminate {pod_id}` (pod-save runs first; /workspace is this pod's own volume" \
            in started.stderr, started.stderr  # no network volume: terminating loses /workspace, said so
        assert "or keep working on it as it is" in started.stderr and "Traceback" not in started.output
        assert [pod.status for pod in fake.pods.values()] == ["RUNNING"]  # nothing done behind the user's back
        shown = cli("pod", "status", name)
        assert "canary   fail: driver" in shown.stdout, shown.output
