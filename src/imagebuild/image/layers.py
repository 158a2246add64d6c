"""What an image's layers hold: diff ID, size, the step or chunk that made each.

The engine gives diff IDs (``RootFS.Layers``, oldest first) and a history with
one entry per Dockerfile instruction, some of which make no layer (ENV, ARG, ...).
Pairing them tells which chunk of packages (image/chunks.py) is in which layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imagebuild import contract
from imagebuild.engine import Engine
from imagebuild.errors import UserError
from imagebuild.image.chunks import parse_marker

# Instructions that change only the image config, never the filesystem.
_CONFIG_ONLY = ("ENV", "ARG", "LABEL", "SHELL", "CMD", "ENTRYPOINT", "EXPOSE", "USER", "VOLUME",
                "STOPSIGNAL", "HEALTHCHECK", "MAINTAINER", "ONBUILD")


@dataclass
class LayerInfo:
    diff_id: str
    size: int  # uncompressed bytes, as the engine counts them
    step: str  # the instruction, shortened
    chunk: str | None = None
    packages: list[str] = field(default_factory=list)
    new: bool | None = None  # against a previous image, when one was given

    def to_json(self) -> dict:
        return {"diff_id": self.diff_id, "size": self.size, "new": self.new, "step": self.step,
                "chunk": self.chunk, "packages": self.packages}


def _instruction(created_by: str) -> str:
    text = created_by.strip()
    for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c "):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
    return text


def _makes_layer(entry: dict) -> bool:
    word = _instruction(entry.get("CreatedBy") or "").split(" ", 1)[0].upper()
    return entry.get("Size", 0) > 0 or word not in _CONFIG_ONLY


def diff_ids(engine: Engine, image: str) -> list[str]:
    """The image's layer diff IDs, oldest first ([] when the image is not here)."""
    found = engine.image(image)
    return list(found.attrs["RootFS"].get("Layers", [])) if found is not None else []


def inventory(engine: Engine, image: str, previous: list[str] | None = None) -> list[LayerInfo]:
    """Every layer of ``image``, oldest first; ``previous`` (diff IDs) marks what is new."""
    found = engine.image(image)
    if found is None:
        raise UserError(f"image {image} is not in the local engine; build or pull it first", 2)
    ids = found.attrs["RootFS"].get("Layers", [])
    steps = [e for e in reversed(found.history()) if _makes_layer(e)]
    if len(steps) != len(ids):  # an unusual history: sizes stay unknown, IDs stay right
        steps = [{"CreatedBy": "?", "Size": 0}] * len(ids)
    known = set(previous) if previous is not None else None
    layers = []
    for diff_id, entry in zip(ids, steps, strict=True):
        command = _instruction(entry.get("CreatedBy") or "")
        marker = parse_marker(command)
        layers.append(LayerInfo(
            diff_id=diff_id, size=int(entry.get("Size", 0)), step=_short(command),
            chunk=marker[0] if marker else None, packages=marker[1] if marker else [],
            new=None if known is None else diff_id not in known))
    return layers


# BuildKit's history noise: build args, the SHELL, mount flags, the step prelude.
_NOISE = re.compile(r"\|\d+ (\S+=\S+ )*|/bin/(ba)?sh -o pipefail -c |/bin/sh -c |--mount=\S+ |"
                    r"\. " + re.escape(contract.BUILD_ENV_SH) + r" (&& )?| # buildkit$")


def _short(command: str) -> str:
    first = " ".join(_NOISE.sub("", " ".join(command.split())).split()) or "(base image)"
    return first if len(first) <= 60 else first[:57] + "..."


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def summary(layers: list[LayerInfo]) -> dict:
    """Totals of an inventory: layer count, largest layer, image size, new bytes."""
    new = [layer for layer in layers if layer.new]
    return {"layers": len(layers), "largest": max((la.size for la in layers), default=0),
            "size": sum(la.size for la in layers), "new_layers": len(new),
            "new_bytes": sum(la.size for la in new)}


def table(layers: list[LayerInfo], limit: int | None = 8) -> list[str]:
    """A short size table, largest layers first, and a totals line."""
    rows = sorted(layers, key=lambda la: -la.size)
    lines = []
    for layer in rows[:limit] if limit else rows:
        mark = "new " if layer.new else "    "
        what = f"{layer.chunk}: {' '.join(layer.packages)}" if layer.chunk else layer.step
        lines.append(f"{human_size(layer.size):>9}  {mark}{what[:90]}")
    totals = summary(layers)
    tail = f", {totals['new_layers']} new ({human_size(totals['new_bytes'])})" \
        if any(la.new is not None for la in layers) else ""
    lines.append(f"{totals['layers']} layers, {human_size(totals['size'])}, largest "
                 f"{human_size(totals['largest'])}{tail}")
    return lines
