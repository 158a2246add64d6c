"""Look inside an image's own layers (not its base's) as `docker save` streams them.

Used by the tests and the build benchmark to prove two promises: no package
cache (apt lists, debs, pip/uv/npm caches) is left in a layer, and no secret
(CA bundle, token) reaches one. Streams the export: nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# Paths (inside a layer) that only a package manager's cache would put there.
CACHE_PATTERNS = {
    "apt lists": re.compile(r"^var/lib/apt/lists/(?!partial/?$|lock$|auxfiles/?$)[^/]+"),
    "apt debs": re.compile(r"^var/cache/apt/(archives/[^/]+\.deb|[^/]+\.bin)$"),
    "pip cache": re.compile(r"^root/\.cache/pip/.+"),
    "uv cache": re.compile(r"^root/\.cache/uv/.+"),
    "npm cache": re.compile(r"^root/\.npm/.+"),
    "workspace": re.compile(r"^workspace/.+"),
    "tmp files": re.compile(r"^tmp/.+"),
}
_CHUNK = 1 << 20


@dataclass
class LayerReport:
    diff_id: str
    size: int = 0
    cache_bytes: dict[str, int] = field(default_factory=dict)
    cache_paths: list[str] = field(default_factory=list)
    found: dict[str, list[str]] = field(default_factory=dict)  # marker → paths


@dataclass
class ImageScan:
    layers: list[LayerReport]

    @property
    def cache_bytes(self) -> int:
        return sum(sum(layer.cache_bytes.values()) for layer in self.layers)

    def found(self, marker: str) -> list[str]:
        return [path for layer in self.layers for path in layer.found.get(marker, [])]


def _scan_file(handle, markers: list[bytes]) -> set[bytes]:
    """Markers present in one file's content (chunked, overlap-safe)."""
    hits: set[bytes] = set()
    overlap = max((len(m) for m in markers), default=1) - 1
    tail = b""
    while True:
        chunk = handle.read(_CHUNK)
        if not chunk:
            return hits
        window = tail + chunk
        hits.update(m for m in markers if m in window)
        tail = window[-overlap:] if overlap else b""


def _scan_layer(layer, markers: list[bytes], report: LayerReport) -> None:
    """One layer tar (opened, streamed): its cache paths and where the markers are."""
    for member in layer:
        name = member.name.lstrip("./")
        for label, pattern in CACHE_PATTERNS.items():
            if pattern.match(name) and not member.isdir():
                report.cache_bytes[label] = report.cache_bytes.get(label, 0) + member.size
                report.cache_paths.append(name)
        for marker in markers:
            if marker in name.encode():
                report.found.setdefault(marker.decode(), []).append(name)
        if member.isfile() and markers:
            handle = layer.extractfile(member)
            for marker in _scan_file(handle, markers):
                report.found.setdefault(marker.decode(), []).append(name)


class _HashingReader:
    def __init__(self, raw):
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def each_layer(engine, reference: str, visit) -> dict[str, tuple[object, int]]:
    """diff ID → (``visit(layer_tar)``, the tar's bytes) for every layer tar of ``reference``'s
    `docker save` stream (streamed: nothing on disk); the digest covers the whole tar, padding too."""
    found: dict[str, tuple[object, int]] = {}
    with engine.save(reference) as stream, tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            if not member.name.endswith("layer.tar") or not member.isfile():
                continue
            reader = _HashingReader(outer.extractfile(member))
            with tarfile.open(fileobj=reader, mode="r|") as layer:
                value = visit(layer)
            while reader.read(_CHUNK):
                pass
            found["sha256:" + reader.digest.hexdigest()] = (value, reader.size)
    return found


def scan_image(engine, reference: str, markers: Iterable[str] = (),
               skip_base: str | None = None) -> ImageScan:
    """Scan every layer of ``reference`` except those it shares with ``skip_base``."""
    skip: set[str] = set()
    if skip_base:
        skip = set(engine.client.images.get(skip_base).attrs["RootFS"]["Layers"])
    wanted = [m.encode() for m in markers]

    def visit(layer) -> LayerReport:
        report = LayerReport(diff_id="")
        _scan_layer(layer, wanted, report)
        return report

    reports = []
    for diff_id, (report, size) in each_layer(engine, reference, visit).items():
        report.diff_id, report.size = diff_id, size
        if diff_id not in skip:
            reports.append(report)
    return ImageScan(layers=reports)


def history_text(engine, reference: str) -> Iterator[str]:
    """Every `docker history` line of the image, untruncated."""
    for entry in engine.client.images.get(reference).history():
        yield f"{entry.get('CreatedBy', '')} {entry.get('Comment', '')}"


def layer_entries(engine, reference: str) -> list[dict[str, tuple]]:
    """Each layer of ``reference`` (in order) as {path: (mode, uid, gid, mtime, link, sha256)}:
    enough to say which file, and which of its bytes, differ between two builds."""
    image = engine.image(reference)

    def visit(layer) -> dict[str, tuple]:
        entries: dict[str, tuple] = {}
        for item in layer:
            content = hashlib.sha256(layer.extractfile(item).read()).hexdigest() \
                if item.isfile() else ""
            entries[item.name] = (item.mode, item.uid, item.gid, int(item.mtime),
                                  item.linkname, content, tuple(sorted(item.pax_headers)))
        return entries

    by_digest = {diff_id: entries for diff_id, (entries, _) in each_layer(engine, reference, visit).items()}
    return [by_digest.get(diff_id, {}) for diff_id in image.attrs["RootFS"]["Layers"]]


FIELDS = ("mode", "uid", "gid", "mtime", "link", "content", "pax")


def differing_paths(first: dict[str, tuple], second: dict[str, tuple]) -> dict[str, str]:
    """path → what differs ("content", "mtime", "only in one", ...) between two layers."""
    found: dict[str, str] = {}
    for path in sorted(set(first) | set(second)):
        a, b = first.get(path), second.get(path)
        if a is None or b is None:
            found[path] = "only in one"
        elif a != b:
            found[path] = ",".join(name for name, x, y in zip(FIELDS, a, b, strict=True) if x != y)
    return found
