"""`pod create` moves on from a host whose GPU canary fails: against the fake RunPod with
real pods of the test image behind it (its ContainerBackend), reached over real SSH."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import unique_name
from fake_runpod import ContainerBackend, FakeRunPod

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
        host = self.hosts.pop(0) if self.hosts else {}
        return super().start(pod_id, image, {**env, **host})


@pytest.fixture(scope="module")
def ssh_wrapper(tmp_path_factory):
    """An ssh that uses a key of its own (ssh reads the real home's ~/.ssh, not $HOME's)."""
    root = tmp_path_factory.mktemp("canary-ssh")
    key = root / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = root / "config"
    config.write_text(f"Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
                      f"  UserKnownHostsFile {root / 'known_hosts'}\n")
    (root / "bin").mkdir()
    wrapper = root / "bin" / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {config} "$@"\n')
    wrapper.chmod(0o755)
    return root / "bin", key.with_suffix(".pub").read_text().strip()


def _create(engine, pod_image, ssh_wrapper, tmp_path, hosts, *flags: str):
    from fake_runpod.fixtures import PodCli

    bin_dir, public_key = ssh_wrapper
    backend = Hosts(engine, {}, hosts)
    with FakeRunPod(backend=backend) as fake:
        cli = PodCli(fake, tmp_path / "home", tmp_path)
        cli.env["PATH"] = f"{bin_dir}:{cli.env['PATH']}"
        name = unique_name("canary")
        result = cli("pod", "create", "--image", pod_image, "--gpu", "4090,3090", "--name", name,
                     "--public-key", public_key, "--timeout", "120", *flags, timeout=600)
        kept = {pod_id: pod.status for pod_id, pod in fake.pods.items()}
        ledger = list(fake.state.ledger)
        gpus = [recorded.body["gpu"]["id"] for recorded in fake.requests
                if recorded.method == "POST" and recorded.path.endswith("/pods")]
        assert fake.mismatches == [], fake.mismatches
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
