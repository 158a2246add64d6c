"""No pod left billing: every command that creates or starts a pod, under every failure.

The matrix: `pod create`, `pod start` and `pod terminate --start-to-save`, each
with SSH that never comes up, a failing save, Ctrl-C, SIGTERM, a closed stdin and
an API that keeps failing with 5xx. Afterwards the fake's ledger must show no pod
billed (PROVISIONING, STARTING or RUNNING) that the user did not ask to keep
running. The real CLI runs in a subprocess against the spec-validated fake.
"""

from __future__ import annotations

import math
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import httpx
import pytest
from conftest import record_push
from fake_runpod import BannerBackend, FakeRunPod

if TYPE_CHECKING:
    from fake_runpod.fixtures import PodCli

pytest_plugins = ["fake_runpod.fixtures"]

IMAGE = "registry.example/you/research-pod@sha256:" + "cd" * 32
FAILURES = ["ssh_never_ready", "save_fails", "ctrl_c", "sigterm", "closed_stdin", "api_5xx"]
# Only terminate saves; create and start ask nothing, so a closed stdin is no failure for them.
MATRIX = [(kind, failure) for kind in ("create", "start", "terminate") for failure in FAILURES
          if kind == "terminate" or failure != "save_fails"]


@pytest.fixture
def cli(pod_cli: PodCli) -> PodCli:
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    return pod_cli


def stopped_pod(fake: FakeRunPod, name: str) -> str:
    """A pod that exists, stopped (EXITED): what `pod start` and --start-to-save begin from."""
    with httpx.Client(base_url=fake.url, headers={"Authorization": f"Bearer {fake.api_key}"}) as http:
        pod = http.post("/pods", json={"name": name, "image": IMAGE, "gpu": {"id": "NVIDIA RTX A6000"},
                                       "ports": ["22/tcp"], "startSsh": True}).json()
        assert http.post(f"/pods/{pod['id']}/action", json={"action": "stop"}).status_code == 200
    assert fake.billing() == []
    return pod["id"]


def command(kind: str, fake: FakeRunPod) -> list[str]:
    if kind == "create":
        return ["pod", "create", "--gpu", "4090", "--name", "matrix", "--timeout", "3"]
    pod_id = stopped_pod(fake, "matrix")
    if kind == "start":
        return ["pod", "start", pod_id, "--timeout", "3"]
    return ["pod", "terminate", pod_id, "--start-to-save", "--yes", "--timeout", "3", "--save-timeout", "5"]


def interrupt(cli: PodCli, argv: list[str], sig: int) -> tuple[int, str]:
    """Run the CLI, send ``sig`` once a pod is billed (it is then waiting for SSH)."""
    fake = cli.fake
    fake.state.backend = BannerBackend(banner=None)  # it waits until the signal comes
    # A shell without job control starts background jobs with SIGINT ignored, and Python
    # keeps an ignored SIGINT: give the CLI the default a terminal's Ctrl-C meets.
    process = subprocess.Popen(cli.argv(*argv), cwd=cli.workdir, env=cli.full_env(), text=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not fake.billing() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the wait loop
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    return process.returncode, stderr


@pytest.mark.parametrize(("kind", "failure"), MATRIX)
def test_no_pod_left_billing(cli, fake_runpod, kind, failure):
    argv = command(kind, fake_runpod)
    before = len(fake_runpod.requests)
    if failure in ("ctrl_c", "sigterm"):
        code, stderr = interrupt(cli, argv, signal.SIGINT if failure == "ctrl_c" else signal.SIGTERM)
        assert code == (130 if failure == "ctrl_c" else 143) and "interrupted" in stderr, stderr  # 128 + signal
        # A pod create made is terminated (nothing on it yet); one that was there is stopped.
        assert ("terminating pod" if kind == "create" else "stopping pod") in stderr
    else:
        if failure == "ssh_never_ready":
            fake_runpod.state.backend = BannerBackend(banner=None)
            # Any timeout runs out when SSH never comes: 1 s instead of 3 (the signal cases
            # keep 3, their signal must land inside the wait).
            argv = ["1" if i and argv[i - 1] == "--timeout" else a for i, a in enumerate(argv)]
        if failure == "api_5xx":
            fake_runpod.inject("server_error", method="GET", path="/v2/pods/*", times=math.inf)
        if failure == "closed_stdin":
            argv = [a for a in argv if a != "--yes"]
        # save_fails: the fake's pods greet like sshd but are not one: pod-save cannot run.
        result = cli(*argv)
        if kind != "terminate" and failure == "closed_stdin":
            # Nothing to ask: the pod the user asked for runs, and is ready.
            assert result.code == 0, result.output
            assert fake_runpod.billing() == [p.id for p in fake_runpod.pods.values()]
            return
        assert result.code in (1, 2), result.output
        assert len([ln for ln in result.stderr.splitlines() if ln.startswith("imagebuild: error")]) == 1
        if failure == "closed_stdin":  # refused before anything changed: never started
            assert result.code == 2 and "--yes" in result.stderr
            assert [r for r in fake_runpod.requests[before:] if r.method != "GET"] == []
    assert fake_runpod.billing() == [], fake_runpod.state.ledger
    if kind == "create":  # never got ready: terminated, its volume would bill stopped
        assert fake_runpod.pods == {}
    else:
        assert len(fake_runpod.pods) == 1  # the user's pod: stopped, never deleted without being asked


def test_force_without_yes_on_a_closed_stdin_changes_nothing(cli, fake_runpod):
    """The reported case: `--force` and no `--yes`, no one to answer."""
    pod_id = stopped_pod(fake_runpod, "forced")
    before = len(fake_runpod.requests)
    result = cli("pod", "terminate", pod_id, "--start-to-save", "--force")
    assert result.code == 2 and "add --yes" in result.stderr and "Aborted" not in result.output
    assert fake_runpod.billing() == [] and pod_id in fake_runpod.pods
    assert [r.method for r in fake_runpod.requests[before:]] == ["GET"]  # it only looked


def test_declining_on_a_terminal_stops_the_pod_it_started(cli, fake_runpod):
    pod_id = stopped_pod(fake_runpod, "declined")
    result = cli("pod", "terminate", pod_id, "--start-to-save", "--force", "--timeout", "10", tty="n\n")
    assert result.code == 1 and "not terminated" in result.stderr, result.output
    assert "stopping pod declined" in result.stderr
    assert fake_runpod.billing() == [] and fake_runpod.pods[pod_id].status == "EXITED"
    statuses = [s for pid, s in fake_runpod.state.ledger if pid == pod_id]
    assert "RUNNING" in statuses and statuses[-1] == "EXITED"  # it did run, then was stopped


def test_start_without_wait_keeps_running_as_asked(cli, fake_runpod):
    pod_id = stopped_pod(fake_runpod, "asked")
    fake_runpod.state.backend = BannerBackend(banner=None)
    assert cli("pod", "start", pod_id, "--no-wait").code == 0
    assert fake_runpod.billing() == [pod_id]
