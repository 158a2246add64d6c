"""Push a spec's built image to its registry and record the digest.

The engine does the upload (the docker SDK's push stream); this module picks the
tags, follows the stream per layer, turns the engine's errors into one line,
retries the transient ones with a bounded backoff, and reports the digest only
once every tag is in the registry: never a half-pushed image as a success.

Push never builds nor plans: it publishes exactly the image the spec's build record
names (what `imagebuild build` made and the user tested) and refuses when that record
is missing or no longer the build of the spec and lock as they are.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from imagebuild import checks, contract, imageref
from imagebuild.engine import Engine
from imagebuild.errors import UserError
from imagebuild.image.progress import Reporter, SilentReporter
from imagebuild.image.registry_auth import PASSWORD_ENV, USERNAME_ENV, is_auth_failure, scrub
from imagebuild.project import STATE_DIR, BuildRecord, Project

ATTEMPTS = 4  # tries per tag: waits of 2, 4 and 8 s in between, 14 s at most
BACKOFF_S = 2.0

_LAYER_ID = re.compile(r"[0-9a-f]{12}")
# Engine messages worth another try: the registry or the path to it is briefly unwell.
_TRANSIENT = re.compile(
    r"connection refused|connection reset|broken pipe|\bEOF\b|i/o timeout|timeout|"
    r"network is unreachable|temporary failure|try again|too many requests|status:? 429|"
    r"status:? 5\d\d|internal server error|bad gateway|service unavailable|gateway time",
    re.IGNORECASE,
)


def is_transient(message: str) -> bool:
    """Whether another try may help: not for credentials or a registry name typo."""
    if is_auth_failure(message) or "no such host" in message:
        return False
    return bool(_TRANSIENT.search(message))


class PushFailed(Exception):
    """One push attempt failed; ``transient`` says whether another try may help."""

    def __init__(self, message: str, transient: bool):
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass
class TagPush:
    """What one `push repository:tag` did, from the engine's per-layer statuses."""

    reference: str
    digest: str = ""
    uploaded: list[str] = field(default_factory=list)  # layer ids sent ("Pushed")
    existing: list[str] = field(default_factory=list)  # already there, or mounted
    streamed_bytes: int = 0  # bytes the engine read for uploaded layers (uncompressed)
    attempts: int = 1


@dataclass
class PushResult:
    image: str  # name@sha256:...
    tags: list[str]  # name:tag references that now point at it
    layers: list[str] = field(default_factory=list)  # intermediate layer images (--layers)
    pushes: list[TagPush] = field(default_factory=list)
    cuda: str | None = None

    @property
    def uploaded(self) -> int:
        """Distinct layers sent to the registry, over all tags."""
        return len({layer for p in self.pushes for layer in p.uploaded})

    @property
    def existing(self) -> int:
        """Distinct layers the registry already had (and were not sent by this push)."""
        sent = {layer for p in self.pushes for layer in p.uploaded}
        return len({layer for p in self.pushes for layer in p.existing} - sent)

    @property
    def streamed_bytes(self) -> int:
        return sum(p.streamed_bytes for p in self.pushes)

    def to_json(self) -> dict:
        data: dict = {"image": self.image, "tags": self.tags}
        if self.layers:
            data["layers"] = self.layers
        return data


def git_commit(directory: Path) -> str | None:
    """Short commit of the repository holding ``directory``, ``-dirty`` when tracked
    files differ from it; None outside a repository (or without git).

    The files imagebuild writes beside the spec (``.imagebuild/``) are left out, so pushing twice
    from a clean tree gives the same tag.
    """
    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", "-C", str(directory), *args], check=False,
                                  capture_output=True, text=True, timeout=20,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return None

    head = git("rev-parse", "--short", "HEAD")
    if head is None or head.returncode != 0 or not head.stdout.strip():
        return None
    diff = git("diff", "--quiet", "HEAD", "--", f":(top,exclude,glob)**/{STATE_DIR}/**")
    dirty = diff is None or diff.returncode != 0
    return head.stdout.strip() + ("-dirty" if dirty else "")


