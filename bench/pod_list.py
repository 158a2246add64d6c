#!/usr/bin/env python3
"""Wall time of `imagebuild pod list` against a fake RunPod that answers instantly.

Beside it, in the same run and on the same interpreter: `imagebuild --version` (the
CLI's start-up alone), `python -c "import runpod"` (the official SDK: what a CLI built
on it pays before doing anything) and a bare `python -c pass`.
Target: `imagebuild pod list` median <= 0.3 s.

    .venv/bin/python bench/pod_list.py [--runs 21]

The SDK is installed into this environment if it is missing (it is on PyPI).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fake_runpod import FakeRunPod  # noqa: E402

TARGET_S = 0.3


def measure(argv: list[str], runs: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """Wall times and CPU times (user + system) of ``runs`` runs of ``argv``.

    CPU time is reported too because a shared 2-core machine's wall times swing
    with whatever else runs; CPU time is what the command itself costs.
    """
    for _ in range(2):  # warm the page cache and .pyc files first
        subprocess.run(argv, env=env, capture_output=True, check=True)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def ensure_runpod() -> None:
    probe = subprocess.run([sys.executable, "-c", "import runpod"], capture_output=True)
    if probe.returncode != 0:
        print("installing the runpod SDK for the comparison row ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "runpod"], check=True)


def seed(fake: FakeRunPod, count: int) -> None:
    """A few running pods, so the table has rows to render."""
    fake.state.provisioning_s = fake.state.starting_s = 0
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    for index in range(count):
        body = {"name": f"bench-{index}", "image": "img", "gpu": {"id": "NVIDIA GeForce RTX 4090"},
                "ports": ["22/tcp"]}
        httpx.post(f"{fake.url}/pods", json=body, headers=headers).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--pods", type=int, default=3)
    args = parser.parse_args()
    ensure_runpod()

    script = shutil.which("imagebuild", path=str(Path(sys.executable).parent))
    cli = [script] if script else [sys.executable, "-m", "imagebuild"]
    # The fake answers instantly: no schema checks on the serving side.
    with FakeRunPod(validate=False) as fake:
        seed(fake, args.pods)
        env = {**os.environ, "RUNPOD_API_URL": fake.url, "RUNPOD_API_KEY": fake.api_key}
        rows = [
            ("imagebuild pod list", measure([*cli, "pod", "list"], args.runs, env)),
            # The CLI's fixed start-up cost (typer, and the pydantic it coerces with), no API call.
            ("imagebuild --version", measure([*cli, "--version"], args.runs, env)),
            ('python -c "import runpod"', measure([sys.executable, "-c", "import runpod"], args.runs, env)),
            ('python -c "pass"', measure([sys.executable, "-c", "pass"], args.runs, env)),
        ]

    load = os.getloadavg()[0]
    print(f"runs={args.runs}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load:.2f}")
    print(f"{'command':<28} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>7}")
    for name, (walls, cpus) in rows:
        print(f"{name:<28} {statistics.median(walls):>9.3f} {min(walls):>7.3f} {max(walls):>7.3f}"
              f" {statistics.median(cpus):>7.3f}")
    median = statistics.median(rows[0][1][0])
    verdict = "PASS" if median <= TARGET_S else "FAIL"
    print(f"target: imagebuild pod list median <= {TARGET_S} s -> {verdict} ({median:.3f} s)")
    return 0 if median <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
