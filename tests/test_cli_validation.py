"""Every input checked before money is spent (issue 26): each bad value is one line
naming the flag, exit 2, and RunPod never sees a request that creates, starts or
changes a pod."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from conftest import record_push

if TYPE_CHECKING:
    from fake_runpod.fixtures import PodCli

pytest_plugins = ["fake_runpod.fixtures"]

IMAGE = "registry.example/you/research-pod@sha256:" + "ab" * 32
COSTLY = ("POST", "PATCH", "PUT")


def _no_costly_request(fake) -> None:
    spent = [(r.method, r.path) for r in fake.requests if r.method in COSTLY]
    assert spent == [], spent


def _one_line(result, *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("imagebuild: error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture
def cli(pod_cli: PodCli) -> PodCli:
    record_push(pod_cli.workdir, image=IMAGE, cuda="12.6")
    return pod_cli


@pytest.mark.parametrize("args, words", [
    (("--image", "bad ref!"), ("--image", "bad ref!")),
    (("--image", ""), ("--image", "empty")),
    (("--image", "UPPER/case:tag"), ("--image",)),
    (("--timeout", "-1"), ("--timeout",)),
    (("--timeout", "0"), ("--timeout",)),
    (("--timeout", "nan"), ("--timeout",)),
    (("--timeout", "inf"), ("--timeout",)),
    (("--gpu", ""), ("--gpu", "empty")),
    (("--gpu", " "), ("--gpu", "empty")),
    (("--name", ""), ("--name", "empty")),
    (("--name", "has space"), ("--name",)),
    (("--name", "-dash"), ("--name",)),
    (("--name", "x" * 200), ("--name",)),
    (("--cloud", ""), ("--cloud",)),
    (("--idle-stop", "45"), ("--idle-stop", "unit")),
    (("--idle-stop", ""), ("--idle-stop",)),
    (("-e", "RUNPOD_POD_ID=x"), ("RUNPOD_POD_ID", "RunPod")),
    (("-e", "RUNPOD_PUBLIC_IP=10.0.0.1"), ("RUNPOD_PUBLIC_IP",)),
    (("-e", "RUNPOD_TCP_PORT_22=2222"), ("RUNPOD_TCP_PORT_22",)),
    (("-e", "POD_IDLE_STOP=1m"), ("POD_IDLE_STOP", "--idle-stop")),
    (("-e", "=x"), ("--env",)),
    (("-e", "NOEQUALS"), ("--env",)),
    (("--gpu-count", "0"), ("--gpu-count",)),
    (("--gpu-count", "9"), ("--gpu-count",)),
    (("--disk-gb", "1"), ("--disk-gb",)),
    (("--volume-gb", "0"), ("--volume-gb",)),
    (("--ports", "22/udp"), ("udp",)),
    (("--ports", ""), ("--ports",)),
    (("--datacenter", ""), ("--datacenter",)),
    (("--gpu", "4090:2", "--gpu-count", "4"), ("--gpu 4090:2", "--gpu-count 4", "disagree")),
    (("--gpu", "4090:2,a6000:4"), ("--gpu", "one GPU count")),
    (("--gpu", "4090:0"), ("--gpu", "ALIAS[:N]")),
    (("--gpu", "4090:x"), ("--gpu", "ALIAS[:N]")),
    (("--gpu", "4090:100"), ("--gpu", "ALIAS[:N]")),
])
def test_pod_create_refuses_before_any_request_that_costs(cli, fake_runpod, args, words):
    result = cli("pod", "create", "--no-wait", *args)
    _one_line(result, *words)
    _no_costly_request(fake_runpod)
    assert fake_runpod.pods == {}


@pytest.mark.parametrize("command, args, words", [
    ("update", ("--image", "bad ref!"), ("--image", "bad ref!")),
    ("update", ("--image", ""), ("--image", "empty")),
    ("start", ("--timeout", "-5"), ("--timeout",)),
    ("start", ("--timeout", "nan"), ("--timeout",)),
])
def test_a_stopped_pod_is_not_touched_by_a_bad_update_or_start(cli, fake_runpod, command, args, words):
    assert cli("pod", "create", "--name", "kept", "--no-wait").code == 0
    assert cli("pod", "stop", "kept").code == 0
    before = len([r for r in fake_runpod.requests if r.method in COSTLY])
    result = cli("pod", command, "kept", *args)
    _one_line(result, *words)
    assert len([r for r in fake_runpod.requests if r.method in COSTLY]) == before


def test_pod_create_echoes_what_costs_money_and_what_stops_the_pod(cli, fake_runpod):
    result = cli("pod", "create", "--name", "told", "--no-wait", "--gpu", "4090", "--gpu-count", "2",
                 "--idle-stop", "45m", "--disk-gb", "40", "--volume-gb", "60")
    assert result.code == 0, result.output
    said = result.stderr
    for words in ("2 x RTX 4090", "/h", "idle stop: 45m", "container disk 40 GB", "volume 60 GB"):
        assert words in said, (words, said)
