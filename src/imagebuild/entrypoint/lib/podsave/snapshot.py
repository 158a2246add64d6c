"""The work tree as a tree object: the exact bytes and modes on disk, whatever git's
index says (stat cache, assume-unchanged, skip-worktree, filters, line endings).

Tracked and untracked (not ignored) files are hashed straight from disk with
--no-filters, into a temporary index that is thrown away; the user's index is only
read. Files that cannot go in (too big, secret-looking, a name git refuses, gone
while we read) are left out one by one and reported; the rest is still saved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import stat
import tempfile

from . import secrets, uncommitted
from .gitcmd import _LOCAL_WRITE, Git, GitError, git_reason

SNIFF_BYTES = 256 * 1024  # what inventory reads of a file outside git for key material
# Filters that encrypt in git (git-crypt; transcrypt's "crypt"): the bytes on disk are
# the plaintext, so only the committed (encrypted) blob may ever be pushed.
CRYPT_FILTERS = ("git-crypt", "crypt")


def secret_reason(path: str, rel: str) -> str | None:
    """Why a file looks like a secret (its name, or a rule on its first bytes), or None."""
    return secrets.file_reason(path, rel, SNIFF_BYTES)


WITHHELD = "; not pushed (allow it in .pod/save.toml allow_secrets, or keep a copy elsewhere)"


def bad_name(rel: str) -> bool:
    """Names git refuses to store (verify_path): .git in any case, ., .., empty."""
    for part in rel.split("/"):
        low = part.lower().rstrip(". ")
        if part in ("", ".", "..") or low in (".git", "git~1"):
            return True
    return False


@dataclasses.dataclass
class Snapshot:
    tree: str | None
    changed: int  # paths that differ from HEAD
    skipped: list[dict]  # {"path", "bytes", "reason"}, relative to the repo
    gitlinks: dict[str, str]  # repo-relative path -> commit, for embedded repositories


def _quote(rel: str) -> str:
    """A path for --stdin-paths: C-quoted when it has a newline, CR (git drops a CR
    before the newline: "a\\r" would be read as its twin "a"), quote or backslash."""
    if not re.search(r'[\n\r"\\]', rel) and not rel.startswith('"'):
        return rel
    return '"' + rel.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") \
        .replace("\r", "\\r") + '"'


class SnapshotBuilder:
    def __init__(self, git: Git, head: str | None, nested: list[str], max_bytes: int,
                 secret_allowed, own_state: list[str] = (), index_listing: str | None = None):
        self.git = git
        self.root = git.path
        self.head = head
        self.nested = nested  # repo-relative paths of repositories inside this one
        self.max_bytes = max_bytes
        self.secret_allowed = secret_allowed  # repo-relative path -> bool
        self.own_state = list(own_state)  # the pod's own files: never in a snapshot
        self.index_listing = index_listing  # `ls-files -z -s -t` read already, or None
        self.skipped: list[dict] = []
        self.gitlinks: dict[str, str] = {}
        self.committed: dict[str, tuple[str, str]] = {}  # HEAD's tree: path -> (mode, sha)
        self.sizes: dict[str, int] = {}

    def build(self) -> Snapshot:
        staged, sparse = self._index()
        self.committed = uncommitted.tree_entries(self.git, self.head) if self.head else {}
        listing = self.git.run("ls-files", "-z", "--others", "--exclude-standard")
        if listing.rc != 0:
            raise GitError(f"git ls-files: {git_reason(listing, remote=False)}")
        others = [p for p in listing.out.split("\0")
                  if p and not p.endswith("/")]  # "sub/": a repository of its own
        self._unreadable(listing.err)
        entries: dict[str, tuple[str, str]] = {}  # path -> (mode, sha)
        regular: dict[str, str] = {}  # path -> mode, hashed below
        filters = self._filters(list(staged) + others)
        lfs = {p for p, f in filters.items() if f == "lfs"}
        crypt = {p: f for p, f in filters.items() if f in CRYPT_FILTERS}
        for rel in sorted(set(staged) | set(others)):
            kind = self._classify(rel, staged, sparse, lfs, crypt)
            if kind is None:
                continue
            if kind[0] == "entry":
                entries[rel] = kind[1]
            else:
                regular[rel] = kind[1]
        self._hash_files(regular, lfs | set(crypt), entries)
        self._withhold_plaintext(entries, crypt)
        self._withhold_secrets(entries, lfs)
        tree = self._write_tree(entries)
        changed = self._changed(tree, entries)
        return Snapshot(tree, changed, self.skipped, self.gitlinks)

    def _unreadable(self, err: str) -> None:
        """Folders git could not open as the repository's owner: nothing in them is in
        the snapshot, so they are named, with what they hold."""
        owner = self.git.owner
        who = "pod-save's user" if owner is None else f"the repository's owner " \
            f"({owner.name or 'uid ' + str(owner.uid)})"
        for rel in re.findall(r"could not open directory '(.*)': ", err):
            size = 0
            for top, _, names in os.walk(os.path.join(self.root, rel)):
                for name in names:
                    with contextlib.suppress(OSError):
                        size += os.lstat(os.path.join(top, name)).st_size
            self.skipped.append({"path": rel.rstrip("/") + "/", "bytes": size, "reason":
                                 f"{who} cannot read this folder, so it is in no snapshot "
                                 f"(make it readable to them: chown or chmod)"})

    def _z(self, *args: str, env: dict | None = None) -> list[str]:
        return [p for p in self.git.out(*args, env=env).split("\0") if p]

    def _index(self) -> tuple[dict[str, tuple[str, str]], set[str]]:
        staged, sparse = {}, set()
        listing = self.index_listing
        lines = [p for p in listing.split("\0") if p] if listing is not None else \
            self._z("ls-files", "-z", "-s", "-t")
        for line in lines:  # "TAG MODE SHA STAGE\tPATH"
            meta, _, rel = line.partition("\t")
            tag, mode, sha, _stage = meta.split()
            staged[rel] = (mode, sha)
            if tag == "S":  # skip-worktree: absent on disk on purpose (sparse checkout)
                sparse.add(rel)
        return staged, sparse

    def _filters(self, paths: list[str]) -> dict[str, str]:
        """Each path's filter attribute. git-lfs paths are hashed through it (a pointer,
        the content goes to LFS on push), encrypting ones too (then only their
        committed blob is used); any other filter is bypassed."""
        if not paths:
            return {}
        out = self.git.out("check-attr", "-z", "--stdin", "filter",
                           stdin=os.fsencode("\0".join(paths) + "\0"))
        parts = out.split("\0")
        return {p: v for p, _, v in zip(parts[0::3], parts[1::3], parts[2::3], strict=False)
                if v not in ("unspecified", "unset", "")}

    def _skip(self, rel: str, size: int, reason: str) -> None:
        self.skipped.append({"path": rel, "bytes": size, "reason": reason})

    def _keep_committed(self, rel: str):
        """The snapshot holds the committed version of rel (or nothing when it has
        none): what is left out of a snapshot is never recorded as deleted."""
        return ("entry", self.committed[rel]) if rel in self.committed else None

    def _classify(self, rel, staged, sparse, lfs, crypt):
        """("entry", (mode, sha)) for a ready index entry, ("file", mode) for a file to
        hash, or None when the path stays out of the snapshot."""
        inside = next((n for n in self.nested if rel == n or rel.startswith(n + "/")), None)
        if inside is not None:
            if rel == inside and staged.get(rel, ("",))[0] == "160000":
                sha = self._nested_head(rel) or staged[rel][1]
                self.gitlinks[rel] = sha
                return "entry", ("160000", sha)
            return None  # saved as a repository of its own
        if any(rel == p or rel.startswith(p + "/") for p in self.own_state):
            return self._keep_committed(rel)  # the pod's credentials, caches, logs
        if staged.get(rel, ("",))[0] == "160000":
            self.gitlinks[rel] = staged[rel][1]  # a submodule not checked out
            return "entry", staged[rel]
        path = os.path.join(self.root, rel)
        try:
            st = os.lstat(path)
        except OSError:
            # Gone: deleted, unless sparse checkout never put it there.
            return ("entry", staged[rel]) if rel in sparse else None
        self.sizes[rel] = st.st_size
        if bad_name(rel):
            self._skip(rel, st.st_size, "git cannot store a file of this name")
            return None
        if stat.S_ISLNK(st.st_mode):
            return "file", "120000"
        if not stat.S_ISREG(st.st_mode):
            return None  # sockets, fifos: not data
        if st.st_size > self.max_bytes and rel not in lfs and rel not in crypt:
            if not self._same_as_committed(rel):
                self._skip(rel, st.st_size, f"over {self.max_bytes // 2**20} MB, too big for "
                           "a git snapshot (gitignore it if disposable, use git lfs, or "
                           "copy it elsewhere)" + ("; the snapshot keeps its committed "
                                                   "version" if rel in self.committed else ""))
            return self._keep_committed(rel)
        if rel not in self.committed and rel not in crypt and not self.secret_allowed(rel):
            why = secrets.credential_file(rel)
            if why:
                self._skip(rel, st.st_size, f"looks like a secret ({why})" + WITHHELD)
                return None
        return "file", "100755" if st.st_mode & stat.S_IXUSR else "100644"

    def _same_as_committed(self, rel: str) -> bool:
        """A big tracked file unchanged since HEAD: hashed without being written."""
        if rel not in self.committed:
            return False
        res = self.git.run("hash-object", "--no-filters", "--", rel)
        return res.rc == 0 and res.out.strip() == self.committed[rel][1]

    def _withhold_plaintext(self, entries: dict, crypt: dict[str, str]) -> None:
        """Encrypted-in-git paths: only their committed blob goes out. Changed or new
        ones are withheld and named (the bytes on disk are the plaintext)."""
        for rel, name in crypt.items():
            if rel not in entries or entries[rel][0] == "160000":
                continue
            if rel in self.committed and entries[rel] == self.committed[rel]:
                continue
            self._skip(rel, self.sizes.get(rel, 0), f"encrypted in git (filter={name}) and "
                       + ("changed since its last commit" if rel in self.committed else "new")
                       + ": pod-save never pushes its plaintext (commit it, the filter "
                       "encrypts it, and save again)")
            kept = self._keep_committed(rel)
            if kept:
                entries[rel] = kept[1]
            else:
                del entries[rel]

    def _withhold_secrets(self, entries: dict, lfs: set[str]) -> None:
        """Every blob that differs from HEAD's is scanned before it can be pushed; one
        holding a secret is replaced by its committed version (or left out)."""
        changed = {rel: sha for rel, (mode, sha) in entries.items()
                   if mode in ("100644", "100755") and self.committed.get(rel, ("", ""))[1]
                   != sha and not self.secret_allowed(rel)}
        on_disk = {rel: os.path.join(self.root, rel) for rel in changed if rel in lfs}
        for rel, why in uncommitted.scan(self.git, {r: s for r, s in changed.items()
                                                    if r not in on_disk}, on_disk).items():
            self._skip(rel, self.sizes.get(rel, 0), f"looks like a secret ({why})" + WITHHELD
                       + ("; the snapshot keeps its committed version"
                          if rel in self.committed else ""))
            kept = self._keep_committed(rel)
            if kept:
                entries[rel] = kept[1]
            else:
                del entries[rel]

    def _nested_head(self, rel: str) -> str | None:
        sub = Git(os.path.join(self.root, rel), self.git.cfg)
        return sub.try_out("rev-parse", "--verify", "-q", "HEAD^{commit}") or None

    def _hash_files(self, regular: dict[str, str], lfs: set[str], entries: dict) -> None:
        links = [r for r, m in regular.items() if m == "120000"]
        for rel in links:
            try:
                target = os.readlink(os.path.join(self.root, rel))
            except OSError:
                continue  # gone while we looked
            res = self.git.run("hash-object", "-w", "--stdin", stdin=os.fsencode(target))
            if res.rc == 0:
                entries[rel] = ("120000", res.out.strip())
        plain = [r for r, m in regular.items() if m != "120000" and r not in lfs]
        filtered = [r for r in regular if r in lfs]
        for paths, flags in ((plain, ["--no-filters"]), (filtered, [])):
            for rel, sha in self._hash_batch(paths, flags).items():
                entries[rel] = (regular[rel], sha)

    def _hash_batch(self, paths: list[str], flags: list[str]) -> dict[str, str]:
        if not paths:
            return {}
        data = os.fsencode("".join(_quote(p) + "\n" for p in paths))
        res = self.git.run("hash-object", "-w", *flags, "--stdin-paths", stdin=data)
        shas = res.out.split()
        if res.rc == 0 and len(shas) == len(paths):
            return dict(zip(paths, shas, strict=False))
        if res.timed_out:
            raise GitError(f"git hash-object: {res.reason}")
        # One bad path (gone, unreadable) fails the batch: hash one by one.
        found = {}
        for rel in paths:
            one = self.git.run("hash-object", "-w", *flags, "--stdin-paths",
                               stdin=os.fsencode(_quote(rel) + "\n"))
            if one.rc == 0 and one.out.strip():
                found[rel] = one.out.strip()
            elif one.rc is not None and _LOCAL_WRITE.search(one.err):
                # Not this file: the repository's object store refuses writes.
                raise GitError(f"git hash-object: {git_reason(one, remote=False)}")
            elif os.path.lexists(os.path.join(self.root, rel)):
                self._skip(rel, _size(os.path.join(self.root, rel)),
                           "could not be read: " + (one.err.strip().splitlines() or ["?"])[-1])
        return found

    def _write_tree(self, entries: dict[str, tuple[str, str]]) -> str:
        with tempfile.TemporaryDirectory(prefix="pod-save-") as tmp:
            if self.git.owner:
                os.chown(tmp, self.git.owner.uid, self.git.owner.gid)
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            lines = {rel: f"{mode} {sha}\t{rel}\0" for rel, (mode, sha) in entries.items()}
            res = self.git.run("update-index", "-z", "--index-info", env=env,
                               stdin=os.fsencode("".join(lines.values())))
            if res.rc != 0:
                self._add_one_by_one(lines, env)
                self.refused = True  # the tree is not exactly entries
            return self.git.out("write-tree", env=env).strip()

    def _add_one_by_one(self, lines: dict[str, str], env: dict) -> None:
        """A name git refuses fails the whole batch: add entries singly, skip those."""
        if os.path.exists(env["GIT_INDEX_FILE"]):
            os.unlink(env["GIT_INDEX_FILE"])
        for rel, line in lines.items():
            res = self.git.run("update-index", "-z", "--index-info", env=env,
                               stdin=os.fsencode(line))
            if res.rc != 0:
                self._skip(rel, _size(os.path.join(self.root, rel)),
                           "git refused this path: " + (res.err.strip().splitlines()
                                                         or ["?"])[0][:160])

    def _changed(self, tree: str, entries: dict[str, tuple[str, str]]) -> int:
        """Paths that differ from HEAD: counted here from the entries the tree was
        written from (a process fewer per repository), unless git refused some."""
        if not self.head:
            return len(entries)
        if not getattr(self, "refused", False):
            return sum(1 for rel, e in entries.items() if self.committed.get(rel) != e) + \
                sum(1 for rel in self.committed if rel not in entries)
        out = self.git.out("diff-tree", "-r", "-z", "--name-only", "--no-renames",
                           self.head, tree)
        return len([p for p in out.split("\0") if p])


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0
