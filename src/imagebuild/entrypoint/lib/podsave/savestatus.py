"""The save status record (contract: POD_SAVE_STATUS, on the volume): when the last
save ran and its verdict, what is not saved (files, bytes) and how old the oldest
unsaved change is. Written by every pod-save and by the autosave watcher; read by
`imagebuild pod status` (over SSH) and the login banner."""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import time

from . import contract
from .report import _size

VERSION = 1


def path_for(workspace: str) -> str:
    names = contract.names()
    if names.get("POD_SAVE_STATUS") and os.path.abspath(names.get("POD_WS", "")) == workspace:
        return names["POD_SAVE_STATUS"]
    return os.path.join(workspace, ".pod", "save-status.json")


def read(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write(path: str, record: dict) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".save-status-", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    os.chmod(tmp, 0o644)  # the dev user's login banner reads it
    os.replace(tmp, path)


def _mtime(path: str) -> float | None:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return None


def _count_files(path: str) -> int:
    if not os.path.isdir(path) or os.path.islink(path):
        return 1
    return sum(len(files) for _, _, files in os.walk(path)) or 1


def from_report(report: dict, mode: str, started: float, seconds: float) -> dict:
    """The last_save part, from a pod-save report."""
    inv = report["inventory"]
    unsaved = [u for u in inv["unsaved"] if u["path"] != report["workspace"]]
    times = [t for u in unsaved if (t := _mtime(u["path"])) is not None]
    failed_repos = [r["path"] for r in report["repos"] if r["status"] == "failed"]
    return {"at": started, "time": iso(started), "mode": mode, "seconds": round(seconds, 3),
            "verdict": "saved" if report["ok"] else "not saved",
            "unsaved_files": sum(_count_files(u["path"]) for u in unsaved),
            "unsaved_bytes": inv["unsaved_bytes"], "oldest_unsaved": min(times, default=None),
            "failed_repos": failed_repos, "error": None,
            "repos_saved": len(report.get("incremental", {}).get("saved", report["repos"])),
            "repos_kept": len(report.get("incremental", {}).get("kept", [])),
            "snapshots": {r["path"]: r["snapshot"]["ref"] for r in report["repos"]
                          if r.get("snapshot") and r["snapshot"]["status"] in
                          ("pushed", "up-to-date")}}


def failed_save(error: str, mode: str, started: float, seconds: float) -> dict:
    return {"at": started, "time": iso(started), "mode": mode, "seconds": round(seconds, 3),
            "verdict": "failed", "unsaved_files": None, "unsaved_bytes": None,
            "oldest_unsaved": None, "failed_repos": [], "error": error, "snapshots": {},
            "repos_saved": 0, "repos_kept": 0}


def record(path: str, last_save: dict | None, pending: dict | None = None,
           every_s: float | None = None, watcher: str | None = None) -> dict | None:
    """Merge into the record on disk: a manual save keeps the watcher's settings.
    Best effort: a save that worked is not failed for its record (a read-only
    volume, a .pod the user running pod-save cannot write); None then."""
    old = read(path) or {}
    rec = {"version": VERSION, "updated_at": time.time(),
           "every_s": every_s if every_s is not None or watcher else old.get("every_s"),
           "watcher": watcher or old.get("watcher"),
           "last_save": last_save or old.get("last_save"),
           "pending": pending if pending is not None else
           ({"files": 0, "bytes": 0, "oldest_change": None} if last_save else
            old.get("pending"))}
    try:
        write(path, rec)
    except OSError:
        return None
    return rec


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%SZ")


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def summary(rec: dict | None, now: float | None = None) -> dict:
    """What `pod status --json` and the banner show: totals now."""
    now = time.time() if now is None else now
    if not rec or not rec.get("last_save"):
        return {"last_save": None, "verdict": None, "unsaved_files": None,
                "unsaved_bytes": None, "oldest_unsaved_change": None,
                "oldest_unsaved_age_s": None, "every_s": (rec or {}).get("every_s"),
                "watcher": (rec or {}).get("watcher")}
    last, pending = rec["last_save"], rec.get("pending") or {}
    oldest = [t for t in (last.get("oldest_unsaved"), pending.get("oldest_change"))
              if t is not None]
    files = (last.get("unsaved_files") or 0) + (pending.get("files") or 0)
    size = (last.get("unsaved_bytes") or 0) + (pending.get("bytes") or 0)
    return {"last_save": last.get("time"), "last_save_age_s": round(now - last["at"]),
            "verdict": last.get("verdict"), "mode": last.get("mode"),
            "error": last.get("error"), "unsaved_files": files, "unsaved_bytes": size,
            "oldest_unsaved_change": iso(min(oldest)) if oldest else None,
            "oldest_unsaved_age_s": round(now - min(oldest)) if oldest else None,
            "every_s": rec.get("every_s"), "watcher": rec.get("watcher")}


def lines(info: dict) -> list[str]:
    """Human lines (pod status, the login banner)."""
    every = info.get("every_s")
    auto = f"autosave every {age(every)}" if every else "no autosave ([save] every in " \
        ".pod/save.toml, or pod create --save-every 15m)"
    if not info.get("last_save"):
        return [f"save     never saved on this volume; {auto}"]
    verdict = info["verdict"] + (f" ({info['error']})" if info.get("error") else "")
    out = [f"save     last {info['last_save']} ({age(info['last_save_age_s'])} ago, "
           f"{info['mode']}): {verdict}; {auto}"]
    if info["unsaved_files"]:
        out.append(f"unsaved  {info['unsaved_files']} file(s), {_size(info['unsaved_bytes'])}; "
                   f"oldest unsaved change {age(info['oldest_unsaved_age_s'] or 0)} old"
                   " (pod-save saves now)")
    else:
        out.append("unsaved  nothing")
    return out
