"""Build a spec's layers in order with BuildKit, skipping layers whose tag exists.

A layer's tag is the hash of its inputs (see ``render``), so an existing tag
means an identical layer: it is never rebuilt unless ``no_cache`` asks for it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from imagebuild import contract, imageref
from imagebuild.engine import Engine, base_unavailable
from imagebuild.engine import buildkit as dockercli
from imagebuild.errors import SpecError, UserError
from imagebuild.image.lock import Lock
from imagebuild.image.pkgname import canonical, requirement_name
from imagebuild.image.progress import Reporter, SilentReporter
from imagebuild.image.render import (
    LAYER_NAMES,
    SECRET_CA_BUNDLE,
    BuildPlan,
    LayerPlan,
    plan_build,
    plan_key,
    write_layer,
)
from imagebuild.image.spec import Spec

# apt's words for a locked version the mirror no longer has.
# pip, uv, curl and apt word an untrusted certificate differently.
_TLS_FAILURE = re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|SSL certificate problem"
                          r"|self[- ]signed certificate in certificate chain|invalid peer certificate",
                          re.IGNORECASE)
_HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_APT_GONE = re.compile(r"Version '([^']+)' for '([^']+)' was not found")
# Output of a failed FROM: the base could not be pulled.
_PULL_FAILURES = ("failed to resolve source metadata", "resolve image config", "pull access denied",
                  "no such host", "manifest unknown", "failed to do request")


@dataclass(frozen=True)
class RegistryCache:
    """BuildKit's registry cache, one ref per layer (``REPO:buildcache-<layer>``):
    a single ref shared by all layers would be overwritten by each layer's export."""

    cache_from: str | None = None
    cache_to: str | None = None

    def args(self, layer: str) -> list[str]:
        args: list[str] = []
        if self.cache_from:
            args += ["--cache-from", f"type=registry,ref={self.cache_from}:buildcache-{layer}"]
        if self.cache_to:
            args += ["--cache-to", f"type=registry,ref={self.cache_to}:buildcache-{layer},mode=max"]
        return args

    def check(self, cli: dockercli.DockerCLI, no_cache: bool) -> None:
        """One clear line where the flags cannot work."""
        for flag, repo in (("--cache-to", self.cache_to), ("--cache-from", self.cache_from)):
            last = (repo or "").rsplit("/", 1)[-1]
            if repo is not None and (not repo or any(c in repo for c in ",=@ \t") or ":" in last):
                raise SpecError(f"{flag} {repo!r}: expected a repository without a tag, like "
                                "ghcr.io/you/research-pod-cache")
        if no_cache:
            raise SpecError("--no-cache cannot be combined with --cache-to/--cache-from; drop one")
        if not cli.buildx:
            raise SpecError(f"--cache-to/--cache-from need docker buildx (BuildKit's registry "
                            f"cache); this machine builds with {cli.description}: install the "
                            "buildx plugin (docker-buildx-plugin) or drop the flags")


@dataclass
class LayerResult:
    name: str
    image: str
    cached: bool
    seconds: float
    pulled: bool = False  # reused from the registry (`build --pull`), not built here

    @property
    def tag(self) -> str:
        return imageref.parse(self.image).tag or ""


@dataclass
class BuildResult:
    plan: BuildPlan | None  # None: every layer reused by the plan key, nothing rendered
    layers: list[LayerResult] = field(default_factory=list)
    plan_key: str = ""  # render.plan_key of this build: the record keeps it for the next one

    @property
    def image(self) -> str:
        return self.layers[-1].image

    def physx_gpu(self, engine: Engine) -> str | None:
        """Where the sim layer's PhysX GPU library came from (its versions record)."""
        sim = [r for r in self.layers if r.name == "sim"]
        if not sim:
            return None
        if self.layers[-1].name == "runtime":  # the runtime layer's label holds it: no container
            versions = json.loads(engine.labels(self.image).get(contract.LABEL_VERSIONS) or "{}")
            return versions.get("sim", {}).get("physx-gpu")
        assert self.plan is not None  # a partial build is never the reuse of a whole one
        record = engine.read_files(sim[0].image, contract.VERSIONS_DIR).get("sim", "")
        return _parse_versions({"sim": record}, self.plan.spec).get("sim", {}).get("physx-gpu")

    def to_json(self) -> dict:
        return {
            "image": self.image,
            "layers": [
                {"name": r.name, "tag": r.tag, "cached": r.cached, "pulled": r.pulled,
                 "seconds": round(r.seconds, 2)}
                for r in self.layers
            ],
        }


