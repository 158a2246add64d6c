"""pod-save's package, unit by unit (src/imagebuild/entrypoint/lib/podsave): the parts
whose failure modes are hard to provoke through the whole command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
from podsave_helpers import git

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src/imagebuild/entrypoint/lib"))

from podsave import policy, proc, snapshot  # noqa: E402
from podsave.config import load_config  # noqa: E402
from podsave.gitcmd import Git, common_dir  # noqa: E402

SAMPLE = """
# a comment
discard = ["datasets/*", # trailing comment
    "models/*", "a#b"]
allow_secrets = []
[hooks]
"50-s3" = ["checkpoints"]
[[sync]]
path = "results"
remote = "bucket:pods/results"
[[sync]]
path = "models/mine"
remote = ':sftp,host=x:/y'
"""


@pytest.mark.parametrize("text", [SAMPLE, policy.DEFAULT_TOML])
def test_fallback_toml_reader_agrees_with_tomllib(text):
    # Ubuntu 22.04's python3 (3.10) has no tomllib: the fallback must read the same.
    assert policy._mini_toml(text) == tomllib.loads(text)


def test_matcher_agrees_with_matches():
    patterns = ["**/venv", "datasets/*", ".cache", "**/*.pyc", "wandb/debug*.log"]
    m = policy.matcher(patterns)
    for rel in ["venv", "a/b/venv", "a/venvx", "datasets/x", "datasets", ".cache",
                "x/.cache", "a/b.pyc", "wandb/debug-internal.log"]:
        assert m(rel) == policy.matches(rel, patterns), rel


@pytest.mark.parametrize(("name", "content", "secret"), [
    (".env", "A=1", True), (".env.example", "A=1", False), ("id_ed25519", "", True),
    ("id_ed25519.pub", "ssh-ed25519 AAAA", False), ("server.pem", "", True),
    ("hf_token.txt", "", True), ("tokenizer.py", "import x", False),
    ("notes.md", "ghp_" + "a" * 36, True), ("key.txt", "-----BEGIN RSA PRIVATE KEY-----", True),
    ("train.py", "print(1)", False), (".ssh/config", "Host x", True)])
def test_secret_reason(tmp_path, name, content, secret):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    assert bool(snapshot.secret_reason(str(path), name)) is secret


def test_bad_names():
    assert snapshot.bad_name("a/.git/x") and snapshot.bad_name(".GIT") and \
        snapshot.bad_name("a/.git./b")
    assert not snapshot.bad_name("a/.github/x") and not snapshot.bad_name(".gitignore")


def test_a_file_gone_mid_batch_is_skipped_and_the_rest_hashed(tmp_path, monkeypatch):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "b.txt").write_text("b\n")
    monkeypatch.setenv("POD_WORKSPACE", str(tmp_path))
    builder = snapshot.SnapshotBuilder(Git(str(tmp_path), load_config(None, False)), None, [],
                                       2**20, lambda rel: False)
    (tmp_path / "b.txt").unlink()  # listed, then deleted before it was read
    found = builder._hash_batch(["a.txt", "b.txt"], ["--no-filters"])
    assert list(found) == ["a.txt"]
    assert builder.skipped == []  # gone entirely: nothing left to lose


def test_bounded_output_keeps_only_the_tail(tmp_path):
    start = time.monotonic()
    res = proc.run_bounded(["sh", "-c", "yes line | head -c 50000000; echo END"],
                           cwd=str(tmp_path), timeout=60, env=dict(os.environ))
    assert res.rc == 0 and res.out.endswith("END\n")
    assert len(res.out) <= proc.TAIL_BYTES
    assert time.monotonic() - start < 30


def test_redact_masks_tokens_and_url_credentials():
    text = proc.redact("https://user:ghp_" + "x" * 36 + "@github.com/a hf_" + "y" * 30)
    assert "ghp_" not in text and "hf_" not in text and "***" in text


def test_restore_refuses_a_dirty_clone(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "x").write_text("local work\n")
    script = Path(__file__).resolve().parents[1] / "src/imagebuild/entrypoint/bin/pod-restore"
    res = subprocess.run([sys.executable, str(script), "autosave/p/t"], cwd=tmp_path,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 1 and "uncommitted changes" in res.stderr
    assert (tmp_path / "x").read_text() == "local work\n"


def test_vendored_secret_rules_all_compile_and_name_no_value():
    from podsave import secrets

    compiled, dropped = secrets.rules()
    assert len(compiled) >= 40 and dropped == 0  # detect-secrets' regexes are Python re
    value = "AKIA" + "Q7" * 8
    why = secrets.reason("deploy.py", f"KEY = '{value}'\n".encode())
    assert why == "looks like a secret (rule AWSKeyDetector-1)" and value not in why
    assert secrets.reason("deploy.py", b"print('hello')\n") is None
    assert secrets.credential_file("a/kaggle.json") and not secrets.credential_file("id_rsa.pub")


def test_common_dir_is_read_from_disk_for_every_kind_of_work_tree(tmp_path):
    main = tmp_path / "main"
    main.mkdir()
    git(main, "init", "-q")
    git(main, "commit", "-q", "--allow-empty", "-m", "c")
    git(main, "worktree", "add", "-q", str(tmp_path / "linked"))
    git(tmp_path, "init", "-q", "--separate-git-dir", str(tmp_path / "sep.git"), "apart")
    assert common_dir(str(main)) == str(main / ".git")
    assert common_dir(str(tmp_path / "linked")) == str(main / ".git")
    assert common_dir(str(tmp_path / "apart")) == str(tmp_path / "sep.git")
    assert common_dir(str(tmp_path / "nowhere")) is None
