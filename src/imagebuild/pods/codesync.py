"""`pod run --sync`: the local git working tree into /workspace/code/<repo> on the pod.

What goes: tracked and untracked-not-ignored files (``git ls-files -co
--exclude-standard``), as they are on disk, in one tar stream over ssh to the
in-image ``pod-sync``, which mirrors deletions and refuses to overwrite a change
made on the pod since the last sync (see entrypoint/bin/pod-sync).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

from imagebuild import contract
from imagebuild.errors import UserError
from imagebuild.pods import remote as transport
from imagebuild.pods.jobs import Remote, answer
from imagebuild.pods.ssh import invocation

MANIFEST = ".imagebuild-sync.json"  # pod-sync reads it first


def repo_root(folder: str) -> Path:
    """The git working tree ``folder`` is in."""
    done = subprocess.run(["git", "-C", folder, "rev-parse", "--show-toplevel"], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise UserError(f"--sync {folder}: not in a git repository; --sync mirrors a git working "
                        "tree (its tracked and untracked-not-ignored files)", 2)
    return Path(done.stdout.strip())


def tree_files(root: Path) -> list[str]:
    """Tracked and untracked-not-ignored files that exist (a deleted tracked file is not sent)."""
    done = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "-co", "--exclude-standard"],
                          capture_output=True, check=True)
    names = sorted({name for name in done.stdout.decode().split("\0") if name})
    return [name for name in names if os.path.islink(root / name) or (root / name).is_file()]


def _digest(path: Path) -> str:
    if path.is_symlink():
        return hashlib.sha256(b"link:" + os.readlink(path).encode()).hexdigest()
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_tar(root: Path, files: list[str], out) -> None:
    manifest = json.dumps({"files": {name: _digest(root / name) for name in files}}).encode()
    with tarfile.open(fileobj=out, mode="w|") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for name in files:
            tar.add(root / name, arcname=name, recursive=False)


def destination(root: Path) -> str:
    return f"{contract.CODE_DIR}/{root.name}"


def sync(remote: Remote, folder: str) -> dict:
    """Mirror the tree; pod-sync's summary, or one line saying why not."""
    root = repo_root(folder)
    if remote.endpoint.kind != "direct":
        raise UserError(f"--sync needs pod {remote.label}'s direct SSH port (22/tcp): RunPod's gateway "
                        "carries no file transfer; expose 22/tcp, or push and pull with git", 2)
    nonce = transport.new_nonce()
    # The tar goes on ssh's stdin, so the command runs as ssh's argument (the direct
    # endpoint), not typed in like the other calls.
    script = transport.section(f"pod-sync apply {destination(root)} 2>&1", nonce, "SYNC")
    call = invocation(remote.endpoint, [script], identity=remote.identity, ssh=remote.ssh,
                      options=[*remote.options, "-o", "BatchMode=yes",
                               "-o", f"ConnectTimeout={transport.CONNECT_TIMEOUT:g}"])
    packed = io.BytesIO()  # a code tree: small enough to hold (data belongs in datasets/)
    write_tar(root, tree_files(root), packed)
    try:
        done = subprocess.run(call.argv, input=packed.getvalue(), capture_output=True, check=False,
                              timeout=transport.CONNECT_TIMEOUT + 600)
    except subprocess.TimeoutExpired:
        raise UserError(f"--sync: pod {remote.label} did not take the tree within 10 minutes", 1) from None
    out, err = done.stdout, done.stderr
    body, code = transport.collect(iter(out.splitlines(keepends=True)), nonce, "SYNC")
    if code is None:
        why = transport.last_line(err.decode("utf-8", "replace")) or "no answer"
        raise UserError(f"--sync: cannot reach pod {remote.label} over SSH ({remote.endpoint}): {why}", 1)
    return answer(remote, body, code)
