"""Hostile but ordinary workspaces against pod-save, on real git repositories and real
remotes (bare repos, a git daemon, a rejecting remote, an unreachable one).

Every scenario ends in one of two verdicts: the work is on the remote, byte for byte,
and `pod-restore` brings it back into a fresh clone; or pod-save exits non-zero and
names it in the report. The `guard` fixture also checks that every repository's work
tree, index, HEAD and stash are unchanged by the run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from podsave_helpers import (
    AUTOSAVE,
    SCRIPT,
    Workspace,
    assert_named,
    closed_port,
    git,
    remote_refs,
    restored,
    work_files,
    worktree_state,
)

pytest_plugins = ["podsave_helpers"]  # the `workspace` fixture


class Guard:
    """Records repositories' state before pod-save; checks it after the test."""

    def __init__(self):
        self.before: dict[Path, dict] = {}

    def __call__(self, *repos: Path) -> None:
        for repo in repos:
            self.before[repo] = worktree_state(repo)


@pytest.fixture
def guard():
    g = Guard()
    yield g
    for repo, state in g.before.items():
        assert worktree_state(repo) == state, f"pod-save changed {repo}"


def snapshot_ref(saved, repo: Path) -> str:
    snap = saved.repo(repo)["snapshot"]
    assert snap and snap["status"] in ("pushed", "up-to-date"), saved.repo(repo)
    return snap["ref"]


def assert_saved_exactly(workspace, saved, repo, remote, exclude=frozenset(), name="restored"):
    """Exit 0, and a fresh clone + pod-restore holds the work tree byte for byte."""
    assert saved.rc == 0, saved.out + saved.err
    clone = restored(workspace, remote, snapshot_ref(saved, repo), name)
    assert work_files(clone) == work_files(repo, set(exclude))
    return clone


def saved_ok(workspace, guard, *repos: Path):
    """pod-save exits 0, the repositories' state checked around it."""
    guard(*repos)
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    return saved


def repo_at(path: Path, remote: Path | None) -> Path:
    """An empty repository at path (anywhere), with origin = remote."""
    path.mkdir(parents=True)
    git(path, "init", "-q")
    if remote:
        git(path, "remote", "add", "origin", str(remote))
    return path


def ahead_of(workspace, name="proj", **kw) -> tuple[Path, Path]:
    remote = workspace.bare(name)
    return workspace.repo(name, remote, **kw), remote


# ------------------------------------------------------- edits the index hides


@pytest.mark.parametrize("flag", ["--assume-unchanged", "--skip-worktree"])
def test_edit_hidden_by_an_index_flag_is_saved(workspace, guard, flag):
    repo, remote = ahead_of(workspace)
    git(repo, "update-index", flag, "README.md")
    (repo / "README.md").write_text(f"edited behind {flag}\n")
    guard(repo)
    assert_saved_exactly(workspace, workspace.save("--json"), repo, remote)


def test_same_size_same_mtime_edit_the_stat_cache_hides(workspace, guard):
    repo, remote = ahead_of(workspace)
    git(repo, "config", "core.trustctime", "false")
    path = repo / "README.md"
    st = path.stat()
    time.sleep(1.1)
    git(repo, "status", "--porcelain")  # index stat data refreshed, not racy
    path.write_text(path.read_text().replace("#", "%"))  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert git(repo, "status", "--porcelain") == ""  # git cannot see it
    guard(repo)
    assert_saved_exactly(workspace, workspace.save("--json"), repo, remote)


def test_clean_filter_that_drops_content_is_bypassed(workspace, guard):
    repo, remote = ahead_of(workspace)
    (repo / ".gitattributes").write_text("*.ipynb filter=strip\n")
    git(repo, "config", "filter.strip.clean", "grep -v output")
    (repo / "nb.ipynb").write_text('{"cell": 1}\n{"output": "a week of training"}\n')
    guard(repo)
    clone = assert_saved_exactly(workspace, workspace.save("--json"), repo, remote)
    assert "a week of training" in (clone / "nb.ipynb").read_text()


