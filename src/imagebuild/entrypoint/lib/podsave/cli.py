"""pod-save's command line: walk the workspace, save repositories, W&B runs, hooks
and rclone data, then classify everything and report. Usage: see bin/pod-save."""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import sys
import time

from . import datasync, hooks, inventory, lock, policy, savestatus, wandbsync
from .config import Config, UserError, load_config
from .gitcmd import Git
from .proc import redact
from .repo import RepoSaver
from .report import FORMAT
from .walk import is_work_tree, walk


def clone_key(path: str) -> str:
    """A short hash of a work tree's real path: its snapshots' ref names differ from
    those of any other clone of the same remote, and stay the same from run to run."""
    return hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:8]


def _repo_facts(path: str, cfg: Config) -> tuple[str, list[str], list[tuple[str, str]],
                                                 list[str], str | None]:
    """(its repository's common dir, its linked worktrees, its gitlinks, its real git
    dirs: own and common, its index listing for the snapshot)."""
    git = Git(path, cfg)
    out = git.try_out("rev-parse", "--absolute-git-dir", "--git-common-dir").splitlines()
    dirs = [os.path.realpath(os.path.join(path, d)) for d in out if d]
    key = dirs[-1] if dirs else path
    trees = [path] if _plain(path, dirs) else [
        line.removeprefix("worktree ") for line in
        git.try_out("worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")]
    links = []
    res = git.run("ls-files", "-z", "-s", "-t")  # "TAG MODE SHA STAGE\tPATH"
    for line in res.out.split("\0") if res.rc == 0 else []:
        meta, _, rel = line.partition("\t")
        if meta[2:9] == "160000 ":
            links.append((os.path.join(path, rel), meta.split()[2]))
    return key, trees, links, dirs, res.out if res.rc == 0 else None


def _plain(path: str, dirs: list[str]) -> bool:
    """A repository with its .git folder inside and no linked worktrees or
    core.worktree: its only work tree is itself (no `git worktree list` to run)."""
    dot = os.path.realpath(os.path.join(path, ".git"))
    if len(dirs) != 2 or dirs[0] != dot or dirs[1] != dot or \
            os.path.isdir(os.path.join(dot, "worktrees")):
        return False
    try:
        with open(os.path.join(dot, "config"), encoding="utf-8", errors="replace") as f:
            return "worktree" not in f.read().lower()
    except OSError:
        return False


def _group(paths: list[str], cfg: Config, pool) -> tuple[list[list[str]], dict[str, set],
                                                         dict[str, tuple]]:
    """Working trees grouped by repository (linked worktrees, wherever they live,
    join the group), so shared refs are pushed once and by one thread; the
    commits that repositories record for embedded ones (gitlinks); each path's
    facts."""
    groups: dict[str, list[str]] = {}
    known = {os.path.realpath(p) for p in paths}
    facts = list(pool.map(lambda p: _repo_facts(p, cfg), paths))
    for path, (key, trees, *_) in zip(paths, facts, strict=True):
        groups.setdefault(key, []).append(path)
        for tree in trees:
            # is_work_tree: for a --separate-git-dir repo or a submodule, git lists
            # the git dir itself as the main worktree.
            if os.path.isdir(tree) and os.path.realpath(tree) not in known and \
                    is_work_tree(tree):
                known.add(os.path.realpath(tree))
                groups[key].append(tree)
    wanted: dict[str, set[str]] = {p: set() for g in groups.values() for p in g}
    for _, _, links, *_ in facts:
        for sub, sha in links:
            if sub in wanted:
                wanted[sub].add(sha)
    return list(groups.values()), wanted, dict(zip(paths, facts, strict=True))


def facts_dirs(paths: list[str], cfg: Config, pool, known: dict | None = None) -> set[str]:
    """The real git dirs (own and common) of the work trees found (known: _group's
    facts, for those already asked)."""
    def dirs(path: str) -> list[str]:
        if known and path in known:
            return known[path][3]
        out = Git(path, cfg).try_out("rev-parse", "--absolute-git-dir", "--git-common-dir")
        return [os.path.realpath(os.path.join(path, d)) for d in out.splitlines() if d]
    return {d for found in pool.map(dirs, paths) for d in found}


