"""Find a docker CLI that builds with BuildKit, and build one Dockerfile with it.

Users normally have `docker buildx`; older engines and clients (20.10, as on
Debian) build with BuildKit under ``DOCKER_BUILDKIT=1``. Clients from 23 on refuse
``DOCKER_BUILDKIT=1`` without the buildx plugin, so those are skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from imagebuild.errors import UserError

# BuildKit's plain progress: "#7 [3/5] RUN apt-get ..." or "#7 [stage-0 3/5] RUN ...".
# BuildKit pads the step number when there are ten steps or more: "[ 5/12]".
_STEP = re.compile(r"^#(\d+) \[(?:[\w.-]+ )?\s*(\d+/\d+)\] (.*)$")
_STEP_LINE = re.compile(r"^#(\d+) (?:\d+\.\d+ )?(.*)$")
_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")


@dataclass(frozen=True)
class DockerCLI:
    path: str
    buildx: bool  # True: `docker buildx build`; False: DOCKER_BUILDKIT=1 `docker build`

    @property
    def description(self) -> str:
        return f"{self.path} ({'buildx' if self.buildx else 'BuildKit via DOCKER_BUILDKIT=1'})"

    def build_argv(self) -> list[str]:
        return [self.path, "buildx", "build", "--load"] if self.buildx else [self.path, "build"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if not self.buildx:
            env["DOCKER_BUILDKIT"] = "1"
        return env


def _candidates() -> Iterable[str]:
    explicit = os.environ.get("IMAGEBUILD_DOCKER")
    if explicit:
        yield explicit
        return
    seen: set[str] = set()
    for candidate in (shutil.which("docker"), "/usr/bin/docker", "/usr/local/bin/docker"):
        if candidate and os.access(candidate, os.X_OK):
            real = os.path.realpath(candidate)
            if real not in seen:
                seen.add(real)
                yield candidate


def _quiet(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@lru_cache(maxsize=1)
def find_cli() -> DockerCLI:
    """The first docker client that can build with BuildKit."""
    tried = []
    for path in _candidates():
        tried.append(path)
        if _quiet([path, "buildx", "version"]) is not None:
            return DockerCLI(path, buildx=True)
        version = _quiet([path, "version", "--format", "{{.Client.Version}}"])
        if version and version.split(".")[0].isdigit() and int(version.split(".")[0]) < 23:
            return DockerCLI(path, buildx=False)
    if not tried:
        raise UserError("no docker CLI found: install Docker (with the buildx plugin) and retry")
    raise UserError(
        f"no docker CLI here can build with BuildKit (tried {', '.join(tried)}): install the "
        "buildx plugin (package docker-buildx or docker-buildx-plugin), or point "
        "IMAGEBUILD_DOCKER at a docker client older than 23"
    )


@dataclass
class StepTracker:
    """Follows BuildKit's plain progress to name the failing step and its output."""

    steps: dict[str, str] = field(default_factory=dict)
    output: dict[str, list[str]] = field(default_factory=dict)
    failed: str | None = None
    current: str | None = None
    tail: list[str] = field(default_factory=list)

    def feed(self, line: str) -> str | None:
        """Take one line; return a short status for progress displays."""
        self.tail = (self.tail + [line])[-40:]
        step = _STEP.match(line)
        if step:
            self.steps[step.group(1)] = f"[{step.group(2)}] {step.group(3)}"
            self.current = step.group(1)
            return self.steps[self.current]
        error = _ERROR.match(line)
        if error:
            self.failed = self.failed or error.group(1)
            self.output.setdefault(error.group(1), []).append(error.group(2))
            return None
        body = _STEP_LINE.match(line)
        if body and body.group(1) in self.steps:
            self.output.setdefault(body.group(1), []).append(body.group(2))
            return body.group(2)[:120]
        return None

    def failure(self) -> tuple[str, list[str]]:
        """(step description, last output lines) of the failed step."""
        key = self.failed or self.current
        if key and key in self.steps:
            return self.steps[key], self.output.get(key, [])[-15:]
        return "(before any step)", self.tail[-15:]


class BuildFailed(Exception):
    def __init__(self, step: str, lines: list[str]):
        super().__init__(step)
        self.step = step
        self.lines = lines


def build(
    cli: DockerCLI,
    context: Path,
    tag: str,
    secrets: dict[str, Path],
    labels: dict[str, str],
    no_cache: bool = False,
    extra_args: Iterable[str] = (),
    on_line: Callable[[str], None] = lambda line: None,
) -> None:
    """Build ``context``/Dockerfile as ``tag``; raise BuildFailed naming the step."""
    argv = cli.build_argv() + ["--progress=plain", "--tag", tag]
    for secret_id, path in secrets.items():
        argv += ["--secret", f"id={secret_id},src={path}"]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    if no_cache:
        argv.append("--no-cache")
    argv += list(extra_args)
    argv.append(str(context))
    tracker = StepTracker()
    process = subprocess.Popen(
        argv, env=cli.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, errors="replace", bufsize=1,
    )
    assert process.stdout is not None
    try:
        for raw in process.stdout:
            line = raw.rstrip("\n")
            status = tracker.feed(line)
            if status:
                on_line(status)
        code = process.wait()
    except BaseException:
        # Ctrl-C / SIGTERM / a failing progress display: the build must not run
        # on behind the user's back (BuildKit cancels the build when its client goes).
        _end(process)
        raise
    if code != 0:
        raise BuildFailed(*tracker.failure())


def _end(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
