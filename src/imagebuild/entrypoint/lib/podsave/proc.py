"""Subprocesses that never prompt, never outlive their timeout and never flood memory;
secrets masked in any text that leaves pod-save."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import pwd
import re
import select
import signal
import subprocess
import tempfile
import threading
import time
import uuid

from .config import KILL_GRACE

_URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)([^/@\s]+)@", re.IGNORECASE)
_TOKENS = re.compile(
    r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|hf_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9-]{10,})"
)
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
TAIL_BYTES = 64 * 1024  # what is kept of a hook's output


def _secret_values() -> list[str]:
    values = {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8}
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """Mask credentials in URLs, well-known token shapes and secret env values."""

    def userinfo(m: re.Match) -> str:
        # ssh://git@host is a user name, not a secret; anything else may be a token.
        if m.group(1).lower().startswith("ssh") and ":" not in m.group(2):
            return m.group(0)
        return m.group(1) + "***@"

    text = _URL_USERINFO.sub(userinfo, text)
    text = _TOKENS.sub("***", text)
    for value in _secret_values():
        text = text.replace(value, "***")
    return text


def tail(text: str, lines: int = 20, chars: int = 2000) -> str:
    return redact("\n".join(text.strip().splitlines()[-lines:])[-chars:])


@dataclasses.dataclass
class Result:
    rc: int | None  # None: timed out or could not start
    out: str
    err: str
    timed_out: bool = False
    seconds: float = 0.0
    reason: str | None = None  # why rc is None: timeout, budget, cannot start
    running: tuple[str, ...] = ()  # at a timeout: the command lines still running in it


@dataclasses.dataclass(frozen=True)
class Owner:
    """The user a step runs as when pod-save runs as root."""

    uid: int
    gid: int
    name: str
    home: str


def owner_of(path: str) -> Owner | None:
    """The non-root owner of path when we are root, else None (run as ourselves). An
    owner without a passwd entry is still that uid: run as root, git would leave
    root-owned objects in its .git that its owner's next `git add` cannot write beside."""
    if os.geteuid() != 0:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_uid == 0:
        return None
    try:
        pw = pwd.getpwuid(st.st_uid)
    except KeyError:
        return Owner(st.st_uid, st.st_gid, "", "/nonexistent")  # no home, no groups
    return Owner(st.st_uid, pw.pw_gid, pw.pw_name, pw.pw_dir)


# Inherited variables that change what git or rclone copies and checks (GIT_CONFIG_*,
# GIT_NAMESPACE, GIT_LFS_SKIP_PUSH, RCLONE_EXCLUDE, RCLONE_DRY_RUN, ...) are dropped;
# kept are only those that say how to reach and log in to a remote, and who commits.
_KEPT_GIT = frozenset({
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_ASKPASS", "GIT_PROXY_COMMAND",
    "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "GIT_SSL_CERT", "GIT_SSL_KEY", "GIT_SSL_NO_VERIFY",
    "GIT_HTTP_USER_AGENT", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
    "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"})
# rclone: its config, and the options of remote backends (`:s3:bucket` remotes take
# their keys from RCLONE_S3_*); not its global flags (filters, sizes, ages, --dry-run)
# nor the local backend's (links, one file system), which narrow the copy.
_KEPT_RCLONE = re.compile(
    r"RCLONE_(CONFIG(_.*)?|PASSWORD_COMMAND|CA_CERT|(S3|B2|GCS|AZUREBLOB|AZUREFILES|SFTP"
    r"|SWIFT|WEBDAV|FTP|HTTP|SMB|HDFS|DRIVE|DROPBOX|ONEDRIVE|BOX|PCLOUD|MEGA|CRYPT)_.+)")


def _narrows(name: str) -> bool:
    if name.startswith("GIT_"):
        return name not in _KEPT_GIT
    return name.startswith("RCLONE_") and not _KEPT_RCLONE.fullmatch(name)


def process_env(owner: Owner | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _narrows(k)}
    if owner:
        # The owner's HOME holds their ~/.ssh, ~/.gitconfig, ~/.netrc, ~/.git-credentials.
        user = owner.name or str(owner.uid)
        env.update(HOME=owner.home, USER=user, LOGNAME=user)
    env.update(extra or {})
    return env


