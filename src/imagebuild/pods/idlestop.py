"""Idle stop: what `run`/`pod create --idle-stop` put in the pod's environment.

The pod's own watcher (``entrypoint/bin/pod-idle-watch``) does the watching and
the stopping; this module only checks the duration up front (a bad one is one
line naming the flag, before anything starts) and names the variables.
"""

from __future__ import annotations

from imagebuild import contract
from imagebuild.duration import parse_duration

IDLE_STOP = contract.IDLE_STOP_ENV
REQUIRES_SAVE = contract.IDLE_REQUIRES_SAVE_ENV
OFF = "off"


def pod_env(flag: str | None, spec_value: str | None = None, requires_save: bool = False,
            field: str = "--idle-stop") -> dict[str, str]:
    """The variables for an idle stop after ``flag`` (else the spec's ``[pod]
    idle_stop``); ``off`` turns a spec's default off. {} when off."""
    value = flag if flag is not None else spec_value
    if value is None:
        return {}
    value = value.strip().lower()
    if value == OFF:
        return {IDLE_STOP: OFF} if flag is not None else {}
    parse_duration(value, field if flag is not None else "pod.idle_stop")
    env = {IDLE_STOP: value}
    if requires_save:
        env[REQUIRES_SAVE] = "1"
    return env


def describe(env: dict[str, str]) -> str | None:
    """`pod status`'s words for a pod's idle stop, from the variables it was given."""
    value = env.get(IDLE_STOP)
    if not value or value == OFF:
        return None
    save = "required" if env.get(REQUIRES_SAVE) == "1" else "tried; the pod stops even if it fails"
    return f"after {value} idle (pod-save first: {save})"




def local_line(engine, pod) -> str:
    """`pod status local:NAME`: the idle stop and what the watcher sees now."""
    from imagebuild.pods import localrun

    what = describe(localrun.pod_env(engine, pod.name))
    if what is None:
        return "no idle stop (imagebuild run --idle-stop 45m)"
    line = f"stops {what} by ending the container (no RunPod API key: /workspace is kept)"
    if pod.running:
        container = engine.client.containers.get(pod.container_id)
        found = container.exec_run(["cat", contract.IDLE_STATE])
        if found.exit_code == 0:
            line += f"; now {found.output.decode('utf-8', 'replace').strip()}"
    return line
