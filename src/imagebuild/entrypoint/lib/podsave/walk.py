"""One walk over the whole workspace, following symlinks (each real folder once):
the repositories in it (at any depth, symlinked ones, ones in ignored folders),
bare repositories, W&B offline runs, and every other file with its size."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time

from . import contract
from .policy import matcher

# Symlinks into the system are not followed: a venv's python -> /usr/bin/python3, and
# the image's baked venv (contract.env's POD_VENV; none outside an image).
SYSTEM = ("/proc", "/sys", "/dev", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
          "/etc", "/boot", "/run", "/var/lib", "/snap", *filter(None, [contract.names().get("POD_VENV")]))


@dataclasses.dataclass
class Walk:
    workspace: str
    files: list[tuple[str, int]] = dataclasses.field(default_factory=list)  # path, bytes
    repos: list[str] = dataclasses.field(default_factory=list)  # working trees
    bare: list[str] = dataclasses.field(default_factory=list)
    # Git dirs of work trees (--separate-git-dir, a submodule's .git/modules/NAME):
    # bare-looking, not bare; saved with their work tree when one is found.
    gitdirs: list[str] = dataclasses.field(default_factory=list)
    wandb_runs: list[str] = dataclasses.field(default_factory=list)
    discarded: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # path, rule
    discarded_bytes: dict[str, int] = dataclasses.field(default_factory=dict)  # path -> size
    deadline: float | None = None  # time.monotonic(): stop walking, say it is incomplete
    incomplete: bool = False

    def rel(self, path: str) -> str:
        """Relative to the workspace; absolute for what lies outside it."""
        if path == self.workspace:
            return "."
        if path.startswith(self.workspace + os.sep):
            return path[len(self.workspace) + 1:]
        return path


def walk(workspace: str, discard: list[str], deadline: float | None = None) -> Walk:
    result = Walk(workspace, deadline=deadline)
    seen: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    queue = [workspace]
    match = matcher(discard)
    while queue:
        _walk_dir(queue.pop(0), result, match, seen, seen_files, queue, None)
    return result


def _is_bare(names: set[str]) -> bool:
    return {"HEAD", "objects", "refs"} <= names and "config" in names


def _not_bare(path: str) -> bool:
    """A git dir whose config says core.bare = false: some work tree's."""
    try:
        with open(os.path.join(path, "config"), encoding="utf-8", errors="replace") as f:
            return re.search(r"^\s*bare\s*=\s*false\s*$", f.read(), re.M | re.I) is not None
    except OSError:
        return False


def is_work_tree(path: str) -> bool:
    """path/.git is a folder, or a `gitdir:` file whose git dir exists and, for a
    linked worktree or a submodule, points back here. A copied pointer (uv's caches
    hold them) or one to nowhere is not a repository."""
    dot_git = os.path.join(path, ".git")
    if os.path.isdir(dot_git):
        return True
    try:
        with open(dot_git, encoding="utf-8", errors="replace") as f:
            line = f.readline().strip()
    except OSError:
        return False
    if not line.startswith("gitdir:"):
        return False
    target = os.path.realpath(os.path.join(path, line.removeprefix("gitdir:").strip()))
    if not os.path.isfile(os.path.join(target, "HEAD")):
        return False
    try:
        with open(os.path.join(target, "gitdir"), encoding="utf-8") as f:  # a linked worktree
            back = f.read().strip()
        return os.path.realpath(os.path.join(target, back)) == os.path.realpath(dot_git)
    except OSError:
        pass
    try:
        with open(os.path.join(target, "config"), encoding="utf-8", errors="replace") as f:
            m = re.search(r"^\s*worktree\s*=\s*(.+?)\s*$", f.read(), re.M)
    except OSError:
        m = None
    return m is None or os.path.realpath(os.path.join(target, m.group(1))) == \
        os.path.realpath(path)


def _top_discarded(result: Walk, path: str) -> str:
    """The discarded entry path lies in (the last one recorded above it)."""
    for top, _ in reversed(result.discarded):
        if path.startswith(top + os.sep):
            return top
    return path


def _walk_dir(path, result, match, seen, seen_files, queue, rule) -> None:
    if result.deadline is not None and time.monotonic() > result.deadline:
        result.incomplete = True
        return
    try:
        st = os.stat(path)
    except OSError:
        return
    if (st.st_dev, st.st_ino) in seen:
        return
    seen.add((st.st_dev, st.st_ino))
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError:
        result.files.append((path, 0))  # unreadable: reported, never assumed saved
        return
    names = {e.name for e in entries}
    if ".git" in names:
        if is_work_tree(path):
            result.repos.append(path)
    elif _is_bare(names) and rule is None:
        # Its files are listed; the inventory names it, unless a work tree owns it.
        (result.gitdirs if _not_bare(path) else result.bare).append(path)
    if os.path.basename(path).startswith("offline-run-") and \
            any(n.endswith(".wandb") for n in names):
        result.wandb_runs.append(path)
    for entry in entries:
        if entry.name == ".git":
            continue
        child_rule = rule or match(result.rel(entry.path))
        if rule is None and child_rule:
            result.discarded.append((entry.path, child_rule))
        if child_rule and not entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):  # what the policy lets go, with its size
                top = entry.path if rule is None else _top_discarded(result, entry.path)
                result.discarded_bytes[top] = result.discarded_bytes.get(top, 0) + \
                    entry.stat(follow_symlinks=False).st_size
        try:
            if entry.is_symlink():
                if not child_rule:
                    _follow(entry.path, result, queue, seen_files)
            elif entry.is_dir():
                _walk_dir(entry.path, result, match, seen, seen_files, queue, child_rule)
            elif entry.is_file() and not child_rule:
                est = entry.stat()
                if (est.st_dev, est.st_ino) not in seen_files:
                    seen_files.add((est.st_dev, est.st_ino))
                    result.files.append((entry.path, est.st_size))
        except OSError:
            continue  # gone while we looked


def _follow(link: str, result: Walk, queue: list[str], seen_files) -> None:
    """A symlinked folder is walked at its real place (once); a symlinked file
    outside the workspace is listed there. Inside the workspace, the walk meets
    the target anyway."""
    target = os.path.realpath(link)
    inside = (target + os.sep).startswith(result.workspace + os.sep)
    ram = target == "/dev/shm" or target.startswith("/dev/shm/")  # results kept in RAM
    if target == "/" or not ram and any(target == s or target.startswith(s + os.sep)
                                        for s in SYSTEM):
        return
    if os.path.isdir(target):
        if not inside:
            queue.append(target)
    elif os.path.isfile(target) and not inside:
        st = os.stat(target)
        if (st.st_dev, st.st_ino) not in seen_files:
            seen_files.add((st.st_dev, st.st_ino))
            result.files.append((target, st.st_size))
