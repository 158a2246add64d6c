"""The image test suite's fixtures: which image, the compose service, SSH, the GPU.

The image under test is ``--image REF`` (when pytest starts in tests/image, as CI
runs it), else $IMAGEBUILD_TEST_IMAGE, else the test pod built from
tests/specs/ci.toml (tests/conftest.py). pytest-docker brings it up from
docker-compose.yml; GPU machines add docker-compose.gpu.yml.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .pod import Compose, Pod

HERE = Path(__file__).resolve().parent
IMAGE_ENV = "IMAGEBUILD_TEST_IMAGE"
PUBLIC_KEY_ENV = "IMAGEBUILD_TEST_PUBLIC_KEY"
GPU_ENV = "IMAGEBUILD_GPU"  # 1: a GPU is required; 0: never ask for one; unset: detect


def pytest_addoption(parser):
    # Only registered when pytest starts in (or names) tests/image: pytest reads
    # options of the conftests it loads at startup. The env var works everywhere.
    parser.addoption("--image", metavar="REF", default=None,
                     help=f"image the tests/image suite runs (default: ${IMAGE_ENV}, else "
                          "the test pod built from tests/specs/ci.toml)")


def _quiet(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def gpu_forced() -> bool:
    return os.environ.get(GPU_ENV) == "1"


def host_has_gpu() -> bool:
    """Whether to hand GPUs to the pod: forced, turned off, or nvidia-smi works here."""
    if os.environ.get(GPU_ENV) in ("0", "1"):
        return gpu_forced()
    done = _quiet(["nvidia-smi", "-L"])
    return bool(done and done.returncode == 0 and "GPU" in done.stdout)


@pytest.fixture(scope="session")
def given_image(request) -> str | None:
    """--image / $IMAGEBUILD_TEST_IMAGE as the session started (compose_env sets the
    variable later, for compose)."""
    return request.config.getoption("image", default=None) or os.environ.get(IMAGE_ENV)


@pytest.fixture(scope="session")
def image_under_test(request, given_image) -> str:
    request.getfixturevalue("engine")  # no engine: skip, or fail under .ci/run
    ref = given_image
    if not ref:
        return request.getfixturevalue("pod_image")
    present = _quiet(["docker", "image", "inspect", ref])
    if not (present and present.returncode == 0):
        pulled = _quiet(["docker", "pull", "-q", ref], timeout=1800)
        if not pulled or pulled.returncode != 0:
            why = (pulled.stderr.strip().splitlines() or ["?"])[-1] if pulled else "timed out"
            pytest.fail(f"image under test {ref} (--image / ${IMAGE_ENV}) is not in the engine "
                        f"and cannot be pulled: {why}")
    return ref


@pytest.fixture(scope="session")
def image_given(given_image, image_under_test) -> str:
    """The image named with --image / $IMAGEBUILD_TEST_IMAGE; skips on the local test pod,
    for checks tests/test_entrypoint.py makes there at a lower level."""
    if not given_image:
        pytest.skip("the local test pod: tests/test_entrypoint.py checks this on it")
    return image_under_test


@pytest.fixture(scope="session")
def image_config(image_under_test) -> dict:
    done = subprocess.run(["docker", "image", "inspect", image_under_test], capture_output=True,
                          text=True, check=True, timeout=60)
    return json.loads(done.stdout)[0]["Config"]


@pytest.fixture(scope="session")
def image_versions(image_config) -> dict:
    """The resolved versions imagebuild recorded in the image's label."""
    labels = image_config.get("Labels") or {}
    assert "imagebuild.versions" in labels, "the image has no imagebuild.versions label: not built by imagebuild?"
    return json.loads(labels["imagebuild.versions"])


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory) -> Path:
    """A throwaway ed25519 key: the pod gets its public half as PUBLIC_KEY."""
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "imagebuild-image-test",
                    "-f", str(key)], check=True, timeout=30)
    return key


@pytest.fixture(scope="session")
def compose_env(image_under_test, ssh_key):
    """The variables docker-compose.yml reads, for every compose command of the session."""
    values = {IMAGE_ENV: image_under_test,
              PUBLIC_KEY_ENV: ssh_key.with_suffix(".pub").read_text().strip()}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    yield values
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# pytest-docker's fixtures, adapted.
@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    """Compose v2 (the docker plugin) where present, else docker-compose v1."""
    v2 = _quiet(["docker", "compose", "version"])
    if v2 and v2.returncode == 0:
        return "docker compose"
    if shutil.which("docker-compose"):
        return "docker-compose"
    pytest.fail("neither `docker compose` (v2) nor `docker-compose` (v1) is installed")


@pytest.fixture(scope="session")
def docker_compose_file() -> list[str]:
    files = [str(HERE / "docker-compose.yml")]
    if host_has_gpu():
        files.append(str(HERE / "docker-compose.gpu.yml"))
    return files


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return f"imagebuild-image-{os.getpid()}"


@pytest.fixture(scope="session")
def docker_setup(compose_env) -> list[str]:
    # pytest-docker's default adds --build --wait, which v1 lacks; readiness is
    # Pod.wait_ready (sshd greets and the entrypoint marked the pod ready).
    return ["up -d"]


@pytest.fixture(scope="session")
def pod(docker_services, docker_compose_command, docker_compose_file, docker_compose_project_name,
        docker_ip, image_under_test, ssh_key, tmp_path_factory) -> Pod:
    """The compose service pytest-docker started, as a Pod (its volume: compose's name for it)."""
    compose = Compose(docker_compose_command, tuple(docker_compose_file), docker_compose_project_name)
    known_hosts = tmp_path_factory.mktemp("known_hosts") / "known_hosts"
    running = Pod(image_under_test, ssh_key, known_hosts, backend=compose, host=docker_ip,
                  volume=f"{docker_compose_project_name}_workspace")
    running.wait_ready()
    return running


@pytest.fixture(scope="session")
def gpu(pod) -> str:
    """nvidia-smi's GPU list in the pod; skips without a GPU (fails if IMAGEBUILD_GPU=1)."""
    done = pod.run("nvidia-smi -L", timeout=60)
    if done.returncode == 0 and "GPU" in done.stdout:
        return done.stdout
    why = (done.stdout + done.stderr).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
    message = f"no NVIDIA GPU in the pod (nvidia-smi -L: {why[0]})"
    if gpu_forced():
        pytest.fail(f"{message}, but {GPU_ENV}=1 requires one")
    pytest.skip(f"{message}; GPU runners set {GPU_ENV}=1")
