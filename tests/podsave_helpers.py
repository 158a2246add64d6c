"""Helpers for tests/test_pod_save*.py: a pod's workspace on the host (``Workspace``) with real bare
git remotes, a way to run `pod-save` against it, and a ledger of the work a test made
so that each test can prove none of it was lost."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "src/imagebuild/entrypoint/bin/pod-save"
POD_ID = "testpod"
AUTOSAVE = f"refs/heads/autosave/{POD_ID}/"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # what an unborn HEAD compares against

GIT_IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid",
                "-c", "safe.directory=*"]


def git(cwd: Path | str, *args: str, check: bool = True, env: dict | None = None) -> str:
    res = subprocess.run(
        ["git", *GIT_IDENTITY, "-c", "init.defaultBranch=main", *args],
        cwd=cwd, env=env, capture_output=True, text=True, errors="surrogateescape", timeout=30,
        check=False,
    )
    if check and res.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} in {cwd}: {res.stderr}")
    return res.stdout.strip()


def remote_refs(remote: Path) -> dict[str, str]:
    """refname -> sha of a bare remote."""
    out = git(remote, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ") for line in out.splitlines())


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Saved:
    rc: int
    out: str
    err: str
    seconds: float
    report: dict | None  # parsed --json output

    def repo(self, path: Path) -> dict:
        return next(r for r in self.report["repos"] if r["path"] == str(path))


class Workspace:
    """A pod's /workspace in tmp_path, with remotes beside it; pod-save runs on the host.

    Not a pod (no container, no SSH; that is tests/image/pod.py): a folder and `save()`."""

    def __init__(self, root: Path):
        self.root = root
        self.path = root / "workspace"
        self.code = self.path / "code"
        self.remotes = root / "remotes"
        self.home = root / "home"
        for d in (self.code, self.remotes, self.home):
            d.mkdir(parents=True, exist_ok=True)
        # No host config leaks in: empty HOME, no system gitconfig.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "LANG": "C.UTF-8",
            "POD_WORKSPACE": str(self.path),
            "RUNPOD_POD_ID": POD_ID,
            "POD_SAVE_GIT_TIMEOUT": "20",
        }

    def bare(self, name: str) -> Path:
        path = self.remotes / f"{name}.git"
        git(self.remotes, "init", "-q", "--bare", str(path), env=self.env)
        return path

    def repo(self, rel: str, remote: Path | None = None, *, pushed: bool = True) -> Path:
        """A repo at code/<rel> with one commit, pushed to remote (upstream set)."""
        path = self.code / rel
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", env=self.env)
        (path / "README.md").write_text(f"# {rel}\n")
        (path / ".gitignore").write_text("*.log\n")
        git(path, "add", "-A", env=self.env)
        git(path, "commit", "-q", "-m", "initial", env=self.env)
        if remote is not None:
            git(path, "remote", "add", "origin", str(remote), env=self.env)
            if pushed:
                git(path, "push", "-q", "-u", "origin", "main", env=self.env)
        return path

    def commit(self, repo: Path, name: str, content: str | None = None) -> str:
        (repo / name).write_text(content if content is not None else f"{name}\n")
        git(repo, "add", name, env=self.env)
        git(repo, "commit", "-q", "-m", f"add {name}", env=self.env)
        return git(repo, "rev-parse", "HEAD", env=self.env)

    def policy(self, text: str) -> Path:
        """Write /workspace/.pod/save.toml."""
        path = self.path / ".pod" / "save.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def save(self, *args: str, env: dict | None = None, timeout: float = 60,
             python: str = sys.executable) -> Saved:
        start = time.monotonic()
        res = subprocess.run([python, str(SCRIPT), *args], env={**self.env, **(env or {})},
                             capture_output=True, text=True, timeout=timeout, check=False)
        report = json.loads(res.stdout) if "--json" in args and res.stdout.strip() else None
        return Saved(res.returncode, res.stdout, res.stderr, time.monotonic() - start, report)


def worktree_state(repo: Path) -> dict:
    """Everything pod-save promised not to touch, byte for byte."""
    gitdir = Path(git(repo, "rev-parse", "--absolute-git-dir"))
    index = gitdir / "index"
    # Hash the index before running anything; --no-optional-locks keeps `git status`
    # from refreshing (rewriting) it.
    state = {"index": hashlib.sha256(index.read_bytes()).hexdigest() if index.exists() else None,
             "HEAD": (gitdir / "HEAD").read_text()}
    q = ["--no-optional-locks"]
    state["status"] = git(repo, *q, "status", "--porcelain=v1", "-z", "--untracked-files=all",
                          "--ignored")
    # Plumbing, not `git diff`: the porcelain refreshes (rewrites) a racily clean index
    # whatever --no-optional-locks says, which made this guard see its own write.
    head = git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False).strip() or EMPTY_TREE
    state["diff"] = git(repo, *q, "diff-files", "-p", "--binary")
    state["cached"] = git(repo, *q, "diff-index", "--cached", "-p", "--binary", head)
    state["branches"] = git(repo, "for-each-ref", "--format=%(refname) %(objectname)",
                            "refs/heads")
    state["stash"] = git(repo, "stash", "list", "--format=%H")
    files = {}
    for path in sorted(repo.rglob("*")):
        if ".git" not in path.relative_to(repo).parts and path.is_file():
            files[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    state["files"] = files
    return state


class Ledger:
    """Work made on the pod: commits and file contents, with the remote each belongs to.

    Lost = neither on the remote nor still on the pod. Every test asserts 0 lost;
    tests where pod-save succeeds also assert everything reached the remote.
    """

    def __init__(self):
        self.commits: list[tuple[Path, Path | None, str]] = []
        self.files: list[tuple[Path, Path | None, str, bytes]] = []

    def commit(self, repo: Path, remote: Path | None, sha: str) -> str:
        self.commits.append((repo, remote, sha))
        return sha

    def file(self, repo: Path, remote: Path | None, rel: str) -> None:
        self.files.append((repo, remote, rel, (repo / rel).read_bytes()))

    @staticmethod
    def _commit_on(git_dir: Path, sha: str) -> bool:
        return bool(git(git_dir, "for-each-ref", "--contains", sha, check=False))

    @staticmethod
    def _file_on(remote: Path, rel: str, content: bytes) -> bool:
        for ref in remote_refs(remote):
            res = subprocess.run(["git", *GIT_IDENTITY, "cat-file", "blob", f"{ref}:{rel}"],
                                 cwd=remote,
                                 capture_output=True, check=False)
            if res.returncode == 0 and res.stdout == content:
                return True
        return False

    def not_on_remote(self) -> list[str]:
        missing = [f"commit {sha[:10]} of {repo.name}" for repo, remote, sha in self.commits
                   if remote is None or not self._commit_on(remote, sha)]
        missing += [f"file {rel} of {repo.name}" for repo, remote, rel, content in self.files
                    if remote is None or not self._file_on(remote, rel, content)]
        return missing

    def lost(self) -> list[str]:
        lost = []
        for repo, remote, sha in self.commits:
            on_pod = self._commit_on(repo, sha) or sha in git(repo, "rev-parse", "HEAD")
            if not on_pod and not (remote and self._commit_on(remote, sha)):
                lost.append(f"commit {sha[:10]} of {repo.name}")
        for repo, remote, rel, content in self.files:
            path = repo / rel
            on_pod = path.is_file() and path.read_bytes() == content
            if not on_pod and not (remote and self._file_on(remote, rel, content)):
                lost.append(f"file {rel} of {repo.name}")
        return lost


RESTORE = SCRIPT.parent / "pod-restore"


def unsaved(saved) -> dict[str, str]:
    return {u["path"]: u["reason"] for u in saved.report["inventory"]["unsaved"]}


def assert_named(saved, path: Path | str, *words: str) -> str:
    """Exit 1, and path (or a folder above it) listed as unsaved with these words."""
    assert saved.rc == 1, saved.out + saved.err
    assert saved.report["ok"] is False
    items = unsaved(saved)
    hit = next((p for p in items if str(path) == p or str(path).startswith(p + "/")), None)
    assert hit, f"{path} not named in {items}"
    for word in words:
        assert word in items[hit], items[hit]
    return items[hit]


def work_files(root: Path, exclude: set[str] = frozenset()) -> dict[str, tuple]:
    """rel -> (content or link target, executable) for what a snapshot must hold: the
    work tree minus .git, embedded repositories, ignored files and `exclude`."""
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d != ".git" and not (here / d / ".git").exists()]
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            if name == ".git":
                continue  # a linked worktree's or submodule's pointer
            path = here / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path), False)
            elif path.is_file():
                found[rel] = (path.read_bytes(), bool(path.stat().st_mode & 0o100))
    if found:
        ignored = subprocess.run(
            ["git", *GIT_IDENTITY, "check-ignore", "--no-index", "--stdin", "-z"], cwd=root,
            input=os.fsencode("\0".join(found)), capture_output=True, check=False).stdout
        for rel in os.fsdecode(ignored).split("\0"):
            found.pop(rel, None)
    for rel in exclude:
        found.pop(rel, None)
    return found


def restored(workspace: Workspace, remote: Path, ref: str, name: str = "restored") -> Path:
    """A fresh clone of remote with pod-restore REF run in it."""
    clone = workspace.root / name
    git(workspace.root, "clone", "-q", str(remote), str(clone), env=workspace.env)
    res = subprocess.run([sys.executable, str(RESTORE), ref.removeprefix("refs/heads/")],
                         cwd=clone, env=workspace.env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 0, res.stderr
    return clone


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A fake /workspace with pod-save's environment (imported by the pod-save test modules)."""
    return Workspace(tmp_path)
