"""Continuous save: what `run`/`pod create --save-every` put in the pod's environment,
and the pod's save status record as `pod status` shows it.

The pod's own watcher (``entrypoint/bin/pod-autosave``) does the saving and writes
the record (``contract.SAVE_STATUS``); this module checks the duration up front and
reads the record back (docker exec for local pods, SSH for RunPod ones)."""

from __future__ import annotations

import json
import shlex

from imagebuild import contract
from imagebuild.duration import parse_duration
from imagebuild.pods import remote

OFF = "off"
STATUS_COMMAND = ["pod-autosave", "--status", "--json"]


def pod_env(flag: str | None, field: str = "--save-every") -> dict[str, str]:
    """{POD_SAVE_EVERY: flag} after checking it; "off" turns save.toml's off too."""
    if flag is None:
        return {}
    value = flag.strip().lower()
    if value != OFF:
        parse_duration(value, field)
    return {contract.SAVE_EVERY_ENV: value}


def parse_status(text: str) -> dict | None:
    """pod-autosave --status --json's output, or None (an older image, no answer)."""
    for line in reversed(text.replace("\r", "").splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def lines(info: dict | None) -> list[str]:
    """`pod status`'s save lines: the pod's own words (its login banner's)."""
    if info is None:
        return ["save     unknown (the pod is not running, or its image has no pod-autosave)"]
    return [str(line) for line in info.get("lines", [])]


def read_status(target) -> dict | None:
    """The pod's save status (in its container or over SSH), or None when it cannot be read now."""
    if target.state != "running":
        return None
    found = target.run(shlex.join(STATUS_COMMAND), timeout=30 + remote.CONNECT_TIMEOUT)
    return parse_status(found.text) if found.ok and found.text is not None else None
