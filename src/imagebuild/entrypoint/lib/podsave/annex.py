"""git-annex content: a pushed branch holds only symlinks to keys; the bytes live in
.git/annex/objects. Before the refs are planned, the content present here is copied to
the remote with `git annex copy --to REMOTE --all` (git-annex checks the remote for each
key and records where it is in the git-annex branch, pushed afterwards with the other
branches). Keys still not on the remote (`git annex findkeys --not --in REMOTE`: a
GitHub remote cannot hold annex content) are named with their size; without git-annex
installed, every key here is."""

from __future__ import annotations

import os
import shutil

from .gitcmd import Git, common_dir, git_reason


def objects_dir(git: Git) -> str | None:
    common = common_dir(git.path)
    path = os.path.join(common, "annex", "objects") if common else None
    return path if path and os.path.isdir(path) else None


def local_keys(objects: str) -> dict[str, int]:
    """key -> size of the content present here (objects/XX/YY/KEY/KEY)."""
    found = {}
    for top, _, names in os.walk(objects):
        for name in names:
            if name == os.path.basename(top):
                try:
                    found[name] = os.lstat(os.path.join(top, name)).st_size
                except OSError:
                    continue
    return found


def save(git: Git, remote: str | None, env: dict[str, str], dry_run: bool) -> dict | None:
    """None when the repository holds no annex content; else a report entry whose
    "unsaved" maps each key not on remote to its size and "files" the work-tree
    files holding them."""
    objects = objects_dir(git)
    keys = local_keys(objects) if objects else {}
    if not keys:
        return None
    entry = {"remote": remote, "keys": len(keys), "bytes": sum(keys.values()),
             "status": "pending", "reason": None, "unsaved": {}, "files": {}}
    if dry_run:
        return entry
    if remote is None:
        entry["reason"] = "no git remote to copy it to"
    elif shutil.which("git-annex") is None:
        entry["reason"] = "git-annex is not installed here to copy it (apt-get install git-annex)"
    else:
        copied = git.run("annex", "copy", "--to", remote, "--all", env=env)
        # A remote without annex content (GitHub: no git-annex uuid) cannot be asked
        # --in: then every key here is unsaved.
        where = ["--not", "--in", remote]
        left = git.run("annex", "findkeys", *where, "--format=${key}\n", env=env)
        if left.rc != 0:
            where = []
            entry["reason"] = git_reason(left, remote=False).removeprefix("git-annex: ")
        else:
            entry["unsaved"] = {k: keys[k] for k in left.out.split() if k in keys}
        if copied.rc != 0:
            entry["reason"] = "git annex copy: " + git_reason(copied)
        if entry["unsaved"] or not where:
            files = git.run("annex", "find", *where, "--format=${file}\t${bytesize}\n",
                            env=env)
            for line in files.out.splitlines() if files.rc == 0 else []:
                rel, _, size = line.rpartition("\t")
                entry["files"][rel] = int(size) if size.isdigit() else 0
        if where:
            entry["status"] = "failed" if entry["unsaved"] else "pushed"
            return entry
    entry["unsaved"], entry["status"] = dict(keys), "failed"
    return entry