def _own_gitdirs(found, known: set[str]) -> None:
    """Git dirs that live apart from their work tree (--separate-git-dir, submodules'
    modules/NAME) are saved with it: their files are not listed on their own. One
    whose work tree is not on the volume holds commits nothing else saves: named."""
    owned = [d for d in found.gitdirs if os.path.realpath(d) in known]
    found.bare += [d for d in found.gitdirs if d not in owned]
    found.files = [(p, size) for p, size in found.files
                   if not any(p.startswith(d + os.sep) for d in owned)]


def save_repos(cfg: Config, pol: policy.Policy, found,
               saver_class=RepoSaver) -> tuple[list[dict], dict]:
    if cfg.keep is None:  # the pod's variable wins over save.toml, as for [save] every
        cfg = dataclasses.replace(cfg, keep=pol.keep)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=cfg.jobs)
    groups, wanted, facts = _group(found.repos, cfg, pool)
    paths = [p for g in groups for p in g]

    def saver(path: str, n: int) -> RepoSaver:
        ref = f"{cfg.autosave_prefix}-{clone_key(path)}"  # two clones never share one
        nested = [p for p in paths if p != path and p.startswith(path + os.sep)]

        def allowed(rel: str) -> bool:
            return bool(policy.matches(found.rel(os.path.join(path, rel)), pol.allow_secrets))

        saver = saver_class(path, cfg, nested, shared_refs=(n == 0), snapshot_ref=ref,
                            secret_allowed=allowed, wanted=wanted.get(path))
        saver.index_listing = facts[path][4] if path in facts else None  # read once
        return saver

    def save_group(group: list[str]) -> list[RepoSaver]:
        savers = [saver(path, n) for n, path in enumerate(group)]
        for s in savers:
            s.save()
        return savers

    _own_gitdirs(found, facts_dirs(paths, cfg, pool, facts))
    with pool:
        savers = [s for group in pool.map(save_group, groups) for s in group]
        for s in savers:  # what git ignores: the inventory's business, asked here
            s.ignored = pool.submit(inventory.ignored, s)
    savers.sort(key=lambda s: s.path)
    return [s.report for s in savers], {s.path: s for s in savers}


def save_everything(cfg: Config) -> dict:
    pol = policy.load(cfg.workspace)
    # Half the budget at most for the walk: saving needs the rest.
    found = walk(cfg.workspace, pol.discard, None if cfg.deadline is None else
                 time.monotonic() + cfg.time_left(float("inf")) / 2)
    repos, savers = save_repos(cfg, pol, found)
    wandb = wandbsync.sync_runs(cfg, wandbsync.find_runs(cfg, found.wandb_runs))
    hook_reports = hooks.run_hooks(cfg)
    syncs = datasync.sync_data(cfg, pol)
    inv = inventory.Classifier(found, pol, savers, wandb, hook_reports, syncs).classify()
    return make_report(cfg, pol, repos, wandb, hook_reports, syncs, inv)


def make_report(cfg: Config, pol: policy.Policy, repos: list[dict], wandb: list[dict],
                hook_reports: list[dict], syncs: list[dict], inv: dict) -> dict:
    """The report (see bin/pod-save): ok when nothing failed and nothing is unsaved."""
    failed = [r for r in repos if r["status"] == "failed"]
    failed += [w for w in wandb if w["status"] == "failed"]
    failed += [h for h in hook_reports if h["status"] in ("failed", "timeout")]
    failed += [s for s in syncs if s["status"] == "failed"]
    return {"format": FORMAT, "ok": not failed and not inv["unsaved"], "dry_run": cfg.dry_run,
            "pod_id": cfg.pod_id, "timestamp": cfg.timestamp, "workspace": cfg.workspace,
            "policy": pol.as_report(), "repos": repos, "wandb": wandb,
            "hooks": hook_reports, "sync": syncs, "inventory": inv,
            "jobs": {"running": running_jobs()}}


def running_jobs() -> list[str]:
    """Jobs (`pod-job`) still running: their output may still grow after this save."""
    try:
        import podjob
    except ImportError:  # lib/podjob missing: an image from before jobs
        return []
    return podjob.running()


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
            started, t0 = time.time(), time.monotonic()
            report = save_everything(cfg)
            if not cfg.dry_run:  # pod status and the login banner say when it last ran
                savestatus.record(savestatus.path_for(cfg.workspace), savestatus.from_report(
                    report, "manual", started, time.monotonic() - t0))
    except UserError as e:
        print(f"pod-save: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 -- never a traceback, never a silent "saved"
        print(f"pod-save: internal error: {type(e).__name__}: {redact(str(e))}",
              file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else format_human(report))
    return 0 if report["ok"] else 1
