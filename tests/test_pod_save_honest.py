"""Every kind of work handled honestly (issue 28, item 1): saved byte for byte on the
remote (restorable), or exit 1 with the thing named and its size. Real repositories,
real bare remotes, a real git-lfs store (git-lfs's standalone file transfer for a local
remote), rclone to a local folder, a uid without a passwd entry.

Where a scenario holds a test token (a stashed edit, a URL, an inherited variable), the
test also checks it reaches no output and no remote.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from podsave_helpers import Ledger, Workspace, assert_named, closed_port, git, remote_refs
from test_pod_save_hostile import sshd  # noqa: F401 -- the real sshd fixture

pytest_plugins = ["podsave_helpers"]  # the `workspace` fixture

SECRET = "ghp_" + "Zq8" * 12  # a token shape pod-save must never print
needs_lfs = pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs missing")
needs_rclone = pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone missing")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")


@pytest.fixture
def ledger():
    book = Ledger()
    yield book
    assert book.lost() == []


def no_secret(saved, *remotes: Path) -> None:
    """SECRET is in no output and in no object of any of remotes."""
    assert SECRET not in saved.out + saved.err
    for remote in remotes:
        objects = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"],
                                 cwd=remote, capture_output=True, check=True).stdout
        assert SECRET.encode() not in objects, f"the test secret reached {remote}"


def pushed(workspace: Workspace, name: str = "proj") -> tuple[Path, Path]:
    remote = workspace.bare(name)
    return workspace.repo(name, remote), remote


def conflicting_topic(workspace: Workspace, repo: Path) -> None:
    """main and topic both change README.md: rebasing or merging one onto the other stops."""
    git(repo, "switch", "-q", "-c", "topic", env=workspace.env)
    workspace.commit(repo, "README.md", "topic's README\n")
    git(repo, "switch", "-q", "main", env=workspace.env)
    workspace.commit(repo, "README.md", "main's README\n")


# ------------------------------------------------------------------ autostash


@pytest.mark.parametrize("how", ["rebase", "merge"])
def test_autostash_of_a_stopped_rebase_or_merge_reaches_the_remote(workspace, ledger, how):
    repo, remote = pushed(workspace)
    workspace.commit(repo, "notes.md", "committed notes\n")
    git(repo, "push", "-q", "origin", "main", env=workspace.env)
    conflicting_topic(workspace, repo)
    if how == "rebase":
        git(repo, "switch", "-q", "topic", env=workspace.env)
    (repo / "notes.md").write_text("a week of uncommitted analysis\n")
    (repo / ".gitignore").write_text(f"*.log\n# token = {SECRET}\n")  # edit with a token
    ledger.file(repo, remote, "notes.md")
    args = ["rebase", "--autostash", "main"] if how == "rebase" else \
        ["merge", "--autostash", "--no-edit", "topic"]
    git(repo, *args, check=False, env=workspace.env)  # stops on the conflict
    assert "uncommitted analysis" not in (repo / "notes.md").read_text()  # in the autostash only
    ledger.files.clear()  # the pod still holds it (in the autostash), not on disk

    saved = workspace.save("--json")

    no_secret(saved, remote)
    autostash = [s for s in saved.repo(repo)["stashes"] if "autostash" in s["ref"]]
    assert autostash and autostash[0]["status"] == "pushed", saved.repo(repo)
    assert autostash[0]["withheld"] == [".gitignore"]  # the token's file, named
    ref = autostash[0]["ref"]
    assert git(remote, "show", f"{ref}:notes.md") == "a week of uncommitted analysis"
    # Restorable the way git keeps it: `git stash apply` of that commit in a fresh clone.
    clone = workspace.root / "clone"
    git(workspace.root, "clone", "-q", str(remote), str(clone), env=workspace.env)
    git(clone, "fetch", "-q", "origin", ref, env=workspace.env)
    git(clone, "stash", "apply", "FETCH_HEAD", env=workspace.env)
    assert (clone / "notes.md").read_text() == "a week of uncommitted analysis\n"


def test_autostash_kept_as_a_ref_is_scanned_like_a_stash_entry(workspace, ledger):
    repo, remote = pushed(workspace)
    (repo / "README.md").write_text("uncommitted plan\n")
    (repo / ".gitignore").write_text(f"*.log\n# token = {SECRET}\n")
    sha = git(repo, "stash", "create", env=workspace.env)
    git(repo, "update-ref", "refs/autostash", sha, env=workspace.env)  # what tools leave
    git(repo, "reset", "-q", "--hard", env=workspace.env)

    saved = workspace.save("--json")

    no_secret(saved, remote)
    [entry] = [s for s in saved.repo(repo)["stashes"] if "autostash" in s["ref"]]
    assert entry["status"] == "pushed" and entry["withheld"] == [".gitignore"]
    assert git(remote, "show", f"{entry['ref']}:README.md") == "uncommitted plan"


# ------------------------------------------------------------------ tags


def test_annotated_tag_object_is_pushed_as_a_tag(workspace, ledger):
    repo, remote = pushed(workspace)
    git(repo, "tag", "-a", "-m", "v1: 93.1% success on PickCube, seed 7", "v1",
        env=workspace.env)  # on a commit the remote has: only the tag object is new
    tag = git(repo, "rev-parse", "refs/tags/v1")

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    assert remote_refs(remote)["refs/tags/v1"] == tag
    assert "93.1% success" in git(remote, "cat-file", "tag", tag)


def test_commit_reachable_only_from_a_tag_of_a_tag_is_saved(workspace, ledger):
    repo, remote = pushed(workspace)
    git(repo, "switch", "-q", "--detach", env=workspace.env)
    sha = ledger.commit(repo, remote, workspace.commit(repo, "release.txt"))
    git(repo, "tag", "-a", "-m", "inner", "inner", env=workspace.env)
    git(repo, "tag", "-a", "-m", "outer", "outer", "inner", env=workspace.env)
    git(repo, "tag", "-d", "inner", env=workspace.env)
    git(repo, "switch", "-q", "main", env=workspace.env)
    outer = git(repo, "rev-parse", "refs/tags/outer")

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    assert remote_refs(remote)["refs/tags/outer"] == outer
    assert git(remote, "rev-parse", "refs/tags/outer^{commit}") == sha


def test_tag_whose_name_the_remote_holds_elsewhere_is_saved_beside(workspace, ledger):
    repo, remote = pushed(workspace)
    git(repo, "tag", "-a", "-m", "theirs", "v1", env=workspace.env)
    git(repo, "push", "-q", "origin", "v1", env=workspace.env)
    git(repo, "tag", "-d", "v1", env=workspace.env)
    sha = ledger.commit(repo, remote, workspace.commit(repo, "mine.txt"))
    git(repo, "tag", "-a", "-m", "mine", "v1", env=workspace.env)
    theirs = remote_refs(remote)["refs/tags/v1"]

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    assert remote_refs(remote)["refs/tags/v1"] == theirs  # never forced
    mine = git(repo, "rev-parse", "refs/tags/v1")
    assert mine in remote_refs(remote).values()
    assert git(remote, "cat-file", "-t", sha) == "commit"


def test_tag_an_upstream_remote_holds_is_not_copied_to_origin(workspace, ledger):
    repo, remote = pushed(workspace)
    upstream = workspace.bare("upstream")
    git(repo, "remote", "add", "upstream", str(upstream), env=workspace.env)
    git(repo, "tag", "-a", "-m", "their release", "v0", env=workspace.env)
    git(repo, "push", "-q", "upstream", "main", "v0", env=workspace.env)

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    assert "refs/tags/v0" not in remote_refs(remote)
    assert [r["status"] for r in saved.repo(repo)["refs"]] == ["up-to-date"]


# ------------------------------------------------------------------ git-lfs


def lfs_repo(workspace: Workspace) -> tuple[Path, Path, bytes, str]:
    repo, remote = pushed(workspace, "lfs")
    git(repo, "lfs", "install", "--local", env=workspace.env)
    (repo / ".gitattributes").write_text("*.pt filter=lfs diff=lfs merge=lfs -text\n")
    content = os.urandom(64 * 1024)
    (repo / "model.pt").write_bytes(content)
    git(repo, "add", "-A", env=workspace.env)
    git(repo, "commit", "-q", "-m", "weights", env=workspace.env)
    return repo, remote, content, hashlib.sha256(content).hexdigest()


# What `git lfs install` puts in ~/.gitconfig, for the fresh clone (HOME is empty).
LFS_FILTER = ["-c", "filter.lfs.process=git-lfs filter-process", "-c", "filter.lfs.required=true",
              "-c", "filter.lfs.smudge=git-lfs smudge -- %f"]


def in_store(remote: Path, oid: str) -> Path:
    return remote / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


@needs_lfs
@pytest.mark.parametrize("how", ["no-verify", "hooksPath"])
def test_lfs_object_that_never_reached_the_store_is_pushed_there(workspace, ledger, how):
    repo, remote, content, oid = lfs_repo(workspace)
    if how == "hooksPath":  # the user's hooks folder hides LFS's pre-push hook
        (workspace.root / "hooks").mkdir()
        git(repo, "config", "core.hooksPath", str(workspace.root / "hooks"), env=workspace.env)
        git(repo, "push", "-q", "origin", "main", env=workspace.env)
    else:
        git(repo, "push", "-q", "--no-verify", "origin", "main", env=workspace.env)
    assert not in_store(remote, oid).exists()  # the remote holds only the pointer

    saved = workspace.save("--json", env={"GIT_LFS_SKIP_PUSH": "1"})

    assert saved.rc == 0, saved.out + saved.err
    assert in_store(remote, oid).read_bytes() == content
    clone = workspace.root / "clone"
    git(workspace.root, *LFS_FILTER, "clone", "-q", str(remote), str(clone), env=workspace.env)
    assert (clone / "model.pt").read_bytes() == content  # smudged from the store


@needs_lfs
def test_lfs_content_of_the_snapshot_reaches_the_store(workspace, ledger):
    repo, remote, _, _ = lfs_repo(workspace)
    git(repo, "push", "-q", "origin", "main", env=workspace.env)
    (workspace.root / "hooks").mkdir()
    git(repo, "config", "core.hooksPath", str(workspace.root / "hooks"), env=workspace.env)
    fresh = os.urandom(32 * 1024)
    (repo / "model.pt").write_bytes(fresh)  # uncommitted new weights

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    assert in_store(remote, hashlib.sha256(fresh).hexdigest()).read_bytes() == fresh


@needs_lfs
def test_lfs_store_unreachable_is_named_with_its_size(workspace, ledger):
    repo, remote, content, oid = lfs_repo(workspace)
    git(repo, "config", "lfs.url", f"http://pod:{SECRET}@127.0.0.1:{closed_port()}/lfs",
        env=workspace.env)  # a token in the store's URL, as some hosts hand them out
    git(repo, "push", "-q", "--no-verify", "origin", "main", env=workspace.env)

    saved = workspace.save("--json", env={"POD_SAVE_GIT_TIMEOUT": "20"})

    no_secret(saved, remote)
    reason = assert_named(saved, repo / "model.pt", "LFS")
    entry = next(u for u in saved.report["inventory"]["unsaved"] if u["reason"] == reason)
    assert entry["bytes"] >= len(content)
    assert not in_store(remote, oid).exists()


# ------------------------------------------------------------------ git-annex

needs_annex = pytest.mark.skipif(shutil.which("git-annex") is None, reason="git-annex missing")


def annex_repo(workspace: Workspace) -> tuple[Path, Path, bytes]:
    """A repository whose data.bin is annexed: its content only in .git/annex/objects,
    the branch and the git-annex branch pushed."""
    repo, remote = pushed(workspace, "annexed")
    git(repo, "annex", "init", "-q", "pod", env=workspace.env)
    content = os.urandom(48 * 1024)
    (repo / "data.bin").write_bytes(content)
    git(repo, "annex", "add", "-q", "data.bin", env=workspace.env)
    git(repo, "commit", "-q", "-m", "data", env=workspace.env)
    git(repo, "push", "-q", "origin", "main", "git-annex", env=workspace.env)
    return repo, remote, content


@needs_annex
def test_annex_content_only_on_the_pod_is_copied_to_the_remote(workspace, ledger):
    repo, remote, content = annex_repo(workspace)

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    clone = workspace.root / "clone"
    git(workspace.root, "clone", "-q", str(remote), str(clone), env=workspace.env)
    git(clone, "annex", "get", "-q", "data.bin", env=workspace.env)
    assert (clone / "data.bin").read_bytes() == content


@needs_annex
def test_annex_content_the_remote_cannot_hold_is_named_with_its_size(workspace, ledger):
    repo, remote, content = annex_repo(workspace)
    git(repo, "config", "remote.origin.annex-ignore", "true", env=workspace.env)  # GitHub's case

    saved = workspace.save("--json")

    assert saved.rc == 1, saved.out + saved.err
    report = saved.repo(repo)
    assert report["status"] == "failed" and "git-annex" in report["reason"]
    assert f"{len(content)} bytes" in report["reason"]
    assert [f["path"] for f in report["skipped_files"]] == ["data.bin"]


@needs_annex
def test_annex_content_without_git_annex_installed_is_named(workspace, ledger):
    repo, remote, content = annex_repo(workspace)
    bin_dir = workspace.root / "bin"  # a PATH with git but no git-annex
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))

    saved = workspace.save("--json", env={"PATH": str(bin_dir)})

    assert saved.rc == 1, saved.out + saved.err
    reason = saved.repo(repo)["reason"]
    assert "git-annex is not installed" in reason and f"{len(content)} bytes" in reason


# ------------------------------------------------------------------ environment


@needs_rclone
def test_rclone_variables_in_the_environment_do_not_narrow_the_sync(workspace):
    results = workspace.path / "results"
    results.mkdir()
    (results / "model.bin").write_bytes(os.urandom(8192))
    (results / "m.csv").write_text("1,2\n")
    target = workspace.root / "bucket"
    workspace.policy(f'[[sync]]\npath = "results"\nremote = "{target}"\n')

    saved = workspace.save("--json", env={"RCLONE_EXCLUDE": "*.bin", "RCLONE_MAX_SIZE": "1k",
                                          "RCLONE_DRY_RUN": "true",
                                          "RCLONE_LOCAL_SKIP_LINKS": "true"})

    assert saved.rc == 0, saved.out + saved.err
    assert (target / "model.bin").read_bytes() == (results / "model.bin").read_bytes()
    assert (target / "m.csv").read_text() == "1,2\n"


def test_git_variables_in_the_environment_do_not_narrow_the_snapshot(workspace, ledger):
    repo, remote = pushed(workspace)
    (repo / "train.py").write_text("print('new experiment')\n")
    ledger.file(repo, remote, "train.py")
    hide = workspace.root / "hide"
    hide.write_text("*.py\n")
    env = {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "core.excludesFile",
           "GIT_CONFIG_VALUE_0": str(hide), "GIT_CONFIG_KEY_1": "http.extraHeader",
           "GIT_CONFIG_VALUE_1": f"X-Token: {SECRET}", "GIT_NAMESPACE": "elsewhere",
           "GIT_REPLACE_REF_BASE": "refs/elsewhere/"}

    saved = workspace.save("--json", env=env)

    assert saved.rc == 0, saved.out + saved.err
    no_secret(saved, remote)
    assert ledger.not_on_remote() == []


@needs_rclone
def test_rclone_backend_options_in_the_environment_are_kept(workspace, sshd):  # noqa: F811
    """A `:sftp:` remote whose host and user come only from RCLONE_SFTP_* (how keys for
    connection-string remotes are often given) still reaches its server."""
    (workspace.path / "results").mkdir()
    (workspace.path / "results" / "m.csv").write_text("1,2\n")
    target = workspace.root / "over-sftp"
    workspace.policy(f'[[sync]]\npath = "results"\nremote = ":sftp:{target}"\n')

    port, key = sshd
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout
    saved = workspace.save("--json", env={
        "RCLONE_SFTP_HOST": "127.0.0.1", "RCLONE_SFTP_PORT": str(port),
        "RCLONE_SFTP_USER": user.strip(), "RCLONE_SFTP_KEY_FILE": str(key)})

    assert saved.rc == 0, saved.out + saved.err
    assert (target / "m.csv").read_text() == "1,2\n"


# ------------------------------------------------------------------ ownership


@needs_root
def test_repo_of_a_uid_without_passwd_entry_gets_no_root_owned_files(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="pod-save-uid-"))  # reachable by that uid
    book = Ledger()
    try:
        root.chmod(0o755)
        workspace = Workspace(root)
        remote = workspace.bare("owned")
        repo = workspace.repo("owned", remote)
        (repo / "wip.txt").write_text("owned by a uid nobody named\n")
        book.commit(repo, remote, workspace.commit(repo, "c.txt"))
        book.file(repo, remote, "wip.txt")
        subprocess.run(["chown", "-R", "4242:4242", str(root)], check=True)
        workspace.env["HOME"] = "/nonexistent"

        saved = workspace.save("--json")

        assert saved.rc == 0, saved.out + saved.err
        owned = [str(p) for p in (repo / ".git").rglob("*") if p.lstat().st_uid != 4242]
        assert owned == [], "pod-save wrote files the repository's owner cannot change"
        assert book.not_on_remote() == []
        # The owner's next `git add` works.
        (repo / "next.txt").write_text("x\n")
        res = subprocess.run(["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups",
                              "git", "-c", "safe.directory=*", "add", "next.txt"], cwd=repo,
                             env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"},
                             capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stderr
    finally:
        shutil.rmtree(root)


@needs_root
def test_folder_the_repo_owner_cannot_read_is_named_not_clean():
    root = Path(tempfile.mkdtemp(prefix="pod-save-unreadable-"))
    try:
        root.chmod(0o755)
        workspace = Workspace(root)
        remote = workspace.bare("theirs")
        repo = workspace.repo("theirs", remote)
        subprocess.run(["chown", "-R", "nobody:", str(root)], check=True)
        private = repo / "private"  # root's, inside nobody's repository
        private.mkdir(mode=0o700)
        (private / "run.csv").write_bytes(b"1,2,3\n" * 1000)
        workspace.env["HOME"] = "/nonexistent"

        saved = workspace.save("--json")

        reason = assert_named(saved, private / "run.csv", "cannot read")
        entry = next(u for u in saved.report["inventory"]["unsaved"] if u["reason"] == reason)
        assert entry["bytes"] >= 6000
        assert saved.repo(repo)["status"] == "failed"
    finally:
        shutil.rmtree(root)


# ------------------------------------------------------------------ off the volume


@pytest.mark.parametrize("where", ["/dev/shm", "/tmp"])
def test_results_symlinked_off_the_volume_are_named_with_what_they_hold(workspace, where):
    if not os.path.isdir(where):
        pytest.skip(f"no {where}")
    outside = Path(tempfile.mkdtemp(prefix="pod-save-off-", dir=where))
    try:
        (outside / "metrics.csv").write_bytes(b"0.9\n" * 2048)
        (workspace.path / "results").symlink_to(outside)

        saved = workspace.save("--json")

        reason = assert_named(saved, outside / "metrics.csv", "off the volume")
        assert ("RAM" if where == "/dev/shm" else "disk") in reason
        entry = next(u for u in saved.report["inventory"]["unsaved"] if u["reason"] == reason)
        assert entry["bytes"] == 4 * 2048 and entry["path"].startswith(where)
    finally:
        shutil.rmtree(outside)


# ------------------------------------------------------------------ odd names


def test_file_whose_name_ends_in_cr_is_saved_beside_its_twin(workspace, ledger):
    repo, remote = pushed(workspace)
    (repo / "data.csv").write_text("the twin\n")
    (repo / "data.csv\r").write_text("the one ending in CR\n")

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    snap = saved.repo(repo)["snapshot"]["ref"]
    assert git(remote, "show", f"{snap}:data.csv") == "the twin"
    assert git(remote, "show", f"{snap}:data.csv\r") == "the one ending in CR"
