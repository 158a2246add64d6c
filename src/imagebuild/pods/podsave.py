"""Run `pod-save --json` on a pod over SSH and read its report.

The direct endpoint runs the command as ssh does. RunPod's gateway only carries
an interactive shell (``-tt``, commands on stdin), so what comes back also holds
the echoed input, prompts, a banner and CRLF line ends. Either way the report is
framed by markers carrying a per-run nonce, and the markers are printed by
``printf`` from separate words, so the echoed command line never contains them.
The remote exit status travels inside the end marker too: the gateway's own
exit status says nothing about the command.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from imagebuild.pods.ssh import Endpoint, invocation

DEFAULT_BUDGET = 600.0  # seconds pod-save may take (it stops itself: --budget)
# How long ssh may take to connect and see the server's banner.
CONNECT_TIMEOUT = float(os.environ.get("IMAGEBUILD_SSH_CONNECT_TIMEOUT") or 15)
_MARGIN = 30.0  # beyond the budget: connecting, the report, the end of a killed step


@dataclass
class SaveResult:
    """What a save attempt gives: pod-save's report, or why there is none."""

    report: dict | None = None
    error: str | None = None  # why pod-save could not run or report
    exit_code: int | None = None  # pod-save's own

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.report and self.report.get("ok"))


@dataclass
class RemoteCommand:
    nonce: str = field(default_factory=lambda: secrets.token_hex(6))
    budget: float = DEFAULT_BUDGET
    dry_run: bool = False

    def script(self) -> str:
        """One line: the gateway's shell prints no prompt between its parts."""
        flags = f"--json --budget {self.budget:g}" + (" --dry-run" if self.dry_run else "")
        return (f"printf '%s-%s\\n' {self.nonce} BEGIN; pod-save {flags}; "
                f"printf '%s-%s %s\\n' {self.nonce} END \"$?\"")


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


def _report(body: str) -> dict | None:
    """pod-save's JSON object; tolerant of stray lines around it (the gateway's tty)."""
    start, stop = body.find("{"), body.rfind("}")
    if start < 0 or stop < start:
        return None
    try:
        report = json.loads(body[start:stop + 1])
    except ValueError:
        return None
    return report if isinstance(report, dict) and "ok" in report else None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def run(target: Endpoint, *, options: Sequence[str] = (), identity: str | None = None,
        budget: float = DEFAULT_BUDGET, dry_run: bool = False, ssh: str = "ssh") -> SaveResult:
    """Run pod-save on the pod at ``target``; never raises for what the pod does."""
    remote = RemoteCommand(budget=budget, dry_run=dry_run)
    call = invocation(target, [remote.script()], identity=identity, ssh=ssh, options=[
        *options, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT:g}",
        "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR",
    ])
    where = f"{target.username}@{target.host}:{target.port}"
    limit = budget + CONNECT_TIMEOUT + _MARGIN
    try:
        done = subprocess.run(call.argv, input=call.stdin if call.stdin is not None else "",
                              capture_output=True, text=True, errors="replace", timeout=limit,
                              check=False)
    except subprocess.TimeoutExpired:
        return SaveResult(error=f"pod-save gave no report within {limit:g} s over SSH ({where})")
    except OSError as error:
        return SaveResult(error=f"cannot run ssh: {error.strerror or error}")
    body, code = parse(done.stdout, remote.nonce)
    if body is None:
        why = _last_line(done.stderr) or f"ssh exit status {done.returncode}"
        return SaveResult(error=f"cannot reach the pod over SSH ({where}): {why}")
    report = _report(body)
    if report is not None and code in (0, 1):
        return SaveResult(report=report, exit_code=code)
    if code is None:
        return SaveResult(error=f"the SSH connection ({where}) ended before pod-save finished: "
                                f"{_last_line(done.stderr) or 'no report'}")
    if code == 127:
        return SaveResult(error="pod-save is not on the pod: its image predates save hooks; rebuild "
                                "it with imagebuild, or save by hand", exit_code=code)
    detail = _last_line(body if call.stdin is not None else body + "\n" + done.stderr)
    return SaveResult(error=f"pod-save failed on the pod (exit {code}): {detail or 'no report'}",
                      exit_code=code)
