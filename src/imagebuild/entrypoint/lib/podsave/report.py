"""pod-save's report for people, the one renderer: the pod's `pod-save` prints it, and
the host (`imagebuild pod save/stop/terminate`) loads this same file from its package
to render the JSON report it reads over SSH. Stdlib only.

The JSON report carries ``"format": FORMAT``; a report without it comes from an older
image, so every key is read with a default: a host never fails on an older pod's report.
"""

from __future__ import annotations

import os

FORMAT = 1  # the JSON report's shape (bin/pod-save documents it); a new key keeps it
_FAILED = ("failed", "timeout")
DISCARDED_LISTED = 20  # biggest first; the total counts everything


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _short(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def _relative(report: dict):
    """Paths under the report's workspace as relative ones (absolute without one)."""
    ws = report.get("workspace")

    def rel(path: str) -> str:
        return os.path.relpath(path, ws) if ws and path.startswith(ws + os.sep) else path
    return rel


def _skip_reason(skipped: dict) -> str:
    return skipped.get("reason") or "too big for a snapshot"


def _row(status: str, what: str, why: str | None = None) -> str:
    label = "FAILED" if status in _FAILED else status
    return f"  {label:<10} {what}" + (f": {why}" if why else "")


def _sub(status: str, what: str, why: str | None = None) -> str:
    return f"      {status:<10} {what}" + (f": {why}" if why else "")


def _repo_lines(repo: dict, rel) -> list[str]:
    where = f" -> {repo['remote']} ({repo.get('url')})" if repo.get("remote") else ""
    out = [_row(repo["status"], rel(repo["path"]) + where, repo.get("reason"))]
    for b in repo.get("branches", []):
        if b["status"] != "up-to-date":
            ahead = f", {b['ahead']} commit(s)" if b.get("ahead") else ""
            beside = f" as {_short(b['ref'])}" if b.get("diverged") else ""
            out.append(_sub(b["status"], f"branch {b['name']}{ahead}{beside}", b.get("reason")))
    snap = repo.get("snapshot")
    if snap:
        files = f" ({snap['files']} changed file(s))" if snap.get("files") is not None else ""
        out.append(_sub(snap["status"], f"snapshot {_short(snap['ref'])}{files}", snap.get("reason")))
    for item in repo.get("stashes", []) + repo.get("refs", []):
        if item["status"] != "up-to-date":
            out.append(_sub(item["status"], item.get("name") or "stash " + _short(item["ref"]),
                            item.get("reason")))
    for kind, e in [("git-lfs", e) for e in repo.get("lfs", [])] + (
            [("git-annex", repo["annex"])] if repo.get("annex") else []):
        count = e.get("objects", e.get("keys"))
        out.append(_sub(e["status"], f"{kind} content, {count} object(s), {_size(e.get('bytes', 0))}, "
                        f"to {e.get('remote')}", e.get("reason")))
    if repo.get("pruned"):
        out.append(_sub("pruned", f"{len(repo['pruned'])} older autosave snapshot(s) of this clone"))
    for f in repo.get("skipped_files", []):
        out.append(f"      not saved  {f['path']} ({_size(f['bytes'])}): {_skip_reason(f)}")
    return out


def _other_unsaved(report: dict) -> list[dict]:
    """Inventory entries that no repo, run, hook or rclone item already names."""
    named = {f"{repo['path']}/{f['path']}" for repo in report.get("repos", [])
             for f in repo.get("skipped_files", [])}
    listed_elsewhere = ("git: ", "W&B", "save hook", "rclone")
    return [item for item in (report.get("inventory") or {}).get("unsaved", [])
            if item["path"] not in named and not item["reason"].startswith(listed_elsewhere)]


def lost_lines(report: dict) -> list[str]:
    """One line per thing that exists only on the pod: what terminating would lose."""
    rel = _relative(report)
    lost: list[str] = []
    for repo in report.get("repos", []):
        if repo["status"] != "failed":
            continue
        where = rel(repo["path"])
        before = len(lost)
        for branch in repo.get("branches", []):
            if branch["status"] == "failed":
                ahead = f", {branch['ahead']} commit(s)" if branch.get("ahead") else ""
                lost.append(f"{where}: branch {branch['name']}{ahead} ({branch.get('reason')})")
        snap = repo.get("snapshot")
        if snap and snap["status"] == "failed":
            files = f", {snap['files']} file(s)" if snap.get("files") is not None else ""
            lost.append(f"{where}: uncommitted work{files} ({snap.get('reason')})")
        for stash in repo.get("stashes", []):
            if stash["status"] == "failed":
                lost.append(f"{where}: stash {_short(stash['ref'])} ({stash.get('reason')})")
        for ref in repo.get("refs", []):
            if ref["status"] == "failed":
                lost.append(f"{where}: {ref['name']} ({ref.get('reason')})")
        for skipped in repo.get("skipped_files", []):
            lost.append(f"{where}: file {skipped['path']} ({_skip_reason(skipped)})")
        if len(lost) == before:
            lost.append(f"{where}: {repo.get('reason') or 'not saved'}")
    for run in report.get("wandb", []):
        if run["status"] == "failed":
            lost.append(f"wandb run {rel(run['path'])} ({run.get('reason')})")
    for hook in report.get("hooks", []):
        if hook["status"] in _FAILED:
            lost.append(f"save hook {hook['name']}: {hook['status']} ({hook.get('reason')})")
    for sync in report.get("sync", []):
        if sync["status"] == "failed":
            lost.append(f"rclone {sync['path']} -> {sync['remote']} ({sync.get('reason')})")
    for item in _other_unsaved(report):
        lost.append(f"{rel(item['path'])}, {_size(item['bytes'])} ({item['reason']})")
    return lost


def discarded_lines(inv: dict, rel) -> list[str]:
    """What the policy let go (re-creatable, lost with the volume), with sizes."""
    items = sorted(inv.get("discarded", []), key=lambda d: -(d.get("bytes") or 0))
    if not items:
        return []
    total = inv.get("discarded_bytes", sum(d.get("bytes") or 0 for d in items))
    out = [f"discarded by the policy ({_size(total)}, re-creatable; lost with this pod's "
           "volume):"]
    out += [f"  discarded  {rel(d['path'])} ({_size(d.get('bytes') or 0)}) [{d['rule']}]"
            for d in items[:DISCARDED_LISTED]]
    if len(items) > DISCARDED_LISTED:
        out.append(f"  ... and {len(items) - DISCARDED_LISTED} more")
    return out


def running_lines(report: dict) -> list[str]:
    names = (report.get("jobs") or {}).get("running") or []
    return [f"jobs still running (their output may still grow after this save): {', '.join(names)}"] \
        if names else []


def _section_lines(report: dict, rel) -> list[str]:
    out: list[str] = []
    for title, items in (("wandb", report.get("wandb", [])), ("rclone", report.get("sync", []))):
        if items:
            out.append(title)
            out += [_row(i["status"], rel(i["path"]) + (f" -> {i['remote']}" if "remote" in i else ""),
                         i.get("reason")) for i in items]
    if report.get("hooks"):
        out.append("hooks")
        for h in report["hooks"]:
            took = f" ({h['seconds']:g} s)" if h.get("seconds") else ""
            out.append(_row(h["status"], h["name"] + took, h.get("reason")))
            if h["status"] in _FAILED and h.get("output"):
                out += [f"      | {line}" for line in h["output"].splitlines()[-5:]]
    return out


def verdict(report: dict) -> str:
    if report.get("ok"):
        return "nothing found that could not be saved" if report.get("dry_run") else "everything is saved"
    return ("NOT everything is saved: the items marked FAILED or NOT SAVED would be lost with "
            "this pod's volume")


def format_human(report: dict) -> str:
    rel = _relative(report)
    dry = " (dry run: nothing pushed, synced or run)" if report.get("dry_run") else ""
    out = [f"pod-save on pod {report.get('pod_id')} at {report.get('timestamp')}{dry}",
           f"policy: {(report.get('policy') or {}).get('source', 'default')}", "git"]
    if not report.get("repos"):
        out.append(f"  no repositories under {report.get('workspace') or 'the workspace'}")
    for repo in report.get("repos", []):
        out += _repo_lines(repo, rel)
    out += _section_lines(report, rel)
    inv = report.get("inventory") or {}
    if inv.get("unsaved"):
        places = inv.get("unsaved_count", len(inv["unsaved"]))
        out.append(f"unsaved ({_size(inv.get('unsaved_bytes', 0))} in {places} place(s)) — lost with "
                   "this pod's volume:")
        out += [f"  NOT SAVED  {rel(u['path'])} ({_size(u['bytes'])}): {u['reason']}"
                for u in inv["unsaved"]]
    out += discarded_lines(inv, rel)
    out += running_lines(report)
    out.append(verdict(report))
    return "\n".join(out)
