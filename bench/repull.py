"""Re-pull benchmark: what a host that has image A pulls for image B = A + one simulator
package (issue 27: ≤ 50 MB, the layers above the changed chunk included).

    .venv/bin/python bench/repull.py [--spec tests/specs/ci.toml] [--base IMAGE] [--ca-cert FILE]
                                     [--heavy scipy ...] [--change toolz]

Builds A (the spec's simulators + ``--heavy``) and B (A + ``--change``, every other pin
kept), pushes both to a fresh local registry (tests/registry.py), starts an empty second
engine (bench/second_engine.py; needs root), pulls A into it (a host that ran A), then B,
and counts what the second pull fetched: the compressed bytes of every layer the engine
did not report "Already exists" for. The engine keys a layer by its whole parent
chain, so every layer above the changed chunk is fetched again even when its bytes are
the same; the table names them.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from base64 import b64encode
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from build import build_parser  # noqa: E402  bench/build.py
from layers import specs_and_locks  # noqa: E402  bench/layers.py
from registry import Registry, remove_repository_tags  # noqa: E402
from second_engine import second_engine  # noqa: E402  bench/second_engine.py

from imagebuild.engine import connect  # noqa: E402
from imagebuild.image.builder import Builder  # noqa: E402
from imagebuild.image.layers import human_size, inventory  # noqa: E402

_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def manifest_layers(registry: Registry, repository: str, tag: str) -> list[dict]:
    """The manifest's layers (digest, compressed size), oldest first."""
    request = urllib.request.Request(f"http://{registry.host}/v2/{repository}/manifests/{tag}",
                                     headers={"Accept": _MANIFEST})
    token = b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)["layers"]


def pull_fetched(engine, name: str, auth: dict, tag: str = "latest") -> set[str]:
    """Pull ``name:tag``; the short IDs of the layers it fetched (not "Already exists")."""
    fetched, present = set(), set()
    for event in engine.client.api.pull(name, tag=tag, auth_config=auth, stream=True, decode=True):
        if "error" in event:
            sys.exit(f"pull failed: {event['error']}")
        status, short = event.get("status", ""), event.get("id", "")
        if status == "Already exists":
            present.add(short)
        elif status in ("Pull complete", "Download complete", "Downloading"):
            fetched.add(short)
    return fetched - present


def measure(engine, built, base: str) -> tuple[list[dict], set[str]]:
    """Push A and B; in an empty second engine (the base loaded), pull A, then B. Not
    this engine: BuildKit's cache keeps B's layers alive here after `docker rmi`, so its
    pull fetched nothing (measured: 0 of 15 layers)."""
    import docker

    images = [result.image for result in built]
    with Registry() as registry:
        auth = {"username": registry.username, "password": registry.password}
        repository = "bench-repull/pod"
        name = f"{registry.host}/{repository}"
        for tag, image in zip(("a", "latest"), images, strict=True):
            engine.tag(image, f"{name}:{tag}")
            output = engine.client.images.push(name, tag=tag, auth_config=auth)
            if "errorDetail" in output:
                sys.exit(f"push failed: {output[-500:]}")
        layers = manifest_layers(registry, repository, "latest")
        remove_repository_tags(engine, name)
        # A pulled, not loaded: an engine that got A by `docker load` has no record of its
        # compressed blobs and so fetches every layer of B again (measured: 15 of 15).
        with second_engine([base]) as host:
            other = SimpleNamespace(client=docker.DockerClient(base_url=host, timeout=600))
            pull_fetched(other, name, auth, tag="a")
            fetched = pull_fetched(other, name, auth)
    return layers, fetched


def main() -> None:
    parser = build_parser(__doc__)
    parser.add_argument("--heavy", nargs="*", default=[])
    parser.add_argument("--change", default="toolz")
    args = parser.parse_args()
    ca = Path(args.ca_cert) if args.ca_cert else None
    engine = connect()
    specs, locks = specs_and_locks(args, engine, ca)
    built = [Builder(engine).build(spec, ca_cert=ca, lock=lock)
             for spec, lock in zip(specs, locks, strict=True)]
    before = {layer.diff_id for layer in inventory(engine, built[0].image)}
    after = inventory(engine, built[1].image, list(before))
    layers, fetched = measure(engine, built, args.base)
    rows = [(info, blob) for info, blob in zip(after, layers, strict=True)
            if blob["digest"].split(":")[1][:12] in fetched]
    print("| layer of B fetched by the pull | same bytes as in A | unpacked | compressed |")
    print("|---|---|---|---|")
    for info, blob in rows:
        what = f"{info.chunk}: {' '.join(info.packages)}" if info.chunk else info.step
        print(f"| {what[:70]} | {'no' if info.new else 'yes (parent changed)'} | "
              f"{human_size(info.size)} | {human_size(blob['size'])} |")
    total = sum(blob["size"] for _, blob in rows)
    print(f"\n+{args.change}: the pull fetched {len(rows)} of {len(layers)} layers, "
          f"{human_size(total)} compressed, {human_size(sum(i.size for i, _ in rows))} unpacked "
          f"(target ≤ 50 MB)")


if __name__ == "__main__":
    main()
