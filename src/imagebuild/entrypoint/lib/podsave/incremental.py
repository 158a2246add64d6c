"""An incremental pod-save: only repositories whose files or refs changed since the
last save are saved again, and in those only changed files are hashed again (the
stat cache, statcache.py). What did not change keeps the last save's verdict.

Hooks and rclone syncs (possibly slow, the user's own) run in a full save only;
an incremental one reuses the last full one's results for them, and says so.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import os
import time

from . import cli, datasync, hooks, inventory, policy, wandbsync
from .config import Config
from .repo import RepoSaver
from .snapshot import SnapshotBuilder
from .statcache import StatCache, changed, file_stat, git_state, tree_state
from .walk import walk


def cache_path(workspace: str) -> str:
    return os.path.join(workspace, ".pod", "autosave", "statcache.json")


class CachedSnapshotBuilder(SnapshotBuilder):
    """Hashes only files whose stat changed (or is racy) since they were hashed."""

    def __init__(self, cache: StatCache, taken_at: float, *args):
        super().__init__(*args)
        self.cache = cache
        self.taken_at = taken_at  # when the cached stats were taken
        self.new_blobs: dict[str, list] = {}
        self.hashed = 0  # files actually read this time (for tests and the bench)

    def _hash_batch(self, paths: list[str], flags: list[str]) -> dict[str, str]:
        key = " ".join(flags)
        stats = {rel: file_stat(os.path.join(self.root, rel)) for rel in paths}
        hits = {rel: sha for rel in paths
                if (sha := self.cache.blob(self.root, rel, stats[rel], key, self.taken_at))}
        if hits:  # the objects were written by an earlier save; gc may have pruned them
            res = self.git.run("cat-file", "--batch-check",
                               stdin="".join(s + "\n" for s in hits.values()).encode())
            missing = {ln.split()[0] for ln in res.out.splitlines() if ln.endswith(" missing")}
            if res.rc != 0:
                missing = set(hits.values())
            hits = {rel: sha for rel, sha in hits.items() if sha not in missing}
        misses = [rel for rel in paths if rel not in hits]
        self.hashed += len(misses)
        found = {**hits, **super()._hash_batch(misses, flags)}
        for rel, sha in found.items():
            self.new_blobs[rel] = [stats[rel], key, sha]
        return found


class IncrementalSaver(RepoSaver):
    cache: StatCache
    taken_at: float

    def snapshot_builder(self, *args) -> SnapshotBuilder:
        self.builder = CachedSnapshotBuilder(self.cache, self.taken_at, *args)
        return self.builder


class CachedRepo:
    """A repository unchanged since the last save: its last result, as RepoSaver's
    face towards the inventory."""

    def __init__(self, path: str, result: dict):
        self.path = path
        self.report = result["report"]
        self._problem = result["problem"]
        self.ignored = concurrent.futures.Future()
        self.ignored.set_result(set(result["ignored"]))

    def tree_problem(self) -> str | None:
        return self._problem


def _files_by_repo(found) -> dict[str, list[str]]:
    """Every walked file under each repository (a nested one's files count for both:
    a change there makes both dirty, which is safe). Looked up folder by folder
    upwards, not repository by repository: 200 repositories cost the same as one."""
    out: dict[str, list[str]] = {r: [] for r in found.repos}
    stop = os.path.dirname(found.workspace)
    for path, _ in found.files:
        folder = os.path.dirname(path)
        while folder not in (stop, "/", ""):
            if folder in out:
                out[folder].append(path)
            folder = os.path.dirname(folder)
    return out


def _nested_git_counts(states: dict) -> None:
    """A repository's git state includes that of the repositories inside it: its
    snapshot records their HEADs (gitlinks), and a commit in a submodule changes
    only files under .git/modules/NAME, which no walk of the parent sees."""
    for repo in sorted(states, key=len, reverse=True):  # innermost first
        folder = os.path.dirname(repo)
        while folder not in ("/", ""):
            if folder in states:
                states[folder]["git"].update(states[repo]["git"])
                break  # that one passes it on to its own parent in turn
            folder = os.path.dirname(folder)


def _dirty(cache: StatCache, repo: str, state: dict, full: bool) -> bool:
    old = cache.repos.get(repo)
    if full or old is None or old["result"]["report"]["status"] == "failed" or \
            old["result"]["problem"]:
        return True  # never saved, or not saved: try again every time
    return bool(changed(old["files"], state["files"], old["taken_at"]) or
                changed(old["git"], state["git"], old["taken_at"]))


def save(cfg: Config, full: bool = False, cache_file: str | None = None) -> dict:
    """pod-save's report (save_everything's shape) plus "incremental": which
    repositories were saved, which kept their last result, files hashed."""
    pol = policy.load(cfg.workspace)
    cache = StatCache.load(cache_file or cache_path(cfg.workspace))
    full = full or not cache.extra
    found = walk(cfg.workspace, pol.discard, None if cfg.deadline is None else
                 time.monotonic() + cfg.time_left(float("inf")) / 2)
    taken_at = time.time()  # before any stat: a file changed from now on is dirty
    states = {repo: {"files": tree_state(files), "git": git_state(repo)}
              for repo, files in _files_by_repo(found).items()}
    _nested_git_counts(states)
    dirty = [r for r in found.repos if _dirty(cache, r, states[r], full)]
    kept = {r: CachedRepo(r, cache.repos[r]["result"]) for r in found.repos if r not in dirty}

    if found.gitdirs:  # separate git dirs: judged against every repository, not the dirty
        with concurrent.futures.ThreadPoolExecutor(max_workers=cfg.jobs) as pool:
            cli._own_gitdirs(found, cli.facts_dirs(found.repos, cfg, pool))
        found.gitdirs = []

    savers: dict = {}
    repos: list[dict] = []
    if dirty:
        subset = _subset(found, dirty)
        repos, savers = cli.save_repos(cfg, pol, subset, saver_class=_bound(cache))
    wandb = wandbsync.sync_runs(cfg, wandbsync.find_runs(cfg, found.wandb_runs))
    if full:
        hook_reports, syncs = hooks.run_hooks(cfg), datasync.sync_data(cfg, pol)
    else:
        hook_reports, syncs = cache.extra.get("hooks", []), cache.extra.get("sync", [])
    inv = inventory.Classifier(found, pol, {**kept, **savers}, wandb, hook_reports, syncs).classify()
    all_repos = sorted(repos + [k.report for k in kept.values()], key=lambda r: r["path"])
    report = cli.make_report(cfg, pol, all_repos, wandb, hook_reports, syncs, inv)
    report["incremental"] = {
        "full": full, "saved": sorted(savers), "kept": sorted(kept),
        "hashed": sum(getattr(getattr(s, "builder", None), "hashed", 0) for s in savers.values())}
    if not cfg.dry_run:
        _remember(cache, savers, states, taken_at, full, hook_reports, syncs, found.repos)
    return report


def _bound(cache: StatCache):
    """Savers that hash through the cache, each knowing when its stats were taken."""
    def make(path, *args, **kwargs):
        saver = IncrementalSaver(path, *args, **kwargs)
        saver.cache = cache
        saver.taken_at = cache.repos.get(path, {}).get("taken_at", 0.0)
        return saver
    return make


def _subset(found, dirty: list[str]):
    sub = copy.copy(found)
    sub.repos = dirty
    return sub


def _remember(cache: StatCache, savers: dict, states: dict, taken_at: float, full: bool,
              hook_reports: list, syncs: list, present: list[str]) -> None:
    for path, saver in savers.items():
        if path not in states:  # a linked worktree outside the walk: not cached
            continue
        cache.repos[path] = {"taken_at": taken_at, "files": states[path]["files"],
                             "git": states[path]["git"],
                             "result": {"report": saver.report,
                                        "problem": saver.tree_problem(),
                                        "ignored": sorted(saver.ignored.result())}}
        builder = getattr(saver, "builder", None)
        if builder is not None:
            cache.blobs[path] = builder.new_blobs
    for gone in [p for p in cache.repos if p not in present]:
        cache.repos.pop(gone)
        cache.blobs.pop(gone, None)
    if full:
        cache.extra = {"hooks": hook_reports, "sync": syncs, "full_at": taken_at}
    # Not writable for this user: the next save is a full one; nothing is lost.
    with contextlib.suppress(OSError):
        cache.write()
