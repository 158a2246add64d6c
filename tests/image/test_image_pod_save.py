"""`pod-save` on the pod, as `imagebuild pod terminate` runs it: a repository under
/workspace/code with a commit and an uncommitted change, its remote a bare
repository off the volume (on the container disk, standing in for GitHub); afterwards
the remote holds both. What pod-save does in each case is tested on the host
(tests/test_pod_save*.py); this proves the image carries it, pod-restore and rclone."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.docker

SETUP = """
set -e
rm -rf /srv/remotes/x.git /workspace/code/x
git init -q --bare /srv/remotes/x.git
git init -q -b main /workspace/code/x
cd /workspace/code/x
git config user.email pod@example.invalid && git config user.name pod
echo one > notes.txt && git add notes.txt && git commit -q -m "first"
git remote add origin /srv/remotes/x.git
echo draft > draft.txt  # uncommitted: saved as an autosave snapshot
git rev-parse HEAD
"""


def test_pod_save_pushes_the_branch_and_a_snapshot_to_a_bare_remote(pod):
    head = pod.sh(SETUP).strip().splitlines()[-1]
    done = pod.ssh("root", "bash -l -s", stdin="pod-save --json")
    assert done.returncode == 0, f"pod-save failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    report = json.loads(done.stdout)
    assert report["ok"] is True
    [repo] = [r for r in report["repos"] if r["path"] == "/workspace/code/x"]
    assert repo["status"] == "saved", repo
    refs = dict(line.split()[::-1] for line in pod.sh(
        "git --git-dir=/srv/remotes/x.git for-each-ref --format='%(objectname) %(refname)'"
    ).splitlines())
    assert refs.get("refs/heads/main") == head, refs
    snapshots = [ref for ref in refs if ref.startswith("refs/heads/autosave/")]
    assert len(snapshots) == 1, refs
    files = pod.sh(f"git --git-dir=/srv/remotes/x.git ls-tree --name-only {snapshots[0]}").split()
    assert sorted(files) == ["draft.txt", "notes.txt"]
    # The user's working tree is left as it was.
    assert pod.sh("cd /workspace/code/x && git status --porcelain").split() == ["??", "draft.txt"]
    # pod-restore (on PATH in the image) brings the snapshot back into a fresh clone.
    short = snapshots[0].removeprefix("refs/heads/")
    assert pod.sh(f"rm -rf /tmp/r && git clone -q /srv/remotes/x.git /tmp/r && cd /tmp/r && "
                  f"pod-restore {short} >/dev/null && cat draft.txt").strip() == "draft"
    assert pod.sh("command -v rclone").strip() == "/usr/bin/rclone"