def read_secret_sources(pairs: Iterable[str], spec: Spec) -> dict[str, str]:
    """``ID=env:VAR`` / ``ID=file:PATH`` / ``ID`` (= env var ID) → {id: value}.

    Spec-declared secret ids default to the env var of the same name. Values
    stay in memory and in 0600 temp files for the build's duration only.
    """
    values: dict[str, str] = {}
    requested = {name: f"env:{name}" for name in spec.build.secrets}
    for pair in pairs:
        secret_id, _, source = pair.partition("=")
        if not secret_id.isidentifier() or secret_id == SECRET_CA_BUNDLE:
            raise SpecError(f"--secret {secret_id!r}: expected ID=env:VAR or ID=file:PATH with an "
                            "identifier-like ID (the CA bundle goes to --ca-cert)")
        requested[secret_id] = source or f"env:{secret_id}"
    for secret_id, source in requested.items():
        kind, _, where = source.partition(":")
        if kind == "env" and where:
            if where in os.environ:
                values[secret_id] = os.environ[where]
        elif kind == "file" and where:
            try:
                values[secret_id] = Path(where).expanduser().read_text()
            except OSError:
                raise SpecError(f"--secret {secret_id}: cannot read {where}; check the path") from None
        else:
            raise SpecError(f"--secret {secret_id}: expected env:VAR or file:PATH as the source")
    return values


def _parse_versions(files: dict[str, str], spec: Spec) -> dict[str, dict[str, str]]:
    """Resolved versions from the layers' records, for the image's labels."""
    versions: dict[str, dict[str, str]] = {}
    for layer, text in sorted(files.items()):
        if layer.endswith("-freeze.txt"):
            continue
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key:
                versions.setdefault(layer, {})[key] = value
    freeze = files.get("sim-freeze.txt", "")
    wanted = {
        requirement_name(r) for r in [*spec.simulators.packages, *spec.python.packages]
    }
    for line in freeze.splitlines():
        name, _, version = line.partition("==")
        if canonical(name) in wanted:
            versions.setdefault("packages", {})[name] = version
    return versions


def check_options(up_to: str | None, registry_cache: RegistryCache | None, no_cache: bool,
                  ca_cert: Path | None, cli: dockercli.DockerCLI | None = None) -> dockercli.DockerCLI | None:
    """One line for a build option that cannot work, before anything resolves or builds;
    the BuildKit client, when the options needed one to be found."""
    if up_to is not None and up_to not in LAYER_NAMES:
        raise SpecError(f"--layer: expected one of {', '.join(LAYER_NAMES)}, got {up_to!r}")
    if registry_cache is not None:
        cli = cli or dockercli.find_cli()
        registry_cache.check(cli, no_cache)
    if ca_cert is not None and not (ca_cert.is_file() and os.access(ca_cert, os.R_OK)):
        raise SpecError(f"--ca-cert: {ca_cert} is not a readable file; pass a PEM CA bundle")
    return cli


def base_id_for(engine: Engine, spec: Spec, lock: Lock) -> str | None:
    """The engine's id of the spec's base (None: not here). The lock must pin the base
    the engine has, unless it names the base by digest."""
    base_id = engine.image_id(spec.image.base)
    if base_id and not lock.base.get("digest") and base_id != lock.base["id"]:
        raise UserError(f"the lock pins the base {spec.image.base} as {lock.base['id'][:19]}, the "
                        f"engine has {base_id[:19]}; run `imagebuild lock --upgrade base`", 2)
    return base_id


def plan_for(engine: Engine, spec: Spec, lock: Lock) -> BuildPlan:
    """What ``spec`` at ``lock`` builds on this engine (layers, tags, final image): the
    one planning call of build, push and local pods."""
    return plan_build(spec, base_id=base_id_for(engine, spec, lock), lock=lock)


