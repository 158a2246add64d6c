"""Cost control through the real CLI against the fake RunPod: `pod create` orders its
GPU fallbacks by stock and says the price first, `--idle-stop` reaches the pod's
environment (a bad duration is one line naming the flag), `pod list` totals the
hourly spend and marks pods at 0 % GPU for over an hour, `pod status` shows the
cost so far and the idle stop."""

from __future__ import annotations

import json
import time

import pytest
import test_runpod_cli
from test_runpod_cli import A6000, RTX4090, created

pytest_plugins = ["fake_runpod.fixtures"]
cli = test_runpod_cli.cli  # the fixture: the CLI in a folder that pushed an image (CUDA 12.6)


def test_create_says_the_price_and_tries_a_gpu_in_stock_first(cli, fake_runpod):
    fake_runpod.state.stock[(RTX4090, "SECURE")] = "NONE"
    result = cli("pod", "create", "--gpu", "4090,a6000", "--name", "p", "--no-wait")
    assert result.code == 0, result.output
    # The catalog read asked for pod stock at the image's CUDA floor...
    (read,) = [r for r in fake_runpod.calls("GET", "/v2/catalog/gpus")]
    assert {k: v[-1] for k, v in read.query.items()} == {
        "include": "AVAILABILITY", "product": "POD", "count": "1", "cloud": "SECURE", "minCudaVersion": "12.6"}
    # ...so the out-of-stock first choice moved behind the one in stock: one create.
    assert [b["gpu"]["id"] for b in created(fake_runpod)] == [A6000]
    assert ("price on secure cloud: 1 x RTX A6000 $0.49/h (stock high); "
            "then 1 x RTX 4090 $0.69/h (stock none)") in result.stderr
    # An unchanged order when both are in stock: the user's preference stands.
    fake_runpod.state.stock[(RTX4090, "SECURE")] = "LOW"
    assert cli("pod", "create", "--gpu", "4090,a6000", "--name", "q", "--no-wait", "--gpu-count", "2").code == 0
    assert created(fake_runpod)[-1]["gpu"]["id"] == RTX4090


def test_idle_stop_flag_and_spec_reach_the_pod_env(cli, fake_runpod):
    assert cli("pod", "create", "--name", "a", "--no-wait", "--idle-stop", "45m",
               "--idle-stop-requires-save").code == 0
    env = created(fake_runpod)[-1]["env"]
    assert (env["POD_IDLE_STOP"], env["POD_IDLE_REQUIRES_SAVE"]) == ("45m", "1")
    (cli.workdir / "imagebuild.toml").write_text('[pod]\nidle_stop = "2h"\n')
    assert cli("pod", "create", "--name", "b", "--no-wait").code == 0
    assert created(fake_runpod)[-1]["env"]["POD_IDLE_STOP"] == "2h"
    assert "POD_IDLE_REQUIRES_SAVE" not in created(fake_runpod)[-1]["env"]
    assert cli("pod", "create", "--name", "c", "--no-wait", "--idle-stop", "off").code == 0
    assert created(fake_runpod)[-1]["env"]["POD_IDLE_STOP"] == "off"  # the watcher stays off
    (cli.workdir / "imagebuild.toml").unlink()
    assert cli("pod", "create", "--name", "d", "--no-wait").code == 0
    assert "POD_IDLE_STOP" not in created(fake_runpod)[-1]["env"]  # off unless set


@pytest.mark.parametrize("bad", ["soon", "", "5s", "1d", "-3m", "45 minutes"])
def test_bad_idle_stop_durations_are_one_line_errors_naming_the_flag(cli, fake_runpod, bad):
    for command in (["pod", "create", "--name", "x", "--no-wait"], ["run", "--image", "any:tag"]):
        result = cli(*command, "--idle-stop", bad)
        assert result.code == 2, result.output
        said = "--idle-stop: empty" if not bad else "--idle-stop: expected"  # "" is not "not given"
        assert result.stderr.count("\n") == 1 and said in result.stderr, result.stderr
    assert not created(fake_runpod)  # nothing was created


def test_a_bad_spec_idle_stop_names_the_key(cli, fake_runpod):
    (cli.workdir / "imagebuild.toml").write_text('[pod]\nidle_stop = "soon"\n')
    result = cli("pod", "create", "--name", "x", "--no-wait")
    assert result.code == 2 and "pod.idle_stop" in result.stderr and "45m" in result.stderr
    assert result.stderr.count("\n") == 1 and not created(fake_runpod)


