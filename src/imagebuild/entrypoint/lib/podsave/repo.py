"""Saving one working tree: every ref that holds commits no remote has, and the work
tree itself as a snapshot commit. The user's work tree, index, HEAD, branches and
stash are never changed."""

from __future__ import annotations

import os

from . import annex, contract, lfs, prune, uncommitted
from .config import Config
from .gitcmd import Git, GitError
from .policy import OWN_STATE
from .proc import redact
from .refs import Push, RemoteView, local_path, push_all, set_status
from .snapshot import SnapshotBuilder


def _image_trailer() -> str:
    """A trailer naming the image the pod runs (host-set: contract IMAGE_DIGEST_ENV, a
    local pod's IMAGE_ID_ENV), so that a snapshot says what produced it."""
    names = contract.names()
    image = (os.environ.get(names.get("POD_IMAGE_DIGEST_VAR", "POD_IMAGE_DIGEST"))
             or os.environ.get(names.get("POD_IMAGE_ID_VAR", "POD_IMAGE_ID")))
    return f"\nImage-Digest: {image}\n" if image else ""

SPECIAL_HEADS = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "REBASE_HEAD")
AUTOSTASHES = ("rebase-merge/autostash", "rebase-apply/autostash", "MERGE_AUTOSTASH")


class RepoSaver:
    snapshot_builder = SnapshotBuilder  # incremental.py's hashes through a stat cache

    def __init__(self, path: str, cfg: Config, nested: list[str], *, shared_refs: bool,
                 snapshot_ref: str, secret_allowed, wanted: set[str] | None = None):
        self.git = Git(path, cfg)
        self.cfg = cfg
        self.path = path
        self.nested = nested  # other repos inside this one: saved on their own
        self.shared_refs = shared_refs  # push branches, tags, stashes from this worktree
        self.snapshot_ref = snapshot_ref
        self.secret_allowed = secret_allowed
        self.wanted = wanted or set()  # commits an enclosing repo records (gitlinks)
        self.report: dict = {"path": path, "status": "clean", "reason": None,
                             "remote": None, "url": None, "branches": [],
                             "snapshot": None, "stashes": [], "refs": [],
                             "skipped_files": []}
        self.pushes: list[Push] = []
        self.problems: list[str] = []
        self.explained: set[int] = set()  # failed items whose cause is in problems
        self.gitlinks: dict[str, str] = {}
        self.views: dict[str, RemoteView] = {}
        self.sent: list[tuple[str, dict]] = []  # (commit, item) of what goes to a remote
        self.stash_refs: list[tuple[str, str]] = []  # refs/NAME (a *stash* name), commit
        self.index_listing: str | None = None  # `ls-files -z -s -t`, when already read

    def save(self) -> dict:
        try:
            self._save()
        except GitError as e:
            self.problems.append(str(e))
        except Exception as e:  # noqa: BLE001 -- one broken repo must not stop the others
            self.problems.append(f"internal error: {type(e).__name__}: {redact(str(e))}")
        return self._finish()

    def _save(self) -> None:
        self._pick_remotes()
        self._read_head()
        # Annex content first: copying it updates the git-annex branch pushed below.
        steps = [self._save_annex, self._plan_branches, self._plan_refs,
                 self._plan_stashes] if self.shared_refs else []
        for step in steps + [self._plan_special_heads, self._plan_snapshot]:
            try:  # one failed step never cancels the others' pushes
                step()
            except GitError as e:
                self.problems.append(str(e))
                if step == self._plan_snapshot:
                    self._snapshot_failed(str(e))
        if not self.remotes and (self.head or self.pushes):
            self.problems.append(self.no_remote)
        try:  # LFS content before the refs that point to it, as LFS's pre-push hook does
            self._save_lfs()
        except GitError as e:
            self.problems.append(str(e))
        self._push_all()
        self._prune()

    def _read_head(self) -> None:
        """HEAD's commit, tree and branch in one git process ("--": a file named HEAD
        is no revision); an unborn HEAD has only a branch."""
        out = self.git.try_out("rev-parse", "--absolute-git-dir", "HEAD^{commit}",
                               "HEAD^{tree}", "--symbolic-full-name", "HEAD", "--").splitlines()
        if len(out) == 5:
            self.git_dir, self.head, self.head_tree = out[0], out[1], out[2]
            self.head_branch = out[3].removeprefix("refs/heads/") if out[3] != "HEAD" else ""
            return
        self.git_dir, self.head, self.head_tree = None, None, ""
        self.head_branch = self.git.try_out("symbolic-ref", "-q", "HEAD") \
            .removeprefix("refs/heads/")

    def _refs(self) -> list[list[str]]:
        """Every ref with its object, peeled object and upstream: one for-each-ref for
        branches, tags and the rest."""
        if not hasattr(self, "_all_refs"):
            fmt = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00" \
                  "%(*objectname)%00%(upstream:remotename)%00%(upstream:remoteref)%00" \
                  "%(push:remotename)"
            self._all_refs = [line.split("\0") for line in
                              self.git.out("for-each-ref", f"--format={fmt}").splitlines()]
        return self._all_refs

    def _pick_remotes(self) -> None:
        """Remotes off this pod; one on the volume itself is no place to save to."""
        self.remotes, on_volume = [], []
        ws = self.cfg.workspace + os.sep
        urls = self._remote_urls()
        for name, url in urls.items():
            where = local_path(url, self.path)
            if where and (where + os.sep).startswith(ws):
                on_volume.append(name)
            else:
                self.remotes.append(name)
        self.default = "origin" if "origin" in self.remotes else (
            self.remotes[0] if self.remotes else None)
        self.no_remote = ("no git remote: its commits and changes exist only on this pod "
                          "(git remote add origin URL)")
        if on_volume:
            self.no_remote = (f"no git remote off this pod: {', '.join(on_volume)} is on "
                              f"the pod's own volume and is lost with it (add a remote "
                              f"elsewhere: git remote add backup URL)")
        shown = self.default or (on_volume[0] if on_volume else None)
        if shown:
            self.report["remote"] = shown
            self.report["url"] = redact(urls[shown])

    def _remote_urls(self) -> dict[str, str]:
        """Each remote's push URL: from the config already read, unless url.*.insteadOf
        rewrites URLs (then `git remote -v`, which applies them)."""
        cfg = self.git.config_items()
        if not any(k.startswith("url.") for k in cfg):
            urls = {}
            for key, value in cfg.items():
                if key.startswith("remote.") and key.endswith((".url", ".pushurl")):
                    name, field = key[len("remote."):].rsplit(".", 1)
                    if field == "pushurl" or name not in urls:
                        urls[name] = value
            return urls
        urls = {}
        for line in self.git.out("remote", "-v").splitlines():  # NAME\tURL (push)
            name, _, rest = line.partition("\t")
            if rest.endswith(" (push)") or name not in urls:
                urls[name] = rest.rsplit(" (", 1)[0]
        return urls

    def view(self, remote: str) -> RemoteView:
        if remote not in self.views:
            self.views[remote] = RemoteView(self.git, remote)
        return self.views[remote]

    def autosave(self, kind: str, name: str) -> str:
        return f"{self.snapshot_ref}-{kind}-{name}"

    def _add(self, sha: str, dst: str, item: dict, remote: str | None,
             fallback: str | None = None) -> None:
        """Plan a push unless the remote has the commit already (or is unreachable)."""
        item.setdefault("status", "pending")
        item.setdefault("reason", None)
        if remote is None:
            set_status(item, "failed", "no git remote to push to")
            self.explained.add(id(item))
            return
        view = self.view(remote)
        self.sent.append((sha, item))
        if view.error:
            set_status(item, "failed", view.error)
            if f"{remote}: {view.error}" not in self.problems:  # one problem per remote
                self.problems.append(f"{remote}: {view.error}")
            self.explained.add(id(item))
            return
        if view.has(sha, peel=not dst.startswith("refs/tags/")):
            if "ahead" in item:
                item["ahead"] = 0
            set_status(item, "up-to-date")
            return
        if "ahead" in item:
            item["ahead"] = view.ahead(sha)
        if any(p.dst == dst and p.item.get("remote") == remote for p in self.pushes) or \
                not view.fast_forward(dst, sha) and fallback:
            # Another ref goes there, or the branch there has moved on: save beside it.
            dst, fallback = fallback or dst, None
            item["ref"], item["diverged"] = dst, True
        self.pushes.append(Push(sha, dst, item, fallback))

    # -- what to push

    def _plan_branches(self) -> None:
        for ref, _, sha, _, _, up_remote, up_ref, push_remote in self._refs():
            if not ref.startswith("refs/heads/"):
                continue
            name = ref.removeprefix("refs/heads/")
            remote = next((r for r in (push_remote, up_remote, self.default)
                           if r and r in self.remotes), None)
            # Never onto an upstream of another name (`checkout -b x origin/main`).
            dst = up_ref if remote == up_remote and up_ref == ref else ref
            item = {"name": name, "remote": remote, "ref": dst, "ahead": None,
                    "status": "pending", "reason": None}
            self.report["branches"].append(item)
            self._add(sha, dst, item, remote, fallback=self.autosave("branch", name))

    def _plan_refs(self) -> None:
        """Tags, notes and any other refs (not remote-tracking ones, not the stash)
        whose commits no remote has, saved under autosave names."""
        for ref, kind, sha, peeled_kind, peeled, *_ in self._refs():
            if ref.startswith(("refs/heads/", "refs/remotes/")) or ref == "refs/stash":
                continue
            label = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else \
                ref.removeprefix("refs/")
            what = "tag" if ref.startswith("refs/tags/") else "ref"
            if what == "ref" and "stash" in label.rsplit("/", 1)[-1].lower():
                self.stash_refs.append((label, sha))  # refs/autostash: uncommitted work
                continue
            if what == "tag" and kind == "tag":
                # An annotated tag: its own object (the message) goes as that tag, and
                # with it what it points at (a commit, or another tag). Beside it when
                # the remote's tag of that name is another.
                beside = "refs/tags/" + self.autosave("tag", label).removeprefix("refs/heads/")
                item = {"name": f"tag {label}", "ref": ref, "commit": sha,
                        "remote": self.default}
                self.report["refs"].append(item)
                if self._tag_elsewhere(sha):
                    set_status(item, "up-to-date")
                    continue
                self._add(sha, ref, item, self.default, fallback=beside)
                continue
            if kind == "tag":  # a tag object outside refs/tags: the commit it leads to
                sha = peeled if peeled_kind == "commit" else \
                    self.git.try_out("rev-parse", "-q", "--verify", f"{ref}^{{commit}}")
                kind = "commit" if sha else "tag"
            if kind != "commit":
                continue
            dst = self.autosave(what, label)
            item = {"name": f"{what} {label}", "ref": dst, "commit": sha,
                    "remote": self.default}
            self.report["refs"].append(item)
            self._add(sha, dst, item, self.default)
        for sha in sorted(self.wanted):
            if self.git.has_commit(sha):
                item = {"name": f"commit {sha[:12]} (recorded by the enclosing repository)",
                        "ref": self.autosave("gitlink", sha[:12]), "commit": sha,
                        "remote": self.default}
                self.report["refs"].append(item)
                self._add(sha, item["ref"], item, self.default)

    def _tag_elsewhere(self, sha: str) -> bool:
        """Another remote off the pod (a fork's upstream) has this tag object already:
        it is saved, and not copied onto the user's remote."""
        if not self.default or sha in self.view(self.default).refs.values():
            return False
        return any(sha in self.view(r).refs.values() for r in self.remotes if r != self.default)

    def _git_files(self, names: tuple[str, ...]) -> dict[str, list[str]]:
        """name -> the commits named in that file of the git dir (absent: left out)."""
        if not hasattr(self, "_git_paths"):
            every = SPECIAL_HEADS + AUTOSTASHES
            # All per-worktree files: in the work tree's own git dir (as --git-path says).
            self._git_paths = {n: os.path.join(self.git_dir, n) for n in every} \
                if self.git_dir else dict(zip(every, self.git.try_out("rev-parse", *[
                    a for name in every for a in ("--git-path", name)]).splitlines(),
                    strict=False))
        found = {}
        for name, rel in ((n, self._git_paths[n]) for n in names if n in self._git_paths):
            try:
                with open(os.path.join(self.path, rel)) as f:
                    shas = [ln.split()[0] for ln in f if ln.strip()]
            except OSError:
                continue
            found[name] = [sha for sha in shas if self.git.has_commit(sha)]
        return found

    def _plan_special_heads(self) -> None:
        """MERGE_HEAD & co.: commits a merge, cherry-pick or revert in progress holds."""
        for name, shas in self._git_files(SPECIAL_HEADS).items():
            for n, sha in enumerate(shas):
                label = name.lower().replace("_", "-") + (f"-{n}" if n else "")
                item = {"name": name if not n else f"{name} {n}", "commit": sha,
                        "ref": f"{self.snapshot_ref}-{label}", "remote": self.default}
                self.report["refs"].append(item)
                self._add(sha, item["ref"], item, self.default)

    def _plan_stashes(self) -> None:
        """Stash entries, the autostash a stopped `rebase/merge --autostash` keeps outside
        the stash list, and refs named like a stash (refs/autostash): uncommitted edits
        in no work tree, scanned for secrets like any stash."""
        entries = [(f"stash-{n}", f"stash@{{{n}}}", sha) for n, sha in
                   enumerate(self.git.try_out("stash", "list", "--format=%H").split())] \
            if any(r[0] == "refs/stash" for r in self._refs()) else []
        for name, shas in self._git_files(AUTOSTASHES).items():
            kind = "merge" if name == "MERGE_AUTOSTASH" else "rebase"
            entries += [(f"autostash-{kind}", f"autostash of the stopped {kind}", sha)
                        for sha in shas[:1]]
        entries += [("stash-" + label.replace("/", "-"), f"refs/{label}", sha)
                    for label, sha in self.stash_refs]
        for suffix, label, sha in entries:
            ref = f"{self.snapshot_ref}-{suffix}"
            sha, withheld = uncommitted.clean_stash(self.git, sha, self.secret_allowed)
            self.report["skipped_files"] += [{**w, "path": f"{label}:{w['path']}"}
                                             for w in withheld]
            item = {"ref": ref, "commit": sha, "remote": self.default,
                    "status": "pending", "reason": None}
            if not label.startswith("stash@"):
                item["name"] = label
            if withheld:
                item["withheld"] = [w["path"] for w in withheld]
            self.report["stashes"].append(item)
            self._add(sha, ref, item, self.default)

    def _plan_snapshot(self) -> None:
        snap = self.snapshot_builder(self.git, self.head, [os.path.relpath(p, self.path)
                               for p in self.nested], self.cfg.max_file_bytes,
                               self.secret_allowed, self._own_state(),
                               self.index_listing).build()
        self.gitlinks = snap.gitlinks
        self.report["skipped_files"] = snap.skipped + self.report["skipped_files"]
        head_tree = self.head_tree
        empty = not self.head and snap.changed == 0
        if empty or snap.tree == head_tree:
            if empty or self.head_branch or any(
                    p.src == self.head for p in self.pushes):
                return  # clean on a branch (saved as the branch) or nothing at all
            commit = self.head  # a detached HEAD: its commits may be on no branch
        else:
            commit = self._commit(snap.tree)
        item = {"ref": self.snapshot_ref, "commit": commit, "remote": self.default,
                "files": snap.changed, "status": "pending", "reason": None}
        self.report["snapshot"] = item
        if self.default and not self.view(self.default).error and \
                self._same_snapshot_exists(item):
            set_status(item, "up-to-date")
            self.sent.append((item["commit"], item))
            return
        self._add(commit, self.snapshot_ref, item, self.default)

    def _snapshot_failed(self, why: str) -> None:
        """The work tree could not be snapshotted: say so, so that nothing in it
        counts as saved because HEAD's branch was pushed."""
        item = {"ref": self.snapshot_ref, "commit": None, "remote": self.default,
                "files": None, "status": "failed", "reason": why}
        self.report["snapshot"] = item
        self.explained.add(id(item))

    def _own_state(self) -> list[str]:
        """The pod's own folders (.pod, .claude, ...) relative to this work tree, when
        it holds /workspace itself: never in a snapshot."""
        ws = self.cfg.workspace
        if not (ws + os.sep).startswith(self.path.rstrip(os.sep) + os.sep):
            return []
        return [os.path.relpath(os.path.join(ws, p), self.path) for p in OWN_STATE]

    def _same_snapshot_exists(self, snap: dict) -> bool:
        """An earlier pod-save already pushed this very tree on this parent (all the
        earlier snapshots asked in one git process)."""
        prefix = f"refs/heads/autosave/{self.cfg.pod_id}/"
        view = self.view(self.default)
        tips = set(view.tips)  # the remote's commits this repository has
        earlier = {sha: ref for ref, sha in view.refs.items()
                   if ref.startswith(prefix) and sha in tips}
        if not earlier:
            return False
        out = self.git.try_out("show", "-s", "--format=%H %T %P", snap["commit"], *earlier)
        shape = dict(line.partition(" ")[::2] for line in out.splitlines())
        want = shape.get(snap["commit"])
        for sha, ref in sorted(earlier.items(), key=lambda e: e[1]):
            if want is not None and shape.get(sha) == want:
                snap["ref"], snap["commit"] = ref, sha
                return True
        return False

    def _identity(self) -> dict[str, str]:
        """Who commits (commit-tree, git-annex's branch): a fresh pod may have no one
        configured."""
        env = {}
        if not self.git.config("user.name"):
            env.update(GIT_AUTHOR_NAME="pod-save", GIT_COMMITTER_NAME="pod-save")
        if not self.git.config("user.email"):
            email = f"pod-save@{self.cfg.pod_id}"
            env.update(GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_EMAIL=email)
        return env

    def _save_annex(self) -> None:
        """git-annex content that is only in .git/annex/objects: copied to the remote,
        or named with its size (annex.py)."""
        entry = annex.save(self.git, self.default, self._identity(), self.cfg.dry_run)
        if entry is None:
            return
        unsaved, files = entry.pop("unsaved"), entry.pop("files")
        self.report["annex"] = entry
        if unsaved:
            self._name_unsaved(f"{len(unsaved)} git-annex key(s)", sum(unsaved.values()),
                               f"git-annex content only in .git/annex/objects: "
                               f"{entry['reason']}", files)

    def _commit(self, tree: str) -> str:
        git = self.git
        env = self._identity()
        where = self.head_branch or ("detached HEAD" if self.head else "no commits yet")
        message = (
            f"pod-save: uncommitted work on {where}, pod {self.cfg.pod_id}, "
            f"{self.cfg.timestamp}\n\nThe working tree, tracked and untracked files, "
            f"byte for byte; nothing on the pod was changed.\nRestore into a clone: "
            f"pod-restore {self.snapshot_ref.removeprefix('refs/heads/')}\n{_image_trailer()}")
        parents = ["-p", self.head] if self.head else []
        # --no-gpg-sign: signing may ask for a passphrase, and nothing may prompt.
        return git.out("commit-tree", "--no-gpg-sign", tree, *parents, "-m", message,
                       env=env).strip()

    def tree_problem(self) -> str | None:
        """None when the commit holding the work tree (the snapshot, else HEAD's
        branch) reached a remote; else why not."""
        item = self.report["snapshot"] or next(
            (b for b in self.report["branches"] if b["name"] == self.head_branch), None) \
            if hasattr(self, "head_branch") else None
        if item is None:
            return None if self.report["status"] != "failed" else self.report["reason"]
        if item["status"] in ("pushed", "up-to-date", "pending"):
            return None
        return item["reason"] or self.report["reason"]

    # -- pushing and the verdict

    def _save_lfs(self) -> None:
        """The LFS objects of every commit that goes to (or is on) a remote, pushed to
        that remote's LFS store; those that do not get there are named with their size
        and the work-tree files holding them."""
        for remote in sorted({i["remote"] for _, i in self.sent if i.get("remote")}):
            tips = [sha for sha, i in self.sent if i.get("remote") == remote and
                    i["status"] != "failed"]
            entry = lfs.save(self.git, remote, tips, self.cfg.dry_run)
            if entry is None:
                continue
            unsaved = entry.pop("unsaved")
            self.report.setdefault("lfs", []).append(entry)
            if not unsaved:
                continue
            self._name_unsaved(f"{len(unsaved)} git-lfs object(s)",
                               sum(size for size, _ in unsaved.values()),
                               f"git-lfs content not in the LFS store of {remote}: "
                               f"{entry['reason']}",
                               {rel: size for size, rel in unsaved.values()
                                if os.path.lexists(os.path.join(self.path, rel))})

    def _name_unsaved(self, what: str, size: int, why: str, files: dict[str, int]) -> None:
        """Content outside git's objects (LFS, annex) that did not reach the remote: the
        repository fails, and each work-tree file holding it is named with its size."""
        self.problems.append(f"{what}, {size} bytes: {why}")
        self.report["skipped_files"] += [{"path": rel, "bytes": n, "reason": why}
                                         for rel, n in files.items()]

    def _push_all(self) -> None:
        by_remote: dict[str, list[Push]] = {}
        for push in self.pushes:
            by_remote.setdefault(push.item["remote"], []).append(push)
        for remote, pushes in by_remote.items():
            push_all(self.git, remote, pushes, self.cfg.dry_run)

    def _prune(self) -> None:
        """Old snapshots of this clone off the remote once this one is there (prune.py);
        a failure there never fails the save."""
        snap = self.report["snapshot"]
        if not snap or not self.default or self.view(self.default).error:
            return
        try:
            gone = prune.prune(self.git, self.view(self.default), snap, self.cfg.pod_id,
                               self.snapshot_ref.rsplit("-", 1)[1], self.cfg.keep,
                               self.cfg.dry_run)
        except GitError:
            return
        if gone:
            self.report["pruned"] = gone

    def _finish(self) -> dict:
        report = self.report
        items = report["branches"] + report["stashes"] + report["refs"] + (
            [report["snapshot"]] if report["snapshot"] else [])
        for item in items:
            if id(item) in self.explained:
                continue
            if item["status"] == "failed":
                label = item.get("name") or item["ref"].removeprefix("refs/heads/")
                self.problems.append(f"{label}: {item['reason']}")
            elif item["status"] == "pending" and not self.cfg.dry_run:
                set_status(item, "failed", "not pushed (an earlier step failed)")
                self.problems.append(f"{item['ref']}: not pushed")
        skipped = report["skipped_files"]
        if skipped:
            self.problems.append(f"{len(skipped)} file(s) left out of the snapshot: "
                                 f"{skipped[0]['path']}: {skipped[0]['reason']}")
        if self.problems:
            report["status"], report["reason"] = "failed", self.problems[0]
            if len(self.problems) > 1:
                report["reason"] += f" (+{len(self.problems) - 1} more)"
        elif any(i["status"] == "pending" for i in items):
            report["status"] = "pending"
        elif any(i["status"] == "pushed" for i in items):
            report["status"] = "saved"
        return report