def test_crlf_bytes_kept_despite_eol_attributes(workspace, guard):
    repo, remote = ahead_of(workspace)
    (repo / ".gitattributes").write_text("*.txt text eol=lf\n")
    git(repo, "config", "core.autocrlf", "input")
    (repo / "win.txt").write_bytes(b"line one\r\nline two\r\n")
    guard(repo)
    clone = assert_saved_exactly(workspace, workspace.save("--json"), repo, remote)
    assert (clone / "win.txt").read_bytes() == b"line one\r\nline two\r\n"


def test_exec_bit_saved_when_core_filemode_is_off(workspace, guard):
    repo, remote = ahead_of(workspace)
    git(repo, "config", "core.fileMode", "false")
    (repo / "README.md").chmod(0o755)
    (repo / "tools").mkdir()
    (repo / "tools" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "tools" / "run.sh").chmod(0o755)
    guard(repo)
    clone = assert_saved_exactly(workspace, workspace.save("--json"), repo, remote)
    assert os.access(clone / "README.md", os.X_OK)


def test_symlinks_odd_names_and_deletions_round_trip(workspace, guard):
    repo, remote = ahead_of(workspace)
    workspace.commit(repo, "gone.txt")
    git(repo, "push", "-q")
    (repo / "gone.txt").unlink()
    (repo / "link-to-readme").symlink_to("README.md")
    (repo / 'quote"and\nnewline.txt').write_text("odd name\n")
    (repo / "ünïcødé sp ace.md").write_text("unicode\n")
    guard(repo)
    clone = assert_saved_exactly(workspace, workspace.save("--json"), repo, remote)
    assert not (clone / "gone.txt").exists()
    assert os.readlink(clone / "link-to-readme") == "README.md"


def test_file_name_that_is_not_utf8_round_trips(workspace, guard):
    repo, remote = ahead_of(workspace)
    (repo / os.fsdecode(b"latin1-caf\xe9.txt")).write_bytes(b"not utf-8 name\n")
    guard(repo)
    clone = assert_saved_exactly(workspace, workspace.save("--json"), repo, remote)
    assert (clone / os.fsdecode(b"latin1-caf\xe9.txt")).read_bytes() == b"not utf-8 name\n"


def test_conflicted_merge_keeps_merge_head_and_markers(workspace, guard):
    repo, remote = ahead_of(workspace)
    git(repo, "switch", "-q", "-c", "side")
    theirs = workspace.commit(repo, "README.md", "side version\n")
    git(repo, "switch", "-q", "main")
    workspace.commit(repo, "README.md", "main version\n")
    git(repo, "push", "-q")
    git(repo, "merge", "-q", "side", check=False)
    git(repo, "branch", "-q", "-D", "side")  # now only MERGE_HEAD holds it
    guard(repo)
    saved = workspace.save("--json")
    assert_saved_exactly(workspace, saved, repo, remote)
    merge = [r for r in saved.repo(repo)["refs"] if r["name"] == "MERGE_HEAD"]
    assert merge and merge[0]["status"] == "pushed"
    assert remote_refs(remote)[merge[0]["ref"]] == theirs


# ------------------------------------------------------- commits no remote has


def test_detached_head_with_stale_tracking_ref_is_pushed(workspace, guard):
    repo, remote = ahead_of(workspace)
    git(repo, "switch", "-q", "--detach")
    sha = workspace.commit(repo, "detached.txt")
    git(repo, "update-ref", "refs/remotes/origin/main", sha)  # lies: "it is pushed"
    saved_ok(workspace, guard, repo)
    assert sha in remote_refs(remote).values()


def test_branch_with_stale_tracking_ref_is_pushed(workspace, guard):
    repo, remote = ahead_of(workspace)
    sha = workspace.commit(repo, "ahead.txt")
    git(repo, "update-ref", "refs/remotes/origin/main", sha)
    guard(repo)
    saved = workspace.save("--json")
    assert saved.rc == 0 and saved.repo(repo)["branches"][0]["status"] == "pushed"
    assert remote_refs(remote)["refs/heads/main"] == sha


