"""pod-autosave: continuous save. Every `every` (POD_SAVE_EVERY from `pod create
--save-every` / `imagebuild run --save-every`, else `[save] every` in .pod/save.toml)
an incremental pod-save runs at low CPU and I/O priority, under the lock manual saves
take; between saves a stat-only check keeps the status record's "unsaved" current.
Usage: see bin/pod-autosave."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time

from . import incremental, lock, savestatus
from .config import UserError, load_config
from .policy import _parse_toml
from .proc import redact
from .statcache import StatCache, changed, tree_state

EVERY_ENV = "POD_SAVE_EVERY"
FULL_EVERY_S = 3600.0  # hooks and rclone syncs run in a full save, at most this far apart
CHECK_S = 60.0  # the stat-only check between saves
MIN_EVERY_S = 10.0
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")  # as imagebuild.duration


def parse_every(text: str, where: str) -> float | None:
    """"15m", "1h30m", "90s" -> seconds; "off" -> None."""
    value = text.strip().lower()
    if value in ("off", "0", ""):
        return None
    m = _DURATION.fullmatch(value)
    if not m or not any(m.groups()):
        raise UserError(f"{where}: {text!r} is not a duration; use e.g. 15m, 1h or off")
    h, mi, s = (int(g or 0) for g in m.groups())
    seconds = h * 3600 + mi * 60 + s
    if seconds < MIN_EVERY_S:
        raise UserError(f"{where}: {text!r} is too often; at least {MIN_EVERY_S:g}s")
    return float(seconds)


def every_seconds(workspace: str) -> float | None:
    """The interval: the pod's variable (set at create) wins over save.toml."""
    env = os.environ.get(EVERY_ENV, "").strip()
    if env:
        return parse_every(env, EVERY_ENV)
    path = os.path.join(workspace, ".pod", "save.toml")
    try:
        with open(path, encoding="utf-8") as f:
            data = _parse_toml(f.read())
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 -- tomllib and the fallback raise different errors
        raise UserError(f"{path}: not valid TOML ({e}); fix it or delete it") from e
    section = data.get("save", {})
    value = section.get("every") if isinstance(section, dict) else None
    if value is None:
        return None
    if not isinstance(value, str):
        raise UserError(f'{path}: [save] every must be a string like "15m"')
    return parse_every(value, f"{path}: [save] every")


def lower_priority() -> None:
    """Never in the way of training: nice 10, idle I/O class where ionice exists."""
    with contextlib.suppress(OSError):
        os.nice(10)
    if shutil.which("ionice"):
        subprocess.run(["ionice", "-c", "3", "-p", str(os.getpid())], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def save_once(full: bool, every_s: float | None, mode: str | None = None) -> dict:
    """One incremental (or full) save under the shared lock; the status record and
    the report. Never raises: a failure is recorded as the verdict."""
    started, t0 = time.time(), time.monotonic()
    mode = mode or ("full" if full else "incremental")
    cfg = load_config(None, False)
    status = savestatus.path_for(cfg.workspace)
    try:
        with lock.held(cfg) as ours:
            if not ours:
                raise RuntimeError("another pod-save held the lock too long")
            report = incremental.save(cfg, full=full)
        last = savestatus.from_report(report, mode, started, time.monotonic() - t0)
    except Exception as e:  # noqa: BLE001 -- recorded, never a traceback, never "saved"
        report = None
        last = savestatus.failed_save(f"{type(e).__name__}: {redact(str(e))}"[:300], mode,
                                      started, time.monotonic() - t0)
    savestatus.record(status, last, every_s=every_s, watcher="running")
    return {"status": last, "report": report}


def pending(workspace: str) -> dict:
    """Files changed since the last save, from the stat cache alone (no git, no walk:
    new files show at the next save)."""
    cache = StatCache.load(incremental.cache_path(workspace))
    files = size = 0
    oldest = None
    for entry in cache.repos.values():
        now = tree_state(list(entry["files"]))
        for path in changed(entry["files"], now, entry["taken_at"]):
            st = now.get(path)
            files += 1
            size += st[2] if st else 0
            mtime = st[0] / 1e9 if st else entry["taken_at"]
            oldest = mtime if oldest is None else min(oldest, mtime)
    return {"files": files, "bytes": size, "oldest_change": oldest}


def watch(log) -> None:
    lower_priority()
    cfg = load_config(None, False)
    status = savestatus.path_for(cfg.workspace)
    times = {"save": 0.0, "full": 0.0}  # time.monotonic() of the last ones
    while True:
        try:
            wait = _tick(cfg.workspace, status, times, log)
        except Exception as e:  # noqa: BLE001 -- the watcher outlives any one bad tick
            log(f"autosave: {type(e).__name__}: {redact(str(e))}"[:300])
            wait = CHECK_S
        time.sleep(wait)


def _tick(workspace: str, status: str, times: dict, log) -> float:
    """One look: save when due, else refresh "pending"; seconds until the next look."""
    try:
        every = every_seconds(workspace)
    except UserError as e:
        log(f"autosave off: {e}")
        every = None
    if every is None:
        savestatus.record(status, None, watcher="off")
        return CHECK_S
    now = time.monotonic()
    if now - times["save"] >= every:
        full = not times["full"] or now - times["full"] >= FULL_EVERY_S
        s = save_once(full, every)["status"]
        times["save"] = now
        times["full"] = now if full else times["full"]
        log(f"{s['mode']} save: {s['verdict']} in {s['seconds']:g} s"
            + (f" ({s['error']})" if s["error"] else ""))
    else:
        savestatus.record(status, None, pending(workspace), every_s=every, watcher="running")
    return max(1.0, min(CHECK_S, every - (time.monotonic() - times["save"])))


def main(argv: list[str] | None = None, doc: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pod-autosave", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--once", action="store_true", help="one incremental save, then exit")
    what.add_argument("--full", action="store_true", help="one full save, then exit")
    what.add_argument("--status", action="store_true",
                      help="print the save status (--json: as JSON) and exit")
    parser.add_argument("--json", action="store_true", help="with --status: JSON")
    parser.add_argument("--quiet-if-none", action="store_true",
                        help="with --status: print nothing when nothing was ever saved")
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(time.strftime("%Y-%m-%dT%H:%M:%S ") + text, flush=True)

    try:
        if args.status:
            return _print_status(args.json, args.quiet_if_none)
        if args.once or args.full:
            cfg = load_config(None, False)
            result = save_once(args.full, every_seconds(cfg.workspace))
            s = result["status"]
            log(f"{s['mode']} save: {s['verdict']} in {s['seconds']:g} s"
                + (f" ({s['error']})" if s["error"] else ""))
            return 0 if s["verdict"] == "saved" else 1
        watch(log)
    except UserError as e:
        print(f"pod-autosave: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _print_status(as_json: bool, quiet: bool) -> int:
    import json

    workspace = os.environ.get("POD_WORKSPACE") or savestatus.contract.names().get("POD_WS")
    if not workspace:
        raise UserError("POD_WORKSPACE is not set and this is not a pod image")
    info = savestatus.summary(savestatus.read(savestatus.path_for(os.path.abspath(workspace))))
    if as_json:
        print(json.dumps({**info, "lines": savestatus.lines(info)}))
    elif not (quiet and not info["last_save"] and not info["every_s"]):
        print("\n".join(savestatus.lines(info)))
    return 0
