"""Jobs on a pod from the laptop: start, list, follow, kill, over SSH.

Each call is one ssh run of the in-image ``pod-job`` (entrypoint/bin/pod-job)
through :mod:`imagebuild.pods.remote` (the script typed in, its output framed in
sections), so that the direct port and RunPod's gateway give the same answers. A
job runs in a tmux session on the pod: it outlives the connection, Ctrl-C here only
detaches.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from imagebuild.errors import UserError
from imagebuild.pods import remote as transport
from imagebuild.pods.ssh import Endpoint

CALL_TIMEOUT = 120.0  # seconds for a call that does not follow a log
RECONNECTS = 5  # tries of `pod tail -f` after the stream dropped
RECONNECT_PAUSE = 2.0
USERS = ("root", "dev")
# pod-job's exit statuses that are answers, not failures of the call (see its usage).
REFUSED, UNKNOWN, NO_TMUX = 3, 4, 5


@dataclass
class Remote:
    """How to reach a running pod's sshd (either endpoint)."""

    endpoint: Endpoint
    label: str  # the pod, for messages
    options: list[str] = field(default_factory=list)
    identity: str | None = None
    ssh: str = "ssh"


def remote_for(target, identity: str | None = None) -> Remote:
    """The running pod's SSH, or one line saying why there is none."""
    if target.state != "running":
        raise UserError(f"pod {target.label} is {target.status}; start it first: "
                        f"imagebuild pod start {target.ref}")
    endpoint = target.endpoint()
    if endpoint is None:
        raise UserError(f"pod {target.label} has no SSH endpoint yet; check "
                        f"`imagebuild pod status {target.ref}`")
    binary = shutil.which("ssh")
    if binary is None:
        raise UserError("ssh not found on PATH; install the OpenSSH client")
    return Remote(endpoint, target.label, target.ssh_options(), identity, binary)


def _pod_job(*args: str) -> str:
    return shlex.join(["pod-job", *args]) + " 2>&1"  # its errors inside the frame (the gateway mixes them)


def _unreachable(remote: Remote, proc: subprocess.Popen) -> UserError:
    proc.wait()
    lines = [ln.strip() for ln in proc.stderr.read().decode("utf-8", "replace").splitlines()
             if ln.strip()]
    why = lines[-1][:200] if lines else f"ssh exit status {proc.returncode}"
    return UserError(f"cannot reach pod {remote.label} over SSH ({remote.endpoint}): {why}", 1)


def answer(remote: Remote, body: str | None, code: int | None):
    """pod-job's JSON, or its one-line refusal as a UserError."""
    if code == 127:
        raise UserError(f"pod-job is not on pod {remote.label}: its image predates jobs and --sync; "
                        "rebuild it with imagebuild", 1)
    text = (body or "").strip()
    if code == 0:
        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        try:
            return json.loads(text[start:]) if start >= 0 else None
        except ValueError:
            pass
    last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "no answer")
    last = re.sub(r"^pod-(job|sync): ", "", last.strip())
    raise UserError(f"pod {remote.label}: {last[:300]}",
                    2 if code in (2, REFUSED, UNKNOWN, NO_TMUX) else 1)


def _sections(remote: Remote, steps: Sequence[tuple[str, str]]
              ) -> tuple[subprocess.Popen, str, Iterator[bytes]]:
    """One ssh run of ``steps`` (tag, command), each its own framed section."""
    nonce = transport.new_nonce()
    script = "\n".join(transport.section(command, nonce, tag) for tag, command in steps)
    proc = transport.start(remote.endpoint, script, nonce, options=remote.options,
                           identity=remote.identity, ssh=remote.ssh)
    return proc, nonce, iter(proc.stdout.readline, b"")


