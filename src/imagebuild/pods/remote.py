"""Run a script on a pod over SSH and get its output and exit status back, through
either endpoint (see ``ssh``): the pod's own sshd (``direct``) or RunPod's gateway
(``proxy``: a PTY, commands typed on stdin, the command arguments ignored).

The transport is the same for both. The script travels base64-encoded, in short
lines (a PTY's input line holds about 4 KiB), into a file on the pod, and runs from
there with stdin closed, so it cannot eat the lines typed after it. Its output is
framed by markers carrying a per-run nonce; ``printf`` builds them from separate
words, so the echoed input never contains them. The exit status travels inside the
end marker: the gateway's own exit status says nothing about the script.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from imagebuild.pods.ssh import Endpoint, Invocation, invocation

# How long ssh may take to connect and see the server's banner.
CONNECT_TIMEOUT = float(os.environ.get("IMAGEBUILD_SSH_CONNECT_TIMEOUT") or 15)
_CHUNK = 512  # base64 characters per typed line


@dataclass(frozen=True)
class Output:
    """What a remote run gave. ``text``: what the script printed (CR removed; through
    the gateway stderr is in it too, ``merged``), None when it never started.
    ``exit_code``: the script's, None when it was cut off or never started.
    ``error``: why there is no complete result (None: the script ran to its end)."""

    text: str | None
    exit_code: int | None
    stderr: str  # ssh's stderr (and the script's, on a direct endpoint)
    error: str | None
    merged: bool

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_code == 0


def run(target: Endpoint, script: str, *, timeout: float, options: Sequence[str] = (),
        identity: str | None = None, ssh: str = "ssh") -> Output:
    """Run the bash ``script`` on the pod at ``target``; never raises for what the pod
    or the network does. ``options`` are ssh options (e.g. the pod's HostKeyAlias)."""
    nonce = new_nonce()
    call = _call(target, script, nonce, options=options, identity=identity, ssh=ssh)
    merged = call.stdin is not None  # the gateway's PTY: stderr comes back in stdout
    try:
        done = subprocess.run(call.argv, input=call.stdin or "", capture_output=True, text=True,
                              errors="replace", timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Output(None, None, "", f"no answer within {timeout:g} s over SSH ({target})", merged)
    except OSError as error:
        return Output(None, None, "", f"cannot run ssh: {error.strerror or error}", merged)
    text, code = parse(done.stdout, nonce)
    why = last_line(done.stderr) or (last_line(done.stdout) if merged else "") \
        or f"ssh exit status {done.returncode}"
    if text is None:
        return Output(None, None, done.stderr, f"cannot reach the pod over SSH ({target}): {why}", merged)
    if code is None:
        return Output(text, None, done.stderr,
                      f"the SSH connection ({target}) ended before the command finished: {why}", merged)
    return Output(text, code, done.stderr, None, merged)


def run_over_ssh(pod, script: str, *, timeout: float) -> Output:
    """``script`` on a running pod (a ``Target``) over SSH, either endpoint: what
    ``Target.run`` is for a pod reached only that way."""
    endpoint = pod.endpoint()
    if endpoint is None:
        return Output(None, None, "", f"pod {pod.label} has no SSH endpoint (it is {pod.status})", False)
    return run(endpoint, script, timeout=timeout, options=pod.ssh_options())


def _call(target: Endpoint, script: str, nonce: str, *, options: Sequence[str] = (),
          identity: str | None = None, ssh: str = "ssh") -> Invocation:
    # Direct: one command argument; the gateway: the same text typed on stdin.
    return invocation(target, ["\n".join(typed_lines(script, nonce))], identity=identity, ssh=ssh,
                      options=[*options, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT:g}",
                               "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR"])


def typed_lines(script: str, nonce: str) -> list[str]:
    """The shell lines that write ``script`` to the pod, run it, and frame its output."""
    encoded = base64.b64encode(script.encode()).decode()
    path = f"/tmp/.imagebuild-{nonce}"
    chunks = [encoded[i:i + _CHUNK] for i in range(0, len(encoded), _CHUNK)]
    return [
        f"umask 077; : > {path}.b64",
        *(f"printf %s {chunk} >> {path}.b64" for chunk in chunks),
        f"base64 -d {path}.b64 > {path}; printf '%s-%s\\n' {nonce} BEGIN; bash {path} </dev/null; "
        f"printf '%s-%s %s\\n' {nonce} END \"$?\"; rm -f {path} {path}.b64",
    ]


def parse(output: str, nonce: str) -> tuple[str | None, int | None]:
    """(the text between the markers, the remote exit status); None where missing."""
    text = output.replace("\r", "")
    begin = re.search(rf"{nonce}-BEGIN\n", text)
    if begin is None:
        return None, None
    end = re.compile(rf"{nonce}-END (\d+)").search(text, begin.end())
    if end is None:
        return text[begin.end():], None  # cut off: the connection dropped or timed out
    return text[begin.end():end.start()], int(end.group(1))


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


# -- streamed runs with several sections (jobs: start, then follow a log, then the job) --


def section(command: str, nonce: str, tag: str) -> str:
    """``command`` framed as section ``tag`` inside a script (markers as above)."""
    return (f"printf '%s-%s\\n' {nonce} {tag}-BEGIN; {command}; "
            f"printf '%s-%s %s\\n' {nonce} {tag}-END \"$?\"")


def new_nonce() -> str:
    return secrets.token_hex(6)


def start(target: Endpoint, script: str, nonce: str, *, options: Sequence[str] = (),
          identity: str | None = None, ssh: str = "ssh") -> subprocess.Popen:
    """``run``'s transport without waiting: the ssh process, its stdout a pipe of bytes
    holding the script's ``section``s (framed with ``nonce``); read with ``stream``/``collect``."""
    call = _call(target, script, nonce, options=options, identity=identity, ssh=ssh)
    proc = subprocess.Popen(call.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    if call.stdin is not None:
        proc.stdin.write(call.stdin.encode())
    proc.stdin.close()
    return proc


def stream(lines: Iterator[bytes], nonce: str, write: Callable[[bytes], None], tag: str) -> int | None:
    """Pass on, as they come, the lines of the next section ``tag`` of ``lines``
    (consumed up to its end marker); its exit status, None if it was cut off."""
    begin = f"{nonce}-{tag}-BEGIN".encode()
    end = re.compile(rf"{nonce}-{tag}-END (\d+)".encode())
    inside = False
    for raw in lines:
        line = raw.replace(b"\r\n", b"\n")  # the gateway's PTY; a lone \r (progress bars) stays
        if not inside:
            inside = line.rstrip(b"\r\n") == begin
            continue
        found = end.search(line)
        if found:
            if found.start():
                write(line[:found.start()])  # output that did not end in a newline
            return int(found.group(1))
        write(line)
    return None


def collect(lines: Iterator[bytes], nonce: str, tag: str) -> tuple[str | None, int | None]:
    """The next section ``tag`` of ``lines`` as text, and its exit status."""
    parts: list[bytes] = []
    code = stream(lines, nonce, parts.append, tag)
    return (b"".join(parts).decode("utf-8", "replace") if parts or code is not None else None), code
