"""Every file the walk found, classified: saved (pushed, synced, declared saved by a
hook that succeeded), re-creatable (save.toml's discard), or unsaved with its size
and why. Unsaved files under one folder for one reason are listed as that folder."""

from __future__ import annotations

import collections
import os

from .policy import Policy, matches
from .snapshot import secret_reason
from .walk import Walk

UNSAVED_LISTED = 200  # entries in the report; the totals always count everything


def ignored(saver) -> set[str]:
    """Repo-relative paths git ignores ("dir/" for a whole ignored folder)."""
    out = saver.git.try_out("ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                            "--directory")
    return {p for p in out.split("\0") if p}


def _mounts() -> dict[str, str]:
    """mount point -> file system type."""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as f:
            return {p[1].replace("\\040", " "): p[2] for p in (ln.split() for ln in f)
                    if len(p) > 2}
    except OSError:
        return {}


def off_volume(path: str) -> str:
    """Where a file that a symlink leads to off the volume lives, and what a stop does
    to it (/dev/shm: RAM; /tmp, /root: the container's disk, wiped)."""
    mounts = _mounts()
    point = max((m for m in mounts if path.startswith(m.rstrip("/") + "/")), key=len,
                default="/")
    if mounts.get(point) in ("tmpfs", "ramfs"):
        kind = f"in RAM ({point}), gone when the pod stops"
    elif point == "/":
        kind = "on the container's disk, wiped when the pod stops"
    else:
        kind = f"on {point}, not kept with the volume"
    return f"off the volume: {kind}"


def _covered(rel: str, paths: set[str]) -> bool:
    parts = rel.split("/")
    return rel in paths or any("/".join(parts[:n]) + "/" in paths for n in range(1, len(parts)))


class Classifier:
    def __init__(self, walk: Walk, policy: Policy, savers: dict, wandb: list[dict],
                 hooks: list[dict], syncs: list[dict]):
        self.walk = walk
        self.policy = policy
        self.savers = savers  # repo path -> RepoSaver
        self.ignored = {p: s.ignored.result() for p, s in savers.items()}
        self.skipped = {p: {f["path"]: f["reason"] for f in s.report["skipped_files"]}
                        for p, s in savers.items()}
        self.runs = {w["path"]: w for w in wandb}
        self.hook_rules = [(h, policy.hooks.get(h["name"], [])) for h in hooks]
        self.syncs = syncs

    def verdict(self, path: str) -> str | None:
        """None when saved, else why it is not."""
        rel = self.walk.rel(path)
        for hook, patterns in self.hook_rules:
            if patterns and matches(rel, patterns):
                return None if hook["status"] in ("ok", "pending") else \
                    f"save hook {hook['name']} {hook['status']}: {hook['reason']}"
        for sync in self.syncs:
            if rel == sync["path"] or rel.startswith(sync["path"] + "/"):
                return None if sync["status"] in ("synced", "pending") else \
                    f"rclone to {sync['remote']} {sync['status']}: {sync['reason']}"
        for run in self.walk.wandb_runs:
            if path.startswith(run + os.sep):
                entry = self.runs.get(run, {"status": "synced"})  # not listed: synced
                return None if entry["status"] in ("synced", "pending") else \
                    f"W&B offline run not synced: {entry['reason']}"
        for bare in self.walk.bare:
            if path.startswith(bare + os.sep):
                return ("a bare git repository on the pod's own volume (push it to a "
                        "remote off the pod)")
        parts = rel.split("/")
        if any(p.startswith("run-") and parts[i - 1] == "wandb" for i, p in
               enumerate(parts) if i):
            return None  # an online W&B run: uploaded while it ran
        root = self._root_of(path)
        if root is None:
            secret = secret_reason(path, rel)
            where = "" if rel != path else off_volume(path) + "; "
            return where + (f"{secret}: not in git, never pushed (keep a copy elsewhere, or "
                            "discard it in .pod/save.toml)" if secret else
                            "not in a git repository, not synced, not in .pod/save.toml")
        return self._in_repo(root, path[len(root) + 1:])

    def _root_of(self, path: str) -> str | None:
        """The innermost repository holding path: its folders upwards, looked up."""
        folder = os.path.dirname(path)
        while folder and folder != os.path.dirname(folder):
            if folder in self.savers:
                return folder
            folder = os.path.dirname(folder)
        return None

    def _in_repo(self, root: str, rel: str) -> str | None:
        if _covered(rel, self.ignored[root]):
            return "ignored by git and not synced (declare it in .pod/save.toml: sync, " \
                   "a hook, or discard)"
        skipped = self.skipped[root]
        hit = rel if rel in skipped else next(  # "dir/": a whole folder left out
            (p for p in skipped if p.endswith("/") and rel.startswith(p)), None)
        if hit:
            return skipped[hit]
        problem = self.savers[root].tree_problem()
        return f"git: {problem}" if problem else None

    def classify(self) -> dict:
        ws = self.walk.workspace
        total: collections.Counter = collections.Counter()
        bad: collections.Counter = collections.Counter()
        unsaved: list[tuple[str, int, str]] = []
        saved_bytes = 0
        for path, size in self.walk.files:
            why = self.verdict(path)
            for d in _parents(path, ws):
                total[d] += 1
                if why:
                    bad[(d, why)] += 1
            if why:
                unsaved.append((path, size, why))
            else:
                saved_bytes += size
        groups: dict[tuple[str, str], int] = collections.Counter()
        for path, size, why in unsaved:
            top = path
            for d in _parents(path, ws):
                if top in self.savers or total[d] != bad[(d, why)]:
                    break  # each repository named on its own
                top = d
            groups[(top, why)] += size
        listed = [{"path": p, "bytes": b, "reason": why}
                  for (p, why), b in sorted(groups.items())]
        if self.walk.incomplete:
            listed.insert(0, {"path": ws, "bytes": 0, "reason": "not all of it was looked at "
                              "within --budget: what was not may exist only here"})
        return {"unsaved": listed[:UNSAVED_LISTED], "unsaved_count": len(listed),
                "unsaved_bytes": sum(size for _, size, _ in unsaved),
                "saved_bytes": saved_bytes,
                "discarded": [{"path": p, "rule": r, "bytes": self.walk.discarded_bytes.get(p, 0)}
                              for p, r in self.walk.discarded][:100],
                "discarded_bytes": sum(self.walk.discarded_bytes.values())}


def _parents(path: str, workspace: str):
    """Folders above path, innermost first, up to (not including) the workspace."""
    d = os.path.dirname(path)
    outside = not path.startswith(workspace + os.sep)
    while d not in (workspace, "/", "") and d != os.path.dirname(d):
        yield d
        if outside and os.path.ismount(d):  # off the volume: a mount's files, one group
            return
        d = os.path.dirname(d)
