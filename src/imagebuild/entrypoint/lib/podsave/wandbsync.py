"""W&B offline runs: uploaded with `wandb sync`; a run counts as saved only once wandb
wrote its .synced marker (`wandb sync` can exit 0 without uploading)."""

from __future__ import annotations

import glob
import os
import re
import shutil

from . import contract
from .config import Config
from .proc import Owner, Result, owner_of, process_env, run, tail
from .refs import set_status


def find_runs(cfg: Config, walked: list[str]) -> list[str]:
    """Offline runs the workspace walk found, plus those in $WANDB_DIR (which may lie
    outside the workspace), that wandb has not marked synced."""
    roots = [cfg.wandb_dir, os.path.join(cfg.wandb_dir, "wandb")]
    found = list(walked)
    for root in roots:
        found += sorted(glob.glob(os.path.join(glob.escape(root), "offline-run-*")))
    seen, runs = set(), []
    for run_dir in found:
        real = os.path.realpath(run_dir)
        if real in seen or not os.path.isdir(run_dir):
            continue
        seen.add(real)
        if not synced(run_dir) and glob.glob(os.path.join(glob.escape(run_dir), "*.wandb")):
            runs.append(run_dir)
    return sorted(runs)


def synced(run_dir: str) -> bool:
    logs = glob.glob(os.path.join(glob.escape(run_dir), "*.wandb"))
    return bool(logs) and all(os.path.exists(log + ".synced") for log in logs)


def _reason(res: Result) -> str:
    if res.timed_out:
        return f"wandb sync: {res.reason} (W&B server unreachable?)"
    if res.reason:
        return res.reason
    text = res.err + "\n" + res.out
    if re.search(r"API key|not authenticated|wandb login", text, re.IGNORECASE):
        return "auth: no W&B API key (set WANDB_API_KEY in /workspace/.env or wandb login)"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "wandb sync did not upload it" + (f": {tail(lines[-1], 1, 200)}" if lines else "")


def sync_runs(cfg: Config, runs: list[str]) -> list[dict]:
    reports = [{"path": r, "status": "pending", "reason": None} for r in runs]
    if not runs:
        return reports
    baked = contract.names().get("POD_VENV")  # the image's venv, when PATH lacks it
    wandb = shutil.which("wandb") or next(
        (p for p in ([os.path.join(baked, "bin", "wandb")] if baked else []) if os.access(p, os.X_OK)), None)
    if wandb is None:
        for rep in reports:
            set_status(rep, "failed", "wandb CLI not found; these runs exist only on this pod")
        return reports
    if cfg.dry_run:
        return reports
    # One `wandb sync` per owner (as root); it uploads several runs in parallel.
    by_owner: dict[Owner | None, list[dict]] = {}
    for rep in reports:
        by_owner.setdefault(owner_of(rep["path"]), []).append(rep)
    for owner, group in by_owner.items():
        res = run([wandb, "sync", *[r["path"] for r in group]], cwd=cfg.workspace,
                  timeout=cfg.time_left(cfg.wandb_timeout), env=process_env(owner),
                  owner=owner)
        for rep in group:
            if synced(rep["path"]):
                set_status(rep, "synced")
            else:
                set_status(rep, "failed", _reason(res))
    return reports
