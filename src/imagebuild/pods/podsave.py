"""Run `pod-save --json` on a pod over SSH and read its report.

The report is framed by markers (:mod:`imagebuild.pods.framing`), so the direct
port and RunPod's gateway (PTY, echo, banner, CRLF) give the same report.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from imagebuild.pods import framing
from imagebuild.pods.framing import CONNECT_TIMEOUT, parse
from imagebuild.pods.ssh import Endpoint

DEFAULT_BUDGET = 600.0  # seconds pod-save may take (it stops itself: --budget)
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
    nonce: str = field(default_factory=framing.nonce)
    budget: float = DEFAULT_BUDGET
    dry_run: bool = False

    def script(self) -> str:
        flags = f"--json --budget {self.budget:g}" + (" --dry-run" if self.dry_run else "")
        return framing.framed(f"pod-save {flags}", self.nonce)


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
    call = framing.call(target, remote.script(), options=options, identity=identity, ssh=ssh)
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
