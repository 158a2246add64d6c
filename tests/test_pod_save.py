"""pod-save (src/imagebuild/entrypoint/bin/pod-save) on the host, against real bare git
remotes, a real `wandb` when the venv has one, and real hook processes.

Every scenario checks what exists afterwards on the remote and in the workspace, and
the `ledger` fixture fails any test that lost a commit or a file (on neither the
remote nor the pod). The same script is run inside the pod image by the pod tests.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from podsave_helpers import (
    AUTOSAVE,
    POD_ID,
    SCRIPT,
    Ledger,
    Workspace,
    closed_port,
    git,
    remote_refs,
    worktree_state,
)

pytest_plugins = ["podsave_helpers"]  # the `workspace` fixture


@pytest.fixture
def ledger():
    ledger = Ledger()
    yield ledger
    lost = ledger.lost()
    total = len(ledger.commits) + len(ledger.files)
    assert lost == [], f"{len(lost)} of {total} commits/files lost: {lost}"


def autosaves(remote: Path) -> dict[str, str]:
    return {ref: sha for ref, sha in remote_refs(remote).items() if ref.startswith(AUTOSAVE)}


# ------------------------------------------------------------------- git: success


def test_clean_repo_is_clean_and_pushes_nothing(workspace, ledger):
    remote = workspace.bare("clean")
    repo = workspace.repo("clean", remote)
    ledger.commit(repo, remote, git(repo, "rev-parse", "HEAD"))
    before = remote_refs(remote)

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    assert saved.report["ok"] is True
    entry = saved.repo(repo)
    assert entry["status"] == "clean"
    assert entry["snapshot"] is None
    assert [b["status"] for b in entry["branches"]] == ["up-to-date"]
    assert remote_refs(remote) == before
    assert ledger.not_on_remote() == []


def test_branch_ahead_is_pushed(workspace, ledger):
    remote = workspace.bare("ahead")
    repo = workspace.repo("ahead", remote)
    for name in ("a.txt", "b.txt"):
        ledger.commit(repo, remote, workspace.commit(repo, name))

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    [branch] = saved.repo(repo)["branches"]
    assert (branch["name"], branch["status"], branch["ahead"]) == ("main", "pushed", 2)
    assert saved.repo(repo)["status"] == "saved"
    assert remote_refs(remote)["refs/heads/main"] == git(repo, "rev-parse", "main")
    assert autosaves(remote) == {}  # clean tree: no snapshot
    assert ledger.not_on_remote() == []


def test_new_branch_without_upstream_is_pushed_under_its_name(workspace, ledger):
    remote = workspace.bare("newbranch")
    repo = workspace.repo("newbranch", remote)
    git(repo, "switch", "-q", "-c", "experiment/one")
    ledger.commit(repo, remote, workspace.commit(repo, "exp.txt"))
    git(repo, "switch", "-q", "main")

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    branches = {b["name"]: b for b in saved.repo(repo)["branches"]}
    assert branches["experiment/one"]["status"] == "pushed"
    assert branches["main"]["status"] == "up-to-date"
    refs = remote_refs(remote)
    assert refs["refs/heads/experiment/one"] == git(repo, "rev-parse", "experiment/one")
    # pod-save pushes; it does not set upstreams (that would change the user's config).
    assert git(repo, "config", "--get", "branch.experiment/one.remote", check=False) == ""
    assert ledger.not_on_remote() == []


def test_uncommitted_and_untracked_work_is_snapshotted_without_touching_anything(workspace, ledger):
    remote = workspace.bare("dirty")
    repo = workspace.repo("dirty", remote)
    workspace.commit(repo, "tracked.py", "v1\n")
    workspace.commit(repo, "doomed.txt", "to be deleted\n")
    git(repo, "push", "-q")
    (repo / "tracked.py").write_text("v2 unstaged\n")
    (repo / "staged.py").write_text("staged only\n")
    git(repo, "add", "staged.py")
    (repo / "doomed.txt").unlink()
    (repo / "notes" / "deep").mkdir(parents=True)
    (repo / "notes" / "deep" / "idea.md").write_text("untracked idea\n")
    (repo / "run.log").write_text("ignored\n")
    workspace.policy('discard = ["**/*.log"]\n')
    for rel in ("tracked.py", "staged.py", "notes/deep/idea.md"):
        ledger.file(repo, remote, rel)
    head = git(repo, "rev-parse", "HEAD")
    before = worktree_state(repo)

    digest = "sha256:" + "e" * 64  # the host tells the pod its image (pod create)
    saved = workspace.save("--json", env={"POD_IMAGE_DIGEST": digest})

    assert saved.rc == 0, saved.out + saved.err
    assert worktree_state(repo) == before
    snap = saved.repo(repo)["snapshot"]
    assert snap["status"] == "pushed"
    assert snap["files"] == 4  # tracked.py, staged.py, idea.md, doomed.txt (deleted)
    [(ref, sha)] = autosaves(remote).items()
    assert ref == snap["ref"] and sha == snap["commit"]
    # <UTC timestamp>-<8 hex of the clone's path>: two clones never share a ref
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", ref.removeprefix(AUTOSAVE))
    assert git(remote, "rev-parse", f"{sha}^") == head
    assert git(remote, "log", "-1", "--format=%(trailers:key=Image-Digest,valueonly)", sha) == digest
    tree = git(remote, "ls-tree", "-r", "--name-only", sha).splitlines()
    assert "run.log" not in tree and "doomed.txt" not in tree
    assert git(remote, "show", f"{sha}:tracked.py") == "v2 unstaged"
    assert ledger.not_on_remote() == []

    # The same work saved again is not pushed twice.
    again = workspace.save("--json")
    assert again.rc == 0
    assert again.repo(repo)["snapshot"]["status"] == "up-to-date"
    assert len(autosaves(remote)) == 1
    assert worktree_state(repo) == before


def test_two_nested_repos_are_saved_separately(workspace, ledger):
    outer_remote, inner_remote = workspace.bare("outer"), workspace.bare("inner")
    outer = workspace.repo("outer", outer_remote)
    inner = workspace.repo("outer/vendor/inner", inner_remote)
    ledger.commit(inner, inner_remote, workspace.commit(inner, "lib.py"))
    (inner / "wip.py").write_text("inner wip\n")
    (outer / "main.py").write_text("outer wip\n")
    ledger.file(inner, inner_remote, "wip.py")
    ledger.file(outer, outer_remote, "main.py")

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    assert {r["path"] for r in saved.report["repos"]} == {str(outer), str(inner)}
    [outer_snap] = autosaves(outer_remote).values()
    [inner_snap] = autosaves(inner_remote).values()
    outer_tree = git(outer_remote, "ls-tree", "-r", "--name-only", outer_snap).splitlines()
    assert "main.py" in outer_tree
    assert not any(p.startswith("vendor/") for p in outer_tree), outer_tree
    assert "wip.py" in git(inner_remote, "ls-tree", "--name-only", inner_snap).splitlines()
    assert ledger.not_on_remote() == []


def test_repo_without_commits_detached_head_and_stash(workspace, ledger):
    # No commits yet, but files: a root snapshot commit.
    fresh_remote = workspace.bare("fresh")
    fresh = workspace.code / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q")
    git(fresh, "remote", "add", "origin", str(fresh_remote))
    (fresh / "first.py").write_text("never committed\n")
    ledger.file(fresh, fresh_remote, "first.py")
    # Detached HEAD with a commit no branch has, and a stash.
    remote = workspace.bare("detached")
    repo = workspace.repo("detached", remote)
    (repo / "README.md").write_text("stashed change\n")
    git(repo, "stash", "-q")
    stash = git(repo, "rev-parse", "stash@{0}")
    git(repo, "switch", "-q", "--detach")
    ledger.commit(repo, remote, workspace.commit(repo, "orphan.txt"))
    # An empty repo (no commits, no files) has nothing to lose and no remote is fine.
    (workspace.code / "empty").mkdir()
    git(workspace.code / "empty", "init", "-q")

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    [(_, root)] = autosaves(fresh_remote).items()
    assert git(fresh_remote, "rev-list", "--count", root) == "1"
    assert saved.repo(workspace.code / "empty")["status"] == "clean"
    snap = saved.repo(repo)["snapshot"]
    assert snap["commit"] == git(repo, "rev-parse", "HEAD")  # clean: HEAD itself
    assert stash in autosaves(remote).values()
    assert ledger.not_on_remote() == []


def test_linked_worktree_gets_its_own_snapshot(workspace, ledger):
    remote = workspace.bare("wt")
    repo = workspace.repo("wt", remote)
    linked = workspace.code / "wt-linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    ledger.commit(linked, remote, workspace.commit(linked, "side.txt"))
    (linked / "draft.txt").write_text("draft in linked worktree\n")
    ledger.file(linked, remote, "draft.txt")

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    main_entry, linked_entry = saved.repo(repo), saved.repo(linked)
    assert {b["name"] for b in main_entry["branches"]} == {"main", "side"}
    assert linked_entry["branches"] == []  # shared branches are pushed once
    assert linked_entry["snapshot"]["status"] == "pushed"
    assert ledger.not_on_remote() == []


def test_repositories_are_found_at_any_depth(workspace):
    shallow = workspace.repo("shallow")
    deep = workspace.repo("group/a/b/c/d/e/deep")

    # POD_SAVE_MAX_DEPTH is accepted for old setups but no longer hides anything.
    saved = workspace.save("--json", env={"POD_SAVE_MAX_DEPTH": "1"})

    paths = {r["path"] for r in saved.report["repos"]}
    assert {str(shallow), str(deep)} <= paths
    assert saved.rc == 1  # neither has a remote: both named
    assert all(r["status"] == "failed" for r in saved.report["repos"])


def test_dry_run_pushes_nothing_and_runs_no_hook(workspace, ledger):
    remote = workspace.bare("dry")
    repo = workspace.repo("dry", remote)
    ledger.commit(repo, remote, workspace.commit(repo, "x.txt"))
    (repo / "wip.txt").write_text("wip\n")
    ledger.file(repo, remote, "wip.txt")
    marker = workspace.path / "hook-ran"
    hook(workspace, "10-mark", f"touch {marker}")
    before_remote, before_tree = remote_refs(remote), worktree_state(repo)

    saved = workspace.save("--json", "--dry-run")

    assert saved.rc == 0, saved.out + saved.err
    entry = saved.repo(repo)
    assert entry["status"] == "pending"
    assert entry["branches"][0]["status"] == "pending"
    assert entry["snapshot"]["status"] == "pending"
    assert saved.report["hooks"][0]["status"] == "pending"
    assert remote_refs(remote) == before_remote
    assert worktree_state(repo) == before_tree
    assert not marker.exists()
    human = workspace.save("--dry-run")
    assert "dry run" in human.out and "branch main" in human.out


# ------------------------------------------------------------------- git: failure


def test_diverged_branch_is_saved_beside_the_remote_branch_never_forced(workspace, ledger):
    remote = workspace.bare("nff")
    repo = workspace.repo("nff", remote)
    other = workspace.root / "other-clone"
    git(workspace.root, "clone", "-q", str(remote), str(other))
    workspace.commit(other, "theirs.txt")
    git(other, "push", "-q")
    mine = ledger.commit(repo, remote, workspace.commit(repo, "mine.txt"))
    remote_main = remote_refs(remote)["refs/heads/main"]

    saved = workspace.save("--json")

    assert saved.rc == 0, saved.out + saved.err
    [branch] = saved.repo(repo)["branches"]
    assert branch["status"] == "pushed" and branch["diverged"] is True
    assert re.fullmatch(f"{AUTOSAVE}{saved.report['timestamp']}-[0-9a-f]{{8}}-branch-main",
                        branch["ref"])
    assert remote_refs(remote)["refs/heads/main"] == remote_main  # nothing forced
    assert remote_refs(remote)[branch["ref"]] == mine
    assert git(repo, "rev-parse", "main") == mine
    assert ledger.not_on_remote() == []


def test_remote_hook_rejecting_everything_is_refused(workspace, ledger):
    remote = workspace.bare("readonly")
    repo = workspace.repo("readonly", remote)
    hook_path = remote / "hooks" / "pre-receive"
    hook_path.write_text("#!/bin/sh\necho 'this remote is read-only' >&2\nexit 1\n")
    hook_path.chmod(0o755)
    ledger.commit(repo, remote, workspace.commit(repo, "blocked.txt"))
    (repo / "wip.txt").write_text("wip\n")
    ledger.file(repo, remote, "wip.txt")
    before = remote_refs(remote)

    saved = workspace.save("--json")

    assert saved.rc == 1
    entry = saved.repo(repo)
    assert entry["status"] == "failed"
    assert "hook" in entry["branches"][0]["reason"]
    assert entry["snapshot"]["status"] == "failed"
    assert remote_refs(remote) == before


def test_no_remote_is_refused(workspace, ledger):
    repo = workspace.repo("local-only")
    ledger.commit(repo, None, git(repo, "rev-parse", "HEAD"))

    saved = workspace.save("--json")

    assert saved.rc == 1
    entry = saved.repo(repo)
    assert entry["status"] == "failed"
    assert entry["reason"].startswith("no git remote")
    human = workspace.save()
    assert human.rc == 1 and "FAILED" in human.out and "no git remote" in human.out


@pytest.mark.parametrize("kind", ["dns", "closed-port", "hanging"])
def test_unreachable_remote_fails_in_bounded_time(workspace, ledger, kind):
    repo = workspace.repo(f"unreachable-{kind}")
    ledger.commit(repo, None, workspace.commit(repo, "work.txt"))
    listener = None
    if kind == "dns":
        url = "ssh://git@nonexistent.invalid/x.git"
    elif kind == "closed-port":
        url = f"http://127.0.0.1:{closed_port()}/x.git"
    else:  # accepts TCP, never answers: only pod-save's timeout ends it
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"git://127.0.0.1:{listener.getsockname()[1]}/x.git"
    git(repo, "remote", "add", "origin", url)
    try:
        saved = workspace.save("--json", env={"POD_SAVE_GIT_TIMEOUT": "3"}, timeout=30)
    finally:
        if listener:
            listener.close()

    assert saved.rc == 1
    assert saved.seconds < 15
    reason = saved.repo(repo)["reason"]
    expected = {"dns": "network", "closed-port": "network", "hanging": "timed out"}[kind]
    assert expected in reason, reason


class _AuthRequired(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 -- http.server's naming
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_missing_auth_is_refused_and_url_secrets_never_printed(workspace, ledger):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthRequired)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        auth_repo = workspace.repo("needs-auth")
        git(auth_repo, "remote", "add", "origin",
            f"http://127.0.0.1:{server.server_address[1]}/x.git")
        ledger.commit(auth_repo, None, workspace.commit(auth_repo, "auth.txt"))
        secret = "s3cretT0kenValue"
        token_repo = workspace.repo("token-url")
        git(token_repo, "remote", "add", "origin",
            f"https://user:{secret}@127.0.0.1:{closed_port()}/x.git")
        ledger.commit(token_repo, None, workspace.commit(token_repo, "token.txt"))

        saved = workspace.save("--json", timeout=30)
        human = workspace.save(timeout=30)
    finally:
        server.shutdown()

    assert saved.rc == 1
    assert saved.repo(auth_repo)["reason"].startswith("origin: auth:"), saved.repo(auth_repo)
    assert saved.repo(token_repo)["url"].startswith("https://***@127.0.0.1:")
    for text in (saved.out, saved.err, human.out, human.err):
        assert secret not in text


def test_oversized_file_is_left_out_and_reported(workspace, ledger):
    remote = workspace.bare("big")
    repo = workspace.repo("big", remote)
    (repo / "small.txt").write_text("small\n")
    (repo / "model.pt").write_bytes(b"\0" * (2 * 1024 * 1024))
    ledger.file(repo, remote, "small.txt")
    ledger.file(repo, None, "model.pt")  # not saved anywhere else: must stay on the pod

    saved = workspace.save("--json", env={"POD_SAVE_MAX_FILE_MB": "1"})

    assert saved.rc == 1
    entry = saved.repo(repo)
    [skipped] = entry["skipped_files"]
    assert (skipped["path"], skipped["bytes"]) == ("model.pt", 2 * 1024 * 1024)
    assert "too big" in skipped["reason"]
    assert [u["path"] for u in saved.report["inventory"]["unsaved"]] == [str(repo / "model.pt")]
    assert "model.pt" in entry["reason"]
    [snap] = autosaves(remote).values()
    tree = git(remote, "ls-tree", "--name-only", snap).splitlines()
    assert "small.txt" in tree and "model.pt" not in tree


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs is not installed")
def test_lfs_file_over_the_limit_is_saved_through_lfs(workspace, ledger):
    remote = workspace.bare("lfs")
    repo = workspace.repo("lfs", remote)
    git(repo, "lfs", "install", "--local", env=workspace.env)
    (repo / ".gitattributes").write_text("*.pt filter=lfs diff=lfs merge=lfs -text\n")
    workspace.commit(repo, ".gitattributes", (repo / ".gitattributes").read_text())
    content = os.urandom(2 * 1024 * 1024)
    (repo / "model.pt").write_bytes(content)
    ledger.file(repo, None, "model.pt")

    saved = workspace.save("--json", env={"POD_SAVE_MAX_FILE_MB": "1"})

    assert saved.rc == 0, saved.out + saved.err
    assert saved.repo(repo)["skipped_files"] == []
    oid = hashlib.sha256(content).hexdigest()
    # The LFS pre-push hook uploaded the content; the snapshot holds the pointer.
    assert (remote / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).read_bytes() == content
    [snap] = autosaves(remote).values()
    assert f"oid sha256:{oid}" in git(remote, "show", f"{snap}:model.pt")


# --------------------------------------------------------------------------- wandb


def offline_run(workspace: Workspace, name: str = "offline-run-20250101_000000-abc123",
                synced: bool = False) -> Path:
    """A hand-made run dir in the layout wandb uses ($WANDB_DIR/wandb/<run>/run-<id>.wandb)."""
    run = workspace.path / "wandb" / "wandb" / name
    run.mkdir(parents=True)
    log = run / f"run-{name.rsplit('-', 1)[1]}.wandb"
    log.write_bytes(b":W&B\0\0\0\0")
    if synced:
        Path(f"{log}.synced").touch()
    return run


def real_wandb() -> Path | None:
    candidate = Path(sys.executable).parent / "wandb"
    return candidate if candidate.exists() else None


def test_wandb_not_installed_with_unsynced_run_is_refused(workspace, ledger):
    run = offline_run(workspace)
    offline_run(workspace, "offline-run-20250101_000001-done01", synced=True)
    online = workspace.path / "wandb" / "wandb" / "run-20250101_000002-live01"
    online.mkdir()
    (online / "run-live01.wandb").write_bytes(b"x")
    no_wandb_path = "/usr/bin:/bin"  # git, but no wandb (the host has none there)
    assert shutil.which("wandb", path=no_wandb_path) is None

    saved = workspace.save("--json", env={"PATH": no_wandb_path})

    assert saved.rc == 1
    assert saved.report["wandb"] == [
        {"path": str(run), "status": "failed",
         "reason": "wandb CLI not found; these runs exist only on this pod"}]


def test_synced_and_online_runs_need_nothing(workspace):
    offline_run(workspace, "offline-run-20250101_000001-done01", synced=True)
    saved = workspace.save("--json", env={"PATH": "/usr/bin:/bin"})
    assert saved.rc == 0 and saved.report["wandb"] == []


@pytest.mark.skipif(real_wandb() is None, reason="wandb is not installed in this venv")
def test_real_wandb_sync_without_server_is_refused_in_bounded_time(workspace, ledger):
    wandb_bin = real_wandb()
    # A real offline run, written by wandb itself.
    env = {**workspace.env, "WANDB_MODE": "offline", "WANDB_DIR": str(workspace.path / "wandb"),
           "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", "import wandb; r = wandb.init(project='p'); "
                    "r.log({'loss': 1.0}); r.finish()"], env=env, check=True, timeout=60,
                   capture_output=True)
    [run] = (workspace.path / "wandb" / "wandb").glob("offline-run-*")
    api_key = "k" * 40
    path = f"{wandb_bin.parent}:/usr/bin:/bin"
    closed = f"http://127.0.0.1:{closed_port()}"

    no_key = workspace.save("--json", env={"PATH": path, "WANDB_BASE_URL": closed})
    with_key = workspace.save("--json", env={"PATH": path, "WANDB_BASE_URL": closed,
                                       "WANDB_API_KEY": api_key,
                                       "POD_SAVE_WANDB_TIMEOUT": "4"})

    assert no_key.rc == 1
    assert no_key.report["wandb"][0]["reason"].startswith("auth:")
    assert with_key.rc == 1
    assert with_key.seconds < 20
    [entry] = with_key.report["wandb"]
    assert entry["path"] == str(run) and entry["status"] == "failed"
    assert "timed out" in entry["reason"]
    assert api_key not in with_key.out + with_key.err
    assert not list(run.glob("*.wandb.synced"))


# --------------------------------------------------------------------------- hooks


def hook(workspace: Workspace, name: str, body: str, executable: bool = True) -> Path:
    hooks = workspace.path / ".pod" / "hooks" / "save.d"
    hooks.mkdir(parents=True, exist_ok=True)
    path = hooks / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755 if executable else 0o644)
    return path


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_hooks_run_in_order_with_timeouts(workspace):
    log = workspace.path / "hooks.log"
    child_pid = workspace.path / "child.pid"
    token = "ghp_" + "A" * 36
    hook(workspace, "10-ok", f'echo 10 >> {log}; echo "uploading with $GITHUB_TOKEN"')
    hook(workspace, "20-fail", f"echo 20 >> {log}; echo 'bucket not found' >&2; exit 3")
    hook(workspace, "30-slow", f"echo 30 >> {log}; sleep 60 & echo $! > {child_pid}; wait")
    hook(workspace, "40-not-executable", f"echo 40 >> {log}", executable=False)
    hook(workspace, "50-after", f'echo "50 $POD_ID" >> {log}')

    saved = workspace.save("--json", env={"POD_SAVE_HOOK_TIMEOUT": "1", "GITHUB_TOKEN": token})

    assert saved.rc == 1
    hooks = {h["name"]: h for h in saved.report["hooks"]}
    assert [h["name"] for h in saved.report["hooks"]] == sorted(hooks)
    assert hooks["10-ok"]["status"] == "ok" and hooks["10-ok"]["exit_code"] == 0
    assert token not in saved.out and "***" in hooks["10-ok"]["output"]
    assert hooks["20-fail"]["status"] == "failed"
    assert hooks["20-fail"]["reason"] == "exit code 3"
    assert "bucket not found" in hooks["20-fail"]["output"]
    assert hooks["30-slow"]["status"] == "timeout"
    assert hooks["30-slow"]["seconds"] < 10
    assert hooks["40-not-executable"]["status"] == "failed"
    assert "not executable" in hooks["40-not-executable"]["reason"]
    assert hooks["50-after"]["status"] == "ok"
    assert log.read_text().split("\n") == ["10", "20", "30", f"50 {POD_ID}", ""]
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the timed-out hook's child survived"


def test_budget_caps_the_whole_run(workspace):
    # The entrypoint's stop step runs `timeout N pod-save --budget N`: the report must
    # be out before N, even when a hook ignores SIGTERM.
    hook(workspace, "10-ignores-term", "trap '' TERM; sleep 60")
    hook(workspace, "20-never-reached", "true")

    saved = workspace.save("--json", "--budget", "3")

    assert saved.rc == 1 and saved.seconds < 3, saved.seconds
    statuses = [h["status"] for h in saved.report["hooks"]]
    assert statuses == ["timeout", "timeout"]
    assert "budget" in saved.report["hooks"][1]["reason"]


def test_nothing_to_save_exits_zero(workspace):
    saved = workspace.save()
    assert saved.rc == 0
    assert "no repositories" in saved.out and "everything is saved" in saved.out


# ---------------------------------------------------------------- usage and owners


@pytest.mark.parametrize(("var", "value"), [("POD_SAVE_HOOK_TIMEOUT", "soon"),
                                            ("POD_WORKSPACE", "/nonexistent/ws")])
def test_bad_configuration_is_one_line_exit_2(workspace, var, value):
    saved = workspace.save(env={var: value})
    assert saved.rc == 2
    assert saved.err.count("\n") == 1 and var in saved.err
    assert "Traceback" not in saved.err


def test_script_is_executable_and_runs_with_system_python(workspace):
    assert os.stat(SCRIPT).st_mode & stat.S_IXUSR
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if system_python is None:
        pytest.skip("no system python3")
    saved = workspace.save("--json", python=system_python)
    assert saved.rc == 0, saved.err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_as_root_git_runs_as_the_repo_owner(ledger):
    # Outside pytest's 0700 tmp dir, so that "nobody" can reach it.
    root = Path(tempfile.mkdtemp(prefix="pod-save-owner-"))
    try:
        root.chmod(0o755)
        workspace = Workspace(root)
        remote = workspace.bare("owned")
        repo = workspace.repo("owned", remote)
        (repo / "wip.txt").write_text("owned by nobody\n")
        ledger.commit(repo, remote, workspace.commit(repo, "c.txt"))
        ledger.file(repo, remote, "wip.txt")
        subprocess.run(["chown", "-R", "nobody:", str(root)], check=True)
        workspace.env["HOME"] = "/nonexistent"

        saved = workspace.save("--json")

        assert saved.rc == 0, saved.out + saved.err
        root_owned = [str(p) for p in (repo / ".git").rglob("*") if p.stat().st_uid == 0]
        assert root_owned == [], "pod-save created root-owned files in the user's repo"
        assert ledger.not_on_remote() == []
        assert ledger.lost() == []
    finally:  # the fixture's own check would run after the directory is gone
        ledger.commits.clear()
        ledger.files.clear()
        shutil.rmtree(root)
