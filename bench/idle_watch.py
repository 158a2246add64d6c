"""Idle-stop benchmark: what the in-pod watcher costs while it watches, and how
long after the idle limit an idle pod is saved and stopped - one table.

    .venv/bin/python bench/idle_watch.py --image REF [--seconds 60] [--limit 20]

Two containers of the pod image (the test pod image by default, built from
tests/specs/ci.toml on the local base). The first runs the watcher with checks
every second and a limit it never reaches (1 h) for --seconds; the watcher's CPU
time (its own plus its finished children's: utime, stime, cutime, cstime of
/proc/PID/stat) divided by the checks it made is the cost of one check. Its
default is one check a minute, so the share of a core is that divided by 60 s.
The second has nothing to do and a --limit idle stop (checks every 2 s); the
time from its readiness to the container's exit, less the limit, is what the
watcher adds (check granularity, pod-save, the stop hooks).

Target: a check costs under 50 ms of CPU (under 0.1 % of a core at the default
interval), and an idle pod is down within 10 s of its limit.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def default_image() -> str:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import CI_SPEC, TEST_BASE, ca_bundle

    from imagebuild.engine import connect
    from imagebuild.image.builder import Builder
    from imagebuild.image.progress import PlainReporter
    from imagebuild.image.spec import load_spec

    spec = load_spec(CI_SPEC).spec.with_base(TEST_BASE)
    return Builder(connect(), reporter=PlainReporter()).build(spec, ca_cert=ca_bundle()).image


def run_pod(image: str, env: dict[str, str]) -> tuple[str, float]:
    """Start a pod; its name and when it was ready (the marker's epoch time)."""
    name = f"ib-bench-idle-{uuid.uuid4().hex[:8]}"
    argv = ["run", "-d", "--name", name]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    docker(*argv, image)
    while subprocess.run(["docker", "exec", name, "test", "-e", "/run/pod-ready"],
                         capture_output=True, check=False).returncode:
        time.sleep(0.05)
    return name, float(docker("exec", name, "cat", "/run/pod-ready"))


def finished_at(name: str) -> float:
    """When the container exited (epoch seconds; docker gives nanoseconds)."""
    text = docker("inspect", "-f", "{{.State.FinishedAt}}", name)
    whole, _, fraction = text.rstrip("Z").partition(".")
    stamp = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return stamp + float(f"0.{fraction or 0}")


def watcher_cpu_ms(name: str) -> tuple[float, int]:
    """CPU ms of the watcher and its reaped children, and the checks it made."""
    pid = docker("exec", name, "pgrep", "-o", "-f", "pod-idle-watch")
    fields = docker("exec", name, "cat", f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    hz = int(docker("exec", name, "getconf", "CLK_TCK"))
    checks = int(docker("exec", name, "bash", "-c", "cat /run/pod-idle-watch-checks 2>/dev/null || echo 0"))
    return ticks * 1000 / hz, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    image = args.image or default_image()
    names = []
    try:
        watching, ready = run_pod(image, {"POD_IDLE_STOP": "1h", "POD_IDLE_INTERVAL": "1"})
        names.append(watching)
        idle, idle_ready = run_pod(image, {"POD_IDLE_STOP": f"{args.limit}s", "POD_IDLE_INTERVAL": "2"})
        names.append(idle)
        time.sleep(max(0.0, args.seconds - (time.time() - ready)))
        cpu_ms, checks = watcher_cpu_ms(watching)
        while docker("inspect", "-f", "{{.State.Status}}", idle) == "running":
            time.sleep(0.2)
        stopped_after = finished_at(idle) - idle_ready
    finally:
        for name in names:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    per_check = cpu_ms / max(checks, 1)
    print("| measure | value |")
    print("|---|---|")
    print(f"| checks in {args.seconds:.0f} s (every 1 s) | {checks} |")
    print(f"| watcher CPU per check | {per_check:.1f} ms |")
    print(f"| share of a core at the default 60 s interval | {per_check / 600:.3f} % |")
    print(f"| idle pod: readiness to exit, limit {args.limit} s | {stopped_after:.1f} s |")
    print(f"| idle pod: beyond the limit | {stopped_after - args.limit:.1f} s |")


if __name__ == "__main__":
    main()
