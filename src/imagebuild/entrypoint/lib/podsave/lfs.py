"""git-lfs content: a pushed commit holds only pointers; the bytes live in the LFS
store. LFS's pre-push hook uploads them, unless `--no-verify`, a core.hooksPath without
it, or GIT_LFS_SKIP_PUSH kept it from running. So every LFS object that the commits
pod-save saves point to, and that is on this pod, is pushed to the remote's LFS store
with `git lfs push --object-id`: git-lfs asks the store (its batch API) which objects
it lacks and uploads those, exiting 0 only when the store holds them all. Objects
that do not get there are named, with the work-tree files that hold them."""

from __future__ import annotations

import os
import re

from .gitcmd import Git, common_dir, git_reason
from .uncommitted import _blobs  # the batched blob reader the secret scan uses

POINTER_MAX = 1024  # a pointer file is ~130 bytes; git-lfs never reads one over 1 KiB
_POINTER = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\n"
                      rb"(?:.*\n)*?oid sha256:([0-9a-f]{64})\n(?:.*\n)*?size (\d+)\n", re.M)
CHUNK = 200  # object ids per `git lfs push` command line


def store_dir(git: Git) -> str | None:
    """This repository's local LFS store, when it has one (lfs.storage honoured)."""
    common = common_dir(git.path)
    if common is None:
        return None
    path = os.path.join(common, "lfs")
    try:
        with open(os.path.join(common, "config"), encoding="utf-8", errors="replace") as f:
            if re.search(r"^\s*\[lfs\]", f.read(), re.M | re.I):  # may set lfs.storage
                # relative to the git dir, as git-lfs reads it
                path = os.path.join(common, git.try_out("config", "lfs.storage") or path)
    except OSError:
        pass
    path = os.path.join(path, "objects")
    return path if os.path.isdir(path) else None


def local_object(store: str, oid: str) -> str:
    return os.path.join(store, oid[:2], oid[2:4], oid)


def referenced(git: Git, tips: list[str]) -> dict[str, tuple[int, str]]:
    """oid -> (size, a path it is at) for the LFS pointers the tips' history holds."""
    paths: dict[str, str] = {}
    out = git.out("rev-list", "--objects", "--stdin", stdin="".join(
        t + "\n" for t in tips).encode())
    for line in out.splitlines():
        sha, _, path = line.partition(" ")
        if path:  # commits have no path; trees and blobs do
            paths.setdefault(sha, path)
    if not paths:
        return {}
    check = git.out("cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)",
                    stdin="".join(s + "\n" for s in paths).encode())
    small = [sha for sha, kind, size in (ln.split() for ln in check.splitlines()
                                         if len(ln.split()) == 3)
             if kind == "blob" and int(size) <= POINTER_MAX]
    found = {}
    for sha, data in _blobs(git, small) if small else ():
        m = _POINTER.match(data)
        if m:
            found[m.group(1).decode()] = (int(m.group(2)), paths[sha])
    return found


def save(git: Git, remote: str, tips: list[str], dry_run: bool) -> dict | None:
    """Push the tips' LFS objects that are on this pod to remote's LFS store. None when
    the repository holds no LFS object; else a report entry (its "unsaved": oid ->
    (size, path) of what is not in the store)."""
    store = store_dir(git)
    if store is None or not tips:
        return None
    objects = {oid: v for oid, v in referenced(git, tips).items()
               if os.path.isfile(local_object(store, oid))}
    if not objects:
        return None
    entry = {"remote": remote, "objects": len(objects),
             "bytes": sum(size for size, _ in objects.values()),
             "status": "pending", "reason": None, "unsaved": {}}
    if dry_run:
        return entry
    oids = sorted(objects)
    for start in range(0, len(oids), CHUNK):
        chunk = oids[start:start + CHUNK]
        res = git.run("lfs", "push", "--object-id", remote, *chunk)
        if res.rc != 0:
            entry["reason"] = entry["reason"] or "git lfs push: " + git_reason(res)
            entry["unsaved"].update({oid: objects[oid] for oid in chunk})
    entry["status"] = "failed" if entry["unsaved"] else "pushed"
    return entry
