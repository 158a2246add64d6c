"""The declarative image spec (``imagebuild.toml``): schema, defaults and loading.

Every error is reported as one line ``FILE: section.key: expected ..., got ...``
so the user knows exactly what to edit.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imagebuild import imageref
from imagebuild.checks import DOCKER_TAG, is_image_reference
from imagebuild.errors import SpecError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SPEC_FILENAME = "imagebuild.toml"
# Apt packages every pod needs, on Ubuntu and Debian alike: the system layer installs them
# beside system.packages, and the lock pins them (here, where render and lock both read it).
BASE_APT_PACKAGES = (
    "openssh-server", "tmux", "git", "git-lfs", "curl", "ca-certificates", "build-essential",
    "python3", "python3-venv", "rsync", "less", "nano", "procps", "sudo", "locales",
    "libglib2.0-0", "libvulkan1", "vulkan-tools", "libegl1", "libgl1", "libglvnd0", "libglx0",
    "libxext6", "libosmesa6", "tini", "rclone",
)
DEFAULT_BASE = "nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04"
# simulators.physx_gpu values besides a zip's path.
PHYSX_DOWNLOAD, PHYSX_VOLUME = "download", "volume"

# Apt package names, image references and pip requirements end up inside shell
# commands of a Dockerfile: accept only what their own grammars allow.
_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.\-]*(:[a-z0-9]+)?(=[A-Za-z0-9.+~:\-]+)?$")
_REQUIREMENT = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._\-]*(\[[A-Za-z0-9,._\- ]+\])?\s*([<>=!~]=?[^'\"`$\\;&|]*)?$"
)
_VERSION = re.compile(r"^\d+(\.\d+){0,2}([a-z0-9.+\-]*)$")
# Shared with the CLI flags that set the same things (validated once, here). \Z, not $:
# $ also matches before a final newline, and "v1\n" is no tag.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
PORT = re.compile(r"^\d{1,5}/(tcp|http|udp)\Z")
MIN_VOLUME_GB = 10  # RunPod's floor for a pod's own volume


class _Section(BaseModel):
    # Unknown keys are typos far more often than intent: reject them.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _checked(name: str, ok, expected: str, each: bool = False):
    """A validator of field ``name`` (``each``: of each item, a dict's keys): ``ok(value)``
    or one line in the spec's words. None, an unset optional field, is never checked."""
    def check(cls, value):
        for item in list(value) if each else ([] if value is None else [value]):
            if not ok(item):
                raise ValueError(f"expected {expected}, got {_describe(item)}")
        return value

    return field_validator(name)(classmethod(check))


class ImageSection(_Section):
    name: str = "ghcr.io/you/research-pod"
    base: str = DEFAULT_BASE
    # CUDA version of the base ("12.8"); derived from an nvidia/cuda tag when unset.
    cuda: str | None = None
    # Tag pushed besides the content hash and the git commit.
    version: str = "latest"

    _name = _checked("name", lambda v: is_image_reference(v) and "@" not in v and not _has_tag(v),
                     'a repository like "ghcr.io/you/research-pod" (no tag)')
    _base = _checked("base", is_image_reference, f'an image reference like "{DEFAULT_BASE}"')
    _cuda = _checked("cuda", lambda v: re.fullmatch(r"\d+\.\d+", v), 'a CUDA version like "12.8"')
    _version = _checked("version", DOCKER_TAG.match, 'a docker tag like "latest" or "1.2"')


class SystemSection(_Section):
    # Extra apt packages on top of the ones every pod needs.
    packages: list[str] = Field(default_factory=list)

    _packages = _checked("packages", _APT_NAME.match, 'apt package names like "htop"', each=True)


def _check_requirements(value: list[str]) -> list[str]:
    for requirement in value:
        if not _REQUIREMENT.match(requirement.strip()):
            raise ValueError(
                f'expected pip requirements like "wandb" or "mujoco>=3", got {_describe(requirement)}'
            )
    return [r.strip() for r in value]


# What a chunk step removes of its packages before compiling them (files/compile-chunk.py
# says why each is safe); `[python] keep` names the rules to skip.
DIET_RULES = ("static-archives", "package-tests", "package-docs", "pyc-duplicates", "cuda-duplicates",
              "file-duplicates", "triton-amd", "unused-cuda-libs")


class PythonSection(_Section):
    version: str = "3.11"
    # "uv": a uv-managed CPython of `version`; "system": the base OS python3.
    source: Literal["uv", "system"] = "uv"
    packages: list[str] = Field(default_factory=lambda: ["wandb"])
    uv: str = "0.9.5"  # pinned uv release
    # Diet rules (image/files/compile-chunk.py) NOT to apply: those files stay.
    keep: list[str] = Field(default_factory=list)

    @field_validator("keep")
    @classmethod
    def _keep(cls, value: list[str]) -> list[str]:
        for rule in value:
            if rule not in DIET_RULES:
                raise ValueError(f"expected diet rules among {', '.join(DIET_RULES)}, got {_describe(rule)}")
        return sorted(set(value))

    _version = _checked("version", lambda v: re.fullmatch(r"3\.\d{1,2}", v), 'a Python version like "3.11"')
    _uv = _checked("uv", lambda v: re.fullmatch(r"\d+\.\d+\.\d+", v), 'an exact uv release like "0.9.5"')

    _packages = field_validator("packages")(classmethod(lambda cls, v: _check_requirements(v)))


_MAJOR = re.compile(r"\d{1,3}(\.\d+){0,2}")


class NodeSection(_Section):
    version: str = "22"
    npm: str = "10"
    # A Claude Code version like "2.1.19", "latest", or false for none.
    claude_code: Literal[False] | str = "latest"

    _major = _checked("version", _MAJOR.fullmatch, 'a major version like "22"')
    _npm = _checked("npm", _MAJOR.fullmatch, 'a major version like "22"')

    @field_validator("claude_code", mode="before")
    @classmethod
    def _claude(cls, value: object) -> object:
        if value is False:
            return value
        if value is True:
            return "latest"
        if isinstance(value, str) and (value == "latest" or _VERSION.match(value)):
            return value
        raise ValueError(f'expected a version like "2.1.19", "latest" or false, got {_describe(value)}')


class SimulatorsSection(_Section):
    packages: list[str] = Field(
        default_factory=lambda: ["mujoco", "gymnasium", "mani-skill==3.0.1", "stable-baselines3"]
    )
    # uv's --torch-backend: "auto" picks the CUDA wheel index of the base ("cu128"),
    # "pypi" leaves torch to the default index, or name one: "cpu", "cu126", ...
    torch_backend: str = "auto"
    # SAPIEN's PhysX GPU library: "download" (SAPIEN's release, at build time; the
    # volume when unreachable), "volume" (never baked), or a path to linux-so.zip.
    physx_gpu: str = PHYSX_DOWNLOAD

    _packages = field_validator("packages")(classmethod(lambda cls, v: _check_requirements(v)))

    @field_validator("physx_gpu")
    @classmethod
    def _physx_gpu(cls, value: str) -> str:
        if not value.strip() or "\0" in value:
            raise ValueError('expected "download", "volume" or a path to linux-so.zip, '
                             f"got {_describe(value)}")
        return value

    @field_validator("torch_backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        if not re.fullmatch(r"auto|pypi|cpu|cu\d{3,4}|rocm[\d.]+", value):
            raise ValueError(
                f'expected "auto", "pypi", "cpu" or a CUDA index like "cu128", got {_describe(value)}'
            )
        return value


class PodSection(_Section):
    """Defaults for ``imagebuild pod create``."""

    gpu: str = "4090"
    gpu_count: int = Field(default=1, ge=1, le=8)
    volume_gb: int = Field(default=50, ge=MIN_VOLUME_GB, le=4000)
    disk_gb: int = Field(default=30, ge=5, le=1000)
    cloud: Literal["secure", "community"] = "secure"
    datacenter: list[str] = Field(default_factory=list)
    volume: str | None = None  # a network volume (name or id) for /workspace
    ports: list[str] = Field(default_factory=lambda: ["22/tcp", "8888/http"])
    env: dict[str, str] = Field(default_factory=dict)
    idle_stop: str | None = None  # "45m": the pod stops itself after that long idle
    idle_stop_requires_save: bool = False
    save_every: str | None = None  # "15m": continuous save (else the pod's .pod/save.toml [save] every)
    # After create: a host whose GPU canary fails is replaced (require), named (warn), or not asked.
    canary: Literal["off", "warn", "require"] = "require"

    @field_validator("idle_stop", "save_every")
    @classmethod
    def _idle_stop(cls, value: str | None) -> str | None:
        from imagebuild.duration import seconds

        if value is not None and value.strip().lower() != "off":
            seconds(value)
        return value

    _ports = _checked("ports", PORT.match, 'ports like "22/tcp" or "8888/http"', each=True)
    _env = _checked("env", ENV_NAME.match, "environment variable names like HF_HOME", each=True)  # keys


class BuildSection(_Section):
    # Build-secret ids offered to every downloading step (e.g. "UV_INDEX_URL"): the
    # value comes from `imagebuild build --secret ID=...` or the env var of that name.
    secrets: list[str] = Field(default_factory=list)
    # Layer compression `push` publishes (image/compression.py): "both" adds a zstd variant
    # of the same content; "zstd" does too, and pods then start from it (gzip the fallback).
    compression: Literal["gzip", "zstd", "both"] = "gzip"

    _secrets = _checked("secrets", lambda v: ENV_NAME.match(v) and v != "ca_bundle",
                        "environment variable names like UV_INDEX_URL", each=True)


class Spec(_Section):
    image: ImageSection = Field(default_factory=ImageSection)
    system: SystemSection = Field(default_factory=SystemSection)
    python: PythonSection = Field(default_factory=PythonSection)
    node: NodeSection = Field(default_factory=NodeSection)
    simulators: SimulatorsSection = Field(default_factory=SimulatorsSection)
    pod: PodSection = Field(default_factory=PodSection)
    build: BuildSection = Field(default_factory=BuildSection)

    @property
    def cuda_version(self) -> str | None:
        """CUDA major.minor of the base: explicit, or read off an nvidia/cuda tag."""
        if self.image.cuda:
            return self.image.cuda
        match = re.search(r"cuda[^:]*:(\d+)\.(\d+)", self.image.base)
        return f"{match.group(1)}.{match.group(2)}" if match else None

    @property
    def torch_backend(self) -> str | None:
        """The uv --torch-backend value for the sim layer, or None for plain PyPI."""
        backend = self.simulators.torch_backend
        if backend == "pypi":
            return None
        if backend != "auto":
            return backend
        cuda = self.cuda_version
        return "cu" + cuda.replace(".", "") if cuda else None

    @property
    def diet_keep(self) -> list[str]:
        """The diet rules the chunk steps skip: ``[python] keep``, and triton's AMD backend
        when torch is a ROCm build (every other torch this builds runs on NVIDIA or CPU)."""
        keep = list(self.python.keep)
        if self.simulators.torch_backend.startswith("rocm") and "triton-amd" not in keep:
            keep.append("triton-amd")
        return keep

    def with_base(self, base: str) -> Spec:
        """The same spec on another base image (``--base``), validated."""
        data = self.model_dump()
        data["image"]["base"] = base
        return parse_spec(data, "--base")

    def with_physx_gpu(self, zip_path: str) -> Spec:
        """The same spec with its PhysX GPU library from ``zip_path`` (``--physx-gpu``)."""
        data = self.model_dump()
        data["simulators"]["physx_gpu"] = zip_path
        return parse_spec(data, "--physx-gpu")

    def digest(self) -> str:
        """A stable hash of what the spec puts into the image (an image label).

        ``[pod]`` only sets defaults for pod creation, so it is left out: editing it
        must not rebuild anything. ``[build]`` names the secrets downloads may use, which
        put nothing into the image (the pod's image.env carries this hash: the same
        lock must give the same bytes, whatever secrets the build was offered).
        """
        data = self.model_dump(mode="json", exclude={"pod", "build"})
        if data["simulators"]["physx_gpu"] not in (PHYSX_DOWNLOAD, PHYSX_VOLUME):
            data["simulators"]["physx_gpu"] = "zip"  # where the zip lies changes nothing built
        if not data["python"]["keep"]:  # the default: the hash of specs from before the key
            del data["python"]["keep"]
        canonical = json.dumps(data, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


class LoadedSpec(BaseModel):
    """A spec plus where it came from (None: the built-in default)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    spec: Spec
    path: Path | None = None

    @property
    def label(self) -> str:
        return str(self.path) if self.path else "built-in default spec"

    @property
    def directory(self) -> Path:
        """Where state files next to the spec live (the cwd for the default)."""
        return self.path.parent if self.path else Path.cwd()


def _has_tag(reference: str) -> bool:
    return imageref.parse(reference).tag is not None


def _describe(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value) if isinstance(value, str) else repr(value)


_EXPECTED = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "literal_error": None,  # pydantic's own text names the allowed values
}


def format_validation_error(origin: str, error: ValidationError, names: dict[str, str] | None = None) -> str:
    """The first problem of a pydantic error as one line naming file and key (or, for a
    key in ``names``, the flag that set it, as ``--gpu-count: ...``)."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    kind = first["type"]
    given = first.get("input")
    if kind == "extra_forbidden":
        message = "unknown key; check its spelling against the README's \"Every key of the spec\""
    elif kind == "value_error":
        message = str(first["ctx"]["error"]) if "ctx" in first else first["msg"]
    elif kind == "literal_error":
        message = f"{first['msg'].replace('Input should be', 'expected')}, got {_describe(given)}"
    elif kind in _EXPECTED:
        message = f"{_EXPECTED[kind]}, got {_describe(given)}"
    else:
        message = f"{first['msg'][0].lower()}{first['msg'][1:]}, got {_describe(given)}"
    if names and location in names:
        return f"{names[location]}: {message}"
    return f"{origin}: {location}: {message}" if location else f"{origin}: {message}"


def parse_spec(data: dict, origin: str) -> Spec:
    try:
        return Spec.model_validate(data)
    except ValidationError as error:
        raise SpecError(format_validation_error(origin, error)) from None


def load_spec(path: Path | None = None, cwd: Path | None = None) -> LoadedSpec:
    """Load ``path``, else ``imagebuild.toml`` in ``cwd``, else the built-in default."""
    origin = str(path)
    if path is None:
        path = (cwd or Path.cwd()) / SPEC_FILENAME
        if not path.exists():
            return LoadedSpec(spec=Spec())
        origin = SPEC_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file; pass an existing file to --spec") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(
            f"{path}: cannot read the spec ({error.__class__.__name__}); check the file"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{origin}: not valid TOML: {error}") from None
    return LoadedSpec(spec=parse_spec(data, origin), path=path.resolve())
