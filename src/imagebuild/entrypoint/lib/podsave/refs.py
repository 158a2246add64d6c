"""Which commits a remote already has (asked with ls-remote, never guessed from
tracking refs), and pushing a repository's refs: one push per remote, never forced,
never onto a branch of another name; what cannot go where it belongs goes beside it
under autosave/<pod>/<timestamp>-..."""

from __future__ import annotations

import dataclasses
import os
import re
from urllib.parse import urlparse

from .gitcmd import Git, git_reason


@dataclasses.dataclass
class Push:
    """One ref to push and the report entry it updates."""

    src: str  # commit sha
    dst: str  # refs/heads/...
    item: dict
    fallback: str | None = None  # where it goes if dst rejects it (diverged)
    refused: bool = False  # the remote refused this ref itself ("!"), a reason given


def set_status(item: dict, status: str, reason: str | None = None) -> None:
    item["status"], item["reason"] = status, reason


def local_path(url: str, cwd: str) -> str | None:
    """The directory a remote URL names on this machine, or None (network remote)."""
    if url.startswith("file://"):
        return urlparse(url).path
    if "://" in url or re.match(r"^[^/]+:", url):  # scheme, or scp-like host:path
        return None
    return os.path.realpath(os.path.join(cwd, os.path.expanduser(url)))


class RemoteView:
    """What one remote has: its refs (ls-remote) and, for commits, whether they are
    contained in any tip this repository knows."""

    def __init__(self, git: Git, remote: str):
        self.git = git
        self.remote = remote
        res = git.run("ls-remote", remote)
        self.error = None if res.rc == 0 else git_reason(res)
        self.refs: dict[str, str] = {}
        for line in res.out.splitlines() if res.rc == 0 else []:
            sha, _, ref = line.partition("\t")
            self.refs[ref] = sha
        shas = sorted(set(self.refs.values()))
        known = git.run("cat-file", "--batch-check=%(objectname) %(objecttype)",
                        stdin="".join(s + "\n" for s in shas).encode()).out if shas else ""
        self.tips = [ln.split()[0] for ln in known.splitlines() if ln.endswith(" commit")]
        self._cache: dict[str, bool] = {}

    def has(self, sha: str, peel: bool = True) -> bool:
        """True when sha is one of the remote's tips or an ancestor of one. peel=False
        (a tag object): only as a tip; its commit being there does not hold its message."""
        if sha in self.refs.values():
            return True
        if not peel:
            return False
        if sha in self._cache:
            return self._cache[sha]
        if not self.tips:
            found = False
        else:
            stdin = (sha + "\n" + "".join(f"^{t}\n" for t in self.tips)).encode()
            res = self.git.run("rev-list", "-n1", "--stdin", stdin=stdin)
            found = res.rc == 0 and not res.out.strip()
        self._cache[sha] = found
        return found

    def ahead(self, sha: str) -> int | None:
        stdin = (sha + "\n" + "".join(f"^{t}\n" for t in self.tips)).encode()
        res = self.git.run("rev-list", "--count", "--stdin", stdin=stdin)
        return int(res.out) if res.rc == 0 and res.out.strip().isdigit() else None

    def fast_forward(self, dst: str, sha: str) -> bool:
        """dst is absent on the remote, or its tip is an ancestor of sha."""
        there = self.refs.get(dst)
        if dst.startswith("refs/tags/"):  # a tag never moves
            return there is None or there == sha
        return there is None or there == sha or self.git.run(
            "merge-base", "--is-ancestor", there, sha).rc == 0


def push_all(git: Git, remote: str, pushes: list[Push], dry_run: bool) -> None:
    """Push each ref; a branch the remote refuses (diverged, or protected by a hook)
    goes to its fallback beside it. One push per remote: one connection, and one
    rejected ref does not stop the others (no --atomic). A hook that refuses a whole
    push (pre-receive) for one ref's sake: the others are pushed again without it,
    then one by one. Never forced."""
    if dry_run or not pushes:
        return
    _push(git, remote, pushes)
    retry = [p for p in pushes if p.item["status"] == "failed" and p.refused and
             (p.fallback or "rejected by" in (p.item["reason"] or ""))]
    for p in retry:
        if p.fallback:
            p.item["refused"] = p.item["reason"]  # the remote's words, kept for the report
            p.dst, p.item["ref"], p.fallback = p.fallback, p.fallback, None
            p.item["diverged"] = True
    if retry:
        _push(git, remote, retry)
    again = [p for p in retry if p.item["status"] == "failed" and p.refused]
    if 1 < len(again) <= 20:
        for p in again:
            _push(git, remote, [p])


def _push(git: Git, remote: str, pushes: list[Push]) -> None:
    res = git.run("push", "--porcelain", remote,
                  *[f"{p.src}:{p.dst}" for p in pushes])
    results = {}
    for line in res.out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and ":" in parts[1]:
            results[parts[1].rsplit(":", 1)[1]] = (parts[0], parts[2])
    for push in pushes:
        flag, summary = results.get(push.dst, ("", ""))
        push.refused = flag == "!"
        if flag in (" ", "*", "+", "="):
            set_status(push.item, "pushed")
        elif flag == "!":
            set_status(push.item, "failed", git_reason(res, summary + "\n" + res.err))
        else:  # no per-ref line: the connection or a local step failed
            set_status(push.item, "failed", git_reason(res))
