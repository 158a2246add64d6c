"""`pod create --compression zstd` against the fake RunPod: the pod starts from the pushed
zstd variant; on a host whose engine cannot pull zstd (Docker Engine < 23: the fake's
``zstd_images``/``hosts_pull_zstd``) it goes to ERROR, is terminated, and is created again
from the gzip digest, saying so in one line - never left billing (issue 27)."""

from __future__ import annotations

import pytest
from conftest import record_push

from imagebuild.image.state import write_json
from imagebuild.project import state_file

pytest_plugins = ["fake_runpod.fixtures"]

GZIP = "ghcr.io/lab/research-pod@sha256:" + "ab" * 32
ZSTD = "ghcr.io/lab/research-pod@sha256:" + "cd" * 32
FAST = {"IMAGEBUILD_RUNPOD_LISTING_LAG": "4", "IMAGEBUILD_RUNPOD_TIMEOUT": "1.5"}
CREATE = ("pod", "create", "--canary", "off", "--timeout", "20")


@pytest.fixture
def cli(pod_cli):
    record_push(pod_cli.workdir, image=GZIP, zstd_image=ZSTD, cuda="12.6")
    pod_cli.env.update(FAST)
    pod_cli.fake.state.zstd_images = [ZSTD]
    return pod_cli


def images_posted(fake) -> list[str]:
    return [call.body["image"] for call in fake.calls("POST", "/v2/pods")]


def test_a_zstd_pod_that_errs_is_created_again_from_gzip(cli, fake_runpod):
    result = cli(*CREATE, "--name", "z", "--compression", "zstd")
    assert result.code == 0, result.output
    assert images_posted(fake_runpod) == [ZSTD, GZIP]
    said = [line for line in result.stderr.splitlines() if "creating it again from the gzip image" in line]
    assert len(said) == 1 and "invalid tar header" in said[0] and GZIP in said[0], result.stderr
    first, second = [call.body for call in fake_runpod.calls("POST", "/v2/pods")]
    statuses = [status for pod, status in fake_runpod.state.ledger]
    assert "ERROR" in statuses and "TERMINATED" in statuses
    assert len(fake_runpod.billing()) == 1  # the gzip pod only: the ERROR one bills nothing
    assert fake_runpod.pods[fake_runpod.billing()[0]].request["image"] == GZIP
    assert first["name"] == second["name"] == "z"


def test_a_host_that_pulls_zstd_keeps_the_zstd_pod(cli, fake_runpod):
    fake_runpod.state.hosts_pull_zstd = True
    result = cli(*CREATE, "--name", "z2", "--compression", "zstd")
    assert result.code == 0, result.output
    assert images_posted(fake_runpod) == [ZSTD]
    assert "gzip" not in result.stderr


def test_the_spec_asks_for_zstd_and_both_keeps_gzip(cli, fake_runpod):
    spec = cli.workdir / "imagebuild.toml"
    spec.write_text('[build]\ncompression = "both"\n')
    assert cli(*CREATE, "--name", "b").code == 0
    assert images_posted(fake_runpod) == [GZIP]
    spec.write_text('[build]\ncompression = "zstd"\n')
    result = cli(*CREATE, "--name", "s")
    assert result.code == 0, result.output
    assert images_posted(fake_runpod) == [GZIP, ZSTD, GZIP]
    assert cli(*CREATE, "--name", "g", "--compression", "gzip").code == 0  # the flag wins
    assert images_posted(fake_runpod)[-1] == GZIP


def test_when_the_gzip_pod_fails_too_nothing_bills(cli, fake_runpod):
    fake_runpod.state.pull_failures[GZIP] = "manifest unknown"
    result = cli(*CREATE, "--name", "both-bad", "--compression", "zstd")
    assert result.code == 1, result.output
    assert images_posted(fake_runpod) == [ZSTD, GZIP]
    assert "manifest unknown" in result.stderr.splitlines()[-1]
    assert fake_runpod.pods == {} and fake_runpod.billing() == []


def test_no_fallback_for_a_gzip_pod(cli, fake_runpod):
    fake_runpod.state.pull_failures[GZIP] = "manifest unknown"
    result = cli(*CREATE, "--name", "g")
    assert result.code == 1 and images_posted(fake_runpod) == [GZIP]
    assert fake_runpod.billing() == []


@pytest.mark.parametrize(("args", "state", "said"), [
    (("--compression", "lz4"), None, "--compression 'lz4': expected gzip or zstd"),
    (("--compression", "zstd"), {"image": GZIP}, "--compression zstd: no zstd variant pushed from"),
    (("--compression", "zstd", "--image", GZIP), None, "--compression zstd starts the pod from the pushed"),
])
def test_bad_compression_input_is_one_line(cli, fake_runpod, args, state, said):
    if state is not None:  # pushed with --compression gzip: no variant recorded
        write_json(state_file(cli.workdir / "imagebuild.toml", "push.json"), state, merge=False)
    result = cli(*CREATE, "--name", "x", *args)
    assert result.code == 2, result.output
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert images_posted(fake_runpod) == []


def test_the_fake_fails_a_zstd_pull_as_docker_20_10_does(cli, fake_runpod):
    result = cli(*CREATE, "--name", "fake", "--image", ZSTD)
    assert result.code == 1
    assert "archive/tar: invalid tar header" in result.stderr and fake_runpod.billing() == []
