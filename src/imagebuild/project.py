"""The project of one spec file: the spec, its lock, its build record and its push state.

Everything a command knows about what was built and pushed from a spec is read here,
from files named after the spec, so two specs in one folder never share a record:

    research.toml
    research.lock                      the lock (`imagebuild lock`; the first `build` writes it)
    .imagebuild/research.build.json    what the last `build` made: push, run, pod create read it
    .imagebuild/research.push.json     what the last `push` published: the pods' default image
    .imagebuild/research.pushed.lock   the lock of the pushed image (the recipe of that digest)

The default spec (no file) keeps them in the current folder, as ``imagebuild.toml``'s.
None of these files holds a secret.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from imagebuild import imageref
from imagebuild.errors import SpecError, UserError
from imagebuild.image.lock import Lock, lock_path, read_lock
from imagebuild.image.spec import (
    PHYSX_DOWNLOAD,
    PHYSX_VOLUME,
    SPEC_FILENAME,
    LoadedSpec,
    PodSection,
    Spec,
    format_validation_error,
)
from imagebuild.image.state import read_json, write_json

STATE_DIR = ".imagebuild"  # beside the spec; `push` leaves it out of the git commit's "dirty"
RECORD_FORMAT = 1
# One push record per folder, from before records were kept per spec: moved on first read.
LEGACY_STATE, LEGACY_PUSHED_LOCK = ".imagebuild-state.json", ".imagebuild-pushed.lock"


@dataclass(frozen=True)
class BuildRecord:
    """What one `imagebuild build` made from a spec (``.imagebuild/<spec>.build.json``)."""

    image: str  # name:content-hash of the final layer
    version_image: str  # name:image.version, the tag build also set
    layers: list[str]  # each layer's image (name:<layer>-<hash>), in build order
    spec_sha256: str  # Spec.digest() of the spec file as it was read (before --base/--physx-gpu)
    lock_sha256: str
    base: dict[str, str]  # the base image given to the build and the lock's id/digest of it
    physx_zip_sha256: str | None = None  # the --physx-gpu / simulators.physx_gpu zip baked in
    built_at: str = ""
    format: int = RECORD_FORMAT
    plan_key: str = ""  # render.plan_key: the next build with this key reuses ``layers`` unrendered
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def repository(self) -> str:
        return imageref.parse(self.image).repository

    @property
    def tag(self) -> str:
        """The content-hash tag of the final image."""
        return imageref.parse(self.image).tag or ""

    @property
    def version(self) -> str:
        return imageref.parse(self.version_image).tag or ""

    @property
    def layer_images(self) -> list[str]:
        """The intermediate layers' images (all but the final one)."""
        return self.layers[:-1]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], origin: Path) -> BuildRecord:
        known = {name for name in cls.__dataclass_fields__ if name != "extra"}
        try:
            record = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            raise UserError(f"{origin}: not a build record this imagebuild reads; run `imagebuild "
                            "build` again to rewrite it") from None
        if (record.format != RECORD_FORMAT or not record.tag
                or not isinstance(record.layers, list)):
            raise UserError(f"{origin}: not a build record this imagebuild reads; run `imagebuild "
                            "build` again to rewrite it")
        return record


# The flag of each [pod] key a command may set: flags and spec share the model's bounds.
POD_FLAGS = {"gpu": "--gpu", "gpu_count": "--gpu-count", "volume_gb": "--volume-gb",
             "disk_gb": "--disk-gb", "cloud": "--cloud", "datacenter": "--datacenter",
             "volume": "--volume", "ports": "--ports", "idle_stop": "--idle-stop",
             "idle_stop_requires_save": "--idle-stop-requires-save", "save_every": "--save-every"}


def pod_settings(spec_pod: PodSection, flags: dict[str, Any]) -> PodSection:
    """The spec's ``[pod]`` with the flags given (not None) over it, validated by the
    spec's own model: one set of bounds, a bad flag named as the flag."""
    unknown = set(flags) - set(POD_FLAGS)
    if unknown:
        raise TypeError(f"not [pod] keys: {sorted(unknown)}")
    data = {**spec_pod.model_dump(), **{key: value for key, value in flags.items() if value is not None}}
    try:
        return PodSection.model_validate(data)
    except ValidationError as error:
        raise SpecError(format_validation_error("flags", error, POD_FLAGS)) from None


def pod_host_env(spec_pod: PodSection, pod: PodSection, idle_stop_flag: str | None) -> dict[str, str]:
    """The variables the host sets for the image from the settings of `pod create` and
    `run` alike: the idle stop (``pod``: :func:`pod_settings`; a flag's ``off`` also
    turns the image's own default off, the spec's only leaves it unset) and the save
    interval (``--save-every`` over ``[pod] save_every``; None: save.toml's)."""
    from imagebuild.pods import autosave, idlestop

    return {**idlestop.pod_env(idle_stop_flag, spec_pod.idle_stop, pod.idle_stop_requires_save),
            **autosave.pod_env(pod.save_every)}


