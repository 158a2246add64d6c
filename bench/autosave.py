"""Continuous-save benchmark: pod-autosave's incremental and full saves on a synthetic
workspace (the script the image runs, on the host, against local bare remotes), and
the recovery point measured over kills.

    .venv/bin/python bench/autosave.py [--repos 200] [--dirty 100] [--kills 5] [--every 10]

Cases, one table:
  incremental  --repos repositories, all saved once, then 1 with an edited file:
               `pod-autosave --once` (target <= 1 s);
  full         --repos repositories, --dirty of them edited: `pod-autosave --full`
               (a full save, the watcher's first; target <= 8 s);
  recovery     the watcher (`pod-autosave`, POD_SAVE_EVERY=--every s) and a workload
               writing a file every 2 s and committing every 6 s, both SIGKILLed at a
               random moment; `pod-restore --latest --all` into fresh clones at the
               same paths: the work lost (kill time - time of the newest file restored),
               per kill. Target: <= every + one save.
Measured: the save's own time (the status record's, what the watcher pays: it runs
in one process) and, in brackets, the command's wall time, Python's start included.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pod_save import git, make_repos  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "src/imagebuild/entrypoint/bin"


def env_for(ws: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "POD_WORKSPACE": str(ws), "RUNPOD_POD_ID": "bench",
            "GIT_CONFIG_NOSYSTEM": "1", **extra}


def autosave(ws: Path, *args: str) -> tuple[float, float]:
    """(the save's own seconds, from the status record: what the watcher pays; wall
    seconds of the command, Python's start included)."""
    start = time.monotonic()
    res = subprocess.run([sys.executable, str(BIN / "pod-autosave"), *args], env=env_for(ws),
                         capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    if res.returncode not in (0, 1):
        raise SystemExit(f"pod-autosave {' '.join(args)} failed: {res.stderr.strip()}")
    last = json.loads((ws / ".pod" / "save-status.json").read_text())["last_save"]
    if last["verdict"] != "saved":
        raise SystemExit(f"pod-autosave {' '.join(args)}: {last['verdict']}")
    return last["seconds"], wall


def workspace(tmp: str, name: str) -> tuple[Path, Path]:
    ws, remotes = Path(tmp) / name / "workspace", Path(tmp) / name / "remotes"
    ws.mkdir(parents=True)
    remotes.mkdir()
    return ws, remotes


def incremental_case(tmp: str, repos: int) -> tuple[tuple[float, float], str]:
    ws, remotes = workspace(tmp, "inc")
    make_repos(ws, remotes, repos, 0)
    time.sleep(1.1)  # past the racy second of the files just written
    autosave(ws, "--full")
    (ws / "code" / "r007" / "f3.py").write_text("edited\n")
    time.sleep(1.1)
    return autosave(ws, "--once"), f"{repos} repos, 1 dirty"


def full_case(tmp: str, repos: int, dirty: int) -> tuple[tuple[float, float], str]:
    ws, remotes = workspace(tmp, "full")
    make_repos(ws, remotes, repos, dirty)
    return autosave(ws, "--full"), f"{repos} repos, {dirty} dirty"


WORKLOAD = """
import os, subprocess, sys, time
repo, log = sys.argv[1], sys.argv[2]
n = 0
while True:
    n += 1
    with open(os.path.join(repo, "steps", f"step-{n}.txt"), "w") as f:
        f.write(f"step {n}\\n")
    with open(log, "a") as f:
        f.write(f"{n} {time.time()}\\n")
    if n % 3 == 0:
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@x", "add", "-A"], cwd=repo)
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm",
                        f"step {n}"], cwd=repo)
    time.sleep(2)
"""


def one_kill(tmp: str, n: int, every: int) -> float:
    ws, remotes = workspace(tmp, f"kill{n}")
    make_repos(ws, remotes, 1, 0)
    repo = ws / "code" / "r000"
    (repo / "steps").mkdir()
    log = Path(tmp) / f"kill{n}.log"
    start = dict(start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watcher = subprocess.Popen([sys.executable, str(BIN / "pod-autosave")],
                               env=env_for(ws, POD_SAVE_EVERY=f"{every}s"), **start)
    work = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(repo), str(log)], **start)
    time.sleep(random.uniform(2 * every + 3, 4 * every))
    for proc in (watcher, work):
        os.killpg(proc.pid, signal.SIGKILL)
    killed_at = time.time()
    for proc in (watcher, work):
        proc.wait()
    steps = {int(a): float(b) for a, b in (ln.split() for ln in log.read_text().splitlines())}
    shutil.rmtree(ws)  # the pod and its volume are gone
    git(Path(tmp), "clone", "-q", str(remotes / "r000.git"), str(repo))
    subprocess.run([sys.executable, str(BIN / "pod-restore"), "--latest", "--all"], cwd=tmp,
                   env=env_for(ws), check=True, capture_output=True)
    got = [int(p.stem.removeprefix("step-")) for p in (repo / "steps").glob("step-*.txt")] \
        if (repo / "steps").is_dir() else []
    return killed_at - (steps[max(got)] if got else min(steps.values()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--dirty", type=int, default=100)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--every", type=int, default=10, help="POD_SAVE_EVERY, seconds")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-autosave-") as tmp:
        (own, wall), what = incremental_case(tmp, args.repos)
        rows.append(("incremental save", what, f"{own:.2f} s ({wall:.2f} s wall)", "<= 1 s"))
        (own, wall), what = full_case(tmp, args.repos, args.dirty)
        rows.append(("full save", what, f"{own:.2f} s ({wall:.2f} s wall)", "<= 8 s"))
        lost = [one_kill(tmp, n, args.every) for n in range(args.kills)]
        if lost:
            rows.append(("recovery point", f"{args.kills} kills, every {args.every} s",
                         f"max {max(lost):.1f} s ({', '.join(f'{x:.1f}' for x in lost)})",
                         f"<= {args.every} s + one save"))
    print("| case | workspace | measured | target |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
