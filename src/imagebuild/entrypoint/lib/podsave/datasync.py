"""Data that is not code (results/, your own models/) copied to rclone remotes that
.pod/save.toml declares: `rclone copy` (never deletes anything on the remote), then
`rclone check --one-way` so that "synced" means every file is there, same size and
hash, not that rclone exited 0."""

from __future__ import annotations

import os
import shutil

from .config import Config
from .policy import Policy
from .proc import owner_of, process_env, run, tail
from .refs import set_status

FLAGS = ["--config", "", "--low-level-retries", "3", "--retries", "2",
         "--contimeout", "15s", "--timeout", "60s"]


def _config(cfg: Config) -> str:
    return os.environ.get("RCLONE_CONFIG") or os.path.join(cfg.workspace, ".pod",
                                                          "rclone.conf")


def sync_data(cfg: Config, policy: Policy) -> list[dict]:
    reports = []
    rclone = shutil.which("rclone")
    for sync in policy.sync:
        rep = {"path": sync.path, "remote": sync.remote, "status": "pending",
               "reason": None, "seconds": 0.0}
        reports.append(rep)
        source = os.path.join(cfg.workspace, sync.path)
        if not os.path.isdir(source):
            set_status(rep, "synced" if not os.path.lexists(source) else "failed",
                       None if not os.path.lexists(source) else "not a folder")
            continue
        if rclone is None:
            set_status(rep, "failed", "rclone not found (apt-get install rclone)")
            continue
        if cfg.dry_run:
            continue
        _copy_and_check(cfg, rclone, source, sync.remote, rep)
    return reports


def _copy_and_check(cfg: Config, rclone: str, source: str, remote: str, rep: dict) -> None:
    flags = list(FLAGS)
    flags[1] = _config(cfg)
    owner = owner_of(source)
    env = process_env(owner)
    for step in (["copy", "--links"], ["check", "--one-way", "--links"]):
        res = run([rclone, *step, *flags, source, remote], cwd=cfg.workspace,
                  timeout=cfg.time_left(cfg.sync_timeout), env=env, owner=owner)
        rep["seconds"] = round(rep["seconds"] + res.seconds, 2)
        if res.rc != 0:
            last = tail(res.err or res.out, 1, 240)
            set_status(rep, "failed", f"rclone {step[0]}: " + (res.reason or last or
                                                               f"exit code {res.rc}"))
            return
    set_status(rep, "synced")
