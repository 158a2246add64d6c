"""pod-save, round three: no secret leaves in a snapshot, no false refusals, and
reports that name the real cause. Real repositories and remotes (bare file://
remotes, pre-receive/update hooks, git-crypt); each case ends in "on the remote,
restorable" or "exit 1 and named", and no test secret is on any remote or in any
output. Test secrets are made at test time: no real-looking literal is in the repo.
"""

from __future__ import annotations

import os
import random
import shutil
import string
import subprocess
import tempfile
from pathlib import Path

import pytest
from podsave_helpers import AUTOSAVE, Workspace, assert_named, git, remote_refs, restored, work_files

pytest_plugins = ["podsave_helpers"]  # the `workspace` fixture

ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(random.choice(alphabet) for _ in range(n))


def tokens() -> dict[str, str]:
    """One fresh token of each provider's documented shape."""
    return {
        "anthropic": "sk-ant-api03-" + rand(93, ALNUM + "_-") + "AA",
        "openai": "sk-proj-" + rand(40) + "T3BlbkFJ" + rand(20),
        "aws": "AKIA" + rand(16, string.ascii_uppercase + string.digits),
        "github": "ghp_" + rand(36),
        "huggingface": "hf_" + rand(34),
    }


def objects(remote: Path) -> bytes:
    """Every object of a bare remote, reachable or not, as one blob of bytes."""
    return subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=remote,
                          capture_output=True, check=True).stdout


def assert_nowhere(secret: str, saved, *remotes: Path) -> None:
    assert secret not in saved.out and secret not in saved.err, "secret in pod-save's output"
    for remote in remotes:
        assert secret.encode() not in objects(remote), f"secret pushed to {remote}"


def snapshot_ref(saved, repo: Path) -> str:
    snap = saved.repo(repo)["snapshot"]
    assert snap and snap["status"] in ("pushed", "up-to-date"), saved.repo(repo)
    return snap["ref"]


def tree(remote: Path, ref: str) -> dict[str, str]:
    out = git(remote, "ls-tree", "-r", "-z", ref)
    found = {}
    for line in filter(None, out.split("\0")):
        meta, _, path = line.partition("\t")
        found[path] = meta.split()[2]
    return found


def proj(workspace: Workspace, name: str = "proj") -> tuple[Path, Path]:
    remote = workspace.bare(name)
    return workspace.repo(name, remote), remote


# ------------------------------------------------------------ A. no secret leaves


@pytest.mark.parametrize("kind", list(tokens()))
def test_token_in_an_untracked_script_is_withheld_and_named(workspace, kind):
    repo, remote = proj(workspace)
    secret = tokens()[kind]
    (repo / "train.py").write_text(f'API_KEY = "{secret}"\nprint("train")\n')
    (repo / "eval.py").write_text("print('eval')\n")
    saved = workspace.save("--json")
    reason = assert_named(saved, repo / "train.py", "secret", "rule ")
    assert secret not in reason
    files = tree(remote, snapshot_ref(saved, repo))
    assert "eval.py" in files and "train.py" not in files
    assert_nowhere(secret, saved, remote)
    assert_nowhere(secret, workspace.save())  # the human report too


@pytest.mark.parametrize("kind", ["github", "huggingface"])
def test_token_in_an_edit_of_a_tracked_file_keeps_the_committed_version(workspace, kind):
    repo, remote = proj(workspace)
    committed = "TOKEN = None\n"
    workspace.commit(repo, "config.py", committed)
    git(repo, "push", "-q")
    secret = tokens()[kind]
    (repo / "config.py").write_text(f'TOKEN = "{secret}"\n')
    (repo / "model.py").write_text("layers = 4\n")
    saved = workspace.save("--json")
    assert_named(saved, repo / "config.py", "secret")
    clone = restored(workspace, remote, snapshot_ref(saved, repo))
    # Withheld, not deleted: the snapshot keeps what was committed.
    assert (clone / "config.py").read_text() == committed
    assert (clone / "model.py").read_text() == "layers = 4\n"
    assert_nowhere(secret, saved, remote)


