"""Lock and reproducibility benchmark: `imagebuild lock` times, and two clean builds
from one lock compared layer by layer (diff IDs, and what differs where they do not).

    .venv/bin/python bench/lock.py [--spec tests/specs/ci.toml] [--base IMAGE] [--ca-cert FILE]
                                   [--also SPEC ...] [--no-builds] [--second-engine]

Targets: every layer's diff ID equal between two `--no-cache` builds of one lock; a
no-change `lock` and `lock --check` well under the time of a resolution.
``--second-engine`` builds the second time on another Docker engine started for the run
with an empty data root (no snapshots, no cache mounts: every download again), as a
second machine would (bench/second_engine.py; needs root).
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
from contextlib import nullcontext
from pathlib import Path

from build import build_parser  # bench/build.py
from second_engine import docker_host, second_engine  # bench/second_engine.py

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


def compare_builds(spec_path: Path, base: str, ca: Path | None, second_host: str | None = None) -> None:
    """Two --no-cache builds of one lock, the second on ``second_host`` when given."""
    spec = load_spec(spec_path).spec.with_base(base)
    lock = read_lock(lock_path(spec_path))
    engines, images, seconds = [], [], []
    for run in range(2):
        with docker_host(second_host) if run == 1 and second_host else nullcontext():
            engine = connect()
            started = time.perf_counter()
            result = Builder(engine).build(spec, ca_cert=ca, lock=lock, no_cache=True)
            seconds.append(time.perf_counter() - started)
        keep = f"{spec.image.name}:bench-repro-{run}"
        engine.tag(result.image, keep)
        engines.append(engine)
        images.append(keep)

    def count(image: str) -> int:
        return len(engines[1].client.images.get(image).attrs["RootFS"]["Layers"])

    names = ["base"] * count(spec.image.base)  # which layer image each filesystem layer is of
    for layer in result.plan.layers:
        names += [layer.name] * (count(layer.image) - len(names))
    cached = time.perf_counter()
    Builder(engines[0]).build(spec, ca_cert=ca, lock=lock)
    second = "second --no-cache" + (", second engine (empty)" if second_host else "")
    print(f"\n| build from the lock | seconds |\n|---|---|\n| first --no-cache | {seconds[0]:.0f} |\n"
          f"| {second} | {seconds[1]:.0f} |\n| rebuild, unchanged | "
          f"{time.perf_counter() - cached:.1f} |")
    first, second_layers = (engine.client.images.get(image).attrs["RootFS"]["Layers"]
                            for engine, image in zip(engines, images, strict=True))
    entries = [layer_entries(e, image) for e, image in zip(engines, images, strict=True)]
    print("\n| # | layer | diff ID (build 1) | equal | paths differing (what) |\n|---|---|---|---|---|")
    for index, (a, b) in enumerate(zip(first, second_layers, strict=True)):
        what = ""
        if a != b:
            diff = differing_paths(entries[0][index], entries[1][index])
            kinds = Counter(diff.values())
            sample = ", ".join(list(diff)[:3])
            what = f"{len(diff)}: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()) + f" ({sample})"
        print(f"| {index + 1} | {names[index]} | {a[7:19]} | {'yes' if a == b else 'NO'} | {what} |")
    equal = sum(a == b for a, b in zip(first, second_layers, strict=True))
    print(f"\n{equal} of {len(first)} layers identical")
    for engine, image in zip(engines, images, strict=True):
        engine.client.images.remove(image, noprune=True)


def main() -> None:
    parser = build_parser(__doc__)
    parser.add_argument("--also", type=Path, nargs="*", default=[])
    parser.add_argument("--no-builds", action="store_true")
    parser.add_argument("--second-engine", action="store_true",
                        help="build the second time on a fresh Docker engine (empty caches)")
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
            with second_engine([args.base]) if args.second_engine else nullcontext() as host:
                compare_builds(spec, args.base, Path(args.ca_cert) if args.ca_cert else None, host)


if __name__ == "__main__":
    main()
