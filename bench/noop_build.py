"""No-op rebuild benchmark: `imagebuild build` of an unchanged spec, with no `imagebuild
lock` step ever run, against a bare `docker image inspect` of the image — one table.

    .venv/bin/python bench/noop_build.py [--spec tests/specs/ci.toml] [--base IMAGE]
                                         [--ca-cert FILE] [--runs 7]

The spec is copied into an empty folder (no lock beside it). The first build writes the
lock (and builds what the engine lacks); every later build reads it, finds all five layer
tags in the engine and records the build. Whole processes are timed, Python start-up
included, as a user runs them. Target: a no-op rebuild in 0.5 s or less.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import build_parser

TARGET_S = 0.5


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {done.stderr.strip()[-2000:]}")
    return seconds, done


def main() -> None:
    parser = build_parser(__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-noop-") as scratch:
        spec = Path(scratch) / "imagebuild.toml"
        shutil.copy(args.spec, spec)
        build = [sys.executable, "-m", "imagebuild", "build", "--spec", str(spec), "--base", args.base,
                 *(["--ca-cert", str(args.ca_cert)] if args.ca_cert else [])]
        first, done = timed(build)
        wrote_lock = "wrote imagebuild.lock" in done.stderr
        image = done.stdout.strip().splitlines()[-1]
        noop = [timed(build)[0] for _ in range(args.runs)]
        inspect = [timed(["docker", "image", "inspect", "--format", "{{.Id}}", image])[0]
                   for _ in range(args.runs)]

    rebuild, bare = statistics.median(noop), statistics.median(inspect)
    print(f"image: {image}; first build wrote the lock: {'yes' if wrote_lock else 'NO'}")
    print("| command | median s | min s | runs |")
    print("|---|---|---|---|")
    print(f"| first `imagebuild build` (writes the lock) | {first:.2f} | - | 1 |")
    print(f"| no-op `imagebuild build` | {rebuild:.2f} | {min(noop):.2f} | {args.runs} |")
    print(f"| `docker image inspect` | {bare:.2f} | {min(inspect):.2f} | {args.runs} |")
    print(f"\nno-op rebuild {rebuild:.2f} s = {rebuild / bare:.1f}x a bare inspect; target "
          f"{TARGET_S} s: {'OK' if rebuild <= TARGET_S else 'MISSED'}")


if __name__ == "__main__":
    main()
