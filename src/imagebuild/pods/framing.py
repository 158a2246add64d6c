"""Commands run on a pod over SSH whose output is framed by markers, so that what
the pod printed is told apart from what the transport added.

The direct endpoint runs a command as ssh does. RunPod's gateway only carries an
interactive shell (``-tt``, commands on stdin), so what comes back also holds the
echoed input, prompts, a banner and CRLF line ends. Either way a section is framed
by markers carrying a per-run nonce, printed by ``printf`` from separate words so
that the echoed command line never contains them. The remote exit status travels
inside the end marker: the gateway's own exit status says nothing about the command.
Used by pod-save (:mod:`imagebuild.pods.podsave`) and jobs (:mod:`imagebuild.pods.jobs`).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator, Sequence

from imagebuild.pods.ssh import Endpoint, Invocation, invocation

# How long ssh may take to connect and see the server's banner.
CONNECT_TIMEOUT = float(os.environ.get("IMAGEBUILD_SSH_CONNECT_TIMEOUT") or 15)


def nonce() -> str:
    return secrets.token_hex(6)


def framed(command: str, nonce: str, tag: str = "") -> str:
    """One line (the gateway's shell prints no prompt between its parts): the
    begin marker, ``command``, the end marker with its exit status."""
    mark = f"{tag}-" if tag else ""
    return (f"printf '%s-%s\\n' {nonce} {mark}BEGIN; {command}; "
            f"printf '%s-%s %s\\n' {nonce} {mark}END \"$?\"")


def parse(output: str, nonce: str, tag: str = "") -> tuple[str | None, int | None]:
    """(the text between the markers, the remote exit status); None where missing."""
    mark = f"{tag}-" if tag else ""
    text = output.replace("\r", "")
    begin = re.search(rf"{nonce}-{mark}BEGIN\n", text)
    if begin is None:
        return None, None
    end = re.compile(rf"{nonce}-{mark}END (\d+)").search(text, begin.end())
    if end is None:
        return text[begin.end():], None  # cut off: the connection dropped or timed out
    return text[begin.end():end.start()], int(end.group(1))


def call(target: Endpoint, script: str, *, options: Sequence[str] = (),
         identity: str | None = None, ssh: str = "ssh") -> Invocation:
    """ssh that runs ``script`` unattended: never prompts, gives up on a dead link."""
    return invocation(target, [script], identity=identity, ssh=ssh, options=[
        *options, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT:g}",
        "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR",
    ])


def stream(lines: Iterator[bytes], nonce: str, write: Callable[[bytes], None],
           tag: str = "") -> int | None:
    """Pass on, as they come, the lines of the next framed section of ``lines``
    (consumed up to its end marker); its exit status, None if it was cut off."""
    mark = f"{tag}-" if tag else ""
    begin, end = f"{nonce}-{mark}BEGIN".encode(), re.compile(rf"{nonce}-{mark}END (\d+)".encode())
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


def collect(lines: Iterator[bytes], nonce: str, tag: str = "") -> tuple[str | None, int | None]:
    """The next framed section of ``lines`` as text, and its exit status."""
    parts: list[bytes] = []
    code = stream(lines, nonce, parts.append, tag)
    return (b"".join(parts).decode("utf-8", "replace") if parts or code is not None else None), code
