"""pod-save's JSON report for people: a table (saved, or why not) and the list of
what would be lost with the pod's volume. The report's format is documented in
``entrypoint/bin/pod-save``; its texts are already free of secrets."""

from __future__ import annotations

import os
from typing import Any

from imagebuild import contract

_FAILED = {"failed", "timeout"}


def _rel(report: dict, path: str) -> str:
    workspace = report.get("workspace") or contract.WORKSPACE
    return os.path.relpath(path, workspace) if path.startswith(workspace + "/") else path


def _short(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "MB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n}"


def _skip_reason(skipped: dict) -> str:
    return skipped.get("reason") or "too big for a snapshot"


def _other_unsaved(report: dict) -> list[dict]:
    """Inventory entries that no repo, run, hook or rclone item already names."""
    named = {f"{repo['path']}/{f['path']}" for repo in report.get("repos", [])
             for f in repo.get("skipped_files", [])}
    listed_elsewhere = ("git: ", "W&B", "save hook", "rclone")
    return [item for item in (report.get("inventory") or {}).get("unsaved", [])
            if item["path"] not in named and not item["reason"].startswith(listed_elsewhere)]


def _mark(status: str) -> str:
    return status.upper() if status in _FAILED else status


def rows(report: dict) -> list[tuple[str, str, str]]:
    """(item, status, detail) per repo and what in it needed pushing, run and hook."""
    out: list[tuple[str, str, str]] = []
    for repo in report.get("repos", []):
        remote = f"-> {repo['remote']} ({repo['url']})" if repo.get("remote") else "no remote"
        out.append((_rel(report, repo["path"]), _mark(repo["status"]), repo.get("reason") or remote))
        for branch in repo.get("branches", []):
            if branch["status"] != "up-to-date":
                ahead = f"{branch['ahead']} commit(s)" if branch.get("ahead") else ""
                if branch.get("diverged"):
                    ahead += f"; diverged from the remote's, saved as {_short(branch['ref'])}"
                out.append((f"  branch {branch['name']}", _mark(branch["status"]),
                            branch.get("reason") or ahead.lstrip("; ")))
        snap = repo.get("snapshot")
        if snap:
            out.append(("  uncommitted work", _mark(snap["status"]),
                        snap.get("reason") or f"{snap['files']} file(s) -> {_short(snap['ref'])}"))
        for n, stash in enumerate(repo.get("stashes", [])):
            if stash["status"] != "up-to-date":
                out.append((f"  stash {n}", _mark(stash["status"]),
                            stash.get("reason") or f"-> {_short(stash['ref'])}"))
        for ref in repo.get("refs", []):
            if ref["status"] != "up-to-date":
                out.append((f"  {ref['name']}", _mark(ref["status"]),
                            ref.get("reason") or f"-> {_short(ref['ref'])}"))
        for skipped in repo.get("skipped_files", []):
            out.append((f"  file {skipped['path']}", "NOT SAVED",
                        f"{_size(skipped['bytes'])}, {_skip_reason(skipped)}"))
    for run in report.get("wandb", []):
        out.append((f"wandb {_rel(report, run['path'])}", _mark(run["status"]), run.get("reason") or ""))
    for sync in report.get("sync", []):
        out.append((f"rclone {sync['path']} -> {sync['remote']}", _mark(sync["status"]),
                    sync.get("reason") or ""))
    for item in _other_unsaved(report):
        out.append((_rel(report, item["path"]), "NOT SAVED",
                    f"{_size(item['bytes'])}, {item['reason']}"))
    for hook in report.get("hooks", []):
        took = f" ({hook['seconds']:g} s)" if hook.get("seconds") else ""
        out.append((f"hook {hook['name']}{took}", _mark(hook["status"]), hook.get("reason") or ""))
    return out


def unsaved(report: dict) -> list[str]:
    """One line per thing that exists only on the pod: what terminating would lose."""
    lost: list[str] = []
    for repo in report.get("repos", []):
        if repo["status"] != "failed":
            continue
        where = _rel(report, repo["path"])
        before = len(lost)
        for branch in repo.get("branches", []):
            if branch["status"] == "failed":
                ahead = f", {branch['ahead']} commit(s)" if branch.get("ahead") else ""
                lost.append(f"{where}: branch {branch['name']}{ahead} ({branch['reason']})")
        snap = repo.get("snapshot")
        if snap and snap["status"] == "failed":
            files = f", {snap['files']} file(s)" if snap.get("files") is not None else ""
            lost.append(f"{where}: uncommitted work{files} ({snap['reason']})")
        for stash in repo.get("stashes", []):
            if stash["status"] == "failed":
                lost.append(f"{where}: stash {_short(stash['ref'])} ({stash['reason']})")
        for ref in repo.get("refs", []):
            if ref["status"] == "failed":
                lost.append(f"{where}: {ref['name']} ({ref['reason']})")
        for skipped in repo.get("skipped_files", []):
            lost.append(f"{where}: file {skipped['path']} ({_skip_reason(skipped)})")
        if len(lost) == before:
            lost.append(f"{where}: {repo.get('reason') or 'not saved'}")
    for run in report.get("wandb", []):
        if run["status"] == "failed":
            lost.append(f"wandb run {_rel(report, run['path'])} ({run['reason']})")
    for hook in report.get("hooks", []):
        if hook["status"] in _FAILED:
            lost.append(f"save hook {hook['name']}: {hook['status']} ({hook['reason']})")
    for sync in report.get("sync", []):
        if sync["status"] == "failed":
            lost.append(f"rclone {sync['path']} -> {sync['remote']} ({sync['reason']})")
    for item in _other_unsaved(report):
        lost.append(f"{_rel(report, item['path'])}, {_size(item['bytes'])} ({item['reason']})")
    return lost


def discarded(report: dict, limit: int = 20) -> list[str]:
    """What the save policy let go (re-creatable, lost with the volume), biggest
    first, with sizes: the user sees what a terminate throws away on purpose."""
    inv = report.get("inventory") or {}
    items = sorted(inv.get("discarded", []), key=lambda d: -(d.get("bytes") or 0))
    lines = [f"{_rel(report, d['path'])}, {_size(d.get('bytes') or 0)} ({d['rule']})"
             for d in items[:limit]]
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit} more")
    return lines


def summary(report: dict) -> str:
    if report.get("dry_run"):
        return "dry run: nothing was pushed, synced or run"
    if report.get("ok"):
        return "everything is saved"
    return f"NOT everything is saved: {len(unsaved(report))} item(s) exist only on this pod"


def render(report: dict, console: Any) -> None:
    """Print the table and the verdict on a rich console."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, title=None, show_edge=False)
    for column in ("ITEM", "STATUS", "DETAIL"):
        table.add_column(column, overflow="fold")
    listed = rows(report)
    for item, status, detail in listed:
        style = "bold red" if status.isupper() else None
        table.add_row(item, status, detail, style=style)
    console.print(f"pod-save on {report.get('pod_id')} at {report.get('timestamp')}")
    if listed:
        console.print(table)
    else:
        console.print("  nothing to save: no repositories, data, offline W&B runs or save hooks")
    gone = discarded(report)
    if gone:
        total = (report.get("inventory") or {}).get("discarded_bytes")
        console.print("discarded by the policy" + (f" ({_size(total)})" if total else "")
                      + ", re-creatable: " + "; ".join(gone), markup=False)
    running = (report.get("jobs") or {}).get("running") or []
    if running:
        console.print(f"jobs still running (their output may still grow after this save): "
                      f"{', '.join(running)}", markup=False)
    console.print(summary(report))
