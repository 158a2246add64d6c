"""Entrypoint start benchmark: container start → readiness marker for the baked image,
beside the seed's restart.sh approach on the same base, in one run — one table.

    .venv/bin/python bench/entrypoint_start.py [--image REF] [--runs 10] [--seed-runs 1]
                                               [--spec tests/specs/ci.toml] [--base IMAGE]
                                               [--ca-cert FILE]

Baked image (the test pod image, built from the spec when --image is not given): a
first boot on a new volume, then --runs restarts of the same container (`docker
restart`: container disk kept) and --runs recreations on the same volume (a new
container, fresh container disk: what a RunPod stop/start gives). The time is from
just before the engine's start call to the moment the entrypoint wrote
/run/pod-ready (sshd accepting connections); the marker holds that moment
(EPOCHREALTIME: containers share the host's clock), so polling adds nothing.

Seed approach (research-pod-guide.md's restart.sh): a container of the bare base
image installs nodejs and npm with apt, then `npm install -g @anthropic-ai/claude-code`,
then writes the same marker. The host CA bundle is mounted for apt and npm
(NODE_EXTRA_CA_CERTS) behind the TLS-intercepting proxy. It downloads everything, so
one run (--seed-runs) is the default.

Target: the baked image ready in <= 1 s, and >= 30x faster than the seed approach.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker.errors

REPO = Path(__file__).resolve().parent.parent

from imagebuild.engine import connect  # noqa: E402
from imagebuild.image.builder import Builder  # noqa: E402
from imagebuild.image.progress import PlainReporter  # noqa: E402
from imagebuild.image.spec import load_spec  # noqa: E402

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
MARKER = "/run/pod-ready"
TIMEOUT = 900.0

SEED_SCRIPT = r"""
set -e
ca=/etc/ssl/certs/host-ca.crt
apt_tls=""
if [ -s "$ca" ]; then apt_tls="-o Acquire::https::CAInfo=$ca"; export NODE_EXTRA_CA_CERTS=$ca; fi
apt-get $apt_tls update -qq
DEBIAN_FRONTEND=noninteractive apt-get $apt_tls install -y -qq --no-install-recommends nodejs npm >/dev/null
npm install -g --no-fund --no-audit --loglevel=error @anthropic-ai/claude-code >/dev/null
claude --version
printf '%s\n' "$(date +%s.%N)" > /run/pod-ready
exec sleep infinity
"""


def marker_time(container, not_before: float, timeout: float = TIMEOUT) -> float:
    """Seconds from ``not_before`` to the moment written in the container's marker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            logs = container.logs(tail=20).decode("utf-8", "replace")
            raise SystemExit(f"container {container.name} exited before ready:\n{logs}")
        if container.status == "running":
            done = container.exec_run(["cat", MARKER])
            if done.exit_code == 0:
                stamp = float(done.output.decode().strip())
                if stamp > not_before:  # a restart may still show the previous start's marker
                    return stamp - not_before
        time.sleep(0.05)
    raise SystemExit(f"container {container.name} not ready after {timeout:.0f} s")


def start_and_time(container) -> float:
    started = time.time()
    container.start()
    return marker_time(container, started)


def baked(client, image: str, key: str, runs: int) -> dict[str, list[float]]:
    tag = uuid.uuid4().hex[:8]
    volume = client.volumes.create(f"bench-entrypoint-{tag}")
    made = []

    def create():
        container = client.containers.create(
            image, name=f"bench-entrypoint-{tag}-{len(made)}", environment={"PUBLIC_KEY": key},
            volumes={volume.name: {"bind": "/workspace", "mode": "rw"}}, detach=True)
        made.append(container)
        return container

    results: dict[str, list[float]] = {"first": [], "restart": [], "recreate": []}
    try:
        container = create()
        results["first"].append(start_and_time(container))
        time.sleep(2)  # first boot makes the RSA host key in the background
        for _ in range(runs):
            container.stop(timeout=10)
            results["restart"].append(start_and_time(container))
        for _ in range(runs):
            container.stop(timeout=10)
            container.remove()
            container = create()
            results["recreate"].append(start_and_time(container))
    finally:
        for container in made:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        volume.remove(force=True)
    return results


def seed(client, base: str, ca_cert: Path | None, runs: int) -> list[float]:
    times = []
    for run in range(runs):
        volumes = {str(ca_cert): {"bind": "/etc/ssl/certs/host-ca.crt", "mode": "ro"}} if ca_cert else {}
        container = client.containers.create(
            base, ["bash", "-c", SEED_SCRIPT], name=f"bench-seed-{uuid.uuid4().hex[:8]}-{run}",
            volumes=volumes, detach=True)
        try:
            times.append(start_and_time(container))
        finally:
            container.remove(force=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="Pod image to time (default: the spec's build).")
    parser.add_argument("--spec", type=Path, default=REPO / "tests" / "specs" / "ci.toml")
    parser.add_argument("--base", default=os.environ.get("IMAGEBUILD_TEST_BASE",
                                                         "imagebuild-test/debian:bookworm"))
    parser.add_argument("--ca-cert", type=Path, default=HOST_CA if HOST_CA.exists() else None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed-runs", type=int, default=1)
    args = parser.parse_args()

    engine = connect()
    image = args.image
    if image is None:
        spec = load_spec(args.spec).spec.with_base(args.base)
        image = Builder(engine, reporter=PlainReporter()).build(spec, ca_cert=args.ca_cert).image
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{folder}/id"], check=True)
        key = Path(f"{folder}/id.pub").read_text().strip()

    print(f"baked image {image}: first boot, {args.runs} restarts, {args.runs} recreations ...",
          file=sys.stderr)
    baked_times = baked(engine.client, image, key, args.runs)
    print(f"seed approach on {args.base}: {args.seed_runs} run(s) of apt + npm ...", file=sys.stderr)
    seed_times = seed(engine.client, args.base, args.ca_cert, args.seed_runs)

    rows = [
        ("baked image: first boot (new volume)", baked_times["first"]),
        ("baked image: restart (`docker restart`)", baked_times["restart"]),
        ("baked image: recreate on the same volume", baked_times["recreate"]),
        ("seed: apt nodejs npm + npm i -g claude-code", seed_times),
    ]
    print("| start → ready | runs | median s | min s | max s |")
    print("|---|---|---|---|---|")
    for label, times in rows:
        print(f"| {label} | {len(times)} | {statistics.median(times):.2f} | {min(times):.2f} | "
              f"{max(times):.2f} |")
    worst = max(statistics.median(baked_times["restart"]), statistics.median(baked_times["recreate"]))
    ratio = statistics.median(seed_times) / worst
    print()
    print(f"baked ready (slower median of restart/recreate): {worst:.2f} s "
          f"(target <= 1 s: {'met' if worst <= 1 else 'MISSED'}); "
          f"seed / baked: {ratio:.0f}x (target >= 30x: {'met' if ratio >= 30 else 'MISSED'})")


if __name__ == "__main__":
    main()