@pytest.mark.parametrize("annotated", [False, True])
def test_commit_only_in_a_tag_is_pushed(workspace, guard, annotated):
    repo, remote = ahead_of(workspace)
    git(repo, "switch", "-q", "--detach")
    sha = workspace.commit(repo, "release.txt")
    git(repo, "tag", *(["-a", "-m", "v1"] if annotated else []), "v1")
    git(repo, "switch", "-q", "main")
    saved = saved_ok(workspace, guard, repo)
    [tag] = saved.repo(repo)["refs"]
    assert tag["name"] == "tag v1" and tag["ref"] in remote_refs(remote)
    assert git(remote, "rev-parse", f"{tag['ref']}^{{commit}}") == sha


def test_commit_only_in_notes_is_pushed(workspace, guard):
    repo, remote = ahead_of(workspace)
    git(repo, "notes", "add", "-m", "results: 93.1% success")
    notes = git(repo, "rev-parse", "refs/notes/commits")
    saved_ok(workspace, guard, repo)
    assert notes in remote_refs(remote).values()


def test_every_stash_entry_is_pushed(workspace, guard):
    repo, remote = ahead_of(workspace)
    shas = []
    for n in range(3):
        (repo / "README.md").write_text(f"stash {n}\n")
        git(repo, "stash", "-q")
        shas.append(git(repo, "rev-parse", "stash@{0}"))
    saved_ok(workspace, guard, repo)
    assert set(shas) <= set(remote_refs(remote).values())


def test_linked_worktree_outside_the_workspace(workspace, guard):
    repo, remote = ahead_of(workspace)
    elsewhere = workspace.root / "elsewhere" / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(elsewhere))
    sha = workspace.commit(elsewhere, "feature.txt")
    (elsewhere / "wip.py").write_text("uncommitted in a worktree outside /workspace\n")
    guard(repo, elsewhere)
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    assert remote_refs(remote)["refs/heads/feature"] == sha
    clone = restored(workspace, remote, snapshot_ref(saved, elsewhere))
    assert work_files(clone) == work_files(elsewhere)


def test_branch_checked_out_x_from_origin_main_never_lands_on_main(workspace, guard):
    repo, remote = ahead_of(workspace)
    main = remote_refs(remote)["refs/heads/main"]
    shas = {}
    for name in ("wip-a", "wip-b"):
        git(repo, "checkout", "-q", "-b", name, "origin/main")
        shas[name] = workspace.commit(repo, f"{name}.txt")
    saved_ok(workspace, guard, repo)
    refs = remote_refs(remote)
    assert refs["refs/heads/main"] == main
    assert refs["refs/heads/wip-a"] == shas["wip-a"] and refs["refs/heads/wip-b"] == shas["wip-b"]


def test_branch_whose_tip_the_remote_has_is_not_recreated(workspace, guard):
    repo, remote = ahead_of(workspace)
    git(repo, "switch", "-q", "-c", "merged")
    workspace.commit(repo, "m.txt")
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "merged")
    git(repo, "push", "-q")  # the remote's main contains merged's tip; no branch merged
    saved_ok(workspace, guard, repo)
    assert "refs/heads/merged" not in remote_refs(remote)


# ------------------------------------------------- repositories anywhere


def test_repo_outside_code_and_deep_below(workspace, guard):
    remote = workspace.bare("far")
    far = workspace.path / "projects" / "a" / "b" / "c" / "d" / "e" / "far"
    repo_at(far, remote)
    (far / "work.py").write_text("far away\n")
    guard(far)
    assert_saved_exactly(workspace, workspace.save("--json"), far, remote)


def test_symlinked_repo_outside_the_workspace_is_saved_once(workspace, guard):
    remote = workspace.bare("linked")
    outside = workspace.root / "scratch" / "linked"
    repo_at(outside, remote)
    (outside / "exp.py").write_text("behind a symlink\n")
    (workspace.code / "linked").symlink_to(outside)
    (workspace.code / "linked-again").symlink_to(outside)
    guard(outside)
    saved = workspace.save("--json")
    assert [r["path"] for r in saved.report["repos"]] == [str(outside)]
    assert_saved_exactly(workspace, saved, outside, remote)


