"""What continuous save remembers between runs: each file's stat (and, once hashed,
its blob), so that what did not change is neither saved nor hashed again.

Racy-safe as git's index is: a file whose mtime falls in the same second as the
moment its stat was taken (or later) could change again without its stat changing
on a coarse clock, so such an entry is never trusted and the file counts as dirty.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile

VERSION = 1


def file_stat(path: str) -> list[int] | None:
    """[mtime_ns, ctime_ns, size, inode, mode] of path (not followed), or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode]


def trusted(entry: list[int] | None, now: list[int] | None, taken_at: float) -> bool:
    """The cached stat still describes the file: equal, and not racily clean (or
    absent then and now)."""
    if entry is None and now is None:
        return True
    if entry is None or now is None or entry != now:
        return False
    return entry[0] // 1_000_000_000 < int(taken_at) and \
        entry[1] // 1_000_000_000 < int(taken_at)


def git_dirs(work_tree: str) -> list[str]:
    """The work tree's git dir and, for a linked worktree, the common dir: read from
    the files themselves (no git process: this runs for every repository)."""
    dot = os.path.join(work_tree, ".git")
    if os.path.isdir(dot):
        return [dot]
    try:
        with open(dot, encoding="utf-8", errors="replace") as f:
            line = f.readline().strip()
    except OSError:
        return []
    own = os.path.realpath(os.path.join(work_tree, line.removeprefix("gitdir:").strip()))
    dirs = [own]
    try:
        with open(os.path.join(own, "commondir"), encoding="utf-8") as f:
            dirs.append(os.path.realpath(os.path.join(own, f.read().strip())))
    except OSError:
        pass
    return dirs


# What changes when a commit, branch, tag, stash, merge or remote changes.
_GIT_FILES = ("HEAD", "index", "packed-refs", "config", "ORIG_HEAD", "MERGE_HEAD",
              "CHERRY_PICK_HEAD", "REVERT_HEAD", "REBASE_HEAD", "logs/refs/stash",
              "rebase-merge", "rebase-apply")


def git_state(work_tree: str) -> dict[str, list[int] | None]:
    """Stats of the refs and state files of the work tree's repository."""
    found: dict[str, list[int] | None] = {}
    for gitdir in git_dirs(work_tree):
        for name in _GIT_FILES:
            found[os.path.join(gitdir, name)] = file_stat(os.path.join(gitdir, name))
        refs = os.path.join(gitdir, "refs")
        for top, dirs, files in os.walk(refs):
            # Remote-tracking refs hold nothing only the pod has, and pod-save's own
            # pushes move them (refs/remotes/origin/autosave/...).
            dirs[:] = sorted(d for d in dirs if not (top == refs and d == "remotes"))
            for name in sorted(files):
                path = os.path.join(top, name)
                found[path] = file_stat(path)
    return found


def tree_state(paths: list[str]) -> dict[str, list[int] | None]:
    return {p: file_stat(p) for p in paths}


def changed(old: dict, new: dict, taken_at: float) -> list[str]:
    """Paths whose stat differs (or is racy), appeared or went away."""
    out = [p for p, st in new.items() if not trusted(old.get(p), st, taken_at)]
    return out + [p for p in old if p not in new]


class StatCache:
    """One JSON file on the volume: repos[path] = {"taken_at", "files", "git",
    "result"} and blobs[repo][rel] = [stat, flags, sha]."""

    def __init__(self, path: str):
        self.path = path
        self.repos: dict[str, dict] = {}
        self.blobs: dict[str, dict[str, list]] = {}
        self.extra: dict = {}  # the last full run's hooks, syncs, ...

    @classmethod
    def load(cls, path: str) -> StatCache:
        cache = cls(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return cache  # none yet, or torn by a crash: start over (a full save)
        if data.get("version") == VERSION:
            cache.repos = data.get("repos", {})
            cache.blobs = data.get("blobs", {})
            cache.extra = data.get("extra", {})
        return cache

    def write(self) -> None:
        """Atomically (a crash mid-write leaves the old cache or none)."""
        folder = os.path.dirname(self.path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".statcache-", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            # dumps, not dump: the C encoder (dump streams through the Python one).
            f.write(json.dumps({"version": VERSION, "repos": self.repos,
                                "blobs": self.blobs, "extra": self.extra}))
        os.replace(tmp, self.path)

    def blob(self, repo: str, rel: str, now: list[int] | None, flags: str,
             taken_at: float) -> str | None:
        """The blob rel was hashed to, when its stat says it is unchanged since."""
        entry = self.blobs.get(repo, {}).get(rel)
        if entry and entry[1] == flags and trusted(entry[0], now, taken_at):
            return entry[2]
        return None


def is_regular(st: list[int] | None) -> bool:
    return st is not None and stat.S_ISREG(st[4])
