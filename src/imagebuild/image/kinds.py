"""What an image's unpacked bytes are, by kind (`imagebuild layers --by kind`).

Read from the image's own layer tars (`docker save`, streamed): CUDA libraries,
torch/triton, other wheels, .pyc, static archives, headers, tests/docs inside
packages, apt, node, other. A file counts once under the first kind that matches,
in that precedence (a torch header is a header). Bytes a later layer overwrites or
deletes still ship (each layer is pulled and unpacked whole): they are counted
where they are and also totalled as "shadowed", the bytes a build step wasted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imagebuild.image.layerscan import each_layer

_SITE = re.compile(r"(^|/)(site|dist)-packages/")
# Folders inside an installed package (not a top-level one) that its code does not
# need to run: `numpy/tests/`, `scipy/linalg/tests/`, `foo/docs/`.
_TESTS_DOCS = re.compile(r"(^|/)(site|dist)-packages/[^/]+/(.+/)?(tests?|docs?)/")
_CUDA = re.compile(r"(^|/)(site|dist)-packages/(nvidia|cuda[^/]*)/|^usr/local/cuda[^/]*/|"
                   r"(^|/)lib(cuda|cudart|cublas(Lt)?|cufft[a-z]*|curand|cusolver(Mg)?|cusparse(Lt)?|"
                   r"cudnn[a-z_]*|cupti|cufile[a-z_]*|nvrtc[a-z-]*|nvJitLink|nvjitlink|nccl|nvshmem[a-z_]*|"
                   r"nvToolsExt|nvperf[a-z_]*)\.so")
_TORCH = re.compile(r"(^|/)(site|dist)-packages/(torch|triton|torchvision|torchaudio|functorch|"
                    r"torchgen)([-_/.]|$)")
_HEADER = re.compile(r"\.(h|hh|hpp|hxx|cuh|inl)$")
_NODE = re.compile(r"^usr/local/(lib/node_modules|include/node|bin/(node|npm|npx|claude)$)")
_APT = re.compile(r"^(usr/(?!local/)|bin/|sbin/|lib|etc/|var/)")

# Kinds in the order they are tried: the first that matches names a file's kind
# (node before apt: both live under usr/). Reports list them in KINDS' order.
_RULES = (("static archives (*.a)", lambda p: p.endswith(".a")),
          (".pyc", lambda p: p.endswith(".pyc")),
          ("headers", _HEADER.search),
          ("tests/docs in packages", _TESTS_DOCS.search),
          ("CUDA libraries", _CUDA.search),
          ("torch/triton", _TORCH.search),
          ("other wheels", _SITE.search),
          ("node", _NODE.match),
          ("apt", _APT.match))
KINDS = (*(kind for kind, _ in _RULES[:7]), "apt", "node", "other")


def kind_of(path: str) -> str:
    """The kind of one file, by its path inside the image (no leading "/")."""
    return next((kind for kind, matches in _RULES if matches(path)), KINDS[-1])


@dataclass
class KindReport:
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    shadowed: int = 0  # bytes a later layer overwrote or deleted

    @property
    def total(self) -> int:
        return sum(self.bytes.values())

    def to_json(self) -> dict:
        return {"total": self.total, "shadowed": self.shadowed,
                "kinds": {kind: {"bytes": self.bytes[kind], "files": self.files[kind]}
                          for kind in KINDS}}


def _files(layer) -> list[tuple[str, int]]:
    """(path, size) of a layer tar's regular files, whiteouts as (path, -1)."""
    found = []
    for member in layer:
        path = member.name.removeprefix("./").lstrip("/")
        folder, _, name = path.rpartition("/")
        if name.startswith(".wh."):
            gone = name.removeprefix(".wh.")
            found.append((folder + "/" if gone == ".wh..opq" else f"{folder}/{gone}".lstrip("/"), -1))
        elif member.isfile():
            found.append((path, member.size))
    return found


def tally(layers: list[list[tuple[str, int]]]) -> KindReport:
    """The report of layers (oldest first), each as ``_files`` gives it."""
    report = KindReport()
    alive: dict[str, int] = {}  # path → bytes, as the layers so far leave it
    for files in layers:
        for path, size in files:
            if size < 0:  # a whiteout: the path and what is under it ("f/": under f only)
                under = path.rstrip("/") + "/"
                gone = [p for p in alive if p.startswith(under) or p == path]
                report.shadowed += sum(alive.pop(p) for p in gone)
                continue
            report.shadowed += alive.pop(path, 0)
            alive[path] = size
            kind = kind_of(path)
            report.bytes[kind] += size
            report.files[kind] += 1
    return report


def by_kind(engine, reference: str) -> KindReport:
    """Every layer of ``reference`` (the base's too: a new host pulls them all)."""
    image = engine.image(reference)
    found = each_layer(engine, reference, _files)
    return tally([found[diff_id][0] for diff_id in image.attrs["RootFS"]["Layers"]])


def kind_table(report: KindReport, human) -> list[str]:
    """Kinds largest first, with their share of the image, and a totals line."""
    total = report.total or 1
    lines = [f"{human(report.bytes[kind]):>9}  {100 * report.bytes[kind] / total:5.1f} %  "
             f"{report.files[kind]:>7} files  {kind}"
             for kind in sorted(KINDS, key=lambda k: -report.bytes[k]) if report.files[kind]]
    lines.append(f"{human(report.total)} in files, of which {human(report.shadowed)} overwritten "
                 "or deleted by a later layer")
    return lines