def test_nested_repo_in_an_ignored_folder_is_found(workspace, guard):
    outer, outer_remote = ahead_of(workspace, "outer")
    (outer / ".gitignore").write_text("vendor/\n")
    inner_remote = workspace.bare("inner")
    inner = outer / "vendor" / "inner"
    repo_at(inner, inner_remote)
    sha = workspace.commit(inner, "lib.py")
    guard(outer, inner)
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    assert sha in remote_refs(inner_remote).values()


def test_nested_repo_without_remote_is_named_and_the_outer_is_saved(workspace, guard):
    outer, outer_remote = ahead_of(workspace, "outer")
    (outer / ".gitignore").write_text("vendor/\n")
    inner = outer / "vendor" / "inner"
    repo_at(inner, None)
    workspace.commit(inner, "lib.py")
    sha = workspace.commit(outer, "outer.py")
    guard(outer)
    saved = workspace.save("--json")
    assert saved.repo(outer)["status"] == "saved"
    assert remote_refs(outer_remote)["refs/heads/main"] == sha
    assert_named(saved, inner / "lib.py", "no git remote")


def test_gitlink_commit_only_in_the_embedded_repo_is_pushed(workspace, guard):
    outer, outer_remote = ahead_of(workspace, "outer")
    sub_remote = workspace.bare("sub")
    sub = workspace.repo("outer/sub", sub_remote)
    recorded = workspace.commit(sub, "v2.txt")
    git(outer, "add", "sub")  # the outer records sub at `recorded`
    git(sub, "reset", "-q", "--hard", "HEAD~1")  # and sub moves away from it
    guard(outer, sub)
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    assert recorded in remote_refs(sub_remote).values()


def test_bare_repo_on_the_volume_is_named(workspace):
    bare = workspace.path / "backup.git"
    git(workspace.path, "init", "-q", "--bare", str(bare))
    saved = workspace.save("--json")
    assert_named(saved, bare / "HEAD", "bare")


def test_remote_on_the_volume_does_not_count(workspace, guard):
    on_volume = workspace.path / "mirror.git"
    git(workspace.path, "init", "-q", "--bare", str(on_volume))
    repo = workspace.repo("proj", on_volume)
    workspace.commit(repo, "work.txt")
    guard(repo)
    saved = workspace.save("--json")
    assert saved.rc == 1
    assert "own volume" in saved.repo(repo)["reason"]
    assert_named(saved, on_volume / "HEAD", "bare")  # the remote itself is named as unsaved


# --------------------------------------------------------- data outside git


def test_results_folder_is_named_with_its_size(workspace):
    (workspace.path / "results" / "run1").mkdir(parents=True)
    (workspace.path / "results" / "run1" / "metrics.csv").write_bytes(b"x" * 5000)
    saved = workspace.save("--json")
    assert_named(saved, workspace.path / "results" / "run1" / "metrics.csv", "not in a git")
    [entry] = saved.report["inventory"]["unsaved"]
    assert entry["bytes"] == 5000 and entry["path"] == str(workspace.path / "results")


def test_ignored_checkpoint_in_a_repo_is_named(workspace, guard):
    repo, remote = ahead_of(workspace)
    (repo / ".gitignore").write_text("*.pt\nresults/\n")
    (repo / "model.pt").write_bytes(b"weights")
    (repo / "results").mkdir()
    (repo / "results" / "eval.json").write_text("{}")
    guard(repo)
    saved = workspace.save("--json")
    assert_named(saved, repo / "model.pt", "ignored by git")
    assert_named(saved, repo / "results" / "eval.json", "ignored by git")