def call(remote: Remote, *args: str):
    """One pod-job call's JSON answer."""
    proc, nonce, lines = _sections(remote, [("OUT", _pod_job(*args))])
    try:
        body, code = transport.collect(lines, nonce, "OUT")
        proc.wait(timeout=CALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise UserError(f"pod {remote.label} did not answer within {CALL_TIMEOUT:g} s", 1) from None
    if code is None:
        raise _unreachable(remote, proc)
    return answer(remote, body, code)


def start_args(name: str, command: Sequence[str], *, user: str = "root", project: str | None = None,
               cwd: str | None = None, run_id: str | None = None) -> list[str]:
    """pod-job start's arguments: the command as one base64 word, safe through any shell."""
    line = base64.b64encode(shlex.join(command).encode()).decode()
    args = ["start", name, "--user", user, "--command-b64", line]
    args += ["--project", project] if project else []
    args += ["--cwd", cwd] if cwd else []
    return args + (["--run-id", run_id] if run_id else [])


@dataclass
class Followed:
    job: dict | None  # the job at the end (None: the stream dropped before)
    offset: int  # the log byte after the last one passed on


def follow(remote: Remote, name: str, write: Callable[[bytes], None], *, lines: int = 20,
           follow_log: bool = True, from_byte: int | None = None,
           start: list[str] | None = None) -> Followed:
    """The job's log (after starting it with ``start``), then the job; one ssh run.
    The log is read from a byte offset the pod names first, so that a dropped
    stream can be picked up again exactly there."""
    if start and from_byte is None:
        from_byte = 0  # a new job's log: all of it (the job may write before the tail starts)
    where = (str(from_byte) if from_byte is not None
             else f"$({_pod_job('offset', name, '-n', str(lines))})")
    tail = shlex.join(["pod-job", "tail", name] + (["-f"] if follow_log else []))
    # Following: no need to wait for the runner (the tail waits while it starts).
    steps = [("START", _pod_job(*start, "--no-wait"))] if start else []
    steps += [("FROM", f"off={where}; echo \"$off\""),
              ("LOG", f'case "$off" in *[!0-9]* | "") ;; *) {tail} --from-byte "$off" 2>&1 ;; esac'),
              ("JOB", _pod_job("show", name))]
    proc, nonce, stream = _sections(remote, steps)
    sent = 0

    def counted(chunk: bytes) -> None:
        nonlocal sent
        sent += len(chunk)
        write(chunk)

    try:
        if start:
            body, code = transport.collect(stream, nonce, "START")
            if code != 0:
                if code is None:
                    proc.kill()
                    raise _unreachable(remote, proc)
                answer(remote, body, code)
        body, code = transport.collect(stream, nonce, "FROM")
        if code is None:
            proc.kill()
            raise _unreachable(remote, proc)
        if not (body or "").strip().isdigit():
            answer(remote, body, UNKNOWN)  # pod-job's own words: no such job
        offset = int(body.strip())
        code = transport.stream(stream, nonce, counted, "LOG")
        if code is None:
            return Followed(None, offset + sent)
        body, code = transport.collect(stream, nonce, "JOB")
        return Followed(answer(remote, body, code), offset + sent)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def follow_reconnecting(remote: Remote, name: str, write: Callable[[bytes], None], *,
                        lines: int, follow_log: bool, say: Callable[[str], None]) -> Followed:
    """`pod tail`: a dropped stream is picked up again where it stopped."""
    done = follow(remote, name, write, lines=lines, follow_log=follow_log)
    for attempt in range(RECONNECTS):
        if done.job is not None:
            break
        say(f"imagebuild: the stream from pod {remote.label} dropped; reconnecting "
            f"({attempt + 1}/{RECONNECTS})")
        time.sleep(RECONNECT_PAUSE)
        try:
            done = follow(remote, name, write, follow_log=follow_log, from_byte=done.offset)
        except UserError as error:
            say(f"imagebuild: {error}")
    return done


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def state_text(job: dict) -> str:
    if job["state"] in ("exited", "killed"):
        return f"{job['state']} ({job['exit_code']})"
    return job["state"]


def table(found: list[dict]) -> list[str]:
    """`pod jobs` for people; a lost job's last log lines under it."""
    rows = [("JOB", "STATE", "STARTED", "TIME", "LOG")]
    rows += [(j["name"], state_text(j), _when(j["started"]), _took(j["duration"]), j["log"])
             for j in found]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    out = []
    for row, job in zip(rows, [None, *found], strict=True):
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        out.append("  ".join([*cells, row[4]]))
        if job and job["state"] == "lost":
            out.append("    lost when the pod restarted; the last lines of its log:")
            out += [f"    | {line}" for line in job.get("last_lines") or ["(empty)"]]
    return out
