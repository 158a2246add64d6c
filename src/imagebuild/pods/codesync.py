"""`pod run --sync`: the local git working tree into /workspace/code/<repo> on the pod.

What goes: tracked and untracked-not-ignored files (``git ls-files -co
--exclude-standard``), as they are on disk, in one tar stream over ssh to the
in-image ``pod-sync``, which mirrors deletions and refuses to overwrite a change
made on the pod since the last sync (see entrypoint/bin/pod-sync). Over the direct
port the tar is ssh's stdin; through RunPod's gateway (stdin is the shell there) it
is gzipped and base64-framed inside the script typed in.
"""

from __future__ import annotations

import base64
import gzip
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
SYNC_TIMEOUT = 600.0
# Through the gateway every byte is typed into a PTY (base64, twice): bounded.
GATEWAY_LIMIT = 16 * 2**20
HEREDOC = "IMAGEBUILD_SYNC_END"  # base64 never contains "_"


def repo_root(folder: str | None) -> Path:
    """The git working tree ``folder`` (None: the current folder) is in."""
    done = subprocess.run(["git", "-C", folder or ".", "rev-parse", "--show-toplevel"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        where = (f"--sync-dir {folder}: not in a git repository" if folder is not None else
                 f"--sync: the current folder ({os.getcwd()}) is not in a git repository; run it "
                 "from inside one, or name one with --sync-dir DIR")
        raise UserError(f"{where}; --sync mirrors a git working tree (its tracked and "
                        "untracked-not-ignored files)", 2)
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


def sync(remote: Remote, folder: str | None) -> dict:
    """Mirror the tree; pod-sync's summary, or one line saying why not."""
    root = repo_root(folder)
    packed = io.BytesIO()  # a code tree: small enough to hold (data belongs in datasets/)
    write_tar(root, tree_files(root), packed)
    if remote.endpoint.kind == "direct":
        body, code = _over_stdin(remote, root, packed.getvalue())
    else:
        body, code = _through_gateway(remote, root, packed.getvalue())
    return answer(remote, body, code)


def _over_stdin(remote: Remote, root: Path, tar: bytes) -> tuple[str | None, int | None]:
    """The direct port: the tar on ssh's stdin, the command as ssh's argument."""
    nonce = transport.new_nonce()
    script = transport.section(f"pod-sync apply {destination(root)} 2>&1", nonce, "SYNC")
    call = invocation(remote.endpoint, [script], identity=remote.identity, ssh=remote.ssh,
                      options=[*remote.options, "-o", "BatchMode=yes",
                               "-o", f"ConnectTimeout={transport.CONNECT_TIMEOUT:g}"])
    try:
        done = subprocess.run(call.argv, input=tar, capture_output=True, check=False,
                              timeout=transport.CONNECT_TIMEOUT + SYNC_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise _too_slow(remote) from None
    body, code = transport.collect(iter(done.stdout.splitlines(keepends=True)), nonce, "SYNC")
    if code is None:
        why = transport.last_line(done.stderr.decode("utf-8", "replace")) or "no answer"
        raise UserError(f"--sync: cannot reach pod {remote.label} over SSH ({remote.endpoint}): {why}", 1)
    return body, code


def _through_gateway(remote: Remote, root: Path, tar: bytes) -> tuple[str | None, int | None]:
    """RunPod's gateway: stdin is the shell's (no file transfer), so the gzipped tar
    travels base64-encoded inside the typed script (``remote.run`` frames it)."""
    packed = gzip.compress(tar, compresslevel=6, mtime=0)
    if len(packed) > GATEWAY_LIMIT:
        raise UserError(f"--sync: the tree of {root} is {len(packed) / 2**20:.1f} MiB compressed, more than "
                        f"RunPod's gateway carries here ({GATEWAY_LIMIT // 2**20} MiB): move data out of git "
                        "(datasets/ is for data), or expose 22/tcp for the direct port", 2)
    encoded = base64.encodebytes(packed).decode()  # lines of 76: a heredoc, no argument limit
    script = (f"base64 -d <<'{HEREDOC}' | gzip -dc | pod-sync apply {destination(root)} 2>&1\n"
              f"{encoded}{HEREDOC}\n")
    done = transport.run(remote.endpoint, script, timeout=transport.CONNECT_TIMEOUT + SYNC_TIMEOUT,
                         options=remote.options, identity=remote.identity, ssh=remote.ssh)
    if done.text is None or done.exit_code is None:
        if done.error and done.error.startswith("no answer within"):
            raise _too_slow(remote)
        raise UserError(f"--sync: {done.error}", 1)
    return done.text, done.exit_code


def _too_slow(remote: Remote) -> UserError:
    return UserError(f"--sync: pod {remote.label} did not take the tree within "
                     f"{SYNC_TIMEOUT // 60:g} minutes", 1)
