"""Helpers for tests/test_safe_terminate.py: git remotes on the host that pods reach
over the network (and that outlive a terminated pod's volume), the test pod with
git work made in its workspace, and a ledger of the work each scenario made."""

from __future__ import annotations

import hashlib
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from image.pod import Pod, Run

GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid",
       "-c", "init.defaultBranch=main", "-c", "safe.directory=*"]
# The same, for scripts run in the pod.
POD_GIT = "git -c user.name=Test -c user.email=test@example.invalid -c init.defaultBranch=main"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"git {' '.join(args)} in {cwd}: {done.stderr}"
    return done.stdout.strip()


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Remotes:
    """Bare repositories in a host folder, served read-write by `git daemon` on the
    Docker bridge's gateway address: pods push to ``git://GATEWAY:PORT/NAME.git``."""

    def __init__(self, root: Path, host: str):
        self.root = root
        self.host = host
        self.port = free_port(host)
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", f"--listen={host}", f"--port={self.port}",
             f"--base-path={root}", "--export-all", "--enable=receive-pack",
             "--allow-override=receive-pack", "--informative-errors", str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((host, self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and self.proc.poll() is None, "git daemon did not start"
                time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def path(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def bare(self, name: str) -> str:
        git(self.root, "init", "-q", "--bare", str(self.path(name)))
        return self.url(name)

    def url(self, name: str) -> str:
        return f"git://{self.host}:{self.port}/{name}.git"

    def refs(self, name: str) -> dict[str, str]:
        out = git(self.path(name), "for-each-ref", "--format=%(refname) %(objectname)")
        return dict(line.split(" ") for line in out.splitlines())

    def has_commit(self, name: str, sha: str) -> bool:
        done = subprocess.run([*GIT, "for-each-ref", "--contains", sha], cwd=self.path(name),
                              capture_output=True, text=True, check=False)
        return done.returncode == 0 and bool(done.stdout.strip())

    def has_file(self, name: str, rel: str, digest: str) -> bool:
        for ref in self.refs(name):
            done = subprocess.run([*GIT, "cat-file", "blob", f"{ref}:{rel}"], cwd=self.path(name),
                                  capture_output=True, check=False)
            if done.returncode == 0 and hashlib.sha256(done.stdout).hexdigest() == digest:
                return True
        return False

    def show(self, name: str, ref: str, rel: str) -> str:
        return git(self.path(name), "show", f"{ref}:{rel}")


class Box(Pod):
    """A pod (the one test pod, attached to a container imagebuild started) with the
    safe-terminate extras: its POD argument and snapshot id, and making git work in
    its workspace, in the container while it runs, else on its volume."""

    def __init__(self, ref: str, pod_id: str, container: str, volume: str, image: str,
                 identity: Path, known_hosts: Path):
        super().__init__(image, identity, known_hosts, volume=volume, backend=Run(container))
        self.ref = ref  # the POD argument
        self.pod_id = pod_id  # the id in snapshot refs: autosave/<pod_id>/...

    def gone(self) -> bool:
        return not self.exists() and not self.volume_exists()

    def in_workspace(self, script: str, check: bool = True) -> str:
        """``script`` in /workspace, never creating a volume that is gone."""
        prelude = f"set -euo pipefail; G='{POD_GIT}'; cd /workspace; "
        if self.running():
            done = self.run(prelude + script)
        else:
            assert self.volume_exists(), f"volume {self.volume} is gone"
            done = self.on_volume(prelude + script)
        assert not check or done.returncode == 0, f"in the pod: {script}\n{done.stdout}{done.stderr}"
        return done.stdout.strip()

    def reset(self) -> None:
        """An empty workspace: no repositories, W&B runs or save hooks."""
        self.in_workspace("rm -rf /workspace/code /workspace/wandb /workspace/.pod/hooks/save.d; "
                          "mkdir -p /workspace/code /workspace/.pod/hooks/save.d")

    # -- making work in the pod ------------------------------------------------------

    def repo(self, rel: str, url: str | None = None, *, push: bool = True) -> str:
        """code/REL with one commit (and origin=URL, pushed with upstream); its sha."""
        lines = [f"mkdir -p code/{rel} && cd code/{rel}", "$G init -q",
                 f"printf '# {rel}\\n' > README.md", "$G add README.md", "$G commit -qm initial"]
        if url:
            lines.append(f"$G remote add origin {url}")
            if push:
                lines.append("$G push -q -u origin main")
        lines.append("$G rev-parse HEAD")
        return self.in_workspace(" && ".join(lines))

    def commit(self, rel: str, name: str, content: str | None = None) -> str:
        content = content if content is not None else f"{name} of {rel}\n"
        return self.in_workspace(f"cd code/{rel} && mkdir -p \"$(dirname {name})\" && "
                                 f"printf %s {shlex.quote(content)} > {name} && $G add {name} && "
                                 f"$G commit -qm 'add {name}' && $G rev-parse HEAD")

    def write(self, rel: str, name: str, content: str) -> None:
        self.in_workspace(f"cd code/{rel} && mkdir -p \"$(dirname {name})\" && printf %s {shlex.quote(content)} > {name}")

    def git(self, rel: str, *args: str) -> str:
        return self.in_workspace(f"cd code/{rel} && $G {' '.join(shlex.quote(a) for a in args)}")

    def tree_state(self, rel: str) -> str:
        """What pod-save promised not to touch: index, HEAD, branches, status, files."""
        return self.in_workspace(
            f"cd code/{rel} && sha256sum .git/index .git/HEAD && "
            "$G for-each-ref --format='%(refname) %(objectname)' refs/heads && "
            "$G --no-optional-locks status --porcelain=v1 --untracked-files=all && "
            "find . -path ./.git -prune -o -type f -print0 | sort -z | xargs -0 sha256sum")


@dataclass
class Item:
    box: Box
    repo: str  # under /workspace/code
    remote: str | None  # name in Remotes
    sha: str | None = None  # a commit
    file: str | None = None  # or a file (path in the repo) ...
    digest: str | None = None  # ... with this content


@dataclass
class Ledger:
    """Work made in pods, and where it is afterwards. Lost = neither on its remote
    nor in the pod's volume. Totals run across all scenarios of the module."""

    remotes: Remotes
    items: list[Item] = field(default_factory=list)
    checked: int = 0
    lost: list[str] = field(default_factory=list)

    def commit(self, box: Box, repo: str, remote: str | None, sha: str) -> str:
        self.items.append(Item(box, repo, remote, sha=sha))
        return sha

    def file(self, box: Box, repo: str, remote: str | None, rel: str, content: str) -> None:
        digest = hashlib.sha256(content.encode()).hexdigest()
        self.items.append(Item(box, repo, remote, file=rel, digest=digest))

    def on_remote(self, item: Item) -> bool:
        if item.remote is None:
            return False
        if item.sha:
            return self.remotes.has_commit(item.remote, item.sha)
        return self.remotes.has_file(item.remote, item.file, item.digest)

    def in_volume(self, items: list[Item]) -> list[bool]:
        box = items[0].box
        if not box.volume_exists():
            return [False] * len(items)
        checks = []
        for item in items:
            where = f"code/{item.repo}"
            if item.sha:
                checks.append(f"$G -C {where} cat-file -e {item.sha}^{{commit}} 2>/dev/null")
            else:
                checks.append(f"echo '{item.digest}  {where}/{item.file}' | sha256sum -c --status 2>/dev/null")
        script = "; ".join(f"if {check}; then echo 1; else echo 0; fi" for check in checks)
        return [line == "1" for line in box.in_workspace(script).split()]

    def settle(self) -> list[str]:
        """Check this scenario's work, add it to the totals, and return what is lost."""
        lost = []
        pending = [item for item in self.items if not self.on_remote(item)]
        by_box: dict[int, list[Item]] = {}
        for item in pending:
            by_box.setdefault(id(item.box), []).append(item)
        for items in by_box.values():
            lost += [self.describe(i) for i, there in zip(items, self.in_volume(items), strict=True) if not there]
        self.checked += len(self.items)
        self.lost += lost
        self.items = []
        return lost

    @staticmethod
    def describe(item: Item) -> str:
        what = f"commit {item.sha[:10]}" if item.sha else f"file {item.file}"
        return f"{what} of code/{item.repo} in {item.box.name}"
