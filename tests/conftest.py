"""Shared fixtures: the Docker engine, the local test base, and the test pod image.

The image is built once per session from ``tests/specs/ci.toml`` on the local
Debian base (no registry is reachable from CI) and reused by every suite.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CI_SPEC = REPO / "tests" / "specs" / "ci.toml"
TEST_BASE = os.environ.get("IMAGEBUILD_TEST_BASE", "imagebuild-test/debian:bookworm")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def ca_bundle() -> Path | None:
    """The CA bundle builds need behind the TLS-intercepting proxy (if any)."""
    explicit = os.environ.get("IMAGEBUILD_CA_CERT")
    if explicit:
        return Path(explicit)
    return HOST_CA_BUNDLE if HOST_CA_BUNDLE.exists() else None


def record_push(folder: Path, spec: str = "imagebuild.toml", **values) -> Path:
    """Record a push of ``folder/spec`` as `imagebuild push` does (image, cuda, ...)."""
    from imagebuild.image.state import write_json
    from imagebuild.project import state_file

    return write_json(state_file(folder / spec, "push.json"), values)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def engine():
    """The Docker engine; CI (IMAGEBUILD_REQUIRE_DOCKER=1) fails instead of skipping."""
    from imagebuild.engine import connect
    from imagebuild.errors import UserError

    try:
        return connect()
    except UserError as error:
        if os.environ.get("IMAGEBUILD_REQUIRE_DOCKER"):
            pytest.fail(str(error))
        pytest.skip(f"no Docker engine: {error}")


@pytest.fixture(scope="session")
def test_base(engine) -> str:
    if not engine.exists(TEST_BASE):
        subprocess.run(["bash", str(REPO / "scripts" / "make-test-base.sh")], check=True)
    return TEST_BASE


@pytest.fixture(scope="session")
def ci_spec(test_base):
    from imagebuild.image.spec import load_spec

    return load_spec(CI_SPEC).spec.with_base(test_base)


@pytest.fixture(scope="session")
def built(engine, ci_spec):
    """BuildResult of the test pod image (all five layers)."""
    from imagebuild.image.builder import Builder
    from imagebuild.image.progress import PlainReporter

    return Builder(engine, reporter=PlainReporter()).build(ci_spec, ca_cert=ca_bundle())


@pytest.fixture(scope="session")
def pod_image(built) -> str:
    """Reference of the built test pod image (name:content-hash)."""
    return built.image


def docker(*args: str, check: bool = True, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run the docker CLI (any client works for non-build commands)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout, **kwargs)


def run_in_image(image: str, script: str, env: dict[str, str] | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a bash script in a throwaway container of ``image`` (entrypoint bypassed)."""
    argv = ["run", "--rm", "--entrypoint", "bash"]
    for key, value in (env or {}).items():
        argv += ["-e", f"{key}={value}"]
    return docker(*argv, image, "-lc", script, check=False, timeout=timeout)
