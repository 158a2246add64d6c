"""Layer benchmark: what one small package change ships, one install step per layer
(before issue 15) against the locked packages in chunks (after).

    .venv/bin/python bench/layers.py [--spec tests/specs/ci.toml] [--base IMAGE] [--ca-cert FILE]
                                     [--heavy scipy ...] [--change toolz] [--only before|after]
                                     [--cold-runs N] [--cold-only] [--clean-start]

For each layout: build spec A (the spec's simulators + ``--heavy``) and spec B (A +
``--change`` in [simulators], the same pins otherwise), then report layer count,
largest layer, image size, new layer bytes of B against A (by diff ID), what pushing
B after A adds to a fresh local registry, and a no-op rebuild's time. "Before" is
rendered with one chunk per layer (every package in one RUN), as the templates did.
Targets (issue 15): ≤ 50 MB new after a one-package change, no layer over 1.5 GB,
no-op rebuild ≤ 3 s, image within 3 % of before, a cold build (``--no-cache``) within
10 % of before. Cold builds of the two layouts alternate
(``--cold-runs`` of each; the median is reported), so load from other work on the
machine falls on both alike.
"""

from __future__ import annotations

import statistics
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from build import build_parser  # noqa: E402  bench/build.py
from registry import Registry, remove_repository_tags  # noqa: E402

from imagebuild.engine import connect  # noqa: E402
from imagebuild.image import chunks  # noqa: E402
from imagebuild.image.builder import Builder  # noqa: E402
from imagebuild.image.layers import human_size, inventory, summary  # noqa: E402
from imagebuild.image.resolve import resolve_lock  # noqa: E402
from imagebuild.image.spec import load_spec  # noqa: E402


@contextmanager
def one_chunk_per_layer():
    """The layout before chunks: a layer's packages all in one install step."""
    chunked = chunks.plan_chunks
    chunks.plan_chunks = lambda layer, packages: [chunks.Chunk(layer, "all", packages)] if packages else []
    try:
        yield
    finally:
        chunks.plan_chunks = chunked


def with_simulators(spec, extra: list[str]):
    return spec.model_copy(update={"simulators": spec.simulators.model_copy(
        update={"packages": [*spec.simulators.packages, *extra]})})


def layout_of(label: str):
    return one_chunk_per_layer() if label.startswith("one step") else nullcontext()


def clean_start(engine, spec) -> None:
    """Before a cold build, untimed: no image of the spec and no build snapshot left, so
    every run starts alike and a large spec's images do not pile up on the disk. (The
    cache mounts are kept, though on dockerd 20.10's BuildKit `--no-cache` starts them
    empty anyway: each cold build downloads every wheel, as a first build does.)"""
    remove_repository_tags(engine, spec.image.name)
    engine.client.images.prune(filters={"dangling": True})
    engine.client.api.prune_builds(filters={"type": "regular"})


def cold_builds(engine, spec, lock, ca: Path | None, labels: list[str], runs: int,
                clean: bool = False) -> dict[str, list[float]]:
    """Each layout's cold build times (every step runs, every download too),
    the layouts alternating run by run."""
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    for _ in range(runs):
        for label in labels:
            with layout_of(label):
                if clean:
                    clean_start(engine, spec)
                started = time.perf_counter()
                Builder(engine).build(spec, ca_cert=ca, lock=lock, no_cache=True)
                seconds[label].append(time.perf_counter() - started)
    return seconds


def measure(engine, specs, locks, ca: Path | None) -> dict:
    builder = Builder(engine)
    built = [builder.build(spec, ca_cert=ca, lock=lock) for spec, lock in zip(specs, locks, strict=True)]
    started = time.perf_counter()
    Builder(engine).build(specs[0], ca_cert=ca, lock=locks[0])
    noop = time.perf_counter() - started
    before = [layer.diff_id for layer in inventory(engine, built[0].image)]
    after = inventory(engine, built[1].image, before)
    pushed = []
    with Registry() as registry:
        auth = {"username": registry.username, "password": registry.password}
        name = f"{registry.host}/bench-layers/pod"
        for result in built:  # B after A: what the registry stores anew for the change
            engine.tag(result.image, f"{name}:latest")
            stored = registry.stored_bytes()
            output = engine.client.images.push(name, tag="latest", auth_config=auth)
            if "errorDetail" in output:
                sys.exit(f"push failed: {output[-500:]}")
            pushed.append(registry.stored_bytes() - stored)
        remove_repository_tags(engine, name)
    return {**summary(after), "noop": noop, "push_first": pushed[0], "push_change": pushed[1]}


