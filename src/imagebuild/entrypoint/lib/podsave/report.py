"""pod-save's report for people (the --json one is the dict itself)."""

from __future__ import annotations

import os


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _row(status: str, what: str, why: str | None = None) -> str:
    label = "FAILED" if status in ("failed", "timeout") else status
    return f"  {label:<10} {what}" + (f": {why}" if why else "")


def _repo_lines(repo: dict, rel) -> list[str]:
    where = f" -> {repo['remote']} ({repo['url']})" if repo["remote"] else ""
    out = [_row(repo["status"], rel(repo["path"]) + where, repo["reason"])]
    for b in repo["branches"]:
        if b["status"] != "up-to-date":
            ahead = f", {b['ahead']} commit(s)" if b["ahead"] else ""
            beside = f" as {b['ref'].removeprefix('refs/heads/')}" if b.get("diverged") else ""
            out.append(f"      {b['status']:<10} branch {b['name']}{ahead}{beside}"
                       + (f": {b['reason']}" if b["reason"] else ""))
    snap = repo["snapshot"]
    if snap:
        out.append(f"      {snap['status']:<10} snapshot {snap['ref'].removeprefix('refs/heads/')}"
                   + (f" ({snap['files']} changed file(s))" if snap["files"] is not None else "")
                   + (f": {snap['reason']}" if snap["reason"] else ""))
    for item in repo["stashes"] + repo.get("refs", []):
        if item["status"] != "up-to-date":
            label = item.get("name") or "stash " + item["ref"].removeprefix("refs/heads/")
            out.append(f"      {item['status']:<10} {label}"
                       + (f": {item['reason']}" if item["reason"] else ""))
    for kind, e in [("git-lfs", e) for e in repo.get("lfs", [])] + (
            [("git-annex", repo["annex"])] if repo.get("annex") else []):
        count = e.get("objects", e.get("keys"))
        out.append(f"      {e['status']:<10} {kind} content, {count} object(s), "
                   f"{_size(e['bytes'])}, to {e['remote']}"
                   + (f": {e['reason']}" if e["reason"] else ""))
    for f in repo["skipped_files"]:
        out.append(f"      not saved  {f['path']} ({_size(f['bytes'])}): {f['reason']}")
    return out


DISCARDED_LISTED = 20  # biggest first; the total counts everything


def discarded_lines(inv: dict, rel) -> list[str]:
    """What the policy let go (re-creatable, lost with the volume), with sizes."""
    items = sorted(inv.get("discarded", []), key=lambda d: -d.get("bytes", 0))
    if not items:
        return []
    total = inv.get("discarded_bytes", sum(d.get("bytes", 0) for d in items))
    out = [f"discarded by the policy ({_size(total)}, re-creatable; lost with this pod's "
           "volume):"]
    out += [f"  discarded  {rel(d['path'])} ({_size(d.get('bytes', 0))}) [{d['rule']}]"
            for d in items[:DISCARDED_LISTED]]
    if len(items) > DISCARDED_LISTED:
        out.append(f"  ... and {len(items) - DISCARDED_LISTED} more")
    return out


def running_lines(report: dict) -> list[str]:
    names = (report.get("jobs") or {}).get("running") or []
    return [f"jobs still running (their output may still grow after this save): {', '.join(names)}"] \
        if names else []


def format_human(report: dict) -> str:
    ws = report["workspace"]

    def rel(path: str) -> str:
        return os.path.relpath(path, ws) if path.startswith(ws + os.sep) else path

    dry = " (dry run: nothing pushed, synced or run)" if report["dry_run"] else ""
    out = [f"pod-save on pod {report['pod_id']} at {report['timestamp']}{dry}",
           f"policy: {report['policy']['source']}", "git"]
    if not report["repos"]:
        out.append(f"  no repositories under {ws}")
    for repo in report["repos"]:
        out += _repo_lines(repo, rel)
    for title, items, name in (("wandb", report["wandb"], "path"),
                               ("rclone", report["sync"], "path")):
        if items:
            out.append(title)
            out += [_row(i["status"], rel(i[name]) + (f" -> {i['remote']}" if "remote" in i
                                                      else ""), i["reason"]) for i in items]
    if report["hooks"]:
        out.append("hooks")
        for h in report["hooks"]:
            took = f" ({h['seconds']:g} s)" if h["seconds"] else ""
            out.append(_row(h["status"], h["name"] + took, h["reason"]))
            if h["status"] in ("failed", "timeout") and h["output"]:
                out += [f"      | {line}" for line in h["output"].splitlines()[-5:]]
    inv = report["inventory"]
    if inv["unsaved"]:
        out.append(f"unsaved ({_size(inv['unsaved_bytes'])} in {inv['unsaved_count']} "
                   "place(s)) — lost with this pod's volume:")
        out += [f"  NOT SAVED  {rel(u['path'])} ({_size(u['bytes'])}): {u['reason']}"
                for u in inv["unsaved"]]
    out += discarded_lines(inv, rel)
    out += running_lines(report)
    if report["ok"]:
        out.append("everything is saved" if not report["dry_run"] else
                   "nothing found that could not be saved")
    else:
        out.append("NOT everything is saved: the items marked FAILED or NOT SAVED would "
                   "be lost with this pod's volume")
    return "\n".join(out)