def image_tags(record: BuildRecord, directory: Path, extra: Iterable[str] = ()) -> list[str]:
    """Content hash, the spec's version, the git commit, then ``--tag``s; no repeats."""
    extra = checks.docker_tags(extra)
    commit = git_commit(directory)
    tags = [record.tag, record.version, *([commit] if commit else []), *extra]
    return list(dict.fromkeys(tags))


def _registry(repository: str) -> str:
    return imageref.parse(repository).registry


def explain(message: str, repository: str, attempts: int = 1) -> str:
    """The engine's error as one line naming the registry and what to do."""
    registry = _registry(repository)
    detail = " ".join(message.split())[:240]
    if is_auth_failure(message):
        what = "has no credentials" if "no basic auth" in message else "rejected the credentials"
        return (f"registry {registry} {what} for {repository} ({detail}): run `docker login "
                f"{registry}` or set {USERNAME_ENV} and {PASSWORD_ENV}")
    if "no such host" in message:
        return (f"registry {registry} is unknown (no such host): check image.name in the spec "
                "and the machine's DNS/network")
    if "HTTP response to HTTPS client" in message:
        return (f"registry {registry} answers plain http: add it to the Docker engine's "
                "insecure-registries or serve it over https")
    if "x509" in message or "certificate" in message:
        return f"registry {registry}'s TLS certificate is not trusted by the engine ({detail})"
    if _TRANSIENT.search(message):
        return (f"registry {registry} unreachable or failing after {attempts} attempts "
                f"({detail}): check that it is up and reachable, then retry")
    return f"pushing {repository} failed: {detail}"


