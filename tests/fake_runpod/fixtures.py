"""pytest fixtures: ``fake_runpod`` (the server) and ``pod_cli`` (the real CLI against it).

Use from a test module with ``pytest_plugins = ["fake_runpod.fixtures"]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fake_runpod.server import FakeRunPod


@pytest.fixture
def fake_runpod() -> Iterator[FakeRunPod]:
    """A started fake; the test fails if any request or response broke the spec."""
    with FakeRunPod() as fake:
        if fake.spec is None:
            warnings.warn(fake.skip_reason, stacklevel=1)
        yield fake
    if fake.mismatches:
        pytest.fail(
            "the fake RunPod saw traffic off the OpenAPI spec:\n  " + "\n  ".join(fake.mismatches),
            pytrace=False,
        )


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class PodCli:
    """Runs ``python -m imagebuild`` in a subprocess, like a user would.

    HOME is a scratch folder (no real ~/.ssh or ~/.runpod leaks in), the working
    directory is the spec folder, and every run is checked for the API key.
    """

    def __init__(self, fake: FakeRunPod, home: Path, workdir: Path):
        self.fake = fake
        self.home = home
        self.workdir = workdir
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "RUNPOD_API_URL": fake.url,
            "RUNPOD_API_KEY": fake.api_key,
            "IMAGEBUILD_RUNPOD_BACKOFF": "0.05",  # keep retry tests quick
            # The fake lists a pod at once unless a test sets listing_lag_s: a short
            # look-up window after a lost create keeps those tests quick.
            "IMAGEBUILD_RUNPOD_LISTING_LAG": "1",
            "PYTHONIOENCODING": "utf-8",
            "LANG": "C.UTF-8",
        }
        for name in ("DOCKER_HOST", "VIRTUAL_ENV", "PYTHONPATH"):
            if name in os.environ:
                self.env[name] = os.environ[name]

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
                 timeout: float = 120, tty: str | None = None) -> CliResult:
        """``tty``: stdin is a terminal on which this text is typed (a person answering)."""
        if tty is not None:
            return self._checked(args, self._on_tty(args, tty, env, timeout))
        done = subprocess.run(
            self.argv(*args),
            cwd=self.workdir,
            env=self.full_env(env),
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            check=False,
        )
        return self._checked(args, CliResult(done.returncode, done.stdout, done.stderr))

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "imagebuild", *args]

    def full_env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        return {k: v for k, v in {**self.env, **(env or {})}.items() if v is not None}

    def _on_tty(self, args, typed: str, env, timeout: float) -> CliResult:
        import pty

        primary, secondary = pty.openpty()
        try:
            process = subprocess.Popen(self.argv(*args), cwd=self.workdir, env=self.full_env(env),
                                       stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, encoding="utf-8")
            os.write(primary, typed.encode())
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            os.close(primary)
            os.close(secondary)
        return CliResult(process.returncode, stdout, stderr)

    def _checked(self, args, result: CliResult) -> CliResult:
        # The one check every command gets: the key never reaches the user's screen.
        assert self.fake.api_key not in result.output, f"API key leaked by {args}:\n{result.output}"
        assert "Traceback" not in result.stderr, f"traceback from {args}:\n{result.stderr}"
        return result


@pytest.fixture
def pod_cli(fake_runpod: FakeRunPod, tmp_path: Path) -> PodCli:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519.pub").write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly0000000000000000000 test@imagebuild\n"
    )
    workdir = tmp_path / "project"
    workdir.mkdir()
    return PodCli(fake_runpod, home, workdir)
