"""pod-restore --latest: which autosave snapshot is a clone's newest, on its remote.

Snapshot refs are autosave/<pod>/<UTC timestamp>-<8 hex of the clone's real path>
(cli.clone_key): a fresh pod that clones the repository to the same path finds its
own snapshots, whatever the old pod's id. The other autosave refs (…-branch-NAME,
…-stash-N, …) are not snapshots of the work tree and are left alone."""

from __future__ import annotations

import os
import re
import subprocess

from .cli import clone_key

SNAPSHOT_REF = re.compile(r"^refs/heads/(autosave/[^/]+/(\d{8}T\d{6}Z)-([0-9a-f]{8}))$")


def _git(cwd: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=False, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})


def snapshots(top: str, remote: str) -> list[tuple[str, str, str, str]]:
    """(timestamp, key, branch name, sha) of every snapshot ref on the remote."""
    res = _git(top, "ls-remote", remote, "refs/heads/autosave/*")
    if res.returncode != 0:
        raise RuntimeError(f"git ls-remote {remote}: "
                           + (res.stderr.strip().splitlines() or ["failed"])[-1])
    found = []
    for line in res.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        m = SNAPSHOT_REF.match(ref)
        if m:
            found.append((m.group(2), m.group(3), m.group(1), sha))
    return found


def newest(top: str, remote: str) -> tuple[str | None, str]:
    """(the newest snapshot branch of this clone, or None; why that one or none).
    This clone's own path key first; another path's only when no snapshot has this
    one (the clone was made somewhere else this time)."""
    found = snapshots(top, remote)
    if not found:
        return None, f"no autosave snapshot on {remote}"
    key = clone_key(top)
    own = [f for f in found if f[1] == key]
    pick = max(own or found)
    why = "newest autosave of this path" if own else \
        "no autosave of this path; the newest of any clone of this repository"
    return pick[2], why


def fetch(top: str, remote: str, branch: str) -> str:
    """The snapshot fetched under refs/pod-restore/; its commit."""
    res = _git(top, "fetch", "-q", remote, f"+refs/heads/{branch}:refs/pod-restore/{branch}")
    if res.returncode != 0:
        raise RuntimeError(f"git fetch {remote} {branch}: "
                           + (res.stderr.strip().splitlines() or ["failed"])[-1])
    return _git(top, "rev-parse", f"refs/pod-restore/{branch}").stdout.strip()


def _changed(top: str, old: str, new: str) -> list[str]:
    out = _git(top, "diff-tree", "-r", "-z", "--no-renames", "--name-only", old, new).stdout
    return [p for p in out.split("\0") if p]


def behind_head(top: str, snapshot: str) -> list[str] | None:
    """None when HEAD is the snapshot's parent (or unrelated to it): restore it whole.
    Else HEAD has commits made after the snapshot (committed and pushed later): the
    paths whose saved change no later commit touched, the work that exists only in
    the snapshot (empty: nothing to restore)."""
    parent = _git(top, "rev-parse", "-q", "--verify", f"{snapshot}^").stdout.strip()
    head = _git(top, "rev-parse", "-q", "--verify", "HEAD").stdout.strip()
    if not parent or not head or parent == head or \
            _git(top, "merge-base", "--is-ancestor", parent, head).returncode != 0:
        return None
    later = set(_changed(top, parent, head))
    return [p for p in _changed(top, parent, snapshot) if p not in later]


def clones(workspace: str) -> list[str]:
    """Every work tree in the workspace (the walk pod-save uses)."""
    from .walk import walk
    return sorted(walk(workspace, []).repos)
