"""What the user did not commit, scanned before anything can push it: the snapshot's
changed blobs and stash entries (`stash -u`'s untracked files included). A stash that
holds a secret is pushed as a cleaned copy (the secret's path back at its committed
version, or left out); the user's own stash is never changed."""

from __future__ import annotations

import os
import tempfile

from . import secrets
from .gitcmd import Git

BATCH_BYTES = 64 * 2**20  # blob bytes read per `git cat-file --batch`
BLOB_MODES = ("100644", "100755")
NO_SHA = "0" * 40


def tree_entries(git: Git, commit: str) -> dict[str, tuple[str, str]]:
    """path -> (mode, sha) of every entry of commit's tree, recursively."""
    found = {}
    for line in git.out("ls-tree", "-r", "-z", "--full-tree", commit).split("\0"):
        meta, _, rel = line.partition("\t")
        if rel:
            mode, _kind, sha = meta.split()
            found[rel] = (mode, sha)
    return found


def _blobs(git: Git, shas: list[str]):
    """(sha, bytes) for each blob, read in batches of at most BATCH_BYTES."""
    sizes = {}
    check = git.out("cat-file", "--batch-check=%(objectname) %(objectsize)",
                    stdin="".join(s + "\n" for s in shas).encode())
    for line in check.splitlines():
        sha, _, size = line.partition(" ")
        if size.isdigit():
            sizes[sha] = int(size)
    batch, total = [], 0
    for sha in [s for s in shas if s in sizes] + [None]:
        if sha is not None and (not batch or total + sizes[sha] <= BATCH_BYTES):
            batch.append(sha)
            total += sizes[sha]
            continue
        if batch:
            res = git.run("cat-file", "--batch", stdin="".join(s + "\n" for s in batch).encode())
            data, pos = res.out.encode("utf-8", "surrogateescape"), 0
            while (end := data.find(b"\n", pos)) >= 0:
                header = data[pos:end].split()  # "<sha> blob <size>" or "<sha> missing"
                if len(header) != 3:
                    pos = end + 1
                    continue
                size = int(header[2])
                yield header[0].decode(), data[end + 1:end + 1 + size]
                pos = end + 1 + size + 1
        batch, total = ([sha], sizes[sha]) if sha is not None else ([], 0)


def scan(git: Git, blobs: dict[str, str], on_disk: dict[str, str] | None = None,
         names: bool = False) -> dict[str, str]:
    """rel -> why (a rule id or a credential file's name, never the value) for the
    blobs (rel -> sha) and files (rel -> path) that hold a secret."""
    found: dict[str, str] = {}
    by_sha: dict[str, list[str]] = {}
    for rel, sha in blobs.items():
        why = secrets.credential_file(rel) if names else None
        if why:
            found[rel] = why
        else:
            by_sha.setdefault(sha, []).append(rel)
    unread = set(by_sha)
    for sha, data in _blobs(git, sorted(by_sha)) if by_sha else ():
        unread.discard(sha)
        rule = secrets.scan(data)
        for rel in by_sha[sha] if rule else ():
            found[rel] = f"rule {rule}"
    for sha in unread:  # fail closed: what could not be scanned is not pushed
        for rel in by_sha[sha]:
            found[rel] = "could not be read to scan it for secrets"
    for rel, path in (on_disk or {}).items():
        why = secrets.file_reason(path, rel, 2**31)
        if why:
            found[rel] = why.removeprefix("looks like a secret (").removesuffix(")")
    return found


def _commit_env(git: Git, sha: str) -> dict[str, str]:
    """The original commit's author and committer, so the copy reads like it."""
    fields = git.out("show", "-s", "--format=%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI",
                     sha).rstrip("\n").split("\0")
    names = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
             "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE")
    return {k: v or "pod-save" for k, v in zip(names, fields, strict=False)}


def _rewrite_tree(git: Git, commit: str, fixes: dict[str, tuple[str, str] | None]) -> str:
    """commit's tree with each path set to an entry, or removed (None)."""
    with tempfile.TemporaryDirectory(prefix="pod-save-") as tmp:
        if git.owner:
            os.chown(tmp, git.owner.uid, git.owner.gid)
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        git.out("read-tree", f"{commit}^{{tree}}", env=env)
        lines = "".join(f"{e[0]} {e[1]}\t{rel}\0" if e else f"0 {NO_SHA}\t{rel}\0"
                        for rel, e in fixes.items())
        git.out("update-index", "-z", "--index-info", env=env, stdin=os.fsencode(lines))
        return git.out("write-tree", env=env).strip()


def clean_stash(git: Git, sha: str, allowed) -> tuple[str, list[dict]]:
    """(the stash commit to push, what was withheld from it: {"path", "bytes",
    "reason"}). A stash is W (the work tree, parents H, I and U), I (the index) and,
    after `stash -u`, U (the untracked files); whatever differs from H is scanned."""
    parents = git.out("show", "-s", "--format=%P", sha).split()
    if len(parents) < 2:
        return sha, []
    base = tree_entries(git, parents[0])
    parts = {"W": sha, "I": parents[1]} | ({"U": parents[2]} if len(parents) > 2 else {})
    fixes: dict[str, dict] = {}
    withheld: list[dict] = []
    for label, commit in parts.items():
        entries = tree_entries(git, commit)
        against = {} if label == "U" else base
        changed = {rel: s for rel, (mode, s) in entries.items() if mode in BLOB_MODES
                   and against.get(rel) != (mode, s) and not allowed(rel)}
        new = {rel for rel in changed if rel not in base}
        found = scan(git, {r: s for r, s in changed.items() if r not in new})
        found |= scan(git, {r: s for r, s in changed.items() if r in new}, names=True)
        if not found:
            continue
        fixes[label] = {rel: None if label == "U" else base.get(rel) for rel in found}
        for rel, why in sorted(found.items()):
            if all(w["path"] != rel for w in withheld):
                withheld.append({"path": rel, "bytes": 0, "reason": f"looks like a secret "
                                 f"({why}); left out of the stash copy that was pushed"})
    if not fixes:
        return sha, []
    new_parts = {}
    for label in ("I", "U"):
        if label in parts:
            commit = parts[label]
            if label in fixes:
                tree = _rewrite_tree(git, commit, fixes[label])
                message = git.out("show", "-s", "--format=%B", commit)
                commit = git.out("commit-tree", "--no-gpg-sign", tree,
                                 *(["-p", parents[0]] if label == "I" else []), "-m", message,
                                 env=_commit_env(git, parts[label])).strip()
            new_parts[label] = commit
    tree = _rewrite_tree(git, sha, fixes.get("W", {}))
    message = git.out("show", "-s", "--format=%B", sha)
    heads = ["-p", parents[0], "-p", new_parts["I"]] + (["-p", new_parts["U"]] if "U" in
                                                         new_parts else [])
    cleaned = git.out("commit-tree", "--no-gpg-sign", tree, *heads, "-m", message,
                      env=_commit_env(git, sha)).strip()
    return cleaned, withheld
