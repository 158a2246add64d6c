"""pod-save's command line: walk the workspace, save repositories, W&B runs, hooks
and rclone data, then classify everything and report. Usage: see bin/pod-save."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys

from . import datasync, hooks, inventory, lock, policy, wandbsync
from .config import Config, UserError, load_config
from .gitcmd import Git
from .proc import redact
from .repo import RepoSaver
from .walk import walk


def _worktrees(paths: list[str], cfg: Config) -> list[list[str]]:
    """Working trees grouped by repository (linked worktrees, wherever they live,
    join the group), so shared refs are pushed once and by one thread."""
    groups: dict[str, list[str]] = {}
    extra: list[str] = []
    for path in paths:
        git = Git(path, cfg)
        common = git.try_out("rev-parse", "--git-common-dir")
        key = os.path.realpath(os.path.join(path, common)) if common else path
        groups.setdefault(key, []).append(path)
        for line in git.try_out("worktree", "list", "--porcelain").splitlines():
            tree = line.removeprefix("worktree ")
            if line.startswith("worktree ") and os.path.isdir(tree) and \
                    os.path.realpath(tree) not in {os.path.realpath(p) for p in paths + extra}:
                extra.append(tree)
                groups[key].append(tree)
    return list(groups.values())


def _gitlinks(paths: list[str], cfg: Config) -> dict[str, set[str]]:
    """Commits that repositories record for embedded ones (gitlinks in the index)."""
    wanted: dict[str, set[str]] = {p: set() for p in paths}
    for path in paths:
        out = Git(path, cfg).try_out("ls-files", "-z", "-s")
        for line in out.split("\0"):
            meta, _, rel = line.partition("\t")
            if meta.startswith("160000 "):
                sub = os.path.join(path, rel)
                if sub in wanted:
                    wanted[sub].add(meta.split()[1])
    return wanted


def save_repos(cfg: Config, pol: policy.Policy, found) -> tuple[list[dict], dict]:
    groups = _worktrees(found.repos, cfg)
    paths = [p for g in groups for p in g]
    wanted = _gitlinks(paths, cfg)

    def saver(path: str, n: int) -> RepoSaver:
        ref = cfg.autosave_prefix if n == 0 else f"{cfg.autosave_prefix}-{n + 1}"
        nested = [p for p in paths if p != path and p.startswith(path + os.sep)]

        def allowed(rel: str) -> bool:
            return bool(policy.matches(found.rel(os.path.join(path, rel)), pol.allow_secrets))

        return RepoSaver(path, cfg, nested, shared_refs=(n == 0), snapshot_ref=ref,
                         secret_allowed=allowed, wanted=wanted.get(path))

    def save_group(group: list[str]) -> list[RepoSaver]:
        savers = [saver(path, n) for n, path in enumerate(group)]
        for s in savers:
            s.save()
        return savers

    with concurrent.futures.ThreadPoolExecutor(max_workers=cfg.jobs) as pool:
        savers = [s for group in pool.map(save_group, groups) for s in group]
    savers.sort(key=lambda s: s.path)
    return [s.report for s in savers], {s.path: s for s in savers}


def save_everything(cfg: Config) -> dict:
    pol = policy.load(cfg.workspace)
    found = walk(cfg.workspace, pol.discard)
    repos, savers = save_repos(cfg, pol, found)
    wandb = wandbsync.sync_runs(cfg, wandbsync.find_runs(cfg, found.wandb_runs))
    hook_reports = hooks.run_hooks(cfg)
    syncs = datasync.sync_data(cfg, pol)
    inv = inventory.Classifier(found, pol, savers, wandb, hook_reports, syncs).classify()
    failed = [r for r in repos if r["status"] == "failed"]
    failed += [w for w in wandb if w["status"] == "failed"]
    failed += [h for h in hook_reports if h["status"] in ("failed", "timeout")]
    failed += [s for s in syncs if s["status"] == "failed"]
    return {"ok": not failed and not inv["unsaved"], "dry_run": cfg.dry_run,
            "pod_id": cfg.pod_id, "timestamp": cfg.timestamp, "workspace": cfg.workspace,
            "policy": pol.as_report(), "repos": repos, "wandb": wandb,
            "hooks": hook_reports, "sync": syncs, "inventory": inv}


def main(argv: list[str] | None = None, doc: str | None = None) -> int:
    from .report import format_human

    parser = argparse.ArgumentParser(
        prog="pod-save", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be pushed, synced and run; change nothing")
    parser.add_argument("--budget", type=float, metavar="SECONDS",
                        help="finish within this many seconds (best effort)")
    parser.add_argument("--print-default-policy", action="store_true",
                        help="print the default .pod/save.toml and exit")
    args = parser.parse_args(argv)
    if args.print_default_policy:
        print(policy.DEFAULT_TOML, end="")
        return 0
    try:
        cfg = load_config(args.budget, args.dry_run)
        with lock.held(cfg) as ours:
            if not ours:
                print("pod-save: another pod-save is still running on this workspace; "
                      "run it again when that one has finished", file=sys.stderr)
                return 1
            report = save_everything(cfg)
    except UserError as e:
        print(f"pod-save: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 -- never a traceback, never a silent "saved"
        print(f"pod-save: internal error: {type(e).__name__}: {redact(str(e))}",
              file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else format_human(report))
    return 0 if report["ok"] else 1
