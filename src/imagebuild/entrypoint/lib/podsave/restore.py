"""pod-restore: bring a pod-save snapshot back into a clone, byte for byte, executable
bits and untracked files included. HEAD is put on the snapshot's parent and the index
matches it, so `git status` shows the saved work as uncommitted changes again."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys


def _git(*args: str, cwd: str, data: bytes | None = None) -> bytes:
    res = subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True,
                         check=False)
    if res.returncode != 0:
        raise RuntimeError(f"git {args[0]}: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout


def _tree(commit: str, cwd: str) -> list[tuple[str, str, str]]:
    out = _git("ls-tree", "-r", "-z", "--full-tree", commit, cwd=cwd).decode(
        errors="surrogateescape")
    entries = []
    for line in filter(None, out.split("\0")):
        meta, _, path = line.partition("\t")
        mode, _kind, sha = meta.split()
        entries.append((mode, sha, path))
    return entries


def _blobs(shas: list[str], cwd: str) -> dict[str, bytes]:
    """All blobs in one `git cat-file --batch`, raw: no filters, no line endings."""
    if not shas:
        return {}
    out = _git("cat-file", "--batch", cwd=cwd, data="".join(s + "\n" for s in shas).encode())
    blobs, pos = {}, 0
    while pos < len(out):
        header_end = out.index(b"\n", pos)
        sha, _kind, size = out[pos:header_end].decode().split()
        start = header_end + 1
        blobs[sha] = out[start:start + int(size)]
        pos = start + int(size) + 1
    return blobs


def _write(root: str, entries, blobs) -> None:
    for mode, sha, rel in entries:
        path = os.path.join(root, os.fsdecode(os.fsencode(rel)))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path) and not os.path.isdir(path) or os.path.islink(path):
            os.unlink(path)
        if mode == "160000":
            os.makedirs(path, exist_ok=True)
        elif mode == "120000":
            os.symlink(blobs[sha], path)
        else:
            with open(path, "wb") as f:
                f.write(blobs[sha])
            os.chmod(path, 0o755 if mode == "100755" else 0o644)


def restore(ref: str, remote: str, cwd: str, force: bool) -> str:
    top = _git("rev-parse", "--show-toplevel", cwd=cwd).decode().strip()
    if not force and _git("status", "--porcelain", "--untracked-files=all", cwd=top).strip():
        raise RuntimeError("this clone has uncommitted changes; run pod-restore in a "
                           "fresh clone (or pass --force to write over them)")
    short = ref.removeprefix("refs/heads/")
    _git("fetch", "-q", remote, f"+refs/heads/{short}:refs/pod-restore/{short}", cwd=top)
    commit = _git("rev-parse", f"refs/pod-restore/{short}^{{commit}}", cwd=top).decode().strip()
    parents = _git("show", "-s", "--format=%P", commit, cwd=top).decode().split()
    if parents:
        _git("checkout", "-q", "--detach", parents[0], cwd=top)
    old = {p for _, _, p in _tree(parents[0], top)} if parents else set()
    entries = _tree(commit, top)
    for rel in old - {p for _, _, p in entries}:  # deleted in the saved work tree
        path = os.path.join(top, rel)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
    _write(top, entries, _blobs(sorted({s for m, s, _ in entries if m != "160000"}), top))
    if parents:
        _git("reset", "-q", cwd=top)  # index = HEAD; the saved work shows as changes
    return commit


def restore_latest(cwd: str, remote: str, force: bool) -> str:
    """The newest autosave snapshot of this clone, restored; one line saying what."""
    from . import latest

    top = _git("rev-parse", "--show-toplevel", cwd=cwd).decode().strip()
    branch, why = latest.newest(top, remote)
    if branch is None:
        return f"{top}: {why}; nothing to restore"
    commit = latest.fetch(top, remote, branch)
    only_there = latest.behind_head(top, commit)
    if only_there is None:
        restore(branch, remote, top, force)
        return f"{top}: restored {branch} ({commit[:12]}, {why})"
    if not only_there:
        return (f"{top}: {branch} is older than the checked-out commit, which holds all "
                "of it (committed and pushed after it); nothing to restore")
    _onto_head(top, commit, only_there, force)
    return (f"{top}: restored {len(only_there)} file(s) of {branch} ({commit[:12]}) that no "
            "later commit holds, onto the checked-out commit")


def _onto_head(top: str, commit: str, paths: list[str], force: bool) -> None:
    """The snapshot's version of paths (or their deletion) written over HEAD's."""
    if not force and _git("status", "--porcelain", "--untracked-files=all", cwd=top).strip():
        raise RuntimeError("this clone has uncommitted changes; run pod-restore in a "
                           "fresh clone (or pass --force to write over them)")
    wanted = set(paths)
    entries = [e for e in _tree(commit, top) if e[2] in wanted]
    for rel in wanted - {e[2] for e in entries}:  # deleted in the saved work tree
        if os.path.lexists(os.path.join(top, rel)):
            os.unlink(os.path.join(top, rel))
    _write(top, entries, _blobs(sorted({s for m, s, _ in entries if m != "160000"}), top))


def _workspace() -> str:
    from . import contract
    ws = os.environ.get("POD_WORKSPACE") or contract.names().get("POD_WS")
    if not ws:
        raise RuntimeError("POD_WORKSPACE is not set and this is not a pod image")
    return os.path.abspath(ws)


def main(argv: list[str] | None = None, doc: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pod-restore", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ref", nargs="?",
                        help="the autosave branch, e.g. autosave/<pod>/<timestamp>-<hex>")
    parser.add_argument("--latest", action="store_true",
                        help="the newest autosave snapshot of this clone (no REF)")
    parser.add_argument("--all", action="store_true",
                        help="with --latest: every clone in $POD_WORKSPACE")
    parser.add_argument("--remote", default="origin", help="where to fetch it [origin]")
    parser.add_argument("--force", action="store_true",
                        help="write over uncommitted changes in this clone")
    args = parser.parse_args(argv)
    if bool(args.ref) == args.latest or (args.all and not args.latest):
        parser.error("give an autosave REF, or --latest (with --all: every clone)")
    if not args.latest:
        try:
            commit = restore(args.ref, args.remote, os.getcwd(), args.force)
        except (RuntimeError, OSError) as e:
            print(f"pod-restore: {e}", file=sys.stderr)
            return 1
        print(f"pod-restore: restored {args.ref} ({commit[:12]}): HEAD is its parent, the "
              "saved work is in the work tree as uncommitted changes")
        return 0
    failed = 0
    try:
        trees = latest_clones() if args.all else [os.getcwd()]
    except (RuntimeError, OSError) as e:
        print(f"pod-restore: {e}", file=sys.stderr)
        return 1
    for tree in trees:
        try:
            print(f"pod-restore: {restore_latest(tree, args.remote, args.force)}")
        except (RuntimeError, OSError) as e:
            failed += 1
            print(f"pod-restore: {tree}: {e}", file=sys.stderr)
    if args.all and not trees:
        print(f"pod-restore: no git clones under {_workspace()}: clone the repositories "
              "to their old paths first, then run pod-restore --latest --all")
    return 1 if failed else 0


def latest_clones() -> list[str]:
    from . import latest
    return latest.clones(_workspace())
