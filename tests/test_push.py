"""`imagebuild push` against a real registry (Debian's docker-registry, htpasswd auth).

The test pod spec is copied next to a fresh git repository with image.name pointing
at the registry; building it reuses BuildKit's cache of the session's test image,
so only the runtime layer (whose labels name the image) is rebuilt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pty
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import CI_SPEC, REPO, ca_bundle, docker, unique_name
from registry import Registry, remove_repository_tags

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGEBUILD = [sys.executable, "-m", "imagebuild"]
DIGEST_REF = re.compile(r"^(?P<name>[^@\s]+)@sha256:[0-9a-f]{64}$")
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
])

# Every CLI output of this module, scanned for the password at the end.
OUTPUTS: list[str] = []


@pytest.fixture(scope="module")
def registry():
    server = Registry().start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def docker_config(tmp_path_factory) -> Path:
    """An empty docker config: no credentials unless a test logs in."""
    return tmp_path_factory.mktemp("docker-config")


@pytest.fixture(scope="module")
def project(tmp_path_factory, registry, test_base, built) -> Path:
    """A git repository holding the test spec named for the registry, built by the CLI
    (which writes the lock, committed as users do, and the build record push reads)."""
    from imagebuild.engine import connect
    from imagebuild.image.spec import load_spec

    folder = tmp_path_factory.mktemp("project")
    text = CI_SPEC.read_text()
    text = re.sub(r'(?m)^name = .*$', f'name = "{registry.host}/imagebuild-test/pod"', text)
    text = re.sub(r'(?m)^base = .*$', f'base = "{test_base}"', text)
    (folder / "imagebuild.toml").write_text(text)
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "imagebuild.toml"], check=True)
    subprocess.run([*git, "commit", "-qm", "spec"], check=True)
    spec = load_spec(folder / "imagebuild.toml").spec
    engine = connect()
    done = subprocess.run([*IMAGEBUILD, "build", "--spec", str(folder / "imagebuild.toml"),
                           "--ca-cert", str(ca_bundle() or "/dev/null")],
                          capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "imagebuild: wrote imagebuild.lock (no lock beside the spec yet): commit it" in done.stderr
    subprocess.run([*git, "add", "imagebuild.lock"], check=True)
    subprocess.run([*git, "commit", "-qm", "lock"], check=True)
    yield folder
    # The registry's port is new every session: drop this session's tags of it.
    remove_repository_tags(engine, spec.image.name)


def imagebuild(project: Path, *args: str, env: dict | None = None, password: str | None = None,
               username: str = "imagebuild", docker_config: Path | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real CLI on the project's spec; credentials via the environment."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEBUILD_REGISTRY_")}
    if password is not None:
        full.update(IMAGEBUILD_REGISTRY_USERNAME=username, IMAGEBUILD_REGISTRY_PASSWORD=password)
    if docker_config is not None:
        full["DOCKER_CONFIG"] = str(docker_config)
    full.update(env or {})
    done = subprocess.run([*IMAGEBUILD, "push", "--spec", str(project / "imagebuild.toml"), *args],
                          capture_output=True, text=True, env=full, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    OUTPUTS.extend([done.stdout, done.stderr])
    return done


def state(project: Path) -> dict:
    path = project / ".imagebuild" / "imagebuild.push.json"
    return json.loads(path.read_text()) if path.exists() else {}


def registry_digest(registry: Registry, repository: str, tag: str) -> str:
    """The digest the registry serves for repository:tag (asked over its own API)."""
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{tag}", method="HEAD",
        headers={"Accept": MANIFEST_TYPES, "Authorization": "Basic " + base64.b64encode(
            f"{registry.username}:{registry.password}".encode()).decode()})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers["Docker-Content-Digest"]


def summary(stderr: str) -> tuple[int, int]:
    found = re.search(r"\((\d+) layers uploaded, (\d+) already there\)", stderr)
    assert found, stderr
    return int(found.group(1)), int(found.group(2))


@pytest.fixture(scope="module")
def first_push(project, registry, docker_config):
    done = imagebuild(project, "--json", password=registry.password, docker_config=docker_config)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done


def test_push_records_the_digest_under_every_tag(first_push, project, registry):
    result, done = first_push
    name = f"{registry.host}/imagebuild-test/pod"
    match = DIGEST_REF.match(result["image"])
    assert match and match.group("name") == name, result
    digest = result["image"].split("@", 1)[1]
    commit = subprocess.run(["git", "-C", str(project), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    tags = [t.rsplit(":", 1)[1] for t in result["tags"]]
    assert tags[1:] == ["latest", commit] and re.fullmatch(r"[0-9a-f]{12}", tags[0]), tags
    for tag in tags:  # each tag is in the registry and points at the recorded digest
        assert registry_digest(registry, "imagebuild-test/pod", tag) == digest
    recorded = state(project)
    assert recorded["image"] == result["image"] and recorded["tags"] == result["tags"]
    # The lock the image was built from lies beside its digest: the recipe to rebuild it.
    pushed = (project / recorded["lock"]).read_text()
    assert pushed == (project / "imagebuild.lock").read_text()
    assert hashlib.sha256(pushed.encode()).hexdigest() == recorded["lock_sha256"]
    assert "cuda" in recorded  # the image's imagebuild.cuda label ("" on Debian: None)
    # The plain (non-terminal) progress is per layer.
    assert re.search(r"^\[[0-9a-f]{12}\] push ", done.stderr, re.M), done.stderr
    # ...with the bytes each uploaded layer took (and the rate, past half a second).
    assert re.search(r"^\[[0-9a-f]{12}\] pushed [0-9.]+(B|kB|MB|GB)( at [0-9.]+MB/s)?$", done.stderr,
                     re.M), done.stderr


def test_push_again_uploads_no_layer(first_push, project, registry, docker_config):
    result, _ = first_push
    stored = registry.stored_bytes()
    done = imagebuild(project, password=registry.password, docker_config=docker_config)
    assert done.returncode == 0, done.stderr
    uploaded, existing = summary(done.stderr)
    assert uploaded == 0 and existing > 0, done.stderr
    assert done.stdout.strip() == result["image"]
    # The registry's storage says the same: no blob was added, only tag links rewritten.
    assert registry.stored_bytes() - stored < 4096


def test_terminal_shows_a_live_row_per_layer(first_push, project, registry, docker_config):
    env = {**os.environ, "IMAGEBUILD_REGISTRY_USERNAME": registry.username,
           "IMAGEBUILD_REGISTRY_PASSWORD": registry.password, "DOCKER_CONFIG": str(docker_config),
           "COLUMNS": "120"}
    master, terminal = pty.openpty()
    process = subprocess.Popen(
        [*IMAGEBUILD, "push", "--spec", str(project / "imagebuild.toml")],
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert process.wait(timeout=60) == 0
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    OUTPUTS.append(screen)
    assert re.search(r"layer\s+state\s+time", screen), screen  # the live table's header
    rows = set(re.findall(r"([0-9a-f]{12})\s+up to date", screen))
    assert len(rows) >= 5, screen  # every filesystem layer has its row
    assert not re.search(r"^\[[0-9a-f]{12}\] ", screen, re.M)  # not the plain lines


def test_pull_by_recorded_digest_and_run(first_push, project, registry, docker_config):
    result, _ = first_push
    image_id = docker("image", "inspect", "--format", "{{.Id}}", result["tags"][0]).stdout.strip()
    docker("rmi", *result["tags"])
    assert docker("image", "inspect", result["tags"][0], check=False).returncode != 0
    env = {**os.environ, "DOCKER_CONFIG": str(docker_config)}
    login = docker("login", "--username", registry.username, "--password-stdin", registry.host,
                   input=registry.password, env=env)
    OUTPUTS.extend([login.stdout, login.stderr])
    try:
        docker("pull", result["image"], env=env)
        assert docker("image", "inspect", "--format", "{{.Id}}",
                      result["image"]).stdout.strip() == image_id
        ran = docker("run", "--rm", "--entrypoint", "true", result["image"], check=False)
        assert ran.returncode == 0, ran.stderr
        docker("tag", result["image"], result["tags"][0])  # the spec's image again
        # `docker login`'s stored credentials work for push too (no env variables).
        again = imagebuild(project, "--json", docker_config=docker_config)
    finally:
        docker("logout", registry.host, env=env, check=False)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["image"] == result["image"]


def test_wrong_password_is_one_clear_line(first_push, project, registry, docker_config):
    before = state(project)
    done = imagebuild(project, password="not-" + registry.password, docker_config=docker_config)
    assert done.returncode == 1
    error = [line for line in done.stderr.splitlines() if line.startswith("imagebuild: error:")]
    assert len(error) == 1 and "rejected the credentials" in error[0], done.stderr
    assert f"docker login {registry.host}" in error[0]
    assert "Traceback" not in done.stderr
    assert state(project) == before


def test_no_credentials_says_how_to_log_in(first_push, project, registry, docker_config):
    done = imagebuild(project, docker_config=docker_config)
    assert done.returncode == 1
    assert "has no credentials" in done.stderr and "IMAGEBUILD_REGISTRY_PASSWORD" in done.stderr


def test_half_set_credentials_are_bad_input(project, registry):
    done = imagebuild(project, env={"IMAGEBUILD_REGISTRY_USERNAME": "imagebuild"})
    assert done.returncode == 2 and "IMAGEBUILD_REGISTRY_PASSWORD is not set" in done.stderr


def test_registry_down_fails_after_bounded_retries(first_push, project, registry, docker_config):
    before = state(project)
    registry.stop()
    try:
        started = time.monotonic()
        done = imagebuild(project, password=registry.password, docker_config=docker_config,
                          timeout=120)
        seconds = time.monotonic() - started
    finally:
        registry.start()
    assert done.returncode == 1
    assert len(re.findall(r"retrying in \d+s", done.stderr)) == 3, done.stderr
    assert "unreachable or failing after 4 attempts" in done.stderr
    assert "connection refused" in done.stderr
    assert 12 < seconds < 60, seconds  # 2 + 4 + 8 s of backoff, then it gives up
    assert state(project) == before


def test_push_recovers_when_the_registry_comes_back(first_push, project, registry,
                                                    docker_config):
    registry.stop()
    full = {**os.environ, "IMAGEBUILD_REGISTRY_USERNAME": registry.username,
            "IMAGEBUILD_REGISTRY_PASSWORD": registry.password,
            "DOCKER_CONFIG": str(docker_config)}
    process = subprocess.Popen(
        [*IMAGEBUILD, "push", "--json", "--spec", str(project / "imagebuild.toml")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full,
        stdin=subprocess.DEVNULL)
    try:
        time.sleep(3)  # first attempt and the 2 s backoff's start have passed
    finally:
        registry.start()
    stdout, stderr = process.communicate(timeout=120)
    OUTPUTS.extend([stdout, stderr])
    assert process.returncode == 0, stderr
    assert "retrying in" in stderr
    assert json.loads(stdout)["image"] == first_push[0]["image"]


def test_layers_pushes_the_intermediate_images(first_push, project, registry, docker_config):
    from imagebuild.image.render import LAYER_NAMES

    done = imagebuild(project, "--layers", "--json", "--tag", "exp-1",
                      password=registry.password, docker_config=docker_config)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [ref.rsplit(":", 1)[1].split("-")[0] for ref in result["layers"]] == \
        list(LAYER_NAMES[:-1])
    for ref in result["layers"]:
        local = docker("image", "inspect", "--format", "{{index .RepoDigests 0}}", ref)
        pushed = registry_digest(registry, "imagebuild-test/pod", ref.rsplit(":", 1)[1])
        assert local.stdout.strip().endswith(pushed)
    assert result["tags"][-1].endswith(":exp-1")
    assert registry_digest(registry, "imagebuild-test/pod", "exp-1") == \
        result["image"].split("@", 1)[1]


def test_build_pull_reuses_the_pushed_layers(first_push, project, registry, docker_config):
    """What `--layers` is for: on a machine without the layers (all local tags of
    the repository removed here), `build --pull` fetches every layer by its content
    tag instead of building it."""
    from imagebuild.engine import connect

    done = imagebuild(project, "--layers", password=registry.password, docker_config=docker_config)
    assert done.returncode == 0, done.stderr
    engine, repository = connect(), f"{registry.host}/imagebuild-test/pod"
    remove_repository_tags(engine, repository)
    assert engine.client.images.list(name=repository) == []
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEBUILD_REGISTRY_")}
    env.update(IMAGEBUILD_REGISTRY_USERNAME="imagebuild", IMAGEBUILD_REGISTRY_PASSWORD=registry.password,
               DOCKER_CONFIG=str(docker_config))
    built = subprocess.run([*IMAGEBUILD, "build", "--spec", str(project / "imagebuild.toml"), "--pull",
                            "--json"], capture_output=True, text=True, env=env, timeout=600,
                           stdin=subprocess.DEVNULL)
    OUTPUTS.extend([built.stdout, built.stderr])
    assert built.returncode == 0, built.stderr
    layers = json.loads(built.stdout)["layers"]
    assert [layer["pulled"] for layer in layers] == [True] * 5, layers
    assert "RUN " not in built.stderr  # no Dockerfile step ran
    assert state(project)["image"].split("@")[1] in \
        docker("image", "inspect", "--format", "{{json .RepoDigests}}", f"{repository}:latest").stdout


def test_dirty_tree_tags_the_commit_dirty(first_push, project, registry, docker_config):
    from imagebuild.image.push import git_commit

    clean = git_commit(project)
    assert clean and not clean.endswith("-dirty")
    pushed = project / ".imagebuild" / "imagebuild.push.json"
    subprocess.run(["git", "-C", str(project), "add", "-f", str(pushed)], check=True)
    pushed.write_text(pushed.read_text() + " ")  # imagebuild's own files, even tracked: not "dirty"
    assert git_commit(project) == clean
    spec = project / "imagebuild.toml"
    original = spec.read_text()
    spec.write_text(original + "\n# a comment changes no layer\n")
    try:
        assert git_commit(project) == clean + "-dirty"
        done = imagebuild(project, "--json", password=registry.password,
                          docker_config=docker_config)
    finally:
        spec.write_text(original)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tags"][2].endswith(f":{clean}-dirty")


def test_stale_image_is_refused(first_push, project, registry):
    spec = project / "imagebuild.toml"
    original = spec.read_text()
    before = state(project)
    spec.write_text(original.replace('"htop"', '"htop", "jq"'))
    try:
        done = imagebuild(project, password=registry.password)
    finally:
        spec.write_text(original)
    assert done.returncode == 1
    assert "is not built" in done.stderr and "imagebuild build" in done.stderr
    assert state(project) == before


def export(project: Path, spec: str) -> subprocess.CompletedProcess:
    """The image a pod of ``spec`` runs, as `export skypilot` (no RunPod needed) writes it."""
    return subprocess.run([*IMAGEBUILD, "export", "skypilot", "--spec", str(project / spec), "--gpu", "4090",
                           "--", "true"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_two_specs_in_one_folder_never_run_each_others_image(first_push, project, registry):
    """The push of imagebuild.toml is its own: a pod of other.toml (same folder, never
    built or pushed) does not get it, and other.toml cannot push imagebuild.toml's build."""
    other = project / "other.toml"
    other.write_text((project / "imagebuild.toml").read_text().replace(
        "imagebuild-test/pod", "imagebuild-test/other"))
    refused = export(project, "other.toml")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (f"imagebuild: error: --image: nothing pushed from {other} yet; "
                                      "run `imagebuild push` first or pass --image")
    assert f"image_id: docker:{first_push[0]['image']}" in export(project, "imagebuild.toml").stdout
    # A build record of another image (copied over, or image.name edited after the build).
    records = project / ".imagebuild"
    (project / "other.lock").write_text((project / "imagebuild.lock").read_text())
    (records / "other.build.json").write_text((records / "imagebuild.build.json").read_text())
    done = subprocess.run([*IMAGEBUILD, "push", "--spec", str(other)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"imagebuild: error: {registry.host}/imagebuild-test/other (this spec's image) is not built as "
        f"the spec reads now: the last build made {registry.host}/imagebuild-test/pod, the spec names "
        f"{registry.host}/imagebuild-test/other; run `imagebuild build --spec {other}` again")
    assert not (records / "other.push.json").exists()


def test_bad_tag_is_bad_input(project, registry):
    done = imagebuild(project, "--tag", "no spaces", password=registry.password)
    assert done.returncode == 2 and "--tag 'no spaces'" in done.stderr


def test_unknown_registry_fails_fast_without_retries(engine, test_base):
    from imagebuild.errors import UserError
    from imagebuild.image.push import Pusher

    reference = f"{unique_name('nosuch')}.invalid/imagebuild-test/pod:t"
    engine.tag(test_base, reference)
    notes: list[str] = []
    try:
        started = time.monotonic()
        with pytest.raises(UserError, match="is unknown \\(no such host\\)"):
            Pusher(engine, say=notes.append).push(reference)
        assert time.monotonic() - started < 10 and notes == []
    finally:
        engine.client.images.remove(reference)


@pytest.mark.parametrize("message, transient", [
    ("received unexpected HTTP status: 502 Bad Gateway", True),
    ("received unexpected HTTP status: 503 Service Unavailable", True),
    ('Put "http://r/v2/x/blobs/uploads/1": read: connection reset by peer', True),
    ('Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', True),
    ("unauthorized: authentication required", False),
    ('Get "https://x.invalid/v2/": dial tcp: lookup x.invalid on 10.5.12.53:53: no such host',
     False),
    ("denied: requested access to the resource is denied", False),
    ("manifest invalid: manifest invalid", False),
])
def test_transient_errors_are_told_apart(message, transient):
    from imagebuild.image.push import is_transient

    assert is_transient(message) is transient


def build_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IMAGEBUILD, "build", "--spec", str(CI_SPEC), *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_registry_cache_needs_buildx():
    from imagebuild.engine.buildkit import find_cli

    if find_cli().buildx:
        pytest.skip("this machine has buildx: the refusal does not apply")
    done = build_cli("--cache-to", "127.0.0.1:1/imagebuild-test/cache")
    assert done.returncode == 2
    assert "need docker buildx" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("flags", [
    ["--cache-from", "127.0.0.1:5000/cache:tagged"],
    ["--cache-to", "r/cache,mode=min"],
    ["--cache-to", "r/cache", "--no-cache"],
])
def test_registry_cache_flags_are_checked(flags):
    done = build_cli(*flags)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_push_after_a_build_with_the_zip_pushes_that_build(first_push, registry, test_base, tmp_path):
    """`build --physx-gpu ZIP` then a bare `push`: push reads the build record instead of
    planning again (without the zip it would get another tag and call the image unbuilt).
    Pushed to this module's registry after ``first_push``: the layers it shares with the
    test image (base, system, python, node) are mounted there, not compressed again."""
    from physx_helpers import baked_zip, sapien_spec

    from imagebuild.engine import connect

    archive, _ = baked_zip(tmp_path)  # the bytes of test_physx.py's zip: its sim layer is reused
    name = f"{registry.host}/imagebuild-test/physx"
    spec = sapien_spec(tmp_path)
    spec.write_text(spec.read_text().replace('name = "imagebuild-test/pod"', f'name = "{name}"'))
    try:
        built = subprocess.run([*IMAGEBUILD, "build", "--spec", str(spec), "--base", test_base,
                                "--physx-gpu", str(archive), "--ca-cert", str(ca_bundle() or "/dev/null")],
                               capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
        OUTPUTS.extend([built.stdout, built.stderr])
        assert built.returncode == 0, built.stderr[-3000:]
        record = json.loads((tmp_path / ".imagebuild" / "imagebuild.build.json").read_text())
        assert record["image"] == built.stdout.strip()
        assert record["physx_zip_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
        assert record["base"]["image"] == test_base
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEBUILD_REGISTRY_")}
        env.update(IMAGEBUILD_REGISTRY_USERNAME=registry.username, IMAGEBUILD_REGISTRY_PASSWORD=registry.password)
        pushed = subprocess.run([*IMAGEBUILD, "push", "--spec", str(spec), "--json"], capture_output=True,
                                text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)
        OUTPUTS.extend([pushed.stdout, pushed.stderr])
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        assert json.loads(pushed.stdout)["tags"][0] == record["image"]
    finally:
        remove_repository_tags(connect(), name)


def test_password_appears_in_no_output_or_file(first_push, project, registry, docker_config):
    """Runs last in this module: every output above, the state file, the project
    and the repository are free of the password (docker's own config is exempt)."""
    assert OUTPUTS and all(registry.password not in text for text in OUTPUTS)
    exempt = {docker_config, REPO / ".venv", REPO / ".git"}
    for root in (project, REPO):
        for path in root.rglob("*"):
            if any(path.is_relative_to(folder) for folder in exempt) or not path.is_file():
                continue
            assert registry.password.encode() not in path.read_bytes(), path
