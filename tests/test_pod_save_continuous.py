"""Continuous save on real repositories and remotes: pod-autosave's incremental save
(only what changed, no re-hash of unchanged files, the lock manual saves take), the
save status record, and pod-restore --latest bringing the newest autosave back."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from podsave_helpers import GIT_IDENTITY, RESTORE, SCRIPT, git, remote_refs, work_files
from podsave_helpers import workspace as workspace  # noqa: F401 -- the fixture

from imagebuild.errors import SpecError
from imagebuild.pods import autosave as host_autosave

AUTOSAVE = SCRIPT.parent / "pod-autosave"
sys.path.insert(0, str(SCRIPT.parent.parent / "lib"))
from podsave import statcache  # noqa: E402


def autosave(ws, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(AUTOSAVE), *args], env={**ws.env, **(env or {})},
                          capture_output=True, text=True, timeout=120, check=False)


def status(ws) -> dict:
    res = autosave(ws, "--status", "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def record(ws) -> dict:
    return json.loads((ws.path / ".pod" / "save-status.json").read_text())


def snapshots(remote: Path) -> list[str]:
    return sorted(r for r in remote_refs(remote) if r.startswith("refs/heads/autosave/"))


def three_repos(ws) -> list[Path]:
    repos = []
    for name in ("a", "b", "c"):
        repo = ws.repo(name, ws.bare(name))
        (repo / "work.py").write_text(f"print('{name}')\n")
        repos.append(repo)
    time.sleep(1.1)  # out of the racy second: the first save's stats can be trusted
    return repos


def test_an_unchanged_workspace_is_not_saved_again_and_one_change_saves_one_repo(workspace):
    repos = three_repos(workspace)
    first = autosave(workspace, "--once")
    assert first.returncode == 0, first.stdout + first.stderr
    pushed = {r.name: snapshots(workspace.remotes / f"{r.name}.git") for r in repos}
    assert all(len(refs) == 1 for refs in pushed.values()), pushed
    assert record(workspace)["last_save"]["verdict"] == "saved"

    again = autosave(workspace, "--once")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {r.name: snapshots(workspace.remotes / f"{r.name}.git") for r in repos} == pushed
    assert "incremental save: saved" in again.stdout
    assert (record(workspace)["last_save"]["repos_saved"],
            record(workspace)["last_save"]["repos_kept"]) == (0, 3)

    (repos[1] / "work.py").write_text("print('b, edited')\n")
    time.sleep(1.1)
    third = autosave(workspace, "--once")
    assert third.returncode == 0, third.stdout + third.stderr
    after = {r.name: snapshots(workspace.remotes / f"{r.name}.git") for r in repos}
    assert after["a"] == pushed["a"] and after["c"] == pushed["c"]
    assert (record(workspace)["last_save"]["repos_saved"],
            record(workspace)["last_save"]["repos_kept"]) == (1, 2)
    assert len(after["b"]) == 2
    newest = after["b"][-1]
    shown = git(workspace.remotes / "b.git", "show", f"{newest}:work.py")
    assert shown == "print('b, edited')"


def test_only_changed_files_are_hashed_again(workspace):
    sys.path.insert(0, str(SCRIPT.parent.parent / "lib"))
    from podsave import config, incremental

    repo = workspace.repo("big", workspace.bare("big"))
    for n in range(30):
        (repo / f"f{n}.txt").write_text(f"{n}\n")
    time.sleep(1.1)
    old = dict(os.environ)
    os.environ.update(workspace.env)
    try:
        cfg = config.load_config(None, False)
        first = incremental.save(cfg, full=True)
        assert first["incremental"]["hashed"] >= 30
        (repo / "f7.txt").write_text("seven\n")
        time.sleep(1.1)
        cfg = config.load_config(None, False)
        cfg.timestamp = "20990101T000000Z"
        second = incremental.save(cfg)
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert second["incremental"]["saved"] == [str(repo)]
    assert second["incremental"]["hashed"] == 1, second["incremental"]
    assert second["ok"], second["inventory"]


def test_a_racily_clean_stat_is_never_trusted():
    taken_at = 1_700_000_000.4
    same_second = [1_700_000_000_100_000_000, 1_699_999_000_000_000_000, 5, 7, 0o100644]
    older = [1_699_999_999_900_000_000, 1_699_999_000_000_000_000, 5, 7, 0o100644]
    assert not statcache.trusted(same_second, list(same_second), taken_at)
    assert statcache.trusted(older, list(older), taken_at)
    assert not statcache.trusted(older, [*older[:2], 6, *older[3:]], taken_at)


def test_autosave_waits_for_a_manual_save_holding_the_lock(workspace):
    repo = workspace.repo("locked", workspace.bare("locked"))
    (repo / "new.txt").write_text("new\n")
    lock = workspace.path / ".pod" / "save.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, str(AUTOSAVE), "--once"], env=workspace.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert proc.poll() is None
        assert snapshots(workspace.remotes / "locked.git") == []
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert len(snapshots(workspace.remotes / "locked.git")) == 1


def test_status_record_names_unsaved_files_and_the_oldest_change(workspace):
    repo = workspace.repo("nor", None)  # no remote: nothing in it can be saved
    (repo / "notes.txt").write_text("only here\n")
    res = autosave(workspace, "--once")
    assert res.returncode == 1, res.stdout + res.stderr
    info = status(workspace)
    assert info["verdict"] == "not saved"
    assert info["unsaved_files"] >= 1 and info["unsaved_bytes"] > 0
    assert info["oldest_unsaved_age_s"] is not None and info["oldest_unsaved_age_s"] < 120
    assert any("unsaved" in line and "file(s)" in line for line in info["lines"])


def test_a_manual_pod_save_writes_the_status_record_too(workspace):
    repo = workspace.repo("man", workspace.bare("man"))
    (repo / "x.txt").write_text("x\n")
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.err
    info = status(workspace)
    assert info["verdict"] == "saved" and info["mode"] == "manual"
    assert info["unsaved_files"] == 0
    assert info["lines"][-1] == "unsaved  nothing"


def test_changes_after_the_last_save_show_as_pending(workspace):
    sys.path.insert(0, str(SCRIPT.parent.parent / "lib"))
    from podsave import autosave as pod_autosave

    repo = workspace.repo("pend", workspace.bare("pend"))
    time.sleep(1.1)
    assert autosave(workspace, "--once").returncode == 0
    (repo / "README.md").write_text("# changed after the save\n")
    found = pod_autosave.pending(str(workspace.path))
    assert found["files"] == 1 and found["bytes"] > 0 and found["oldest_change"]


def test_every_comes_from_the_variable_before_save_toml(workspace):
    sys.path.insert(0, str(SCRIPT.parent.parent / "lib"))
    from podsave import autosave as pod_autosave
    from podsave.config import UserError

    workspace.policy('[save]\nevery = "15m"\n')
    assert pod_autosave.every_seconds(str(workspace.path)) == 900
    os.environ["POD_SAVE_EVERY"] = "1h"
    try:
        assert pod_autosave.every_seconds(str(workspace.path)) == 3600
        os.environ["POD_SAVE_EVERY"] = "off"
        assert pod_autosave.every_seconds(str(workspace.path)) is None
    finally:
        del os.environ["POD_SAVE_EVERY"]
    workspace.policy('[save]\nevery = "often"\n')
    with pytest.raises(UserError, match=r"\[save\] every: 'often' is not a duration"):
        pod_autosave.every_seconds(str(workspace.path))


def test_save_every_flag_is_checked_on_the_host():
    assert host_autosave.pod_env("15m") == {"POD_SAVE_EVERY": "15m"}
    assert host_autosave.pod_env("off") == {"POD_SAVE_EVERY": "off"}
    assert host_autosave.pod_env(None) == {}
    with pytest.raises(SpecError, match="--save-every"):
        host_autosave.pod_env("soon")


def _restore_latest(ws, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RESTORE), "--latest", *args], cwd=cwd,
                          env=ws.env, capture_output=True, text=True, timeout=60, check=False)


def test_restore_latest_all_brings_every_repository_back_byte_for_byte(workspace):
    one, two = workspace.repo("one", workspace.bare("one")), workspace.repo("two", workspace.bare("two"))
    (one / "run.sh").write_text("#!/bin/sh\necho run\n")
    (one / "run.sh").chmod(0o755)
    (one / "README.md").unlink()
    (two / "data.bin").write_bytes(bytes(range(256)) * 4)
    assert autosave(workspace, "--once").returncode == 0
    (two / "data.bin").write_bytes(b"newer\r\n")
    time.sleep(1.1)  # a new timestamp for the second snapshot
    assert autosave(workspace, "--once").returncode == 0
    want = {p.name: work_files(p) for p in (one, two)}

    # A fresh pod: the volume is gone; the repositories are cloned to the same paths.
    shutil.rmtree(workspace.path)
    for name in ("one", "two"):
        git(workspace.root, "clone", "-q", str(workspace.remotes / f"{name}.git"),
            str(workspace.code / name), env=workspace.env)
    res = _restore_latest(workspace, "--all", cwd=workspace.root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("restored autosave/") == 2, res.stdout
    assert {p.name: work_files(p) for p in (one, two)} == want
    assert os.stat(one / "run.sh").st_mode & 0o111


def test_restore_latest_does_not_go_back_behind_a_later_commit(workspace):
    repo = workspace.repo("later", workspace.bare("later"))
    (repo / "draft.txt").write_text("draft\n")
    assert autosave(workspace, "--once").returncode == 0
    workspace.commit(repo, "draft.txt", "final\n")
    git(repo, "push", "-q", "origin", "main", env=workspace.env)
    clone = workspace.root / "fresh"
    git(workspace.root, "clone", "-q", str(workspace.remotes / "later.git"), str(clone),
        env=workspace.env)
    res = _restore_latest(workspace, cwd=clone)
    assert res.returncode == 0, res.stderr
    assert "nothing to restore" in res.stdout
    assert (clone / "draft.txt").read_text() == "final\n"


def test_restore_latest_brings_back_what_a_later_commit_left_out(workspace):
    repo = workspace.repo("partly", workspace.bare("partly"))
    (repo / "a.txt").write_text("a, saved\n")
    (repo / "b.txt").write_text("b, only in the autosave\n")
    (repo / "README.md").unlink()
    assert autosave(workspace, "--once").returncode == 0
    workspace.commit(repo, "a.txt", "a, committed later\n")  # b.txt is still uncommitted
    git(repo, "push", "-q", "origin", "main", env=workspace.env)
    clone = workspace.root / "fresh"
    git(workspace.root, "clone", "-q", str(workspace.remotes / "partly.git"), str(clone),
        env=workspace.env)
    res = _restore_latest(workspace, cwd=clone)
    assert res.returncode == 0, res.stderr
    assert "restored 2 file(s)" in res.stdout, res.stdout
    assert (clone / "a.txt").read_text() == "a, committed later\n"  # never back in time
    assert (clone / "b.txt").read_text() == "b, only in the autosave\n"
    assert not (clone / "README.md").exists()


def test_restore_needs_a_ref_or_latest(workspace):
    res = subprocess.run([sys.executable, str(RESTORE)], cwd=workspace.root, env=workspace.env,
                         capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 2
    assert "give an autosave REF, or --latest" in res.stderr
    assert "Traceback" not in res.stderr
    assert GIT_IDENTITY  # the helpers' identity is what the repos above were made with


def test_a_save_that_worked_is_not_failed_by_an_unwritable_pod_folder(workspace):
    repo = workspace.repo("ro", workspace.bare("ro"))
    (repo / "x.txt").write_text("x\n")
    pod_dir = workspace.path / ".pod"
    pod_dir.mkdir(parents=True, exist_ok=True)
    (pod_dir / "save-status.json").mkdir()  # cannot be replaced by a file: the write fails
    (pod_dir / "autosave").write_text("")  # nor can the stat cache's folder be made
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.err
    res = autosave(workspace, "--once")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "internal error" not in res.stdout + res.stderr


def test_the_watcher_saves_at_once_then_every_interval_at_low_priority(workspace):
    repo = workspace.repo("watched", workspace.bare("watched"))
    (repo / "a.txt").write_text("a\n")
    proc = subprocess.Popen([sys.executable, str(AUTOSAVE)], env={**workspace.env,
                            "POD_SAVE_EVERY": "10s"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(snapshots(workspace.remotes / "watched.git")) < 1 and \
                time.monotonic() < deadline:
            time.sleep(0.5)
        nice = int(Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        assert nice >= 10
        (repo / "b.txt").write_text("b\n")
        while len(snapshots(workspace.remotes / "watched.git")) < 2 and \
                time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(snapshots(workspace.remotes / "watched.git")) == 2
        info = status(workspace)
        assert info["every_s"] == 10 and info["watcher"] == "running"
        assert info["verdict"] == "saved"
    finally:
        proc.kill()
        out = proc.communicate()[0]
    assert "full save: saved" in out and "incremental save: saved" in out, out


def test_a_commit_only_inside_a_submodule_saves_the_parent_again(workspace):
    # The parent's snapshot records the submodule's HEAD (a gitlink); a commit there
    # changes no file the parent's stat cache looks at, only .git/modules/lib's refs.
    sub_remote = workspace.bare("lib")
    seed = workspace.repo("seed", sub_remote)
    parent = workspace.repo("parent", workspace.bare("parent"))
    git(parent, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub_remote), "lib")
    git(parent, "commit", "-q", "-m", "with a submodule")
    git(parent, "push", "-q")
    shutil.rmtree(seed)
    lib = parent / "lib"
    (lib / "train.py").write_text("lr = 0.1\n")
    time.sleep(1.1)
    first = autosave(workspace, "--once")
    assert first.returncode == 0, first.stdout + first.stderr
    git(lib, "add", "train.py")
    git(lib, "commit", "-q", "-m", "tuned")  # no file changes: only the submodule's refs
    time.sleep(1.1)
    second = autosave(workspace, "--once")
    assert second.returncode == 0, second.stdout + second.stderr
    saved = record(workspace)["last_save"]
    assert saved["repos_saved"] == 2, saved  # the submodule and its parent
    newest = snapshots(workspace.remotes / "parent.git")[-1]
    recorded = git(workspace.remotes / "parent.git", "rev-parse", f"{newest}:lib")
    assert recorded == git(lib, "rev-parse", "HEAD")


def _saves(ws, repo: Path, contents: list[str], keep: int | None) -> None:
    for text in contents:
        (repo / "work.py").write_text(text)
        time.sleep(1.1)  # a new timestamp: a new snapshot ref
        saved = ws.save(env={} if keep is None else {"POD_SAVE_KEEP": str(keep)})
        assert saved.rc == 0, saved.out + saved.err


def test_old_snapshots_of_a_clone_are_pruned_keeping_the_newest(workspace):
    repo = workspace.repo("p", workspace.bare("p"))
    other = workspace.repo("q", workspace.remotes / "p.git", pushed=False)  # a second clone
    (other / "mine.py").write_text("the other clone's work\n")
    _saves(workspace, repo, ["one\n", "two\n", "three\n"], keep=2)
    refs = snapshots(workspace.remotes / "p.git")
    key = refs[-1].rsplit("-", 1)[1]
    ours = [r for r in refs if r.endswith(key)]
    assert len(ours) == 2, refs  # the newest two of this clone
    assert git(workspace.remotes / "p.git", "show", f"{ours[-1]}:work.py") == "three"
    assert git(workspace.remotes / "p.git", "show", f"{ours[0]}:work.py") == "two"
    theirs = [r for r in refs if re.fullmatch(r".*Z-[0-9a-f]{8}", r) and not r.endswith(key)]
    assert len(theirs) == 1, refs  # the other clone's one snapshot is its own, untouched


def test_save_toml_keep_sets_how_many_snapshots_stay_and_the_pod_variable_wins(workspace):
    repo = workspace.repo("k", workspace.bare("k"))
    save_toml = workspace.path / ".pod" / "save.toml"
    save_toml.parent.mkdir(exist_ok=True)
    save_toml.write_text("[save]\nkeep = 1\n")
    _saves(workspace, repo, ["one\n", "two\n"], keep=None)
    assert len(snapshots(workspace.remotes / "k.git")) == 1  # save.toml's keep
    _saves(workspace, repo, ["three\n", "four\n"], keep=3)
    assert len(snapshots(workspace.remotes / "k.git")) == 3  # POD_SAVE_KEEP wins
    save_toml.write_text('[save]\nkeep = "all"\n')
    bad = workspace.save()
    assert bad.rc == 2, bad.out + bad.err
    assert "save.toml: [save] keep must be a whole number" in bad.err
    assert "Traceback" not in bad.err


def test_a_snapshot_holding_the_only_copy_of_commits_is_never_pruned(workspace):
    repo = workspace.repo("d", workspace.bare("d"))
    git(repo, "checkout", "-q", "--detach")
    lone = workspace.commit(repo, "lone.py")  # on no branch, on no remote
    _saves(workspace, repo, ["detached, dirty\n"], keep=1)
    git(repo, "checkout", "-q", "-f", "main")
    _saves(workspace, repo, ["on main\n", "on main, later\n"], keep=1)
    refs = snapshots(workspace.remotes / "d.git")
    holding = [r for r in refs if git(workspace.remotes / "d.git", "rev-parse", f"{r}^") == lone]
    assert holding, refs  # its parent, the lone commit, is on no ref that stays
    assert len(refs) == 2, refs  # the older "on main" one went: main holds its parent


def test_host_pod_restore_script_restores_each_clone_and_names_a_missing_one(workspace):
    # What `imagebuild pod restore POD code/one code/gone` runs on the pod (here: on the
    # host, pod-restore from the checkout on PATH), read back clone by clone.
    from imagebuild.pods import podrestore

    one = workspace.repo("one", workspace.bare("one"))
    (one / "notes.txt").write_text("only on the pod\n")
    assert autosave(workspace, "--once").returncode == 0
    shutil.rmtree(one)
    git(workspace.code, "clone", "-q", str(workspace.remotes / "one.git"), "one")
    repos = ["code/one", "code/gone", "code/it's here"]
    env = {**workspace.env, "PATH": f"{SCRIPT.parent}:{workspace.env['PATH']}"}
    done = subprocess.run(["bash", "-c", podrestore.script(repos, False)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    results = podrestore.parse(done.stdout, repos, False)
    assert [(r.repo, r.exit_code) for r in results] == [
        ("code/one", 0), ("code/gone", 2), ("code/it's here", 2)], done.stdout + done.stderr
    assert (one / "notes.txt").read_text() == "only on the pod\n"
    assert any("autosave/" in line for line in results[0].output), results[0].output
    assert results[1].output == ["pod-restore: code/gone: no such folder on the pod"]
    shutil.rmtree(one)  # --all: every clone pod-save's walk finds, each framed on its own
    git(workspace.code, "clone", "-q", str(workspace.remotes / "one.git"), "one")
    done = subprocess.run(["bash", "-c", podrestore.script([], True)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    every = podrestore.parse(done.stdout, [], True)
    assert [(r.repo, r.ok) for r in every] == [(str(one), True)], done.stdout + done.stderr
    assert (one / "notes.txt").read_text() == "only on the pod\n"
    with pytest.raises(SpecError, match="--all"):
        podrestore.check_repos(["code/one"], True)
    with pytest.raises(SpecError, match="REPO"):
        podrestore.check_repos(["code/one\nrm -rf /"], False)


def test_host_pod_restore_reads_a_cut_off_answer_as_not_restored():
    from imagebuild.pods import podrestore

    mark = podrestore.MARK
    text = f"pod-restore: restored a\r\n{mark} 0 /workspace/a\r\npod-restore: fetching b\n"
    every = podrestore.parse(text, [], True)  # the connection dropped during the second clone
    assert [(r.repo, r.exit_code) for r in every] == [("/workspace/a", 0),
                                                      ("(the clones after these)", None)]
    assert every[1].output == ["pod-restore: fetching b"] and not every[1].ok
    named = podrestore.parse(f"{mark} 0 a\n", ["a", "b"], False)
    assert [(r.repo, r.ok) for r in named] == [("a", True), ("b", False)]
    assert podrestore.parse(f"{mark} 0 a\n{mark}-end\n", [], True)[-1].ok
