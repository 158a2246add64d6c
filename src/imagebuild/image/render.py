"""Render the layered Dockerfiles of a spec and plan their content-hash tags.

Each layer is its own image built FROM the previous one. Its tag is a hash of
(parent reference, rendered Dockerfile, files in its build context), so the tag
changes exactly when the layer's inputs change and an existing tag is never rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import tarfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from imagebuild import __version__, contract, imageref
from imagebuild.image import chunks as chunking
from imagebuild.image import physx
from imagebuild.image.lock import LOCK_FILENAME, Lock
from imagebuild.image.spec import BASE_APT_PACKAGES, PHYSX_DOWNLOAD, PHYSX_VOLUME, Spec

if TYPE_CHECKING:
    import jinja2

LAYER_NAMES = ("system", "python", "node", "sim", "runtime")

SECRET_CA_BUNDLE = "ca_bundle"
SECRETS_DIR = "/tmp/secrets"  # on the step's tmpfs /tmp

# Build-context files of each layer: (path in the context, packaged source file).
_CONTEXT_FILES = {
    "system": [
        ("nvidia_icd.json", "files/nvidia_icd.json"),
        ("10_nvidia.json", "files/10_nvidia.json"),
        ("nvidia_layers.json", "files/nvidia_layers.json"),
    ],
    "node": [("install-node.py", "files/install-node.py")],
}


@dataclass(frozen=True)
class Layer:
    name: str
    parent: str
    dockerfile: str
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.parent, self.dockerfile):
            digest.update(part.encode())
            digest.update(b"\0")
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + self.files[path] + b"\0")
        return digest.hexdigest()


@dataclass(frozen=True)
class LayerPlan:
    layer: Layer
    image: str  # name:tag this layer is built as

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def tag(self) -> str:
        return imageref.parse(self.image).tag or ""


@dataclass(frozen=True)
class BuildPlan:
    spec: Spec
    layers: list[LayerPlan]
    lock: Lock | None = None

    @property
    def final(self) -> LayerPlan:
        return self.layers[-1]

    @property
    def image(self) -> str:
        """The exact image of this spec: name:<content hash>."""
        return self.final.image

    @property
    def version_image(self) -> str:
        return f"{self.spec.image.name}:{self.spec.image.version}"

    def layer(self, name: str) -> LayerPlan:
        for plan in self.layers:
            if plan.name == name:
                return plan
        raise KeyError(name)

    def to_json(self) -> dict:
        return {
            "image": self.image,
            "base": self.spec.image.base,
            "layers": [
                {"name": p.name, "image": p.image, "tag": p.tag, "parent": p.layer.parent}
                for p in self.layers
            ],
        }


def _package_file(relative: str) -> bytes:
    return resources.files("imagebuild.image").joinpath(relative).read_bytes()


def _entrypoint_files() -> dict[str, bytes]:
    """Everything under the packaged entrypoint/ folder, for the runtime context."""
    found: dict[str, bytes] = {}

    def walk(node, prefix: str) -> None:
        for child in node.iterdir():
            if child.name == "__pycache__":
                continue
            path = f"{prefix}/{child.name}"
            if child.is_dir():
                walk(child, path)
            else:
                found[path] = child.read_bytes()

    walk(resources.files("imagebuild").joinpath("entrypoint"), "entrypoint")
    return found


def _environment() -> jinja2.Environment:
    import jinja2  # only when a plan is rendered: a no-op build with a matching key skips it

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("imagebuild.image", "dockerfiles"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Dockerfiles, not HTML
    )
    env.filters["shell_quote"] = lambda value: shlex.quote(str(value))
    env.filters["docker_quote"] = lambda value: json.dumps(str(value))
    env.globals["contract"] = contract  # host-image names, spelled once
    return env


def _step_mounts(spec: Spec) -> str:
    """Mounts of every downloading step: a tmpfs /tmp, so nothing a tool leaves in /tmp
    (node's compile cache, bootstrap venvs) lands in the layer, and the build secrets
    inside it: their mount points then never touch the layer either."""
    ids = [SECRET_CA_BUNDLE, *spec.build.secrets]
    mounts = [f"--mount=type=secret,id={secret_id},target={SECRETS_DIR}/{secret_id}" for secret_id in ids]
    return " \\\n    ".join(["--mount=type=tmpfs,target=/tmp", *mounts])


def _apt_packages(spec: Spec, lock: Lock | None) -> list[str]:
    """What the system layer installs: the locked closure at exact versions, else names."""
    if lock is not None:
        return [f"{name}={version}" for name, version in sorted(lock.apt.items())]
    return sorted(set(BASE_APT_PACKAGES) | set(spec.system.packages))


# Where BuildKit mounts things during a RUN (see system.Dockerfile.j2): (path, mode, folder).
_MOUNT_STUBS = (("etc", 0o755, True), ("etc/hosts", 0o644, False), ("etc/resolv.conf", 0o644, False),
                ("root", 0o700, True), ("root/.cache", 0o755, True), ("root/.cache/pip", 0o755, True),
                ("root/.cache/uv", 0o755, True), ("root/.npm", 0o755, True))


def _stubs_tar(epoch: int) -> bytes:
    """A tar of empty mount points, every entry stamped ``epoch``: the same bytes each time."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for path, mode, folder in _MOUNT_STUBS:
            entry = tarfile.TarInfo(path)
            entry.mode, entry.mtime = mode, epoch
            entry.type = tarfile.DIRTYPE if folder else tarfile.REGTYPE
            archive.addfile(entry, None if folder else io.BytesIO(b""))
    return buffer.getvalue()


def _chunks(name: str, lock: Lock | None) -> list[chunking.Chunk]:
    """The python and sim layers install their locked packages in chunks."""
    if lock is None or name not in ("python", "sim"):
        return []
    return chunking.plan_chunks(name, lock.packages(name))


def _prefetch_file(name: str, chunk_list: list[chunking.Chunk]) -> str | None:
    """Where the sim layer's download stage reads its list (dockerfiles/chunk.macros.j2),
    when it has one: only with more than one chunk, and not in the python layer, whose
    parent has no uv and no venv yet to run it (its few chunks download little)."""
    return chunking.prefetch_file(name) if name == "sim" and len(chunk_list) > 1 else None


def _locked_files(name: str, lock: Lock | None, chunk_list: list[chunking.Chunk],
                  prefetch_file: str | None) -> dict[str, bytes]:
    """Build-context files a layer takes from the lock (so they are in its tag's hash)."""
    if lock is None:
        return {}
    files = chunking.chunk_files(chunk_list, prefetch_file)
    if chunk_list:
        files["compile-chunk.py"] = _package_file("files/compile-chunk.py")
    if name == "python":
        return {"uv-requirements.txt": lock.uv_requirements().encode(), **files}
    if name == "sim":
        return files
    if name == "runtime":
        return {LOCK_FILENAME: lock.text().encode()}
    return {}


def render_layer(name: str, parent: str, spec: Spec, env: jinja2.Environment | None = None,
                 lock: Lock | None = None) -> Layer:
    env = env or _environment()
    template = env.get_template(f"{name}.Dockerfile.j2")
    physx_plan = (physx.plan_physx(spec.simulators.packages, spec.simulators.physx_gpu)
                  if name == "sim" else physx.PhysxPlan(None))
    chunk_list = _chunks(name, lock)
    prefetch_file = _prefetch_file(name, chunk_list)
    dockerfile = template.render(
        parent=parent,
        mounts=_step_mounts(spec),
        lock=lock,
        chunks=chunk_list,
        prefetch_file=prefetch_file,
        epoch=lock.epoch if lock else 0,
        lock_hash=lock.sha256() if lock else "",
        interpreter=lock.interpreter if lock else spec.python.version,
        packages=_apt_packages(spec, lock),
        dev_uid=contract.DEV_UID,
        python=spec.python,
        diet_keep=spec.diet_keep,
        node=spec.node,
        simulators=spec.simulators,
        torch_backend=spec.torch_backend,
        image_name=spec.image.name,
        imagebuild_version=__version__,
        spec_hash=spec.digest(),
        cuda=spec.cuda_version,
        base=spec.image.base,
        physx_mode=physx_plan.mode,
        physx_dir=physx.BAKED_DIR,
    )
    files = {path: _package_file(source) for path, source in _CONTEXT_FILES.get(name, [])}
    files.update(_locked_files(name, lock, chunk_list, prefetch_file))
    if name == "system":
        files["stubs.tar"] = _stubs_tar(lock.epoch if lock else 0)
        # The build steps' shell library, with the contract's names it uses above it
        # (build.env: not contract.env, which only the runtime layer carries).
        files["build-env.sh"] = contract.build_env_file().encode() + _package_file("files/build-env.sh")
    if name == "sim" and physx_plan.mode:
        files["bake-physx.sh"] = _package_file("files/bake-physx.sh")
        if physx_plan.zip_bytes:
            files[physx.ZIP_IN_CONTEXT] = physx_plan.zip_bytes
    if name == "runtime":
        files.update(_entrypoint_files())
        files[f"entrypoint/{contract.ENV_FILE}"] = contract.env_file().encode()
        files[f"entrypoint/{contract.IMAGE_ENV_FILE}"] = contract.image_env_file(
            name=spec.image.name, cuda=spec.cuda_version, spec_hash=spec.digest(),
            lock_sha256=lock.sha256() if lock else "").encode()
    return Layer(name=name, parent=parent, dockerfile=dockerfile, files=files)


def _package_digest() -> str:
    """sha256 of every file of the installed imagebuild package (templates, entrypoint,
    the code that renders them): what a plan's tags follow besides the spec and lock."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = Path(folder, name)
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def plan_key(spec: Spec, base_id: str | None, lock: Lock) -> str:
    """One hash of everything :func:`plan_build` reads, so a build whose key matches the
    last build's knows the layer tags without rendering (jinja2 and the lock's TOML cost
    more than the whole no-op build may take): the whole spec (its [build] too), the
    PhysX zip's bytes, the lock, the base's local id and the package's own files."""
    digest = hashlib.sha256()
    zip_path = spec.simulators.physx_gpu
    local = zip_path not in (PHYSX_DOWNLOAD, PHYSX_VOLUME, None)
    zip_bytes = Path(zip_path).read_bytes() if local and Path(zip_path).is_file() else b""
    for part in (spec.model_dump_json(), hashlib.sha256(zip_bytes).hexdigest(), lock.sha256(),
                 base_id or "", _package_digest()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def plan_build(spec: Spec, base_id: str | None = None, lock: Lock | None = None) -> BuildPlan:
    """Render every layer and name it by its content hash.

    ``base_id`` (the local image id of the base, when known) makes the system
    layer's hash follow the base's content, not only its reference. With a
    ``lock``, layers install exactly what it pins and a registry base is named
    by its digest, so one tag names one content.
    """
    env = _environment()
    parent = lock.base.get("digest", spec.image.base) if lock else spec.image.base
    parent_key = f"{parent}@{base_id}" if base_id else parent
    plans: list[LayerPlan] = []
    for name in LAYER_NAMES:
        layer = render_layer(name, parent, spec, env, lock)
        hashed = Layer(name, parent_key, layer.dockerfile, layer.files)
        short = hashed.content_hash[:12]
        tag = short if name == "runtime" else f"{name}-{short}"
        plans.append(LayerPlan(layer=layer, image=f"{spec.image.name}:{tag}"))
        parent = parent_key = plans[-1].image
    return BuildPlan(spec=spec, layers=plans, lock=lock)


def write_layer(layer: Layer, folder: Path) -> Path:
    """A layer's build context: its Dockerfile and files under ``folder``; the Dockerfile's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(layer.dockerfile)
    for path, content in layer.files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if content.startswith(b"#!"):  # scripts keep their exec bit in the context
            target.chmod(0o755)
    return folder / "Dockerfile"


def write_plan(plan: BuildPlan, out: Path) -> list[Path]:
    """Write each layer's Dockerfile and context files plus plan.json under ``out``."""
    written: list[Path] = []
    for index, layer_plan in enumerate(plan.layers, start=1):
        written.append(write_layer(layer_plan.layer, out / f"{index}-{layer_plan.name}"))
    (out / "plan.json").write_text(json.dumps(plan.to_json(), indent=2) + "\n")
    written.append(out / "plan.json")
    return written
