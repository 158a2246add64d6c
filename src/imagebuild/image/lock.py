"""The lock file (``imagebuild.lock``): everything the spec leaves open, pinned.

The lock is TOML, one table per layer, one package per table, so a `git diff`
of two locks reads like a changelog and the per-package layers (``chunks``) walk the
same tables. ``[inputs]`` records what the spec asked for when the
lock was resolved: `lock --check` and `build --locked` compare it with the spec.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagebuild.errors import SpecError, UserError
from imagebuild.fileio import write_atomic
from imagebuild.image.spec import BASE_APT_PACKAGES, Spec

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

LOCK_FILENAME = "imagebuild.lock"  # beside imagebuild.toml; research-pod.lock beside research-pod.toml
FORMAT = 1
SECTIONS = ("base", "system", "python", "node", "sim")
# Wheels for x86_64 Linux with glibc >= 2.28: Ubuntu 20.04+ CUDA bases, Debian 11+.
PYTHON_PLATFORM = "x86_64-manylinux_2_28"
_HEADER = ("# imagebuild.lock: what `imagebuild build` installs, resolved by `imagebuild lock`.\n"
           "# Commit it. Refresh with `imagebuild lock --upgrade [NAME...]`; do not edit by hand.\n")


def spec_inputs(spec: Spec) -> dict[str, Any]:
    """What the spec asks of each locked section (the open ends a lock pins)."""
    return {
        "base": {"image": spec.image.base},
        "system": {"packages": sorted(set(BASE_APT_PACKAGES) | set(spec.system.packages))},
        "python": {"version": spec.python.version, "source": spec.python.source,
                   "uv": spec.python.uv, "packages": list(spec.python.packages)},
        "node": {"version": spec.node.version, "npm": spec.node.npm,
                 "claude_code": spec.node.claude_code},
        "sim": {"packages": list(spec.simulators.packages), "torch_backend": spec.torch_backend or ""},
    }


@dataclass
class Lock:
    """A parsed lock: plain data, as it is in the file."""

    data: dict[str, Any] = field(default_factory=dict)

    # Readers for the templates and the builder; each returns what its layer installs.
    @property
    def epoch(self) -> int:
        return int(self.data["epoch"])

    @property
    def base(self) -> dict[str, str]:
        return self.data["base"]

    @property
    def apt(self) -> dict[str, str]:
        return self.data["system"]["apt"]

    @property
    def interpreter(self) -> str:
        return self.data["python"]["interpreter"]

    @property
    def node(self) -> dict[str, dict[str, str]]:
        return self.data["node"]

    def packages(self, layer: str) -> dict[str, dict[str, Any]]:
        """Python packages a layer ("python" or "sim") installs: name → version, hashes."""
        return self.data[layer].get("packages", {})

    def requirements(self, layer: str) -> str:
        """A ``--require-hashes`` requirements file of one layer's packages."""
        return requirements_text(self.packages(layer))

    def uv_requirements(self) -> str:
        return requirements_text({"uv": self.data["python"]["uv"]})

    def text(self) -> str:
        # Rendering a plan asks for the text (and its hash) once per layer; TOML writing
        # is the slow part, so it is kept while the data (compared as JSON) is unchanged.
        key = json.dumps(self.data, default=str)  # key order too: it is the TOML order
        cached = self.__dict__.get("_text")
        if cached is None or cached[0] != key:
            import tomli_w

            cached = (key, _HEADER + tomli_w.dumps(self.data, multiline_strings=False))
            self.__dict__["_text"] = cached
        return cached[1]

    def sha256(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()

    def stale(self, spec: Spec) -> str | None:
        """Why this lock does not fit ``spec`` (one phrase), or None when it does."""
        if self.data.get("format") != FORMAT:
            return f"it has format {self.data.get('format')!r}, this imagebuild writes {FORMAT}"
        wanted = spec_inputs(spec)
        recorded = self.data.get("inputs", {})
        for section in SECTIONS:
            for key, value in wanted[section].items():
                have = recorded.get(section, {}).get(key)
                if have != value:
                    return (f"{section}.{key} is {_show(value)} in the spec but "
                            f"{_show(have)} in the lock")
        return None


def requirements_text(packages: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, pin in sorted(packages.items()):
        hashes = "".join(f" \\\n    --hash={digest}" for digest in pin["hashes"])
        lines.append(f"{name}=={pin['version']}{hashes}\n")
    return "".join(lines)


def _show(value: Any) -> str:
    return json.dumps(value) if value is not None else "missing"


def lock_path(spec_path: Path | None) -> Path:
    """The lock of a spec file: its name with ``.lock`` (the default spec: ./imagebuild.lock)."""
    return spec_path.with_suffix(".lock") if spec_path else Path.cwd() / LOCK_FILENAME


def parse_lock(text: str, origin: str) -> Lock:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{origin}: not valid TOML ({error}); regenerate it with `imagebuild lock`") \
            from None
    missing = [s for s in ("epoch", "inputs", *SECTIONS) if s not in data]
    if missing:
        raise SpecError(f"{origin}: no [{missing[0]}] in the lock; regenerate it with `imagebuild lock`")
    return Lock(data)


def read_lock(path: Path) -> Lock | None:
    """The lock at ``path``, or None when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the lock ({error.__class__.__name__})", 2) from None
    return parse_lock(text, str(path))


def write_lock(path: Path, lock: Lock) -> Path:
    return write_atomic(path, lock.text())


def check_locked(lock: Lock | None, spec: Spec, origin: str) -> Lock:
    """``--locked``: the lock, or one line saying why it cannot be used."""
    if lock is None:
        raise SpecError(f"{origin}: no lock file; run `imagebuild lock` and commit it")
    reason = lock.stale(spec)
    if reason:
        raise SpecError(f"{origin}: the lock is stale: {reason}; run `imagebuild lock`")
    return lock