class _Layers:
    """Per-layer progress across all tags: a layer is reported once, the first time."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.started: dict[str, float] = {}
        self.done: set[str] = set()
        self.current: dict[str, int] = {}  # bytes read so far, per layer being sent

    def event(self, item: dict, reference: str, result: TagPush) -> None:
        status, layer = item.get("status") or "", item.get("id") or ""
        if not _LAYER_ID.fullmatch(layer):  # repository and digest lines carry no layer id
            return
        finished = status in ("Pushed", "Layer already exists") or status.startswith("Mounted")
        last = 0  # bytes the layer took, once finished
        if status == "Pushing":
            self.current[layer] = int((item.get("progressDetail") or {}).get("current") or 0)
        elif finished:
            sent = status == "Pushed"
            (result.uploaded if sent else result.existing).append(layer)
            last = self.current.pop(layer, 0)
            result.streamed_bytes += last if sent else 0
        if layer in self.done:  # reported under an earlier tag already
            return
        now = time.monotonic()
        if status == "Pushing":
            if layer not in self.started:  # only layers that really upload get a start line
                self.started[layer] = now
                self.reporter.started(layer, reference)
            self.reporter.progress(layer, f"pushing {_sent(self.current[layer], now - self.started[layer])}")
        elif finished:
            if status == "Pushed" and layer in self.started and last:
                self.reporter.progress(layer, f"pushed {_sent(last, now - self.started[layer])}")
            self.done.add(layer)
            self.reporter.finished(layer, status != "Pushed", now - self.started.get(layer, now))
        elif status in ("Preparing", "Waiting") or status.startswith("Retrying"):
            self.reporter.progress(layer, status.lower())

    def failed(self) -> None:
        for layer in self.started:
            if layer not in self.done:
                self.reporter.failed(layer)


def _sent(count: int, seconds: float) -> str:
    """Bytes sent so far and the rate: ``12.3MB at 4.1MB/s``."""
    rate = f" at {count / seconds / 1e6:.1f}MB/s" if seconds >= 0.5 else ""
    return f"{_size(count)}{rate}"


def _size(count: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f}{unit}" if unit == "B" else f"{count:.1f}{unit}"
        count /= 1000
    return ""  # pragma: no cover


class Pusher:
    """Pushes local images; ``say`` gets one-line notes (retries), never secrets."""

    def __init__(self, engine: Engine, auth: dict | None = None,
                 reporter: Reporter | None = None,
                 say: Callable[[str], None] = lambda line: None,
                 attempts: int = ATTEMPTS, backoff_s: float = BACKOFF_S,
                 sleep: Callable[[float], None] = time.sleep):
        self.engine = engine
        self.auth = auth
        self.layers = _Layers(reporter or SilentReporter())
        self.say = say
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.sleep = sleep

    def push(self, reference: str) -> TagPush:
        """Push ``repository:tag`` (retrying transient failures); its digest."""
        ref = imageref.parse(reference)
        repository, tag = ref.repository, ref.tag or "latest"
        for attempt in range(1, self.attempts + 1):
            try:
                result = self._push_once(repository, tag)
                result.attempts = attempt
                return result
            except PushFailed as failure:
                message = scrub(failure.message, self.auth)
                if not failure.transient or attempt == self.attempts:
                    self.layers.failed()
                    raise UserError(explain(message, repository, attempt)) from None
                delay = self.backoff_s * 2 ** (attempt - 1)
                self.say(f"push {reference}: {' '.join(message.split())[:160]}; retrying in "
                         f"{delay:.0f}s (attempt {attempt + 1} of {self.attempts})")
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _push_once(self, repository: str, tag: str) -> TagPush:
        import docker.errors
        import requests.exceptions

        reference = f"{repository}:{tag}"
        result = TagPush(reference)
        try:
            stream = self.engine.client.api.push(repository, tag, stream=True, decode=True,
                                                 auth_config=self.auth)
            for item in stream:
                if item.get("error") or item.get("errorDetail"):
                    message = item.get("error") or item["errorDetail"].get("message", "")
                    raise PushFailed(str(message), is_transient(str(message)))
                aux = item.get("aux") or {}
                if aux.get("Digest"):
                    result.digest = aux["Digest"]
                self.layers.event(item, reference, result)
        except docker.errors.APIError as error:
            raise PushFailed(str(error.explanation or error), error.is_server_error()) from None
        except requests.exceptions.RequestException as error:
            # The engine connection dropped mid-stream: the push state is unknown, retry it.
            raise PushFailed(f"lost the Docker engine connection: {error}", True) from None
        if not result.digest:
            raise PushFailed("the engine ended the push without a digest", True)
        return result


def push_built(engine: Engine, project: Project, extra_tags: Iterable[str] = (), layers: bool = False,
               pusher: Pusher | None = None, base: str | None = None) -> PushResult:
    """Push what the spec's last build made (its build record: never planned again) under
    all its tags; record the digest beside the spec only once every tag is pushed."""
    record = project.built(base)
    if not engine.exists(record.image):
        raise UserError(f"{record.image} (this spec's last build) is no longer in the engine: run "
                        f"`{project.build_command}` again, then push")
    tags = image_tags(record, project.spec_file.parent, extra_tags)
    layer_images = record.layer_images if layers else []
    for image in layer_images:
        if not engine.exists(image):
            raise UserError(f"layer image {image} is not in the engine: run `{project.build_command}` "
                            "to restore it, then push --layers")
    pusher = pusher or Pusher(engine)
    result = PushResult(image="", tags=[f"{record.repository}:{tag}" for tag in tags], layers=layer_images)
    # Layers first: the final image's push then finds them in the registry.
    for image in layer_images:
        result.pushes.append(pusher.push(image))
    digests = set()
    for reference in result.tags:
        if reference != record.image:
            engine.tag(record.image, reference)
        pushed = pusher.push(reference)
        result.pushes.append(pushed)
        digests.add(pushed.digest)
    if len(digests) != 1:
        raise UserError(f"the registry returned different digests for the tags of {record.image} "
                        f"({', '.join(sorted(digests))}); nothing recorded, push again")
    result.image = f"{record.repository}@{digests.pop()}"
    result.cuda = engine.labels(record.image).get(contract.LABEL_CUDA) or None
    # Only now, with every tag in the registry, does the digest become the default.
    project.record_push(project.read_lock(), {"image": result.image, "tags": result.tags,
                                              "cuda": result.cuda, "built": record.image})
    return result
