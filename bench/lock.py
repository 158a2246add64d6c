"""Lock and reproducibility benchmark: `imagebuild lock` times, and two clean builds
from one lock compared layer by layer (diff IDs, and what differs where they do not).

    .venv/bin/python bench/lock.py [--spec tests/specs/ci.toml] [--base IMAGE] [--ca-cert FILE]
                                   [--also SPEC ...] [--no-builds]

Targets: every layer's diff ID equal between two `--no-cache` builds of one lock; a
no-change `lock` and `lock --check` well under the time of a resolution.
``--also`` times `lock` for more specs (e.g. examples/research-pod.toml), all on --base:
this machine cannot pull the CUDA bases, and PyTorch's CUDA index is out of its reach.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from build import build_parser  # bench/build.py
from imagebuild.engine import connect
from imagebuild.image.builder import Builder
from imagebuild.image.layerscan import differing_paths, layer_entries
from imagebuild.image.lock import lock_path, read_lock
from imagebuild.image.spec import load_spec

REPO = Path(__file__).resolve().parent.parent


def timed_cli(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "imagebuild", *args], check=True, capture_output=True)
    return time.perf_counter() - started


def lock_times(spec: Path, base: str, ca: list[str]) -> list[tuple[str, float]]:
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / spec.name
        shutil.copy(spec, copy)
        first = timed_cli("lock", "--spec", str(copy), "--base", base, *ca)
        again = timed_cli("lock", "--spec", str(copy), "--base", base, *ca)
        check = timed_cli("lock", "--check", "--spec", str(copy), "--base", base)
        lines = lock_path(copy).read_text().count("\n")
    name = spec.relative_to(REPO) if spec.is_relative_to(REPO) else spec
    return [(f"lock {name} (resolve, {lines} lines)", first), (f"lock {name} (no change)", again),
            (f"lock --check {name}", check)]


def compare_builds(spec_path: Path, base: str, ca: Path | None) -> None:
    engine = connect()
    spec = load_spec(spec_path).spec.with_base(base)
    lock = read_lock(lock_path(spec_path))
    images, seconds = [], []
    for run in range(2):
        started = time.perf_counter()
        result = Builder(engine).build(spec, ca_cert=ca, lock=lock, no_cache=True)
        seconds.append(time.perf_counter() - started)
        keep = f"{spec.image.name}:bench-repro-{run}"
        engine.tag(result.image, keep)
        images.append(keep)
    def count(image: str) -> int:
        return len(engine.client.images.get(image).attrs["RootFS"]["Layers"])

    names = ["base"] * count(spec.image.base)  # which layer image each filesystem layer is of
    for layer in result.plan.layers:
        names += [layer.name] * (count(layer.image) - len(names))
    cached = time.perf_counter()
    Builder(engine).build(spec, ca_cert=ca, lock=lock)
    print(f"\n| build from the lock | seconds |\n|---|---|\n| first --no-cache | {seconds[0]:.0f} |\n"
          f"| second --no-cache | {seconds[1]:.0f} |\n| rebuild, unchanged | "
          f"{time.perf_counter() - cached:.1f} |")
    first, second = (engine.client.images.get(i).attrs["RootFS"]["Layers"] for i in images)
    entries = [layer_entries(engine, image) for image in images]
    print("\n| # | layer | diff ID (build 1) | equal | paths differing (what) |\n|---|---|---|---|---|")
    for index, (a, b) in enumerate(zip(first, second, strict=True)):
        what = ""
        if a != b:
            diff = differing_paths(entries[0][index], entries[1][index])
            kinds = Counter(diff.values())
            sample = ", ".join(list(diff)[:3])
            what = f"{len(diff)}: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()) + f" ({sample})"
        print(f"| {index + 1} | {names[index]} | {a[7:19]} | {'yes' if a == b else 'NO'} | {what} |")
    equal = sum(a == b for a, b in zip(first, second, strict=True))
    print(f"\n{equal} of {len(first)} layers identical")
    for image in images:
        engine.client.images.remove(image, noprune=True)


def main() -> None:
    parser = build_parser(__doc__)
    parser.add_argument("--also", type=Path, nargs="*", default=[])
    parser.add_argument("--no-builds", action="store_true")
    args = parser.parse_args()
    ca = ["--ca-cert", args.ca_cert] if args.ca_cert else []

    rows = [row for spec in [args.spec, *args.also] for row in lock_times(spec.resolve(), args.base, ca)]
    print("| command | seconds |\n|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} |")
    if not args.no_builds:
        with tempfile.TemporaryDirectory() as scratch:
            spec = Path(scratch) / "imagebuild.toml"
            shutil.copy(args.spec, spec)
            subprocess.run([sys.executable, "-m", "imagebuild", "lock", "--spec", str(spec),
                            "--base", args.base, *ca], check=True, capture_output=True)
            compare_builds(spec, args.base, Path(args.ca_cert) if args.ca_cert else None)


if __name__ == "__main__":
    main()
