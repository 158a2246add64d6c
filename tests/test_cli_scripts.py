"""Output for scripts and the waits' progress (issue 26): `--json` on every command that
prints results, one versioned pod shape for local and RunPod pods, `pod logs --json`
with ``ts`` and ``source``, the same GPU-count syntax as `export`, and `pod create`'s
phases said once each when no terminal watches.

The real CLI in a subprocess against the fake RunPod; no image builds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import record_push

from imagebuild.pods import podjson
from imagebuild.pods.localrun import LocalPod
from imagebuild.pods.ssh import Endpoint

if TYPE_CHECKING:
    from fake_runpod.fixtures import PodCli

pytest_plugins = ["fake_runpod.fixtures"]

IMAGE = "registry.example/you/research-pod@sha256:" + "ab" * 32
RTX4090 = "NVIDIA GeForce RTX 4090"


@pytest.fixture
def cli(pod_cli: PodCli) -> PodCli:
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    return pod_cli


def _running(fake_runpod) -> None:
    (pod,) = fake_runpod.pods.values()
    deadline = time.monotonic() + 10
    while pod.status != "RUNNING":  # billing() moves the fake's clock-driven statuses on
        assert time.monotonic() < deadline and fake_runpod.billing()
        time.sleep(0.1)


# -- one pod shape ------------------------------------------------------------------


def test_local_and_runpod_pods_have_the_same_keys_and_status_words(cli, fake_runpod):
    made = json.loads(cli("pod", "create", "--name", "shape", "--gpu", "4090:2", "--json").stdout)
    (listed,) = json.loads(cli("pod", "list", "--json").stdout)
    status = json.loads(cli("pod", "status", "shape", "--json").stdout)
    local = podjson.local(LocalPod(
        name="box", container="imagebuild-box", container_id="c0ffee", volume="imagebuild-box-workspace",
        image=IMAGE, status="exited", ssh=Endpoint("direct", "127.0.0.1", 2222, "root"), jupyter_port=None))
    for pod in (made, listed, local):
        assert tuple(pod) == podjson.KEYS, tuple(pod)
    assert set(status) == {*podjson.KEYS, "canary", "save"}
    assert (made["format"], made["kind"], made["status"], made["gpu"]) == (
        1, "runpod", "running", {"type": RTX4090, "count": 2})
    assert made["ref"] == made["id"] == listed["id"] and made["cost_per_hr"] > 0
    assert (local["kind"], local["status"], local["ref"], local["ssh"]) == ("local", "stopped", "local:box", None)
    assert made["status"] in podjson.STATUSES and local["status"] in podjson.STATUSES
    assert made["raw"]["status"] == "RUNNING" and local["raw"]["status"] == "exited"


def test_terminate_json_is_the_pod_it_removed(cli, fake_runpod):
    made = json.loads(cli("pod", "create", "--name", "gone", "--no-wait", "--json").stdout)
    result = cli("pod", "terminate", "gone", "--yes", "--force", "--json")
    assert result.code == 0, result.output
    removed = json.loads(result.stdout)
    assert (removed["id"], removed["status"], removed["format"]) == (made["id"], "terminated", 1)
    assert fake_runpod.pods == {}


# -- pod logs, pod ssh ----------------------------------------------------------------


def test_pod_logs_json_keeps_ts_and_source(cli, fake_runpod):
    assert cli("pod", "create", "--name", "lg", "--no-wait").code == 0
    _running(fake_runpod)
    result = cli("pod", "logs", "lg", "--json")
    assert result.code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events and all(set(e) == {"ts", "source", "line"} for e in events), events
    assert events[0]["source"] == "system" and events[0]["line"] == f"pulling image {IMAGE}"
    assert {e["source"] for e in events} == {"system", "container"}
    assert all(e["ts"].endswith("Z") for e in events)
    assert not any(e["line"].startswith("[system]") for e in events)


def _local_ssh(directory: Path) -> Path:
    """An `ssh` that runs the remote command here (its last argument), as a pod's sshd would."""
    directory.mkdir(exist_ok=True)
    script = directory / "ssh"
    script.write_text('#!/bin/bash\nexec bash -c "${@: -1}"\n')
    script.chmod(0o755)
    return directory


def test_pod_ssh_json_frames_the_output_and_keeps_the_exit_code(cli, fake_runpod):
    assert cli("pod", "create", "--name", "sj").code == 0
    path = f"{_local_ssh(cli.workdir / 'bin')}:{cli.env['PATH']}"
    result = cli("pod", "ssh", "sj", "--json", "--", "echo out; echo err >&2; exit 3", env={"PATH": path})
    assert result.code == 3, result.output
    done = json.loads(result.stdout)
    assert (done["exit_code"], done["stdout"], done["merged"]) == (3, "out\n", False)
    assert "err" in done["stderr"]


def test_pod_ssh_json_without_a_command_is_one_line(cli, fake_runpod):
    result = cli("pod", "ssh", "any", "--json")
    assert result.code == 2 and result.stderr.count("\n") == 1 and "-- CMD" in result.stderr, result.output
    assert fake_runpod.requests == []


# -- export, volume -------------------------------------------------------------------