@pytest.mark.parametrize("name", ["kaggle.json", "rclone.conf", ".git-credentials", ".netrc",
                                  "credentials.db", ".claude.json", ".credentials.json",
                                  "id_work", "deploy.pem", ".env"])
def test_untracked_credential_file_is_withheld_and_named(workspace, name):
    repo, remote = proj(workspace)
    secret = rand(32)  # no known shape: the name alone withholds it
    (repo / "cfg").mkdir()
    (repo / "cfg" / name).write_text(f"value = {secret}\n")
    (repo / "work.py").write_text("work\n")
    saved = workspace.save("--json")
    assert_named(saved, repo / "cfg" / name, "credential file")
    assert "work.py" in tree(remote, snapshot_ref(saved, repo))
    assert_nowhere(secret, saved, remote)


def test_allowed_path_is_pushed_with_its_token(workspace):
    repo, remote = proj(workspace)
    secret = tokens()["huggingface"]
    (repo / "public_demo.py").write_text(f'TOKEN = "{secret}"  # a revoked demo token\n')
    workspace.policy('allow_secrets = ["code/proj/public_demo.py"]\n')
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    assert secret.encode() in objects(remote)


def test_committed_secret_is_pushed_as_committed(workspace):
    repo, remote = proj(workspace)
    secret = tokens()["aws"]
    sha = workspace.commit(repo, "settings.py", f'KEY = "{secret}"\n')
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out  # the user's own commit: not ours to block
    assert remote_refs(remote)["refs/heads/main"] == sha
    assert secret not in saved.out


def test_stash_with_untracked_env_is_pushed_without_the_secrets(workspace):
    repo, remote = proj(workspace)
    env_secret, aws = rand(40), tokens()["aws"]
    workspace.commit(repo, "config.py", "KEY = None\n")
    git(repo, "push", "-q")
    (repo / ".env").write_text(f"WANDB_API_KEY={env_secret}\n")
    (repo / "notes.txt").write_text("ideas for the next run\n")
    (repo / "config.py").write_text(f'KEY = "{aws}"\n')
    (repo / "README.md").write_text("# proj, edited\n")
    git(repo, "stash", "-u", "-q")
    stash = git(repo, "rev-parse", "stash@{0}")
    saved = workspace.save("--json")
    [item] = saved.repo(repo)["stashes"]
    assert item["status"] == "pushed", item
    pushed = remote_refs(remote)[item["ref"]]
    assert pushed != stash  # a cleaned copy, the user's stash untouched
    assert git(repo, "rev-parse", "stash@{0}") == stash
    untracked = tree(remote, f"{pushed}^3")
    assert "notes.txt" in untracked and ".env" not in untracked
    assert git(remote, "show", f"{pushed}:README.md") == "# proj, edited"
    assert git(remote, "show", f"{pushed}:config.py") == "KEY = None"
    assert saved.rc == 1
    named = [f["path"] for f in saved.repo(repo)["skipped_files"]]
    assert any(".env" in p for p in named) and any("config.py" in p for p in named), named
    assert_nowhere(env_secret, saved, remote)
    assert_nowhere(aws, saved, remote)


needs_git_crypt = pytest.mark.skipif(shutil.which("git-crypt") is None,
                                     reason="git-crypt missing (apt-get install git-crypt)")


def crypt_repo(workspace: Workspace, kind: str) -> tuple[Path, Path, str]:
    """A repo whose secret.env is encrypted in git (git-crypt, or a transcrypt-style
    `filter=crypt`), committed and pushed; returns the plaintext on disk."""
    repo, remote = proj(workspace)
    if kind == "git-crypt":
        subprocess.run(["git-crypt", "init"], cwd=repo, check=True, capture_output=True)
        attrs = "secret.env filter=git-crypt diff=git-crypt\n"
    else:  # transcrypt's attribute; a stand-in cipher (rot13) as its filter
        git(repo, "config", "filter.crypt.clean", "tr A-Za-z N-ZA-Mn-za-m")
        git(repo, "config", "filter.crypt.smudge", "tr A-Za-z N-ZA-Mn-za-m")
        attrs = "secret.env filter=crypt diff=crypt merge=crypt\n"
    (repo / ".gitattributes").write_text(attrs)
    plain = "password-" + rand(24, string.ascii_lowercase)
    (repo / "secret.env").write_text(f"DB={plain}\n")
    git(repo, "add", ".gitattributes", "secret.env")
    git(repo, "commit", "-q", "-m", "encrypted secrets")
    git(repo, "push", "-q")
    assert plain.encode() not in objects(remote)
    return repo, remote, plain