def test_default_policy_treats_downloads_and_caches_as_recreatable(workspace):
    for rel in ("models/llama/weights.bin", "datasets/mnist/train.bin", ".cache/pip/x",
                "code/proj/.venv/lib/site.py", ".pod/logs/entrypoint.log"):
        (workspace.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (workspace.path / rel).write_text("re-creatable\n")
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    assert saved.report["policy"]["source"] == "default"
    rules = {d["rule"] for d in saved.report["inventory"]["discarded"]}
    assert {"models/*", "datasets/*", ".cache", "**/.venv"} <= rules


def test_policy_file_declares_results_disposable(workspace):
    (workspace.path / "results").mkdir()
    (workspace.path / "results" / "scratch.txt").write_text("x\n")
    path = workspace.policy('discard = ["results"]  # scratch only\n')
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    assert saved.report["policy"]["source"] == str(path)
    human = workspace.save()
    assert f"policy: {path}" in human.out


def test_bad_policy_file_is_one_line_exit_2(workspace):
    workspace.policy("discard = 'not a list'\n")
    saved = workspace.save()
    assert saved.rc == 2 and "save.toml" in saved.err and "discard" in saved.err
    assert "Traceback" not in saved.err


def test_offline_wandb_run_anywhere_is_found(workspace):
    run = workspace.code / "proj" / "sub" / "wandb" / "offline-run-20250101_000000-zz9"
    run.mkdir(parents=True)
    (run / "run-zz9.wandb").write_bytes(b":W&B")
    saved = workspace.save("--json", env={"PATH": "/usr/bin:/bin"})
    assert saved.rc == 1
    assert [w["path"] for w in saved.report["wandb"]] == [str(run)]
    assert_named(saved, run / "run-zz9.wandb", "W&B")


def test_human_report_names_unsaved(workspace):
    (workspace.path / "results").mkdir()
    (workspace.path / "results" / "table.csv").write_text("a,b\n")
    human = workspace.save()
    assert human.rc == 1
    assert "NOT SAVED  results" in human.out and "NOT everything is saved" in human.out


# ---------------------------------------------------------------- secrets


def test_untracked_secrets_are_not_pushed_but_named(workspace, guard):
    repo, remote = ahead_of(workspace)
    secrets = {".env": "WANDB_API_KEY=abcdef0123456789\n",
               "keys/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n",
               "hf_token.txt": "hf_" + "x" * 30 + "\n",
               "notes.md": "github token ghp_" + "A" * 36 + "\n"}
    for rel, text in secrets.items():
        (repo / rel).parent.mkdir(exist_ok=True)
        (repo / rel).write_text(text)
    (repo / "train.py").write_text("real work\n")
    guard(repo)
    saved = workspace.save("--json")
    assert saved.rc == 1
    for rel in secrets:
        assert_named(saved, repo / rel, "secret")
    tree = git(remote, "ls-tree", "-r", "--name-only", snapshot_ref(saved, repo))
    assert "train.py" in tree.split("\n")
    assert not set(secrets) & set(tree.split("\n"))
    for text in secrets.values():
        assert text.strip() not in saved.out


def test_ssh_key_on_the_volume_outside_git_is_named_as_a_secret(workspace):
    key = workspace.path / "home" / ".ssh" / "id_ed25519"
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n")
    saved = workspace.save("--json")
    assert_named(saved, key, "secret", "never pushed")
    assert "AAAA" not in saved.out


def test_allowed_secret_is_pushed(workspace, guard):
    repo, remote = ahead_of(workspace)
    (repo / ".env.shared").write_text("SEED=1\n")
    workspace.policy('allow_secrets = ["code/proj/.env.shared"]\n')
    guard(repo)
    assert_saved_exactly(workspace, workspace.save("--json"), repo, remote)


# --------------------------------------------------------------- bad paths


def test_a_name_git_refuses_is_skipped_and_the_rest_saved(workspace, guard):
    repo, remote = ahead_of(workspace)
    sha = workspace.commit(repo, "committed.py")
    (repo / "sub" / ".GIT").mkdir(parents=True)
    (repo / "sub" / ".GIT" / "x").write_text("git refuses this name\n")
    (repo / "fine.py").write_text("fine\n")
    guard(repo)
    saved = workspace.save("--json")
    assert_named(saved, repo / "sub" / ".GIT" / "x", "cannot store")
    assert remote_refs(remote)["refs/heads/main"] == sha
    tree = git(remote, "ls-tree", "-r", "--name-only", snapshot_ref(saved, repo)).split("\n")
    assert "fine.py" in tree


def test_oversized_file_skipped_rest_saved(workspace, guard):
    repo, remote = ahead_of(workspace)
    (repo / "huge.bin").write_bytes(b"\1" * (2 * 2**20))
    (repo / "small.py").write_text("small\n")
    guard(repo)
    saved = workspace.save("--json", env={"POD_SAVE_MAX_FILE_MB": "1"})
    assert_named(saved, repo / "huge.bin", "too big")
    clone = restored(workspace, remote, snapshot_ref(saved, repo))
    assert work_files(clone) == work_files(repo, {"huge.bin"})


def test_unreadable_file_is_skipped_and_the_rest_saved(workspace, guard, tmp_path):
    if os.geteuid() == 0:
        # root reads anything: make the file vanish instead (a dangling FIFO is skipped)
        pytest.skip("root can read every file")
    repo, remote = ahead_of(workspace)
    (repo / "locked.txt").write_text("no read\n")
    (repo / "locked.txt").chmod(0)
    saved = workspace.save("--json")
    assert_named(saved, repo / "locked.txt", "could not be read")


# ------------------------------------------------------------------ remotes


def test_git_daemon_remote(workspace, guard):
    remote = workspace.bare("daemon")
    port = closed_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
         f"--base-path={workspace.remotes}", "--listen=127.0.0.1", f"--port={port}", str(workspace.remotes)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        repo = workspace.repo("proj", None)
        git(repo, "remote", "add", "origin", f"git://127.0.0.1:{port}/daemon.git")
        (repo / "wip.txt").write_text("over git://\n")
        guard(repo)
        saved = workspace.save("--json")
        assert_saved_exactly(workspace, saved, repo, remote)
        assert remote_refs(remote)["refs/heads/main"] == git(repo, "rev-parse", "main")
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_unreachable_git_daemon_is_named(workspace, guard):
    repo = workspace.repo("proj", None)
    git(repo, "remote", "add", "origin", f"git://127.0.0.1:{closed_port()}/x.git")
    (repo / "wip.txt").write_text("nowhere to go\n")
    guard(repo)
    saved = workspace.save("--json")
    assert saved.rc == 1 and "network" in saved.repo(repo)["reason"]
    assert_named(saved, repo / "wip.txt", "git:")


def test_rejecting_remote_names_the_work(workspace, guard):
    repo, remote = ahead_of(workspace)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    (repo / "wip.txt").write_text("rejected\n")
    guard(repo)
    saved = workspace.save("--json")
    assert_named(saved, repo / "wip.txt", "hook")


# -------------------------------------------------------------------- hooks


def hook(workspace: Workspace, name: str, body: str, executable: bool = True) -> Path:
    path = workspace.path / ".pod" / "hooks" / "save.d" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755 if executable else 0o644)
    return path