@dataclass(frozen=True)
class BuildSettings:
    """`imagebuild build`'s flags over the spec, checked before anything resolves or builds."""

    spec: Spec  # the spec as built: --base and --physx-gpu over the file's
    ca_cert: Path | None = None
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # values: memory only
    up_to: str | None = None  # --layer
    no_cache: bool = False
    pull: bool = False
    registry_cache: Any = None  # builder.RegistryCache, or None
    locked: bool = False
    ca_note: str | None = None  # the one line saying which host CA bundle is passed

    @classmethod
    def from_flags(cls, project: Project, *, base: str | None = None, physx_gpu: Path | None = None,
                   ca_cert: Path | None = None, secret: list[str] | tuple[str, ...] = (),
                   layer: str | None = None, no_cache: bool = False, pull: bool = False,
                   cache_from: str | None = None, cache_to: str | None = None,
                   locked: bool = False) -> BuildSettings:
        from imagebuild.image import hostca
        from imagebuild.image.builder import RegistryCache, check_options, read_secret_sources

        spec = project.spec_for(base, physx_gpu)
        registry_cache = RegistryCache(cache_from, cache_to) if (cache_from or cache_to) else None
        ca_cert, ca_note = hostca.choose(ca_cert)  # --ca-cert, else the host's bundle (said)
        check_options(layer, registry_cache, no_cache, ca_cert)
        return cls(spec=spec, ca_cert=ca_cert, secrets=read_secret_sources(secret, spec), up_to=layer,
                   no_cache=no_cache, pull=pull, registry_cache=registry_cache, locked=locked,
                   ca_note=ca_note)


@dataclass(frozen=True)
class PushSettings:
    """`imagebuild push`'s flags, checked with the build record before any credential or
    engine is asked for: push publishes ``record``, never a plan made again."""

    record: BuildRecord
    tags: tuple[str, ...] = ()  # --tag, besides the content hash, version and git commit
    layers: bool = False  # --layers: the intermediate layer images too
    base: str | None = None  # --base: refuse unless the record's build was on it

    @classmethod
    def from_flags(cls, project: Project, *, tag: list[str] | tuple[str, ...] = (), layers: bool = False,
                   base: str | None = None) -> PushSettings:
        from imagebuild.checks import docker_tags

        return cls(record=project.built(base), tags=docker_tags(tag), layers=layers, base=base)


def state_file(spec_file: Path, suffix: str) -> Path:
    """``.imagebuild/<spec stem>.<suffix>`` beside ``spec_file``."""
    return spec_file.parent / STATE_DIR / f"{spec_file.stem}.{suffix}"


