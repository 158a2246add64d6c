"""Continuous save: what `run`/`pod create --save-every` put in the pod's environment,
and the pod's save status record as `pod status` shows it.

The pod's own watcher (``entrypoint/bin/pod-autosave``) does the saving and writes
the record (``contract.SAVE_STATUS``); this module checks the duration up front and
reads the record back (docker exec for local pods, SSH for RunPod ones)."""

from __future__ import annotations

import json

from imagebuild import contract
from imagebuild.duration import parse_duration

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


def local_status(engine, pod) -> dict | None:
    if not pod.running:
        return None
    container = engine.client.containers.get(pod.container_id)
    found = container.exec_run(STATUS_COMMAND)
    return parse_status(found.output.decode("utf-8", "replace")) if found.exit_code == 0 else None


def lines(info: dict | None) -> list[str]:
    """`pod status`'s save lines: the pod's own words (its login banner's)."""
    if info is None:
        return ["save     unknown (the pod is not running, or its image has no pod-autosave)"]
    return [str(line) for line in info.get("lines", [])]


def ssh_status(endpoint, options, timeout: float = 30.0) -> dict | None:
    """The record over SSH (RunPod's gateway too: framed by nonce markers)."""
    import subprocess

    from imagebuild.pods.podsave import CONNECT_TIMEOUT, RemoteCommand, parse
    from imagebuild.pods.ssh import invocation

    nonce = RemoteCommand().nonce
    script = (f"printf '%s-%s\\n' {nonce} BEGIN; {' '.join(STATUS_COMMAND)}; "
              f"printf '%s-%s %s\\n' {nonce} END \"$?\"")
    call = invocation(endpoint, [script], options=[
        *options, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT:g}",
        "-o", "LogLevel=ERROR"])
    try:
        done = subprocess.run(call.argv, input=call.stdin if call.stdin is not None else "",
                              capture_output=True, text=True, errors="replace",
                              timeout=timeout + CONNECT_TIMEOUT, check=False)
    except (subprocess.TimeoutExpired, OSError):
        return None
    body, code = parse(done.stdout, nonce)
    return parse_status(body) if body is not None and code == 0 else None


def read_status(target) -> dict | None:
    """The pod's save status, or None when it cannot be read now."""
    if target.state != "running":
        return None
    engine, pod = getattr(target, "engine", None), getattr(target, "pod", None)
    if engine is not None and hasattr(pod, "container_id"):
        return local_status(engine, pod)  # local:NAME: no SSH key needed
    endpoint = target.endpoint()
    return None if endpoint is None else ssh_status(endpoint, target.ssh_options())
