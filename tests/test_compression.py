"""`imagebuild push --compression both|zstd|gzip` against a real registry (issue 27).

A tiny image (FROM scratch, two files: two layers) stands for the build, with a build record
written as `imagebuild build` writes one, so the real CLI pushes it: the gzip image through
the engine, the zstd variant through skopeo. The registry's manifests are read back, the
config (the same layer content: same diff_ids) compared, and a containerd of its own pulls
the zstd variant, which this machine's dockerd 20.10 refuses ("invalid tar header").
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import containerd
import pytest
from conftest import docker, unique_name
from lockdata import sample_lock
from registry import Registry, remove_repository_tags

from imagebuild.image import compression
from imagebuild.image.lock import write_lock

pytestmark = [pytest.mark.docker]

IMAGEBUILD = [sys.executable, "-m", "imagebuild"]
GZIP_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@pytest.fixture(scope="module")
def registry():
    with Registry() as server:
        yield server


@pytest.fixture(scope="module")
def project(tmp_path_factory, registry, engine, test_base) -> Path:
    """A spec naming the registry, its lock, and a build record of a tiny local image."""
    from imagebuild.image.spec import load_spec
    from imagebuild.project import Project

    folder = tmp_path_factory.mktemp("zstd-project")
    repository = f"{registry.host}/imagebuild-test/{unique_name('tiny')}"
    spec_file = folder / "imagebuild.toml"
    spec_file.write_text(f'[image]\nname = "{repository}"\nbase = "{test_base}"\n')
    context = folder / "context"
    context.mkdir()
    (context / "data.bin").write_bytes(os.urandom(512 * 1024) + b"\0" * (4 << 20))
    (context / "note.txt").write_text("zstd variant test\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY data.bin /data.bin\nCOPY note.txt /note.txt\n")
    image = f"{repository}:tiny-{os.urandom(4).hex()}"
    docker("build", "-q", "-t", image, str(context))
    project = Project(load_spec(spec_file))
    lock = sample_lock(project.spec)
    write_lock(project.lock_path, lock)
    project.record_build(project.spec, image, [image], lock)
    yield folder
    remove_repository_tags(engine, repository)


def push(project: Path, registry: Registry, *args: str,
         path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "IMAGEBUILD_REGISTRY_USERNAME": registry.username,
           "IMAGEBUILD_REGISTRY_PASSWORD": registry.password,
           "DOCKER_CONFIG": str(project / "docker-config")}
    if path is not None:
        env["PATH"] = path
    done = subprocess.run([*IMAGEBUILD, "push", "--spec", str(project / "imagebuild.toml"), *args],
                          capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    assert registry.password not in done.stdout + done.stderr
    return done


def state(project: Path) -> dict:
    return json.loads((project / ".imagebuild" / "imagebuild.push.json").read_text())


def fetch(registry: Registry, repository: str, what: str) -> dict:
    path = repository.split("/", 1)[1]
    request = urllib.request.Request(f"http://{registry.host}/v2/{path}/{what}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json",
        "Authorization": "Basic " + base64.b64encode(
            f"{registry.username}:{registry.password}".encode()).decode()})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def pushed_both(project, registry) -> dict:
    done = push(project, registry, "--compression", "both")
    assert done.returncode == 0, done.stderr
    assert "pushed the zstd variant" in done.stderr
    return state(project)


def test_both_pushes_a_zstd_variant_of_the_same_content(pushed_both, registry):
    gzip_image, zstd_image = pushed_both["image"], pushed_both["zstd_image"]
    repository, gzip_digest = gzip_image.split("@")
    assert zstd_image.startswith(repository + "@sha256:") and zstd_image != gzip_image
    gzip_manifest = fetch(registry, repository, f"manifests/{gzip_digest}")
    zstd_manifest = fetch(registry, repository, f"manifests/{zstd_image.split('@')[1]}")
    assert [layer["mediaType"] for layer in gzip_manifest["layers"]] == [GZIP_LAYER] * 2
    assert [layer["mediaType"] for layer in zstd_manifest["layers"]] == [compression.ZSTD_LAYER] * 2
    assert zstd_manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    configs = [fetch(registry, repository, f"blobs/{manifest['config']['digest']}")
               for manifest in (gzip_manifest, zstd_manifest)]
    assert configs[0]["rootfs"]["diff_ids"] == configs[1]["rootfs"]["diff_ids"]  # same files


@pytest.mark.skipif(not containerd.available(), reason="containerd and ctr are not installed")
def test_containerd_pulls_the_zstd_variant_dockerd_20_cannot(pushed_both, registry, engine):
    zstd_image = pushed_both["zstd_image"]
    with containerd.containerd() as sock:
        done = containerd.pull(sock, zstd_image, registry.username, registry.password)
        assert done.returncode == 0, done.stderr
        assert "unpacking" in done.stdout + done.stderr
        listed = containerd.ctr(sock, "images", "ls", "-q").stdout.split()
        assert zstd_image in listed
    auth = {"username": registry.username, "password": registry.password}
    events = list(engine.client.api.pull(zstd_image, auth_config=auth, stream=True, decode=True))
    errors = " ".join(str(event.get("error", "")) for event in events)
    if int(engine.client.version()["Version"].split(".")[0]) < 23:  # a RunPod host on an old engine
        assert "invalid tar header" in errors, events[-3:]


def test_a_gzip_push_drops_the_recorded_variant(pushed_both, project, registry):
    done = push(project, registry, "--compression", "gzip")
    assert done.returncode == 0, done.stderr
    after = state(project)
    assert after["image"] == pushed_both["image"] and "zstd_image" not in after


def test_without_skopeo_zstd_is_one_line_before_anything_is_pushed(project, registry):
    done = push(project, registry, "--compression", "zstd", path="/nonexistent")
    assert done.returncode == 1
    assert done.stderr.strip() == ("imagebuild: error: --compression zstd/both needs skopeo to make the zstd "
                                   "variant: install it (apt-get install skopeo), or push with --compression gzip")


def test_a_bad_compression_is_bad_input(project, registry):
    done = push(project, registry, "--compression", "lz4")
    assert done.returncode == 2 and "--compression 'lz4': expected one of gzip, zstd, both" in done.stderr
    spec = project / "imagebuild.toml"
    before = spec.read_text()
    try:
        spec.write_text(before + '\n[build]\ncompression = "lz4"\n')
        done = push(project, registry)
        assert done.returncode == 2 and "build.compression" in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    finally:
        spec.write_text(before)


def test_rejected_credentials_are_one_line_without_the_password(project, registry):
    from imagebuild.errors import UserError
    from imagebuild.image.spec import load_spec
    from imagebuild.project import Project

    record = Project(load_spec(project / "imagebuild.toml")).built()
    wrong = "wrong-" + os.urandom(8).hex()
    with pytest.raises(UserError) as failed:
        compression.push_zstd(record.image, record.repository, record.tag,
                              {"username": registry.username, "password": wrong})
    message = str(failed.value)
    assert message.startswith(f"pushing the zstd variant {record.repository}:{record.tag}-zstd failed")
    assert "\n" not in message and wrong not in message and "unauthorized" in message.lower(), message