def _file_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Project:
    """The folder of one spec file and the files imagebuild keeps beside it."""

    def __init__(self, loaded: LoadedSpec):
        self.loaded = loaded
        self.spec: Spec = loaded.spec
        # The default spec (no file) answers for ./imagebuild.toml: the same names.
        self.spec_file = loaded.path or Path.cwd() / SPEC_FILENAME
        self.lock_path = lock_path(loaded.path)
        self.record_path = state_file(self.spec_file, "build.json")
        self.push_path = state_file(self.spec_file, "push.json")
        self.pushed_lock_path = state_file(self.spec_file, "pushed.lock")

    @property
    def build_command(self) -> str:
        """The command that builds this spec, for the messages that ask for a build."""
        return f"imagebuild build{' --spec ' + str(self.loaded.path) if self.loaded.path else ''}"

    def spec_for(self, base: str | None = None, physx_gpu: Path | None = None) -> Spec:
        """The spec a build or render uses: --base and --physx-gpu over the file's. A zip
        named in the spec is relative to the spec's folder, a flag's to the cwd; a bad zip
        is bad input, said before a lock is resolved or anything is built."""
        from imagebuild.image import physx

        spec = self.spec.with_base(base) if base else self.spec
        zip_path = str(physx_gpu) if physx_gpu else spec.simulators.physx_gpu
        if zip_path not in (PHYSX_DOWNLOAD, PHYSX_VOLUME):
            folder = Path.cwd() if physx_gpu else self.loaded.directory
            spec = spec.with_physx_gpu(str((folder / Path(zip_path).expanduser()).resolve()))
        physx.plan_physx(spec.simulators.packages, spec.simulators.physx_gpu)
        return spec

    def build(self, settings: BuildSettings, engine: Any, reporter: Any,
              say: Any = None) -> tuple[Any, list[str]]:
        """Build what ``settings`` ask (the lock first, written when missing or stale, said
        through ``say``), record a whole image's build; the result and the final image's
        diff IDs before the build (what is new)."""
        from imagebuild.image.builder import Builder
        from imagebuild.image.layers import diff_ids
        from imagebuild.image.registry_auth import credentials
        from imagebuild.image.render import LAYER_NAMES

        spec = settings.spec
        say = say or (lambda line: None)
        if settings.ca_note and not settings.locked:  # before resolving a lock, which uses it too
            say(f"imagebuild: {settings.ca_note}")
        lock, notice = self.lock_for_build(spec, engine, settings.locked, settings.ca_cert)
        if notice:
            say(notice)
        if settings.ca_note and settings.locked:  # after the lock check: a refused --locked is one line
            say(f"imagebuild: {settings.ca_note}")
        previous = diff_ids(engine, f"{spec.image.name}:{spec.image.version}")
        builder = Builder(engine, reporter=reporter, pull=settings.pull,
                          pull_auth=credentials() if settings.pull else None)
        result = builder.build(spec, ca_cert=settings.ca_cert, secrets=settings.secrets,
                               up_to=settings.up_to, no_cache=settings.no_cache,
                               registry_cache=settings.registry_cache, lock=lock, known=self.known_plan())
        if result.layers[-1].name == LAYER_NAMES[-1]:  # the whole image: what push and pods use
            self.record_build(spec, result.image, [r.image for r in result.layers], lock, result.plan_key)
        return result, previous

    # -- the lock ---------------------------------------------------------------

    def read_lock(self) -> Lock | None:
        return read_lock(self.lock_path)

    def lock_for_build(self, spec: Spec, engine: Any, locked: bool = False,
                       ca_cert: Path | None = None) -> tuple[Lock, str | None]:
        """The lock a build of ``spec`` installs, and what to tell the user about it.

        As cargo, uv and npm do, a missing lock is resolved and written, and one out of
        date with the spec is resolved again (keeping the pins of unchanged sections) and
        rewritten; ``locked`` (`build --locked`) refuses both instead."""
        from imagebuild.image.lock import check_locked, write_lock

        lock = self.read_lock()
        if locked:
            return check_locked(lock, spec, str(self.lock_path)), None
        reason = lock.stale(spec) if lock is not None else None
        if lock is not None and reason is None:
            return lock, None
        from imagebuild.image.resolve import resolve_lock  # not imported by a no-op build

        resolved = resolve_lock(spec, engine, lock, ca_cert=ca_cert)
        write_lock(self.lock_path, resolved)
        name = self.lock_path.name
        if lock is None:
            return resolved, f"imagebuild: wrote {name} (no lock beside the spec yet): commit it"
        return resolved, f"imagebuild: {name} was out of date ({reason}): resolved again and rewrote it"

    # -- the build record -------------------------------------------------------

    def record_build(self, built_spec: Spec, image: str, layers: list[str], lock: Lock,
                     plan_key: str = "") -> BuildRecord:
        """Write what a build of the whole image made (atomically): push and pods read it."""
        zip_path = built_spec.simulators.physx_gpu
        record = BuildRecord(
            image=image, version_image=f"{built_spec.image.name}:{built_spec.image.version}",
            layers=list(layers), spec_sha256=self.spec.digest(), lock_sha256=lock.sha256(),
            base={"image": built_spec.image.base, **lock.base},
            physx_zip_sha256=None if zip_path in (PHYSX_DOWNLOAD, PHYSX_VOLUME) else _file_sha256(zip_path),
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), plan_key=plan_key)
        write_json(self.record_path, record.to_json(), merge=False)
        return record

    def build_record(self) -> BuildRecord | None:
        """The last build's record as written, or None when this spec was never built."""
        data = read_json(self.record_path, "imagebuild build")
        return BuildRecord.from_json(data, self.record_path) if data else None

    def known_plan(self) -> tuple[str, list[str]] | None:
        """The last build's (plan key, layer images), for a build to skip rendering when
        its key matches; None when there is no readable record of this spec's image."""
        try:
            record = self.build_record()
        except UserError:  # an unreadable record is rewritten by this build
            return None
        if record is None or not record.plan_key or record.repository != self.spec.image.name:
            return None
        return record.plan_key, list(record.layers)

    def built(self, base: str | None = None) -> BuildRecord:
        """The last build's record when it is the build of this spec and lock as they are
        now; else one line saying to rebuild."""
        record = self.build_record()
        rebuild = f"run `{self.build_command}`"
        if record is None:
            raise UserError(f"{self.spec.image.name} (this spec's image) is not built: no build "
                            f"recorded in {self.record_path}; {rebuild} first")
        why = self.stale(record, base)
        if why:
            raise UserError(f"{self.spec.image.name} (this spec's image) is not built as the spec "
                            f"reads now: {why}; {rebuild} again")
        return record

    def stale(self, record: BuildRecord, base: str | None = None) -> str | None:
        """Why ``record`` is not this spec's current build (one phrase), or None."""
        if record.repository != self.spec.image.name:
            return f"the last build made {record.repository}, the spec names {self.spec.image.name}"
        if record.spec_sha256 != self.spec.digest():
            return "the spec changed since the last build"
        lock = self.read_lock()
        if lock is None or lock.sha256() != record.lock_sha256:
            return f"{self.lock_path.name} changed since the last build"
        if base and base != record.base.get("image"):
            return f"the last build was on {record.base.get('image')}, not {base}"
        return None

    # -- the push state ---------------------------------------------------------

    def push_state(self) -> dict[str, Any]:
        if not self.push_path.exists():
            self._migrate_folder_state()
        return read_json(self.push_path, "imagebuild push")

    def _migrate_folder_state(self) -> None:
        """An older imagebuild kept one push record per folder (``.imagebuild-state.json``,
        its lock in ``.imagebuild-pushed.lock``). It is moved to this spec's record when it
        is this spec's image, and refused with one line otherwise: a folder's record used
        for another spec would run another image on a billing pod."""
        folder = self.spec_file.parent
        old, old_lock = folder / LEGACY_STATE, folder / LEGACY_PUSHED_LOCK
        if not old.is_file():
            return
        state = read_json(old, "imagebuild push")
        image = state.get("image")
        repository = imageref.parse(image).repository if isinstance(image, str) else None
        if repository != self.spec.image.name:
            raise UserError(
                f"{old}: a push record from an older imagebuild (one per folder) of "
                f"{repository or 'an unknown image'}, not of {self.spec.image.name} ({self.spec_file.name}): "
                f"move it to {STATE_DIR}/<spec>.push.json beside the spec it belongs to, or delete it "
                "and run `imagebuild push` again")
        self.push_path.parent.mkdir(parents=True, exist_ok=True)
        if old_lock.is_file():
            old_lock.replace(self.pushed_lock_path)
            state["lock"] = str(self.pushed_lock_path.relative_to(folder))
        write_json(self.push_path, state, merge=False)
        old.unlink()

    def record_push(self, lock: Lock | None, pushed: dict[str, Any]) -> Path:
        """Record what a push published (only once every tag is in the registry): the
        image (``name@sha256:...``), its tags, CUDA version and the built image."""
        values = dict(pushed)
        from imagebuild.image.lock import write_lock

        if lock is not None:  # the lock the image was built from, beside its digest
            self.pushed_lock_path.parent.mkdir(parents=True, exist_ok=True)
            write_lock(self.pushed_lock_path, lock)
            where = self.pushed_lock_path.relative_to(self.spec_file.parent)  # from the spec's folder
            values.update(lock=str(where), lock_sha256=lock.sha256())
        return write_json(self.push_path, values, merge=False)

    def pushed_image(self) -> str | None:
        """The ``name@sha256:...`` the last `push` of this spec published."""
        return self.push_state().get("image")

    def pushed_cuda(self, image: str) -> str | None:
        """The CUDA version recorded at push, when ``image`` is the pushed one."""
        state = self.push_state()
        ours = image in (state.get("image"), state.get("zstd_image"))  # the zstd variant: same content
        return str(state["cuda"]) if ours and state.get("cuda") else None

    # -- which image a pod runs -------------------------------------------------

    def default_image(self, engine: Any = None) -> str:
        """The image a pod runs without --image, for RunPod and local pods alike: the one
        last pushed from this spec. A local pod (``engine`` given) takes it when the engine
        has it or can pull it, else this spec's last local build."""
        pushed = self.pushed_image()
        if engine is None:
            if not pushed:
                raise UserError(f"--image: nothing pushed from {self.spec_file} yet; run `imagebuild "
                                "push` first or pass --image", 2)
            return pushed
        if pushed and _have_or_pull(engine, pushed):
            return pushed
        record = self.build_record()
        if record is None or not engine.exists(record.image):
            raise UserError(f"no image of {self.loaded.label} here: build it with "
                            f"`{self.build_command}` or pass --image REF")
        return self.built().image


def _have_or_pull(engine: Any, image: str) -> bool:
    import docker.errors

    if engine.exists(image):
        return True
    try:
        engine.client.images.pull(image)
    except docker.errors.DockerException:
        return False
    return True