def specs_and_locks(args, engine, ca: Path | None) -> tuple[list, list]:
    """Spec A (the spec's simulators + ``--heavy``), B (A + ``--change``) and their locks,
    B's with A's pins kept."""
    spec_a = with_simulators(load_spec(args.spec).spec.with_base(args.base), args.heavy)
    spec_b = with_simulators(spec_a, [args.change])
    lock_a = resolve_lock(spec_a, engine, ca_cert=ca)
    return [spec_a, spec_b], [lock_a, resolve_lock(spec_b, engine, previous=lock_a, ca_cert=ca)]


def _cold_cell(seconds: list[float]) -> str:
    if not seconds:
        return "not measured"
    return f"{statistics.median(seconds):.1f} ({', '.join(f'{s:.1f}' for s in seconds)})"


def _ratio(cold: dict[str, list[float]], labels: list[str]) -> float:
    return statistics.median(cold[labels[1]]) / statistics.median(cold[labels[0]])


def main() -> None:
    parser = build_parser(__doc__)
    parser.add_argument("--heavy", nargs="*", default=["scipy"])
    parser.add_argument("--change", default="toolz")
    parser.add_argument("--only", choices=("before", "after"), help="measure one layout only")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold builds of each layout, alternating")
    parser.add_argument("--cold-only", action="store_true",
                        help="only the cold builds (a large spec: the rest takes long and much disk)")
    parser.add_argument("--clean-start", action="store_true",
                        help="remove the spec's images and BuildKit's snapshots before each cold build "
                             "(a large spec fills a small disk otherwise)")
    args = parser.parse_args()
    ca = Path(args.ca_cert) if args.ca_cert else None
    engine = connect()
    (spec_a, spec_b), locks = specs_and_locks(args, engine, ca)
    lock_a = locks[0]
    labels = [label for label in ("one step per layer (before)", "chunks (after)")
              if args.only is None or args.only in label]
    print(f"cold builds: {args.cold_runs} of each layout, alternating...", file=sys.stderr)
    cold = cold_builds(engine, spec_a, lock_a, ca, labels, args.cold_runs, args.clean_start)
    if args.cold_only:
        for label in labels:
            print(f"| {label} | cold build s, median (runs): {_cold_cell(cold[label])} |")
        if len(labels) == 2 and args.cold_runs:
            print(f"\ncold build, chunks / one step per layer (medians): {_ratio(cold, labels):.3f}")
        return
    rows = []
    for label in labels:
        print(f"building: {label}...", file=sys.stderr)
        with layout_of(label):
            rows.append((label, {**measure(engine, [spec_a, spec_b], locks, ca), "cold": cold[label]}))
    header = ("layout", "layers", "largest layer", "image size", f"new after +{args.change}",
              "push bytes, first", f"push bytes, +{args.change}", "no-op rebuild s",
              "cold build s, median (runs)")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for label, r in rows:
        print(f"| {label} | {r['layers']} | {human_size(r['largest'])} | {r['size'] / 1e6:.1f} MB | "
              f"{human_size(r['new_bytes'])} ({r['new_layers']} layers) | {human_size(r['push_first'])} | "
              f"{human_size(r['push_change'])} | {r['noop']:.2f} | {_cold_cell(r['cold'])} |")
    if len(rows) == 2 and args.cold_runs:
        print(f"\ncold build, chunks / one step per layer (medians): {_ratio(cold, labels):.3f}")


if __name__ == "__main__":
    main()
