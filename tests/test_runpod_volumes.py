"""Network volumes: `imagebuild volume ...`, `pod create --volume`, and terminate keeping them.

The real CLI against the spec-validated fake RunPod.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from conftest import record_push

if TYPE_CHECKING:
    from fake_runpod.fixtures import PodCli

pytest_plugins = ["fake_runpod.fixtures"]

IMAGE = "registry.example/you/research-pod@sha256:" + "ef" * 32


@pytest.fixture
def cli(pod_cli: PodCli) -> PodCli:
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    return pod_cli


def posts(fake, path):
    return [r for r in fake.calls("POST", path)]


def test_volume_create_is_idempotent_by_name_and_lists(cli, fake_runpod):
    made = cli("volume", "create", "data", "--size", "50", "--datacenter", "EU-RO-1", "--json")
    assert made.code == 0, made.output
    volume = json.loads(made.stdout)
    assert (volume["name"], volume["size"], volume["dataCenter"]) == ("data", 50, "EU-RO-1")
    again = cli("volume", "create", "data", "--size", "80", "--datacenter", "EU-RO-1")
    assert again.code == 0 and "already exists" in again.stdout and "50 GB, not 80" in again.stdout
    assert len(posts(fake_runpod, "/v2/network-volumes")) == 1
    elsewhere = cli("volume", "create", "data", "--size", "50", "--datacenter", "US-KS-2")
    assert elsewhere.code == 1 and "already exists in EU-RO-1" in elsewhere.stderr
    listed = cli("volume", "list")
    assert volume["id"] in listed.stdout and "unused" in listed.stdout
    assert json.loads(cli("volume", "list", "--json").stdout) == [volume]


@pytest.mark.parametrize(("args", "expected"), [
    (["--size", "5", "--datacenter", "EU-RO-1"], "--size: a network volume holds 10 to 4096 GB"),
    (["--size", "50", "--datacenter", " "], "--datacenter: name the data center"),
    (["--size", "50", "--datacenter", "MARS-1"], "RunPod refused network volume"),  # the API's 400
])
def test_bad_volume_input_is_one_line(cli, fake_runpod, args, expected):
    result = cli("volume", "create", "v", *args)
    assert result.code in (1, 2) and expected in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert fake_runpod.account.volumes == {}


def test_pod_on_a_network_volume(cli, fake_runpod):
    assert cli("volume", "create", "work", "--size", "20", "--datacenter", "US-TX-3").code == 0
    (volume_id,) = fake_runpod.account.volumes
    result = cli("pod", "create", "--name", "nv", "--volume", "work", "--no-wait")
    assert result.code == 0, result.output
    (body,) = [r.body for r in posts(fake_runpod, "/v2/pods")]
    assert body["mounts"] == {"network": [{"volumeId": volume_id, "path": "/workspace"}]}
    assert body["dataCenterIds"] == ["US-TX-3"]  # where the volume is
    status = cli("pod", "status", "nv")
    assert f"network volume {volume_id} at /workspace (kept on terminate)" in status.stdout

    in_use = cli("volume", "rm", "work", "--yes")
    assert in_use.code == 1 and "is used by nv" in in_use.stderr
    assert volume_id in fake_runpod.account.volumes

    # A stopped pod on a network volume is not started to save: /workspace outlives it.
    assert cli("pod", "stop", "nv").code == 0
    gone = cli("pod", "terminate", "nv", "--yes")
    assert gone.code == 0, gone.output
    assert f"network volume {volume_id} (its /workspace) is kept" in gone.stdout
    assert [r.body for r in fake_runpod.requests if r.path.endswith("/action")] == [{"action": "stop"}]
    assert fake_runpod.pods == {} and fake_runpod.billing() == []

    no_tty = cli("volume", "rm", "work")
    assert no_tty.code == 2 and "--yes" in no_tty.stderr and volume_id in fake_runpod.account.volumes
    assert cli("volume", "rm", "work", "--yes").code == 0
    assert fake_runpod.account.volumes == {}


def test_spec_volume_and_conflicting_flags(cli, fake_runpod):
    assert cli("volume", "create", "specvol", "--size", "10", "--datacenter", "EU-SE-1").code == 0
    (cli.workdir / "imagebuild.toml").write_text('[image]\nname = "r.example/you/sim"\n\n[pod]\nvolume = "specvol"\n')
    bad = [
        (["--datacenter", "US-KS-2"], "network volume specvol is in EU-SE-1"),
        (["--volume-gb", "40"], "--volume-gb: a pod on a network volume"),
        (["--volume", "nope"], 'no network volume with id or name "nope"'),
    ]
    for flags, expected in bad:
        result = cli("pod", "create", "--name", "x", "--no-wait", *flags)
        assert result.code == 2 and expected in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
    assert posts(fake_runpod, "/v2/pods") == []
    assert cli("pod", "create", "--name", "x", "--no-wait").code == 0
    (body,) = [r.body for r in posts(fake_runpod, "/v2/pods")]
    assert "network" in body["mounts"] and "persistent" not in body["mounts"]
    assert body["dataCenterIds"] == ["EU-SE-1"]