@pytest.mark.parametrize("kind", [pytest.param("git-crypt", marks=needs_git_crypt), "transcrypt"])
def test_encrypted_path_unchanged_keeps_its_committed_ciphertext(workspace, kind):
    repo, remote, plain = crypt_repo(workspace, kind)
    (repo / "wip.py").write_text("work in progress\n")
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    files = tree(remote, snapshot_ref(saved, repo))
    assert files["secret.env"] == git(repo, "rev-parse", "HEAD:secret.env")
    assert_nowhere(plain, saved, remote)


@pytest.mark.parametrize("kind", [pytest.param("git-crypt", marks=needs_git_crypt), "transcrypt"])
def test_encrypted_path_edited_or_new_is_withheld_never_plaintext(workspace, kind):
    repo, remote, plain = crypt_repo(workspace, kind)
    edited = "password-" + rand(24, string.ascii_lowercase)
    (repo / "secret.env").write_text(f"DB={edited}\n")
    saved = workspace.save("--json")
    assert_named(saved, repo / "secret.env", "encrypted")
    assert saved.repo(repo)["snapshot"] is None  # nothing else changed: nothing to push
    (repo / "new.env").write_text(f"DB={edited}\n")  # new, under the same attribute
    (repo / ".gitattributes").write_text((repo / ".gitattributes").read_text()
                                         + "new.env " + (repo / ".gitattributes").read_text()
                                         .split(" ", 1)[1])
    saved = workspace.save("--json")
    assert_named(saved, repo / "new.env", "encrypted", "new")
    files = tree(remote, snapshot_ref(saved, repo))
    assert files["secret.env"] == git(repo, "rev-parse", "HEAD:secret.env")
    assert "new.env" not in files and ".gitattributes" in files
    assert_nowhere(plain, saved, remote)
    assert_nowhere(edited, saved, remote)


def test_workspace_as_a_repository_never_pushes_the_pods_own_state(workspace):
    remote = workspace.bare("ws")
    ws = workspace.path
    git(ws, "init", "-q")
    git(ws, "remote", "add", "origin", str(remote))
    (ws / "README.md").write_text("my workspace\n")
    git(ws, "add", "README.md")
    git(ws, "commit", "-q", "-m", "workspace")
    git(ws, "push", "-q", "-u", "origin", "main")
    secrets = {".pod/rclone.conf": f"[s3]\nsecret_access_key = {rand(40)}\n",
               ".claude/.credentials.json": f'{{"accessToken": "{rand(40)}"}}\n',
               ".claude/settings.json": f'{{"note": "{rand(40)}"}}\n',
               ".cache/huggingface/token": rand(40),
               ".env": f"RUNPOD_API_KEY={rand(40)}\n"}
    for rel, text in secrets.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    (ws / "plan.md").write_text("the plan\n")
    for policy in (None, 'discard = ["code"]\n'):  # the default, and one that omits them
        if policy:
            workspace.policy(policy)
        saved = workspace.save("--json")
        files = tree(remote, snapshot_ref(saved, ws))
        assert "plan.md" in files
        assert not [f for f in files if f.startswith((".claude", ".cache", ".env"))], files
        assert not [f for f in files if f.startswith(".pod/") and "rclone" in f]
        for text in secrets.values():
            assert_nowhere(text.strip(), saved, remote)
    assert saved.rc == 0, saved.out


# ------------------------------------------------------------ B. no false refusals


