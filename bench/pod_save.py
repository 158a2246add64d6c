"""pod-save benchmark: wall time and peak memory of one pod-save run on a synthetic
workspace, on the host (same script the image runs), against local bare remotes.

    .venv/bin/python bench/pod_save.py [--repos 200] [--dirty 100] [--files 30000]

Cases, one table:
  repos      --repos repositories under code/, each pushed, --dirty of them with an
             edited tracked file and an untracked one (a snapshot each to push);
  repos, 2nd the same again: every snapshot is already on its remote;
  untracked  one repository with --files untracked small files in 100 folders.
Peak memory is pod-save's own maximum RSS (the Python process) and, separately, the
largest child (a git command). Target for the 200-repo case: <= 10 s and <= 200 MB on
a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "src/imagebuild/entrypoint/bin/pod-save"
RUNNER = """
import resource, runpy, sys
sys.argv = [sys.argv[1], "--json"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    code = e.code
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"MAXRSS {self_kb} {child_kb} {code}", file=sys.stderr)
"""


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@x", "-c",
                    "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   capture_output=True)


def make_repos(ws: Path, remotes: Path, count: int, dirty: int) -> None:
    for n in range(count):
        repo, remote = ws / "code" / f"r{n:03d}", remotes / f"r{n:03d}.git"
        repo.mkdir(parents=True)
        git(remotes, "init", "-q", "--bare", str(remote))
        git(repo, "init", "-q")
        for m in range(20):
            (repo / f"f{m}.py").write_text(f"# file {m} of repo {n}\n" * 20)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "initial")
        git(repo, "remote", "add", "origin", str(remote))
        git(repo, "push", "-q", "-u", "origin", "main")
        if n < dirty:
            (repo / "f0.py").write_text("edited\n")
            (repo / "new.py").write_text("untracked\n")


def make_untracked(ws: Path, remotes: Path, files: int) -> None:
    make_repos(ws, remotes, 1, 0)
    repo = ws / "code" / "r000"
    for n in range(files):
        folder = repo / "out" / f"d{n % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n}.txt").write_text(f"{n}\n")


def run(ws: Path) -> tuple[float, int, int, int, dict]:
    env = {**os.environ, "POD_WORKSPACE": str(ws), "RUNPOD_POD_ID": "bench",
           "GIT_CONFIG_NOSYSTEM": "1"}
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-c", RUNNER, str(SCRIPT)], env=env,
                         capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    line = next(ln for ln in res.stderr.splitlines() if ln.startswith("MAXRSS"))
    _, self_kb, child_kb, code = line.split()
    return seconds, int(self_kb), int(child_kb), code, json.loads(res.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--dirty", type=int, default=100)
    parser.add_argument("--files", type=int, default=30000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-pod-save-") as tmp:
        ws, remotes = Path(tmp) / "a" / "workspace", Path(tmp) / "a" / "remotes"
        ws.mkdir(parents=True)
        remotes.mkdir()
        make_repos(ws, remotes, args.repos, args.dirty)
        for label in (f"{args.repos} repos, {args.dirty} dirty", "same, 2nd run"):
            seconds, self_kb, child_kb, code, report = run(ws)
            pushed = sum(1 for r in report["repos"] if r["status"] == "saved")
            rows.append((label, seconds, self_kb, child_kb, code, f"{pushed} repos pushed"))
        ws2, remotes2 = Path(tmp) / "b" / "workspace", Path(tmp) / "b" / "remotes"
        ws2.mkdir(parents=True)
        remotes2.mkdir()
        make_untracked(ws2, remotes2, args.files)
        seconds, self_kb, child_kb, code, report = run(ws2)
        files = report["repos"][0]["snapshot"]["files"]
        rows.append((f"{args.files} untracked files", seconds, self_kb, child_kb, code,
                     f"{files} files in the snapshot"))
    print("| case | seconds | pod-save peak RSS | largest child RSS | exit | result |")
    print("|---|---|---|---|---|---|")
    for label, seconds, self_kb, child_kb, code, what in rows:
        print(f"| {label} | {seconds:.1f} | {self_kb / 1024:.0f} MB | {child_kb / 1024:.0f} MB "
              f"| {code} | {what} |")


if __name__ == "__main__":
    main()