def test_export_json_has_the_tasks_and_the_files(cli, tmp_path):
    printed = cli("export", "skypilot", "--image", IMAGE, "--gpu", "4090:2", "--json", "--", "python t.py")
    assert printed.code == 0, printed.output
    shown = json.loads(printed.stdout)
    assert shown["files"] is None and shown["tasks"][0]["resources"]["accelerators"] == "RTX4090:2"
    out = tmp_path / "task.yaml"
    written = json.loads(cli("export", "skypilot", "--image", IMAGE, "--gpu", "4090", "--json",
                             "--out", str(out), "--", "python t.py").stdout)
    assert written["files"] == [str(out)] and out.is_file() and written["launch"].endswith(str(out))


def test_volume_create_takes_volume_gb_as_pod_create_does(cli, fake_runpod):
    made = cli("volume", "create", "data", "--volume-gb", "30", "--datacenter", "EU-RO-1", "--json")
    assert made.code == 0, made.output
    assert json.loads(made.stdout)["size"] == 30


# -- the same GPU syntax as export ---------------------------------------------------


def test_pod_create_gpu_alias_count_sets_the_count(cli, fake_runpod):
    assert cli("pod", "create", "--name", "two", "--gpu", "4090:2", "--no-wait").code == 0
    assert cli("pod", "create", "--name", "agree", "--gpu", "4090:2", "--gpu-count", "2", "--no-wait").code == 0
    bodies = [r.body for r in fake_runpod.calls("POST", "/v2/pods")]
    assert [b["gpu"]["count"] for b in bodies] == [2, 2] and bodies[0]["gpu"]["id"] == RTX4090


# -- progress ------------------------------------------------------------------------


def test_pod_create_says_each_phase_once_with_elapsed_and_timeout(cli, fake_runpod):
    result = cli("pod", "create", "--name", "ph", "--timeout", "120")
    assert result.code == 0, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("pod ph: ")]
    # Each phase once, in order; the pod's log lines (under the phase they came in) as they come.
    words = [line.split()[2] for line in said]
    assert [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]] == [
        "provisioning", "pulling", "sshd"], said
    statuses = [line for line in said if " log: " not in line]  # PROVISIONING, STARTING, RUNNING...
    assert len(statuses) == len({line.split()[2] for line in statuses}), said
    assert all(" s / 120 s)" in line for line in said), said


def test_quiet_says_no_progress_but_still_the_result(cli, fake_runpod):
    result = cli("--quiet", "pod", "create", "--name", "qt")
    assert result.code == 0 and "pod qt (" in result.stdout, result.output
    assert not [line for line in result.stderr.splitlines() if line.startswith("pod qt: ")], result.stderr


def test_push_progress_says_bytes_and_rate_per_layer_every_few_seconds(monkeypatch):
    # The engine's push stream for one layer (docker's jsonmessage: status, id, progressDetail),
    # fed through the per-layer follower with a clock that moves 2 s a message.
    import io

    from imagebuild.image.progress import PlainReporter
    from imagebuild.image.push import TagPush, _Layers

    now = [0.0]
    out = io.StringIO()
    layers = _Layers(PlainReporter(verb="push", stream=out, clock=lambda: now[0]))
    result = TagPush("r/x:1")
    layer = "0123456789ab"
    stream = [{"status": "Preparing", "id": layer}] + [
        {"status": "Pushing", "id": layer, "progressDetail": {"current": n * 10_000_000, "total": 60_000_000}}
        for n in range(1, 7)] + [{"status": "Pushed", "id": layer}]
    import imagebuild.image.push as push_module

    monkeypatch.setattr(push_module.time, "monotonic", lambda: now[0])
    for item in stream:
        now[0] += 2.0
        layers.event(item, "r/x:1", result)
    monkeypatch.undo()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"[{layer}] push r/x:1"
    assert lines[1:-2] == [f"[{layer}] pushing 10.0MB", f"[{layer}] pushing 40.0MB at 6.7MB/s"], lines
    assert lines[-2] == f"[{layer}] pushed 60.0MB at 5.0MB/s" and lines[-1].startswith(f"[{layer}] done in")
    assert result.uploaded == [layer] and result.streamed_bytes == 60_000_000


def test_every_command_takes_json():
    # A script never has to scrape a command's words: every leaf of `imagebuild --help`.
    from imagebuild.cli import command

    def leaves(node, path=()):
        subs = getattr(node, "commands", None)
        if not subs:
            yield path, node
        for name, sub in sorted((subs or {}).items()):
            yield from leaves(sub, (*path, name))

    found = list(leaves(command()))
    missing = [" ".join(path) for path, node in found if not any("--json" in p.opts for p in node.params)]
    assert len(found) > 20 and missing == [], missing


def test_a_silent_wait_without_a_terminal_still_says_it_is_alive(capsys):
    # pod-save over SSH sends no events: in a log, its wait says so every HEARTBEAT_S.
    import time

    from imagebuild.cli import progress

    with progress._heartbeat("pod p1: pod-save", None, every=0.2) as report:
        time.sleep(0.7)
        report("SSH answers")  # an event resets the clock
        said_before = capsys.readouterr().err.splitlines()
        time.sleep(0.1)
    assert len(said_before) >= 3 and said_before[0].startswith("pod p1: pod-save (0 s)"), said_before
    assert said_before[-1].startswith("pod p1: pod-save: sshd ("), said_before
    assert capsys.readouterr().err == ""  # 0.1 s after an event: nothing more