def test_spec_save_every_reaches_the_pod_env_and_the_flag_overrides_it(cli, fake_runpod):
    (cli.workdir / "imagebuild.toml").write_text('[pod]\nsave_every = "15m"\n')
    assert cli("pod", "create", "--name", "a", "--no-wait").code == 0
    assert created(fake_runpod)[-1]["env"]["POD_SAVE_EVERY"] == "15m"
    assert cli("pod", "create", "--name", "b", "--no-wait", "--save-every", "off").code == 0
    assert created(fake_runpod)[-1]["env"]["POD_SAVE_EVERY"] == "off"
    (cli.workdir / "imagebuild.toml").unlink()
    assert cli("pod", "create", "--name", "d", "--no-wait").code == 0
    assert "POD_SAVE_EVERY" not in created(fake_runpod)[-1]["env"]  # the pod's save.toml decides


@pytest.mark.parametrize("bad", ["soon", "5s", 15])
def test_a_bad_spec_save_every_names_the_key(cli, fake_runpod, bad):
    value = f'"{bad}"' if isinstance(bad, str) else str(bad)
    (cli.workdir / "imagebuild.toml").write_text(f"[pod]\nsave_every = {value}\n")
    result = cli("pod", "create", "--name", "x", "--no-wait")
    assert result.code == 2, result.output
    assert "pod.save_every" in result.stderr and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and not created(fake_runpod), result.stderr


def test_list_totals_the_spend_and_marks_pods_idle_on_the_gpu_for_an_hour(cli, fake_runpod):
    now = [time.monotonic()]
    fake_runpod.state.clock = lambda: now[0]
    assert cli("pod", "create", "--name", "idle", "--gpu", "4090", "--no-wait").code == 0
    assert cli("pod", "create", "--name", "busy", "--gpu", "a6000", "--gpu-count", "2", "--no-wait").code == 0
    idle, busy = (next(p for p in fake_runpod.pods.values() if p.request["name"] == n) for n in ("idle", "busy"))
    busy.gpu_util = 87
    now[0] += 2 * 3600  # two hours later; both up all along
    first = cli("pod", "list", env={"COLUMNS": "200"})
    assert first.code == 0 and "total $1.67/h" in first.stdout  # 0.69 + 2 x 0.49
    # RunPod tells the utilisation now, not since when: the first sighting is not an hour.
    assert "warning" not in first.stdout and "0% GPU" not in first.stdout
    history = cli.home / ".cache" / "imagebuild" / "gpu-idle.json"
    seen = json.loads(history.read_text())
    assert list(seen) == [idle.id]  # the busy pod is not tracked
    history.write_text(json.dumps({idle.id: seen[idle.id] - 3700}))  # as if listed an hour ago
    later = cli("pod", "list", env={"COLUMNS": "200"})
    row = next(line for line in later.stdout.splitlines() if " idle " in line)
    assert "RUNNING (0% GPU 1h 01m)" in row
    assert f"warning: idle ({idle.id}) has used 0% GPU for 1h 01m at $0.69/h" in later.stdout
    assert "busy" not in later.stdout.split("total")[1]
    idle.gpu_util = 5  # back at work: forgotten
    assert "warning" not in cli("pod", "list").stdout
    assert json.loads(history.read_text()) == {}


def test_status_shows_uptime_cost_so_far_and_the_idle_stop(cli, fake_runpod):
    now = [time.monotonic()]
    fake_runpod.state.clock = lambda: now[0]
    assert cli("pod", "create", "--name", "st", "--gpu", "4090", "--idle-stop", "45m", "--no-wait").code == 0
    assert cli("pod", "create", "--name", "plain", "--gpu", "4090", "--no-wait").code == 0
    now[0] += 3 * 3600
    status = cli("pod", "status", "st").stdout
    assert "cost     $0.69/h, $2.07 so far (since the container started)" in status
    assert "uptime   2h 59m" in status  # 3 h less the fake's 0.4 s of provisioning
    assert "idle     stops after 45m idle (pod-save first: tried; the pod stops even if it fails)" in status
    assert "without a key it ends the container" in status  # no key given: said plainly
    assert "no idle stop" in cli("pod", "status", "plain").stdout
