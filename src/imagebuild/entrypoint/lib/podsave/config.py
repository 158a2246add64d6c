"""pod-save's settings, from the environment and the command line."""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import socket
import time

from . import contract

DEFAULT_KEEP = 24  # snapshots per clone: six hours at every 15 minutes
KILL_GRACE = 1.0  # seconds between SIGTERM and SIGKILL for a step that timed out
BUDGET_RESERVE = KILL_GRACE + 0.5  # end of --budget kept for killing and reporting


class UserError(Exception):
    """Bad usage or configuration: one line, exit 2."""


@dataclasses.dataclass
class Config:
    workspace: str
    code_dir: str
    wandb_dir: str
    hooks_dir: str
    pod_id: str
    timestamp: str
    git_timeout: float
    wandb_timeout: float
    hook_timeout: float
    sync_timeout: float
    max_file_bytes: int
    jobs: int
    dry_run: bool
    deadline: float | None  # time.monotonic() value; None: no budget
    # Work-tree snapshots kept per clone on its remote (prune.py): POD_SAVE_KEEP, else
    # save.toml's [save] keep (save_repos fills it in), else DEFAULT_KEEP.
    keep: int | None = None

    def time_left(self, timeout: float) -> float:
        """A step's timeout, shortened so that it ends within the budget with time
        to spare for killing it and printing the report."""
        if self.deadline is None:
            return timeout
        return min(timeout, self.deadline - time.monotonic() - BUDGET_RESERVE)

    @property
    def autosave_prefix(self) -> str:
        return f"refs/heads/autosave/{self.pod_id}/{self.timestamp}"


def env_number(name: str, default: float, *, integer: bool = False, minimum: float = 1):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        kind = "an integer" if integer else "a number"
        raise UserError(f"{name}={raw!r}: must be {kind} >= {minimum:g}")
    return value


def pod_id() -> str:
    raw = os.environ.get("RUNPOD_POD_ID") or socket.gethostname() or "pod"
    # Keep it a valid single ref component (git check-ref-format rules).
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip(".-")
    cleaned = re.sub(r"\.{2,}", ".", cleaned).removesuffix(".lock")
    return cleaned or "pod"


def load_config(budget: float | None, dry_run: bool) -> Config:
    workspace = os.environ.get("POD_WORKSPACE") or contract.names().get("POD_WS")
    if not workspace:
        raise UserError("POD_WORKSPACE is not set and this is not a pod image (no contract.env)")
    workspace = os.path.abspath(workspace)
    if not os.path.isdir(workspace):
        raise UserError(f"POD_WORKSPACE={workspace}: not a directory; set it to the volume")
    if budget is None:
        budget = env_number("POD_SAVE_BUDGET", 0) or None
    elif budget < 1:
        raise UserError(f"--budget {budget:g}: must be at least 1 second")
    # Accepted for old configurations; repositories are found at any depth now.
    env_number("POD_SAVE_MAX_DEPTH", 0, integer=True, minimum=0)
    now = datetime.datetime.now(datetime.timezone.utc)
    return Config(
        workspace=workspace,
        code_dir=os.path.join(workspace, "code"),
        wandb_dir=os.path.abspath(os.environ.get("WANDB_DIR") or os.path.join(workspace, "wandb")),
        hooks_dir=os.path.join(workspace, ".pod", "hooks", "save.d"),
        pod_id=pod_id(),
        timestamp=now.strftime("%Y%m%dT%H%M%SZ"),
        git_timeout=env_number("POD_SAVE_GIT_TIMEOUT", 180),
        wandb_timeout=env_number("POD_SAVE_WANDB_TIMEOUT", 300),
        hook_timeout=env_number("POD_SAVE_HOOK_TIMEOUT", 120),
        sync_timeout=env_number("POD_SAVE_SYNC_TIMEOUT", 1800),
        max_file_bytes=int(env_number("POD_SAVE_MAX_FILE_MB", 100) * 1024 * 1024),
        jobs=env_number("POD_SAVE_JOBS", 4, integer=True),
        dry_run=dry_run,
        deadline=None if budget is None else time.monotonic() + budget,
        keep=env_number("POD_SAVE_KEEP", 0, integer=True) or None,
    )
