"""Run `pod-save --json` on a pod over SSH and read its report.

The command goes through ``remote`` (either endpoint: the pod's sshd or RunPod's
gateway, whose PTY mixes echoed input, prompts and CRLF into the output); the
report is what pod-save printed between the transport's markers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from imagebuild.pods import remote
from imagebuild.pods.remote import CONNECT_TIMEOUT
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


def command(budget: float = DEFAULT_BUDGET, dry_run: bool = False) -> str:
    return f"pod-save --json --budget {budget:g}" + (" --dry-run" if dry_run else "")


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


def run(target: Endpoint, *, options: Sequence[str] = (), identity: str | None = None,
        budget: float = DEFAULT_BUDGET, dry_run: bool = False, ssh: str = "ssh") -> SaveResult:
    """Run pod-save on the pod at ``target``; never raises for what the pod does."""
    limit = budget + CONNECT_TIMEOUT + _MARGIN
    out = remote.run(target, command(budget, dry_run), timeout=limit, options=options,
                     identity=identity, ssh=ssh)
    if out.error is not None:
        return SaveResult(error=out.error.replace("the command", "pod-save"))
    report = _report(out.text)
    code = out.exit_code
    if report is not None and code in (0, 1):
        return SaveResult(report=report, exit_code=code)
    if code == 127:
        return SaveResult(error="pod-save is not on the pod: its image predates save hooks; rebuild "
                                "it with imagebuild, or save by hand", exit_code=code)
    detail = remote.last_line(out.text if out.merged else out.text + "\n" + out.stderr)
    return SaveResult(error=f"pod-save failed on the pod (exit {code}): {detail or 'no report'}",
                      exit_code=code)
