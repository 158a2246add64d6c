"""Cold-start benchmark: a host that has never seen the image pulls it, runs it, and the
pod is ready — against this machine's own limit for the same bytes. One table, one run.

    .venv/bin/python bench/cold_start.py [--spec tests/specs/ci.toml] [--image REF]
                                         [--runs 3] [--base IMAGE] [--ca-cert FILE]

The image (built from --spec, or a local --image) is pushed to a fresh local registry
(tests/registry.py) as gzip (the engine's push) and as its zstd variant (skopeo,
image/compression.py). Then, --runs times each, median:

* Docker: an empty second engine (bench/second_engine.py, its own bridge) pulls the gzip
  image, `docker run`s it, and the pod is ready (/run/pod-ready, the entrypoint's marker);
  the engine's images are removed between runs, so every pull is cold.
* containerd (`ctr`, its own daemon and empty root each run) pulls and unpacks the zstd
  variant, and the gzip image: Docker Engine 20.10 here cannot pull zstd at all.
* The limit: the registry's own blobs, layer after layer as an engine does, through
  `gzip -dc | tar -x` and `zstd -dc | tar -x` into an empty folder on the engine's disk,
  and a plain read of the blobs with O_DIRECT (`dd iflag=direct`: the disk, not the page cache).

Ratios are to this machine's `gzip -dc | tar -x` of the same layers. Target (issue 27):
the gzip cold pull ≤ 1.25× that limit.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import docker  # noqa: E402
from containerd import containerd  # noqa: E402
from containerd import pull as containerd_pull  # noqa: E402
from entrypoint_start import marker_time  # noqa: E402
from registry import Registry  # noqa: E402
from second_engine import second_engine  # noqa: E402

from imagebuild.engine import connect  # noqa: E402
from imagebuild.image import compression  # noqa: E402
from imagebuild.image.push import Pusher  # noqa: E402

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
TARGET_RATIO = 1.25


def build(spec: Path, base: str, ca_cert: Path | None, folder: Path) -> str:
    """Build ``spec`` (its image renamed for the bench) with the CLI; the built image."""
    text = re.sub(r"(?m)^name = .*$", 'name = "imagebuild-bench/cold"', spec.read_text())
    text = re.sub(r"(?m)^base = .*$", f'base = "{base}"', text)
    (folder / "imagebuild.toml").write_text(text)
    argv = [sys.executable, "-m", "imagebuild", "build", "--spec", str(folder / "imagebuild.toml")]
    done = subprocess.run(argv + (["--ca-cert", str(ca_cert)] if ca_cert else []),
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"build failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def blobs(registry: Registry, reference: str, authfile: Path) -> list[Path]:
    """The registry's files of ``reference``'s layers, in pull order."""
    layers = compression.manifest(reference, authfile)["layers"]
    root = registry.storage / "docker/registry/v2/blobs/sha256"
    return [root / layer["digest"][7:9] / layer["digest"][7:] / "data" for layer in layers]


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def unpack(files: list[Path], tool: str, scratch: Path) -> float:
    """``tool -dc | tar -x`` of each layer in turn into an empty folder; seconds."""
    target = scratch / f"unpack-{uuid.uuid4().hex[:6]}"
    target.mkdir()
    try:
        def run() -> None:
            for blob in files:
                subprocess.run(f"{tool} -dc < '{blob}' | tar -x -C '{target}'", shell=True, check=True)
            subprocess.run(["sync", "-f", str(target)], check=True)
        return timed(run)
    finally:
        shutil.rmtree(target, ignore_errors=True)


def disk_read(files: list[Path]) -> float:
    return timed(lambda: [subprocess.run(["dd", f"if={blob}", "of=/dev/null", "bs=4M", "iflag=direct"],
                                         check=True, capture_output=True) for blob in files])


def docker_cold(host: str, reference: str, auth: dict, key: str) -> tuple[float, float]:
    """Pull into the (emptied) second engine, then run until ready: (pull s, run→ready s)."""
    client = docker.DockerClient(base_url=host, timeout=1800)
    try:
        repository, tag = reference.rsplit(":", 1)
        pull_s = timed(lambda: [None for _ in client.api.pull(repository, tag, auth_config=auth,
                                                              stream=True, decode=True)])
        container = client.containers.create(reference, environment={"PUBLIC_KEY": key}, detach=True)
        try:
            started = time.time()
            container.start()
            ready_s = marker_time(container, started)
        finally:
            container.remove(force=True)
        client.images.remove(reference, force=True)
        client.images.prune(filters={"dangling": False})
        return pull_s, ready_s
    finally:
        client.close()


def ctr_pull(reference: str, auth: dict, scratch: Path) -> float:
    """A fresh containerd (tests/containerd.py: own root, no config) pulls and unpacks."""
    with containerd(scratch) as sock:
        def run() -> None:
            done = containerd_pull(sock, reference, auth["username"], auth["password"])
            if done.returncode != 0:
                raise SystemExit(f"ctr pull {reference} failed: {done.stderr.strip()[-500:]}")
        return timed(run)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=REPO / "tests" / "specs" / "ci.toml")
    parser.add_argument("--image", help="a local image to measure instead of building --spec")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base", default=os.environ.get("IMAGEBUILD_TEST_BASE",
                                                         "imagebuild-test/debian:bookworm"))
    parser.add_argument("--ca-cert", type=Path, default=HOST_CA if HOST_CA.exists() else None)
    args = parser.parse_args()

    engine = connect()
    # Scratch on the engine's disk (/var/lib), where a pull unpacks too.
    with Registry() as registry, tempfile.TemporaryDirectory(prefix="bench-cold-", dir="/var/lib") as name:
        scratch = Path(name)
        image = args.image or build(args.spec, args.base, args.ca_cert, scratch)
        auth = {"username": registry.username, "password": registry.password}
        gzip_ref = f"{registry.host}/imagebuild-bench/cold:gzip"
        engine.tag(image, gzip_ref)
        print(f"pushing {image} (gzip, then its zstd variant) ...", file=sys.stderr)
        Pusher(engine, auth=auth).push(gzip_ref)
        engine.client.images.remove(gzip_ref)
        zstd_ref = compression.push_zstd(image, f"{registry.host}/imagebuild-bench/cold", "v", auth)
        zstd_tag = f"{registry.host}/imagebuild-bench/cold:v{compression.TAG_SUFFIX}"
        authfile = compression.authfile(scratch, registry.host, auth)
        gzip_blobs = blobs(registry, gzip_ref, authfile)
        zstd_blobs = blobs(registry, zstd_tag, authfile)
        sizes = {kind: sum(blob.stat().st_size for blob in files)
                 for kind, files in (("gzip", gzip_blobs), ("zstd", zstd_blobs))}
        key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchBenchBenchBenchBenchBenchBenchBenchBe bench"
        rows: dict[str, list[float]] = {}
        with second_engine([]) as host:
            for run in range(args.runs):
                print(f"run {run + 1}/{args.runs}: docker pull + run, ctr zstd/gzip, limits ...",
                      file=sys.stderr)
                pull_s, ready_s = docker_cold(host, gzip_ref, auth, key)
                rows.setdefault("docker gzip: pull", []).append(pull_s)
                rows.setdefault("docker gzip: run → /run/pod-ready", []).append(ready_s)
                rows.setdefault("docker gzip: pull → ready", []).append(pull_s + ready_s)
                rows.setdefault("ctr zstd: pull + unpack", []).append(ctr_pull(zstd_tag, auth, scratch))
                rows.setdefault("ctr gzip: pull + unpack", []).append(ctr_pull(gzip_ref, auth, scratch))
                rows.setdefault("limit: gzip -dc | tar -x", []).append(unpack(gzip_blobs, "gzip", scratch))
                rows.setdefault("limit: zstd -dc | tar -x", []).append(unpack(zstd_blobs, "zstd", scratch))
                rows.setdefault("limit: read gzip blobs (O_DIRECT)", []).append(disk_read(gzip_blobs))
    report(image, zstd_ref, sizes, len(gzip_blobs), rows, args.runs)


def report(image: str, zstd_ref: str, sizes: dict[str, int], layers: int, rows: dict[str, list[float]],
           runs: int) -> None:
    limit = median(rows["limit: gzip -dc | tar -x"])
    print(f"image: {image}, {layers} layers; gzip {sizes['gzip'] / 1e9:.2f} GB, "
          f"zstd {sizes['zstd'] / 1e9:.2f} GB ({zstd_ref.rsplit('@', 1)[-1][:19]}...)")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min), "
          f"{os.cpu_count()} cores")
    print(f"| step | median s ({runs} runs) | runs | × gzip\\|tar limit |")
    print("|---|---|---|---|")
    for label, values in rows.items():
        cell = label.replace("|", "\\|")  # a pipe inside a Markdown table cell
        print(f"| {cell} | {median(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} | "
              f"{median(values) / limit:.2f} |")
    ratio = median(rows["docker gzip: pull"]) / limit
    print(f"\ngzip cold pull = {ratio:.2f}× this machine's gzip|tar limit (target ≤ {TARGET_RATIO}): "
          f"{'OK' if ratio <= TARGET_RATIO else 'MISSED'}")


if __name__ == "__main__":
    main()