def test_separate_git_dir_repo_and_its_submodule_are_not_bare_repos(workspace):
    sub_remote = workspace.bare("lib")
    seed = workspace.root / "seed"
    git(workspace.root, "clone", "-q", str(sub_remote), str(seed))
    workspace.commit(seed, "lib.py")
    git(seed, "push", "-q", "origin", "HEAD:main")
    remote = workspace.bare("super")
    repo = workspace.code / "super"
    gitdir = workspace.path / "gitdirs" / "super.git"
    gitdir.parent.mkdir()
    git(workspace.code, "init", "-q", f"--separate-git-dir={gitdir}", str(repo))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub_remote), "lib")
    git(repo, "commit", "-q", "-m", "with a submodule")
    git(repo, "push", "-q", "-u", "origin", "main")
    (repo / "wip.py").write_text("uncommitted\n")
    (repo / "lib" / "patch.py").write_text("uncommitted in the submodule\n")
    assert (gitdir / "modules" / "lib" / "HEAD").exists()
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    assert not [u for u in saved.report["inventory"]["unsaved"] if "bare" in u["reason"]]
    clone = restored(workspace, remote, snapshot_ref(saved, repo))
    assert (clone / "wip.py").read_text() == "uncommitted\n"
    assert "patch.py" in tree(sub_remote, snapshot_ref(saved, repo / "lib"))


def test_git_files_in_a_discarded_cache_are_not_repositories(workspace):
    repo, _ = proj(workspace)
    wt = workspace.root / "wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(wt))
    git(repo, "push", "-q", "origin", "side")
    sdist = workspace.path / ".cache" / "uv" / "sdists-v9" / "editable" / "abc123" / "src"
    sdist.mkdir(parents=True)
    (sdist / ".git").write_text("gitdir: ../../../../.git/modules/pkg\n")  # points nowhere
    (sdist / "setup.py").write_text("setup()\n")
    copy = sdist.parent / "copy"
    copy.mkdir()
    (copy / ".git").write_text((wt / ".git").read_text())  # a worktree's pointer, copied
    (copy / "stale.py").write_text("a cached copy\n")
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    paths = [r["path"] for r in saved.report["repos"]]
    assert str(sdist) not in paths and str(copy) not in paths


def test_two_dirty_clones_of_one_remote_get_distinct_snapshots(workspace):
    remote = workspace.bare("shared")
    first = workspace.repo("first", remote)
    second = workspace.code / "second"
    git(workspace.code, "clone", "-q", str(remote), str(second))
    (first / "a.py").write_text("from the first clone\n")
    (second / "b.py").write_text("from the second clone\n")
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    refs = {snapshot_ref(saved, first), snapshot_ref(saved, second)}
    assert len(refs) == 2 and all(r.startswith(AUTOSAVE) for r in refs)
    for n, repo in enumerate((first, second)):
        clone = restored(workspace, remote, snapshot_ref(saved, repo), f"restored-{n}")
        assert work_files(clone) == work_files(repo)


@pytest.mark.parametrize("edited", [False, True])
def test_committed_file_over_the_size_limit_is_not_recorded_as_deleted(workspace, edited):
    repo, remote = proj(workspace)
    big = os.urandom(2 * 2**20)
    (repo / "weights.bin").write_bytes(big)
    git(repo, "add", "weights.bin")
    git(repo, "commit", "-q", "-m", "a committed checkpoint")
    git(repo, "push", "-q")
    committed_blob = git(repo, "rev-parse", "HEAD:weights.bin")
    if edited:
        (repo / "weights.bin").write_bytes(os.urandom(2 * 2**20))
    (repo / "wip.py").write_text("dirty\n")
    saved = workspace.save("--json", env={"POD_SAVE_MAX_FILE_MB": "1"})
    files = tree(remote, snapshot_ref(saved, repo))
    assert files["weights.bin"] == committed_blob and "wip.py" in files
    if edited:
        assert_named(saved, repo / "weights.bin", "too big")
    else:
        assert saved.rc == 0, saved.out


# ------------------------------------------------- C. reports name the real cause


def test_shallow_update_refused_by_the_remote_is_named_in_its_words(workspace):
    upstream = workspace.bare("upstream")
    seed = workspace.repo("seed", upstream)
    workspace.commit(seed, "two.txt")
    git(seed, "push", "-q")
    shutil.rmtree(seed)
    repo = workspace.code / "shallow"
    git(workspace.code, "clone", "-q", "--depth", "1", f"file://{upstream}", str(repo))
    fork = workspace.bare("fork")
    git(repo, "remote", "set-url", "origin", str(fork))
    saved = workspace.save("--json")
    assert saved.rc == 1
    reason = saved.repo(repo)["reason"]
    assert "shallow update not allowed" in reason and "failed to push some refs" not in reason


