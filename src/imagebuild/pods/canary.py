"""The pod's GPU canary as the host sees it: read over SSH (any target: RunPod or
local), waited for after create, and shown by `pod status`.

The pod writes it (see the entrypoint's step canary): the status file's second line
(``canary: running``, ``canary: pass``, ``canary: fail: vulkan, egl``, ``canary: skip ...``,
``canary: off``), the report, and one provenance line per start on the volume."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from imagebuild import contract
from imagebuild.pods import remote

FINAL = ("pass", "fail", "skip", "off", "none")  # the first word of a finished canary's line
NONE = "none"  # what the pod says when its image has no pod-canary (built before it)
WAIT_TIMEOUT = 120.0  # after SSH answers: the canary's own 30 s, a slow first import, the log
_POLL = 3.0
_SPLIT = "--canary-part--"


@dataclass
class Canary:
    """What the pod said: its status line's words, the report, the latest provenance."""

    line: str = ""  # "" when the pod has no canary (an older image) or it has not started
    report: dict | None = None
    provenance: dict | None = None
    error: str | None = None  # why the pod could not be asked

    @property
    def verdict(self) -> str:
        return self.line.split(":")[0].split()[0] if self.line else ""

    @property
    def finished(self) -> bool:
        return self.verdict in FINAL

    def failed_checks(self) -> list[str]:
        return [f"{check['name']}: {check['figure']}" for check in (self.report or {}).get("checks", [])
                if check["verdict"] == "fail"]

    def to_json(self) -> dict[str, Any]:
        return {"status": self.line or None, "report": self.report, "provenance": self.provenance,
                **({"error": self.error} if self.error else {})}


def _query() -> str:
    return (f"sed -n 2p {contract.STATUS_FILE} 2>/dev/null; "
            f"command -v pod-canary >/dev/null 2>&1 || echo {contract.CANARY_STATUS_PREFIX} {NONE}; "
            f"echo {_SPLIT}; cat {contract.CANARY_RESULT} 2>/dev/null; echo {_SPLIT}; "
            f"tail -n1 {contract.PROVENANCE} 2>/dev/null; true")


def _json(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def read(target: Any) -> Canary:
    """The canary of a running pod (a Target), in its container or over SSH; never raises
    for what the pod does."""
    found = target.run(_query(), timeout=remote.CONNECT_TIMEOUT + 20)
    if found.text is None or found.exit_code != 0:
        return Canary(error=f"cannot ask pod {target.label}: {found.error or 'the query failed'}")
    return _parsed(found.text)


def read_container(container: Any) -> Canary:
    """The canary of a local pod's container (docker SDK), without SSH."""
    found = container.exec_run(["sh", "-c", _query()])
    if found.exit_code != 0:
        return Canary(error=f"cannot ask container {container.name}")
    return _parsed(found.output.decode("utf-8", "replace"))


def _parsed(text: str) -> Canary:
    parts = (text.split(_SPLIT) + ["", ""])[:3]
    line = parts[0].strip().splitlines()[-1] if parts[0].strip() else ""
    line = line.removeprefix(contract.CANARY_STATUS_PREFIX).strip()
    return Canary(line, _json(parts[1].strip()), _json(parts[2].strip()))


def wait(ask, timeout: float = WAIT_TIMEOUT, on_event=lambda text: None) -> Canary:
    """Until the pod's canary finished (or ``timeout``): the last answer of ``ask()``. A pod
    that cannot be asked (its sshd answered already) is not asked again."""
    deadline = time.monotonic() + timeout
    while True:
        found = ask()
        if found.finished or found.error or time.monotonic() > deadline:
            return found
        on_event(f"GPU canary: {found.line or found.error or 'not started yet'}")
        time.sleep(_POLL)


def status_lines(found: Canary) -> list[str]:
    """`pod status`: the canary's verdict, its failed checks, where the result came from."""
    if found.error:
        return [f"canary   - ({found.error})"]
    if found.line == NONE:
        return ["canary   - (this image has no pod-canary: rebuild it with this imagebuild)"]
    if not found.line:
        return ["canary   - (it has not started yet)"]
    lines = [f"canary   {found.line}"]
    lines += [f"         {failure}" for failure in found.failed_checks()]
    record = found.provenance or {}
    if record.get("gpus"):
        gpus = ", ".join(f"{gpu['name']} ({gpu['uuid']})" for gpu in record["gpus"])
        lines.append(f"host     {gpus}; driver {record.get('driver')}, CUDA {record.get('cuda')}")
    return lines


def after_start(target: Any, found: Canary) -> str | None:
    """`pod start`: what failed on the host the pod resumed on, and the choices (None: no failure).
    A resumed pod keeps its machine (RunPod), so starting again does not help."""
    if found.verdict != "fail":
        return None
    failed = "; ".join(found.failed_checks()) or found.line
    volume = target.workspace_kept()
    terminate = f"`imagebuild pod terminate {target.ref}` (pod-save runs first"
    elsewhere = (f"{terminate}), then `imagebuild pod create --volume {volume}`: a new host, the same "
                 "/workspace" if volume else
                 f"{terminate}; /workspace is this pod's own volume and goes with it), then "
                 "`imagebuild pod create`")
    return (f"pod {target.label} is running, but its GPU check failed on this host: {failed}. Choices: "
            f"{elsewhere}; or keep working on it as it is (what failed stays broken: e.g. training "
            "on the CPU)")
