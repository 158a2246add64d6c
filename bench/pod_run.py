#!/usr/bin/env python3
"""Wall time of `imagebuild pod run local:NAME -- true` end to end, on a local pod of
the test image: the CLI's start-up, the pod lookup, one ssh connection that starts
the job in tmux on the pod (pod-job), follows its log and reads its exit.

Beside it, on the same pod: `imagebuild pod run --detach` (no follow), `imagebuild
pod jobs`, a bare `ssh POD true` (what one connection costs) and `imagebuild
--version` (the CLI's start-up alone). One warm-up run each, then --runs timed runs.
Target: `imagebuild pod run` of `true` median <= 1.5 s.

    .venv/bin/python bench/pod_run.py [--runs 5] [--image IMAGE]

Without --image the test pod image is built from tests/specs/ci.toml first (seconds
when BuildKit's cache has it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
TARGET_S = 1.5


def test_image() -> str:
    from conftest import CI_SPEC, TEST_BASE, ca_bundle

    from imagebuild.engine import connect
    from imagebuild.image.builder import Builder
    from imagebuild.image.progress import PlainReporter
    from imagebuild.image.spec import load_spec

    spec = load_spec(CI_SPEC).spec.with_base(TEST_BASE)
    return Builder(connect(), reporter=PlainReporter()).build(spec, ca_cert=ca_bundle()).image


def measure(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for n in range(runs + 1):
        start = time.monotonic()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        took = time.monotonic() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
        if n:  # the first is a warm-up
            times.append(took)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", help="pod image (default: build the test image)")
    args = parser.parse_args()

    from imagebuild.engine import connect
    from imagebuild.pods import localrun

    image = args.image or test_image()
    engine = connect()
    name = f"bench-run-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as scratch:
        from ssh_helpers import make_ssh_home

        home = make_ssh_home(Path(scratch))
        env = {**os.environ, "HOME": str(home.home), "PATH": f"{home.bin}:{os.environ['PATH']}"}
        public = home.public_key.strip()
        pod = localrun.start(engine, name, image, {**localrun.runpod_env(name), "PUBLIC_KEY": public})
        ref = f"local:{name}"
        cli = [sys.executable, "-m", "imagebuild"]
        ssh = ["ssh", "-p", str(pod.ssh.port), "-o", "StrictHostKeyChecking=accept-new",
               "-o", f"HostKeyAlias={pod.container}", f"root@{pod.ssh.host}", "true"]
        cases = [
            ("`imagebuild pod run POD -- true`", [*cli, "pod", "run", ref, "--", "true"]),
            ("`imagebuild pod run --detach POD -- true`",
             [*cli, "pod", "run", ref, "--detach", "--", "true"]),
            ("`imagebuild pod jobs POD`", [*cli, "pod", "jobs", ref]),
            ("`ssh POD true` (one connection)", ssh),
            ("`imagebuild --version`", [*cli, "--version"]),
        ]
        try:
            rows = [(label, measure(argv, args.runs, env)) for label, argv in cases]
        finally:
            localrun.remove(engine, name, volume=True)
    load = os.getloadavg()[0]
    print(f"{args.runs} runs each after a warm-up, load {load:.1f}, image {image}")
    print("| command | median s | min s | max s |")
    print("|---|---|---|---|")
    for label, times in rows:
        print(f"| {label} | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |")
    median = statistics.median(rows[0][1])
    verdict = "PASS" if median <= TARGET_S else "FAIL"
    print(f"target: `pod run` of `true` median <= {TARGET_S} s: {median:.3f} s {verdict}")
    return 0 if median <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