def hook(remote: Path, name: str, body: str) -> None:
    path = remote / "hooks" / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.mark.parametrize("hook_name", ["update", "pre-receive"])
def test_protected_branch_is_saved_beside_and_the_hook_quoted(workspace, hook_name):
    repo, remote = proj(workspace)
    if hook_name == "update":
        hook(remote, "update", '[ "$1" = refs/heads/main ] || exit 0\n'
             'echo "GH006: Protected branch update failed for $1." >&2; exit 1')
    else:  # all or nothing: the push that touches main is refused whole
        hook(remote, "pre-receive", 'while read old new ref; do [ "$ref" = refs/heads/main ] && '
             '{ echo "GH006: Protected branch update failed for $ref." >&2; exit 1; }; done; exit 0')
    main = remote_refs(remote)["refs/heads/main"]
    sha = workspace.commit(repo, "feature.py")
    (repo / "wip.py").write_text("wip\n")
    saved = workspace.save("--json")
    assert saved.rc == 0, saved.out
    [branch] = saved.repo(repo)["branches"]
    assert branch["status"] == "pushed" and branch["diverged"] is True
    assert remote_refs(remote)[branch["ref"]] == sha and branch["ref"].startswith(AUTOSAVE)
    assert remote_refs(remote)["refs/heads/main"] == main
    assert "GH006" in (branch.get("refused") or ""), branch
    restored(workspace, remote, snapshot_ref(saved, repo))


def test_local_pre_push_hook_timeout_is_not_called_network(workspace):
    repo, _ = proj(workspace)
    workspace.commit(repo, "work.py")
    hook(repo / ".git", "pre-push", "sleep 60")
    saved = workspace.save("--json", env={"POD_SAVE_GIT_TIMEOUT": "3"})
    assert saved.rc == 1
    reason = saved.repo(repo)["branches"][0]["reason"]
    assert "pre-push" in reason and "local" in reason and "network?" not in reason, reason


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_local_permission_error_is_local_and_the_other_pushes_go_on():
    root = Path(tempfile.mkdtemp(prefix="pod-save-perm-"))
    try:
        root.chmod(0o755)
        workspace = Workspace(root)
        repo, remote = proj(workspace)
        sha = workspace.commit(repo, "committed.py")
        (repo / "wip.py").write_text("uncommitted\n")
        subprocess.run(["chown", "-R", "nobody:", str(root)], check=True)
        objects_dir = repo / ".git" / "objects"
        subprocess.run(["chown", "-R", "root:root", str(objects_dir)], check=True)
        subprocess.run(["chmod", "-R", "go-w", str(objects_dir)], check=True)
        workspace.env["HOME"] = "/nonexistent"
        saved = workspace.save("--json")
        assert saved.rc == 1
        entry = saved.repo(repo)
        assert "remote is not writable" not in entry["reason"], entry
        assert "this repository cannot be written" in entry["reason"], entry
        assert "local" in entry["reason"], entry
        assert remote_refs(remote)["refs/heads/main"] == sha  # the branch still went
        assert_named(saved, repo / "wip.py", "git:")  # its uncommitted work did not
    finally:
        shutil.rmtree(root)


def test_human_report_lists_what_the_policy_discarded_with_sizes(workspace):
    for rel, size in ((".cache/pip/wheel.whl", 5000), ("datasets/mnist/train.bin", 3000)):
        (workspace.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (workspace.path / rel).write_bytes(b"x" * size)
    saved = workspace.save("--json")
    sizes = {d["path"]: d["bytes"] for d in saved.report["inventory"]["discarded"]}
    assert sizes[str(workspace.path / ".cache")] == 5000
    assert sizes[str(workspace.path / "datasets" / "mnist")] == 3000
    human = workspace.save().out
    assert "discarded" in human and ".cache (4.9 KB)" in human and "datasets/mnist (2.9 KB)" in human