def _ids(owner: Owner | None) -> dict:
    if not owner:
        return {}
    groups = os.getgrouplist(owner.name, owner.gid) if owner.name else [owner.gid]
    return {"user": owner.uid, "group": owner.gid, "extra_groups": groups}


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop the whole process group (git's ssh, a hook's children), politely first."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _kill_marked(marker: str) -> None:
    """Kill processes that left the group (setsid) but carry our marker in their
    environment: the only trace a hook's detached children leave."""
    needle = marker.encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/environ", "rb") as f:
            if needle in f.read().split(b"\0"):
                os.kill(int(pid), signal.SIGKILL)


def run(argv: list[str], *, cwd: str, timeout: float, env: dict[str, str],
        owner: Owner | None = None, stdin: bytes | None = None) -> Result:
    """Run argv (git, wandb, rclone), in its own process group, killed after timeout.

    Output goes to files, not pipes: a background child that keeps a pipe open
    would otherwise make a finished command look hung.
    """
    if timeout <= 0:
        return Result(None, "", "", True, reason="pod-save's --budget ran out before this step")
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin)
            inp.seek(0)
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=inp if stdin is not None
                                    else subprocess.DEVNULL, stdout=out, stderr=err,
                                    start_new_session=True, **_ids(owner))
        except OSError as e:
            return Result(None, "", "", reason=f"cannot run {argv[0]}: {e.strerror or e}")
        timed_out, running = False, ()
        try:
            rc = wait_exact(proc, timeout)
        except subprocess.TimeoutExpired:
            running = group_commands(proc.pid)  # what hung: a local hook, or the transport
            _kill_group(proc)
            rc, timed_out = None, True
        out.seek(0)
        err.seek(0)
        # surrogateescape: a file name that is not UTF-8 survives the round trip.
        return Result(rc, out.read().decode(errors="surrogateescape"),
                      err.read().decode(errors="replace"), timed_out,
                      round(time.monotonic() - start, 2),
                      f"timed out after {timeout:g} s" if timed_out else None, running)


def wait_exact(proc: subprocess.Popen, timeout: float) -> int:
    """proc.wait(timeout), woken the moment it exits: Popen's own timed wait polls
    with growing sleeps, which costs a short git command as much again (pod-save runs
    thousands)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or already reaped
        return proc.wait(timeout=timeout)
    try:
        if not select.select([fd], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def group_commands(pgid: int) -> tuple[str, ...]:
    """The command lines of the processes in a process group (from /proc)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) == pgid:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    found.append(f.read().replace(b"\0", b" ").decode(errors="replace").strip())
    return tuple(found)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 16384)
    except OSError:
        return b""


def run_bounded(argv: list[str], *, cwd: str, timeout: float, env: dict[str, str],
                owner: Owner | None = None) -> Result:
    """Run an untrusted program (a hook): stdout and stderr together through a pipe
    of which only the last TAIL_BYTES are kept, so a flood costs neither memory
    nor disk; at timeout its group and its setsid children are killed."""
    if timeout <= 0:
        return Result(None, "", "", True, reason="pod-save's --budget ran out before this step")
    marker = f"POD_SAVE_RUN={uuid.uuid4().hex}"
    env = {**env, "POD_SAVE_RUN": marker.partition("=")[2]}
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, **_ids(owner))
    except OSError as e:
        return Result(None, "", "", reason=f"cannot run {argv[0]}: {e.strerror or e}")
    chunks: collections.deque[bytes] = collections.deque()
    guard = threading.Lock()
    fd = proc.stdout.fileno()

    def drain() -> None:
        size = 0
        # os.read, not the buffered reader: that one's lock would make a later
        # close() wait for a detached child that keeps the pipe open.
        while chunk := _read(fd):
            with guard:
                chunks.append(chunk)
                size += len(chunk)
                while size - len(chunks[0]) >= TAIL_BYTES:
                    size -= len(chunks.popleft())

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        _kill_marked(marker)
        rc, timed_out = None, True
    # A detached child may hold the pipe open: wait briefly, then stop listening.
    reader.join(timeout=1.0)
    if not reader.is_alive():
        proc.stdout.close()
    with guard:
        text = b"".join(chunks)[-TAIL_BYTES:].decode(errors="replace")
    return Result(rc, text, "", timed_out, round(time.monotonic() - start, 2),
                  f"timed out after {timeout:g} s" if timed_out else None)
