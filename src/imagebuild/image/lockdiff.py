"""What changed between two locks: packages added, removed, up- or downgraded, per layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imagebuild.engine import Engine
from imagebuild.errors import UserError
from imagebuild.image.lock import LOCK_FILENAME, Lock, lock_path, parse_lock, read_lock

IMAGE_LOCK = "/usr/local/share/imagebuild"


@dataclass(frozen=True)
class Change:
    layer: str
    name: str
    old: str | None  # None: added
    new: str | None  # None: removed

    @property
    def kind(self) -> str:
        return "added" if self.old is None else "removed" if self.new is None else "changed"

    def to_json(self) -> dict:
        return {"layer": self.layer, "name": self.name, "old": self.old, "new": self.new,
                "kind": self.kind}


def versions(lock: Lock) -> dict[str, dict[str, str]]:
    """Every pinned thing of a lock, per layer: name → version (or digest)."""
    base = lock.base
    return {
        "base": {base["image"]: base.get("digest", base["id"])},
        "system": dict(lock.apt),
        "python": {"python": lock.interpreter, "uv": lock.data["python"]["uv"]["version"],
                   **{n: p["version"] for n, p in lock.packages("python").items()}},
        "node": {pin["name"]: pin["version"] for pin in lock.node.values()},
        "sim": {n: p["version"] for n, p in lock.packages("sim").items()},
    }


def diff_locks(old: Lock, new: Lock) -> list[Change]:
    before, after = versions(old), versions(new)
    changes = []
    for layer in before:
        for name in sorted(set(before[layer]) | set(after[layer])):
            was, now = before[layer].get(name), after[layer].get(name)
            if was != now:
                changes.append(Change(layer, name, was, now))
    return changes


def format_changes(changes: list[Change]) -> list[str]:
    if not changes:
        return ["no changes"]
    marks = {"added": "+", "removed": "-", "changed": "~"}
    return [f"{c.layer:7} {marks[c.kind]} {c.name} "
            + {"added": f"{c.new}", "removed": f"{c.old}", "changed": f"{c.old} -> {c.new}"}[c.kind]
            for c in changes]


def load_lock(source: str, engine_factory) -> Lock:
    """A lock from a lock file, a spec (its lock), a folder (its imagebuild.lock), or a
    built image (the lock baked into it)."""
    path = Path(source)
    if not path.exists():
        return _image_lock(engine_factory(), source)
    target = path / LOCK_FILENAME if path.is_dir() else lock_path(path)
    found = read_lock(target)
    if found is None:
        raise UserError(f"{source}: no lock at {target}; run `imagebuild lock` there", 2)
    return found


def _image_lock(engine: Engine, reference: str) -> Lock:
    if not engine.exists(reference):
        raise UserError(f"{reference}: neither a file nor a local image; pass a spec, a lock "
                        "or a built image", 2)
    text = engine.read_files(reference, IMAGE_LOCK).get(LOCK_FILENAME)
    if text is None:
        raise UserError(f"{reference}: the image carries no {LOCK_FILENAME} (built before locks); "
                        "rebuild it", 2)
    return parse_lock(text, f"{reference}:{IMAGE_LOCK}/{LOCK_FILENAME}")