def test_non_executable_hook_fails_the_save(workspace):
    hook(workspace, "10-upload", "true", executable=False)
    saved = workspace.save("--json")
    assert saved.rc == 1 and saved.report["hooks"][0]["status"] == "failed"
    assert "\neverything is saved" not in workspace.save().out


def test_flooding_hook_is_bounded_in_memory_and_time(workspace):
    hook(workspace, "10-flood", "yes 'flood flood flood flood'")
    # RUSAGE_CHILDREN of this process is the largest child of the whole test session (a
    # build client, SkyPilot's venv...): measure pod-save's own tree in a fresh process.
    peak_file = workspace.path.parent / "peak-rss-kb"
    wrapper = workspace.path.parent / "measure-rss"
    wrapper.write_text(f"#!{sys.executable}\n"
                       "import resource, subprocess, sys\n"
                       "rc = subprocess.call([sys.executable, *sys.argv[1:]])\n"
                       f"open({str(peak_file)!r}, 'w').write("
                       "str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
                       "sys.exit(rc)\n")
    wrapper.chmod(0o755)
    start = time.monotonic()
    saved = workspace.save("--json", "--budget", "6", python=str(wrapper))
    assert time.monotonic() - start < 8
    assert saved.rc == 1 and saved.report["hooks"][0]["status"] == "timeout"
    assert len(saved.report["hooks"][0]["output"]) <= 2000
    peak_kb = int(peak_file.read_text())
    assert 0 < peak_kb < 200 * 1024, f"peak RSS {peak_kb} KB"


