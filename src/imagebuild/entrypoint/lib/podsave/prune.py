"""Old autosave snapshots pruned: a watcher saving every 15 minutes would otherwise
add a branch to the user's remote four times an hour, for ever.

Only this pod's work-tree snapshots of this one clone (refs/heads/autosave/<pod>/
<timestamp>-<clone key>, no suffix) are pruned, newest cfg.keep kept, and only
after this run's snapshot of that clone is on the remote. Branches, stashes, tags
and the rest saved beside are never pruned. An old snapshot goes only when the
commits under it (its parents) are on a ref the remote keeps: a reset or rebased
branch's old commits, held only by that snapshot, keep it."""

from __future__ import annotations

import re

from .gitcmd import Git
from .refs import RemoteView


def prune(git: Git, view: RemoteView, snap: dict, pod_id: str, key: str, keep: int,
          dry_run: bool) -> list[str]:
    """Delete the old snapshots of this clone on view's remote; the refs deleted."""
    if dry_run or snap is None or snap["status"] not in ("pushed", "up-to-date"):
        return []
    mine = re.compile(rf"refs/heads/autosave/{re.escape(pod_id)}/(\d{{8}}T\d{{6}}Z)-{key}")
    ours = {ref: sha for ref, sha in view.refs.items() if mine.fullmatch(ref)}
    ours[snap["ref"]] = snap["commit"]
    newest = sorted(ours, key=lambda r: mine.fullmatch(r).group(1), reverse=True)
    old = [r for r in newest[keep:] if r != snap["ref"]]
    if not old:
        return []
    kept = {sha for ref, sha in view.refs.items() if ref not in old} | {snap["commit"]}
    tips = [t for t in view.tips if t in kept] + [snap["commit"]]  # those here to walk
    gone = [r for r in old if _held_elsewhere(git, ours[r], tips)]
    if not gone:
        return []
    res = git.run("push", "--porcelain", view.remote, *[f":{r}" for r in gone])
    return [r for r in gone if any(line.startswith("-\t") and f":{r}\t" in line + "\t"
                                   for line in res.out.splitlines())]


def _held_elsewhere(git: Git, sha: str, tips: list[str]) -> bool:
    """The snapshot's parents are reachable from a ref that stays (its own tree is
    the past state of the work tree, superseded by the newer snapshots)."""
    if not git.has_commit(sha):
        return False  # not here to look at: kept
    parents = git.try_out("show", "-s", "--format=%P", sha)
    for parent in parents.split():
        stdin = (parent + "\n" + "".join(f"^{t}\n" for t in tips)).encode()
        res = git.run("rev-list", "-n1", "--stdin", stdin=stdin)
        if res.rc != 0 or res.out.strip():
            return False
    return True
