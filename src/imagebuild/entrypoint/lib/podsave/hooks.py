"""Save hooks: executable files in .pod/hooks/save.d/, in name order, each in its own
process group, within the budget, output kept to a bounded tail. A hook that is not
executable failed: the user meant it to save something."""

from __future__ import annotations

import os

from .config import Config
from .proc import owner_of, process_env, run_bounded, tail
from .refs import set_status


def run_hooks(cfg: Config) -> list[dict]:
    try:
        names = sorted(os.listdir(cfg.hooks_dir))
    except OSError:
        return []
    reports = []
    env_extra = {"POD_WORKSPACE": cfg.workspace, "POD_ID": cfg.pod_id,
                 "POD_SAVE_TIMESTAMP": cfg.timestamp}
    for name in names:
        path = os.path.join(cfg.hooks_dir, name)
        if name.startswith(".") or name.endswith("~") or not os.path.isfile(path):
            continue
        rep = {"name": name, "path": path, "status": "pending", "exit_code": None,
               "seconds": 0.0, "reason": None, "output": ""}
        reports.append(rep)
        if not os.access(path, os.X_OK):
            set_status(rep, "failed", "not executable, so it did not run "
                       f"(chmod +x {path}, or delete it)")
            continue
        if cfg.dry_run:
            continue
        owner = owner_of(path)
        res = run_bounded([path], cwd=cfg.workspace, timeout=cfg.time_left(cfg.hook_timeout),
                          env=process_env(owner, env_extra), owner=owner)
        rep.update(exit_code=res.rc, seconds=res.seconds, output=tail(res.out))
        if res.timed_out:
            set_status(rep, "timeout", res.reason + ("; its processes were killed"
                                                     if res.seconds else ""))
        elif res.rc == 0:
            set_status(rep, "ok")
        else:
            set_status(rep, "failed", res.reason or f"exit code {res.rc}")
    return reports