def test_setsid_child_of_a_timed_out_hook_is_killed(workspace):
    pidfile = workspace.path / "child.pid"
    hook(workspace, "10-detach", f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 120' & sleep 60")
    saved = workspace.save("--json", env={"POD_SAVE_HOOK_TIMEOUT": "2"})
    assert saved.report["hooks"][0]["status"] == "timeout"
    pid = int(pidfile.read_text())
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "setsid child survived"


def test_hook_declared_paths_count_as_saved_only_when_it_succeeds(workspace):
    (workspace.path / "checkpoints").mkdir()
    (workspace.path / "checkpoints" / "step1.pt").write_bytes(b"w")
    workspace.policy('[hooks]\n"10-s3" = ["checkpoints"]\n')
    hook(workspace, "10-s3", "exit 0")
    assert workspace.save("--json").rc == 0
    hook(workspace, "10-s3", "exit 4")
    assert_named(workspace.save("--json"), workspace.path / "checkpoints" / "step1.pt", "10-s3")


# -------------------------------------------------------------- concurrency


def test_two_runs_at_once_serialize(workspace, guard):
    repo, remote = ahead_of(workspace)
    (repo / "wip.txt").write_text("saved once\n")
    guard(repo)
    cmd = [sys.executable, str(SCRIPT), "--json"]
    procs = [subprocess.Popen(cmd, env=workspace.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    codes = [p.wait(timeout=120) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert codes == [0, 0]
    assert len([r for r in remote_refs(remote) if r.startswith(AUTOSAVE)]) == 1
    # Back to back within one second, different work each time: two snapshots.
    for n in range(2):
        (repo / "wip.txt").write_text(f"version {n}\n")
        assert workspace.save("--json").rc == 0
    assert len([r for r in remote_refs(remote) if r.startswith(AUTOSAVE)]) == 3
    guard.before.clear()  # the work tree was changed on purpose


# -------------------------------------------------------------------- rclone


needs_rclone = pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone missing")


@needs_rclone
def test_results_synced_to_a_local_rclone_remote(workspace):
    (workspace.path / "results" / "a").mkdir(parents=True)
    (workspace.path / "results" / "a" / "m.csv").write_text("1,2\n")
    (workspace.path / "results" / "run.sh").write_text("#!/bin/sh\n")
    target = workspace.root / "bucket"
    workspace.policy(f'[[sync]]\npath = "results"\nremote = "{target}"\n')
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    assert saved.report["sync"][0]["status"] == "synced"
    assert (target / "a" / "m.csv").read_text() == "1,2\n"


@needs_rclone
def test_unreachable_rclone_remote_is_named(workspace):
    (workspace.path / "results").mkdir()
    (workspace.path / "results" / "m.csv").write_text("1\n")
    remote = f":sftp,host=127.0.0.1,port={closed_port()},user=nobody:/x"
    workspace.policy(f'[[sync]]\npath = "results"\nremote = "{remote}"\n')
    saved = workspace.save("--json", env={"POD_SAVE_SYNC_TIMEOUT": "20"})
    assert saved.report["sync"][0]["status"] == "failed"
    assert_named(saved, workspace.path / "results" / "m.csv", "rclone")


@pytest.fixture
def sshd(tmp_path: Path):
    """A real sshd on a free localhost port that accepts one key for this user."""
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(binary):
        pytest.skip("openssh-server missing")
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    port = closed_port()
    (d / "config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(d / "config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        yield port, d / "client"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@needs_rclone
def test_results_and_models_synced_over_sftp(workspace, sshd):
    port, key = sshd
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True,
                                                    text=True, check=True).stdout.strip()
    (workspace.path / "results").mkdir()
    (workspace.path / "results" / "eval.json").write_text('{"success": 0.93}\n')
    (workspace.path / "models" / "mine").mkdir(parents=True)
    (workspace.path / "models" / "mine" / "policy.pt").write_bytes(os.urandom(4096))
    target = workspace.root / "sftp-target"
    remote = f":sftp,host=127.0.0.1,port={port},user={user},key_file={key}:{target}"
    workspace.policy('discard = []\n'
               f'[[sync]]\npath = "results"\nremote = "{remote}/results"\n'
               f'[[sync]]\npath = "models"\nremote = "{remote}/models"\n')
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out + saved.err
    assert [s["status"] for s in saved.report["sync"]] == ["synced", "synced"]
    assert (target / "results" / "eval.json").read_bytes() == \
        (workspace.path / "results" / "eval.json").read_bytes()
    assert (target / "models" / "mine" / "policy.pt").read_bytes() == \
        (workspace.path / "models" / "mine" / "policy.pt").read_bytes()
    # A file added later and a second run: copied too, nothing deleted remotely.
    (workspace.path / "results" / "late.txt").write_text("late\n")
    assert workspace.save("--json").rc == 0
    assert (target / "results" / "late.txt").exists()


def test_walk_cut_short_by_the_budget_is_never_saved(workspace):
    sys.path.insert(0, str(SCRIPT.parent.parent / "lib"))
    from podsave.walk import walk

    (workspace.path / "results").mkdir()
    (workspace.path / "results" / "x").write_text("x\n")
    cut = walk(str(workspace.path), [], deadline=time.monotonic() - 1)
    assert cut.incomplete and cut.files == []
    whole = walk(str(workspace.path), [], deadline=time.monotonic() + 60)
    assert not whole.incomplete and [p for p, _ in whole.files] == [str(workspace.path / "results/x")]


def test_hook_leaving_a_detached_daemon_does_not_hold_pod_save(workspace):
    pidfile = workspace.path / "daemon.pid"
    hook(workspace, "10-daemon", f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 30' & echo started")
    workspace.policy('discard = ["daemon.pid"]\n')
    try:
        saved = workspace.save("--json")
        assert saved.rc == 0, saved.out
        assert saved.seconds < 15 and "started" in saved.report["hooks"][0]["output"]
    finally:
        subprocess.run(["kill", pidfile.read_text().strip()], check=False)


# ------------------------------------------------------------- odd layouts


def test_symlink_loops_and_links_into_the_system_end_the_walk(workspace):
    (workspace.path / "loop").mkdir()
    (workspace.path / "loop" / "self").symlink_to(workspace.path / "loop")
    (workspace.path / "loop" / "up").symlink_to(workspace.path)
    (workspace.path / "usr").symlink_to("/usr")
    (workspace.path / "broken").symlink_to(workspace.path / "nowhere")
    saved = workspace.save("--json", timeout=60)
    assert saved.rc == 0, saved.out
    assert saved.report["inventory"]["unsaved"] == []


def test_file_linked_from_outside_the_workspace_is_named(workspace):
    outside = workspace.root / "container-disk" / "notes.txt"
    outside.parent.mkdir()
    outside.write_text("only on the container disk\n")
    (workspace.path / "notes.txt").symlink_to(outside)
    assert_named(workspace.save("--json"), outside, "not in a git")


def test_origin_on_the_volume_and_a_backup_off_it(workspace, guard):
    on_volume = workspace.path / "mirror.git"
    git(workspace.path, "init", "-q", "--bare", str(on_volume))
    backup = workspace.bare("backup")
    repo = workspace.repo("proj", on_volume)
    git(repo, "remote", "add", "backup", str(backup))
    sha = workspace.commit(repo, "work.txt")
    workspace.policy('discard = ["mirror.git"]\n')
    saved = saved_ok(workspace, guard, repo)
    assert saved.repo(repo)["remote"] == "backup"
    assert sha in remote_refs(backup).values()


def test_repo_inside_a_discarded_folder_is_still_saved(workspace, guard):
    remote = workspace.bare("dataset-tools")
    repo = workspace.path / "datasets" / "tools"
    repo_at(repo, remote)
    sha = workspace.commit(repo, "convert.py")
    saved_ok(workspace, guard, repo)
    assert sha in remote_refs(remote).values()


def test_dirty_detached_head_keeps_its_commits(workspace, guard):
    repo, remote = ahead_of(workspace)
    git(repo, "switch", "-q", "--detach")
    sha = workspace.commit(repo, "on-detached.txt")
    (repo / "wip.txt").write_text("dirty on a detached HEAD\n")
    guard(repo)
    saved = workspace.save("--json")
    clone = assert_saved_exactly(workspace, saved, repo, remote)
    assert git(clone, "rev-parse", "HEAD") == sha
