"""What the entrypoint does with the canary at each start: the status file's second
line, the report file, a login line while a check failed, and the provenance record."""

from __future__ import annotations

import json
import os

from podsave import contract

from podcanary import provenance, runner


def write_atomic(path: str, text: str) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def set_status_line(words: str) -> None:
    """The status file's first line (the entrypoint's one word) stays; the second is the canary's."""
    names = contract.names()
    path = names["POD_STATUS_FILE"]
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline().strip()
    except OSError:
        first = ""
    write_atomic(path, f"{first}\n{names['POD_CANARY_STATUS_PREFIX']} {words}\n")


def write_report(report: dict) -> None:
    """The report file (outside an image, with no contract.env, there is none)."""
    path = contract.names().get("POD_CANARY_RESULT")
    if path:
        write_atomic(path, json.dumps(report, indent=2) + "\n")


def motd(report: dict) -> None:
    """A line every login shell shows while a check failed; gone once the canary passes."""
    path = contract.names()["POD_CANARY_MOTD"]
    if report["verdict"] != "fail":
        if os.path.exists(path):
            os.remove(path)
        return
    checks = "; ".join(f"{check['name']}: {check['figure']}" for check in report["checks"]
                       if check["verdict"] == "fail")
    write_atomic(path, f"pod-canary: the GPU check FAILED at this start ({checks}). "
                       "Run `pod-canary` for details; the pod may be running on the CPU.\n")


def at_start() -> dict:
    set_status_line("running")
    report = runner.run_checks()
    write_report(report)
    motd(report)
    set_status_line(runner.summary(report))
    provenance.append(report)
    return report