def plan_preview(spec: Spec, lock: Lock | None, engine: Engine | None) -> tuple[BuildPlan, str | None]:
    """`render`'s plan: the tags `build` will make, and why they may not be (None: they
    are). A build plans on the engine's id of the base and on an up-to-date lock; without
    an engine or such a lock, the tags are those of what is known now."""
    if lock is None or lock.stale(spec):
        why = ("no lock beside the spec yet" if lock is None else "the lock is out of date with the spec")
        return plan_build(spec), f"{why}: the first build resolves one, and every tag follows its pins"
    if engine is None:
        return (plan_build(spec, lock=lock), "no Docker engine to ask for the base's image id, which "
                "every tag follows (from the system layer's up)")
    return plan_for(engine, spec, lock), None


class Builder:
    def __init__(self, engine: Engine, cli: dockercli.DockerCLI | None = None,
                 reporter: Reporter | None = None, pull_auth: dict | None = None,
                 pull: bool = False, on_resolve: Callable[[], None] | None = None):
        self.engine = engine
        self.cli = cli
        self.reporter = reporter or SilentReporter()
        # pull: a layer missing here is first looked for under its content tag in the
        # registry (`imagebuild push --layers` put it there): same tag, same content.
        self.pull = pull
        self.pull_auth = pull_auth
        self.ca_cert: Path | None = None
        self.on_resolve = on_resolve  # called before a lock is resolved for a build
        self._resolved: dict[str, Lock] = {}

    def lock_for(self, spec: Spec, lock: Lock | None = None) -> Lock:
        """``lock``; without one, a lock resolved now (once per spec and builder: the
        build and its plan agree). :func:`plan_for` checks it against the local base."""
        if lock is None:
            from imagebuild.image.resolve import resolve_lock

            key = spec.digest()
            if key not in self._resolved:
                if self.on_resolve:
                    self.on_resolve()
                self._resolved[key] = resolve_lock(spec, self.engine, ca_cert=self.ca_cert)
            return self._resolved[key]
        return lock

    def plan(self, spec: Spec, lock: Lock | None = None) -> BuildPlan:
        return plan_for(self.engine, spec, self.lock_for(spec, lock))

    def build(
        self,
        spec: Spec,
        ca_cert: Path | None = None,
        secrets: dict[str, str] | None = None,
        up_to: str | None = None,
        no_cache: bool = False,
        registry_cache: RegistryCache | None = None,
        lock: Lock | None = None,
        known: tuple[str, list[str]] | None = None,
    ) -> BuildResult:
        """Build ``spec`` at ``lock``. ``known`` is the last build's (plan key, layer
        images): when the key is this build's, those are the tags and nothing is rendered;
        each is still looked for in the engine, and any missing one builds as usual."""
        self.cli = check_options(up_to, registry_cache, no_cache, ca_cert, self.cli)
        self.ca_cert = ca_cert
        lock = self.lock_for(spec, lock)
        base_id = base_id_for(self.engine, spec, lock)
        key = plan_key(spec, base_id, lock)
        if known and known[0] == key and up_to is None and not no_cache:
            reused = self._reuse(spec, known[1], key)
            if reused is not None:
                return reused
        plan = plan_build(spec, base_id=base_id, lock=lock)
        result = BuildResult(plan=plan, plan_key=key)
        with tempfile.TemporaryDirectory(prefix="imagebuild-") as scratch:
            secret_files = self._secret_files(Path(scratch), ca_cert, secrets or {})
            for layer_plan in plan.layers:
                extra_args = registry_cache.args(layer_plan.name) if registry_cache else []
                result.layers.append(
                    self._build_layer(plan, layer_plan, Path(scratch), secret_files,
                                      no_cache, extra_args)
                )
                if layer_plan.name == up_to:
                    break
        if result.layers[-1].name == "runtime":
            self.engine.tag(plan.image, plan.version_image)
        return result

    def _reuse(self, spec: Spec, images: list[str], key: str) -> BuildResult | None:
        """The whole image from the last build's layer images, when the engine has every one."""
        if len(images) != len(LAYER_NAMES) or not all(self.engine.exists(i) for i in images):
            return None
        result = BuildResult(plan=None, plan_key=key)
        for name, image in zip(LAYER_NAMES, images, strict=True):
            self.reporter.started(name, image)
            self.reporter.finished(name, True, 0.0)
            result.layers.append(LayerResult(name, image, True, 0.0))
        self.engine.tag(result.image, f"{spec.image.name}:{spec.image.version}")
        return result

    def _secret_files(self, scratch: Path, ca_cert: Path | None,
                      secrets: dict[str, str]) -> dict[str, Path]:
        files: dict[str, Path] = {}
        if ca_cert is not None:
            files[SECRET_CA_BUNDLE] = ca_cert
        folder = scratch / "secrets"
        folder.mkdir(mode=0o700)
        for secret_id, value in secrets.items():
            path = folder / secret_id
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(value)
            files[secret_id] = path
        return files

    def _reused(self, layer_plan: LayerPlan, started: float, pulled: bool) -> LayerResult:
        seconds = time.monotonic() - started
        self.reporter.finished(layer_plan.name, True, seconds)
        return LayerResult(layer_plan.name, layer_plan.image, True, seconds, pulled=pulled)

    def _build_layer(self, plan: BuildPlan, layer_plan: LayerPlan, scratch: Path,
                     secret_files: dict[str, Path], no_cache: bool,
                     extra_args: list[str]) -> LayerResult:
        name = layer_plan.name
        self.reporter.started(name, layer_plan.image)
        started = time.monotonic()
        if not no_cache and self.engine.exists(layer_plan.image):
            return self._reused(layer_plan, started, pulled=False)
        if self.pull and not no_cache:
            self.reporter.progress(name, "looking for the layer in the registry")
            if self.engine.pull(layer_plan.image, self.pull_auth):
                return self._reused(layer_plan, started, pulled=True)
        labels = {contract.LABEL_LAYER: name}
        if name == "runtime":
            parent_files = self.engine.read_files(layer_plan.layer.parent, contract.VERSIONS_DIR)
            versions = _parse_versions(parent_files, plan.spec)
            labels[contract.LABEL_VERSIONS] = json.dumps(versions, sort_keys=True, separators=(",", ":"))
        layer_context = scratch / name
        write_layer(layer_plan.layer, layer_context)
        cli = self.cli or dockercli.find_cli()
        try:
            dockercli.build(
                cli, layer_context, layer_plan.image, secret_files, labels, no_cache,
                extra_args, on_line=lambda status: self.reporter.progress(name, status),
            )
        except dockercli.BuildFailed as failure:
            self.reporter.failed(name)
            raise self._explain(plan, name, failure, self.ca_cert) from None
        seconds = time.monotonic() - started
        self.reporter.finished(name, False, seconds)
        return LayerResult(name, layer_plan.image, False, seconds)

    @staticmethod
    def _explain(plan: BuildPlan, name: str, failure: dockercli.BuildFailed,
                 ca_cert: Path | None = None) -> UserError:
        text = "\n".join(failure.lines)
        if name == "system" and any(marker in text for marker in _PULL_FAILURES) \
                and ("FROM" in failure.step or "(before" in failure.step or "resolve" in text):
            return base_unavailable(plan.spec.image.base)
        gone = _APT_GONE.search(text)
        if gone:
            return UserError(f"the lock pins {gone.group(2)}={gone.group(1)}, which the apt mirror no "
                             "longer has; refresh it with `imagebuild lock --upgrade system`")
        tail = "\n    ".join(failure.lines) if failure.lines else "(no output)"
        hint = ""
        if _TLS_FAILURE.search(text):
            hint = (" - a TLS certificate was not trusted (a TLS-intercepting proxy?): rerun with "
                    f"--ca-cert {_HOST_CA_BUNDLE}" if ca_cert is None else
                    f" - a TLS certificate was not trusted even with --ca-cert {ca_cert}: "
                    "check that the bundle holds the proxy's CA")
        return UserError(f"layer {name} failed at step {failure.step}{hint}; last output:\n    {tail}")
