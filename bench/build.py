"""Build benchmark: cold build per layer, no-op rebuild, simulator-change rebuild,
layer sizes and cache bytes left in layers — one table, one run.

    .venv/bin/python bench/build.py [--spec tests/specs/ci.toml] [--base IMAGE]
                                    [--ca-cert FILE] [--cold-mounts]

Targets: no-op rebuild <= 3 s; after a simulator change the lower layers
(system, python, node) 100 % reused; 0 bytes of cache directories in layers.
``--cold-mounts`` also empties BuildKit's cache mounts first (apt/pip/uv/npm
downloads then count in the cold figures); without it they stay warm.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from imagebuild.engine import connect
from imagebuild.image.builder import Builder
from imagebuild.image.layerscan import scan_image
from imagebuild.image.render import LAYER_NAMES
from imagebuild.image.spec import load_spec

REPO = Path(__file__).resolve().parent.parent


def cli_build_seconds(spec: Path, base: str, ca: str | None, runs: int = 5) -> tuple[float, bool]:
    """Median wall time of `imagebuild build --json` as a user runs it, and
    whether every layer was reused."""
    times, all_cached = [], True
    argv = [sys.executable, "-m", "imagebuild", "build", "--spec", str(spec), "--base", base, "--json"]
    if ca:
        argv += ["--ca-cert", ca]
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - started)
        all_cached &= all(layer["cached"] for layer in json.loads(done.stdout)["layers"])
    return statistics.median(times), all_cached


def build_parser(doc: str) -> argparse.ArgumentParser:
    """--spec, --base and --ca-cert, as every build benchmark takes them."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=REPO / "tests" / "specs" / "ci.toml")
    parser.add_argument("--base", default="imagebuild-test/debian:bookworm")
    parser.add_argument("--ca-cert", default=os.environ.get("IMAGEBUILD_CA_CERT")
                        or ("/etc/ssl/certs/ca-certificates.crt"
                            if Path("/etc/ssl/certs/ca-certificates.crt").exists() else None))
    return parser


def main() -> None:
    parser = build_parser(__doc__)
    parser.add_argument("--cold-mounts", action="store_true")
    args = parser.parse_args()

    engine = connect()
    ca = Path(args.ca_cert) if args.ca_cert else None
    spec = load_spec(args.spec).spec.with_base(args.base)
    builder = Builder(engine)
    if args.cold_mounts:
        subprocess.run(["docker", "builder", "prune", "--force", "--filter", "type=exec.cachemount"],
                       capture_output=True, check=False)

    cold = builder.build(spec, ca_cert=ca, no_cache=True)
    noop_seconds, noop_cached = cli_build_seconds(args.spec, args.base, args.ca_cert)
    changed = spec.model_copy(update={"simulators": spec.simulators.model_copy(
        update={"packages": [*spec.simulators.packages, "cloudpickle"]})})
    for layer in builder.plan(changed).layers[3:]:  # a previous run may have built them
        if engine.exists(layer.image):
            engine.client.images.remove(layer.image, noprune=True)
    after_change = builder.build(changed, ca_cert=ca)
    lower = [layer for layer in after_change.layers if layer.name in ("system", "python", "node")]
    reused = 100.0 * sum(layer.cached for layer in lower) / len(lower)
    scan = scan_image(engine, cold.image, skip_base=args.base)

    sizes, previous = {}, engine.image(args.base).attrs["Size"]
    for layer in cold.layers:
        size = engine.image(layer.image).attrs["Size"]
        sizes[layer.name], previous = size - previous, size

    print(f"imagebuild build benchmark — spec {args.spec.name}, base {args.base}, "
          f"cache mounts {'emptied' if args.cold_mounts else 'warm'}")
    print()
    print(f"| {'layer':8} | {'cold build (s)':>14} | {'layer size (MB)':>15} |"
          f" {'after sim change':>16} |")
    print(f"|{'-' * 10}|{'-' * 16}|{'-' * 17}|{'-' * 18}|")
    changed_state = {layer.name: "reused" if layer.cached else "rebuilt"
                     for layer in after_change.layers}
    for layer in cold.layers:
        print(f"| {layer.name:8} | {layer.seconds:14.1f} | {sizes[layer.name] / 1e6:15.1f} |"
              f" {changed_state[layer.name]:>16} |")
    total = sum(layer.seconds for layer in cold.layers)
    print(f"| {'total':8} | {total:14.1f} | {sum(sizes.values()) / 1e6:15.1f} | {'':>16} |")
    print()
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| no-op rebuild, `imagebuild build` wall time (median of 5) | {noop_seconds:.2f} s"
          f"{'' if noop_cached else ' (NOT all cached)'} | <= 3 s |")
    print(f"| lower layers (system, python, node) reused after a simulator change | {reused:.0f} % | 100 % |")
    print(f"| cache directories left in the image's own layers | {scan.cache_bytes} bytes | 0 bytes |")
    assert set(changed_state) == set(LAYER_NAMES)


if __name__ == "__main__":
    main()
