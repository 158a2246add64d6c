"""`pod create` that moves on from a bad host: once SSH answers, the pod's GPU canary
is waited for (bounded); a pod whose canary failed is terminated (it is new: nothing
of the user's is on it; a network volume stays), its host and reason recorded, and
the pod is created again - on the same GPU type once more, then on the next choice.

Modes: ``require`` (the default for GPU pods) moves on; ``warn`` keeps the pod and
says what failed; ``off`` does not wait for the canary."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from imagebuild.errors import UserError
from imagebuild.pods import canary
from imagebuild.runpod import pods
from imagebuild.runpod.launch import discard, launch
from imagebuild.runpod.pods import CreateOptions

MODES = ("off", "warn", "require")
TRIES_PER_GPU = 2  # a bad host is one machine: the same GPU type once more, then the next


@dataclass
class Attempt:
    """One pod that got SSH but failed its canary: where it ran and what failed."""

    pod: str
    gpu: str
    host: str  # data center and the GPUs' UUIDs (RunPod names no machine id in its API)
    failed: str

    def line(self) -> str:
        return f"pod {self.pod} on {self.gpu} ({self.host}): {self.failed}"


def _host(pod: dict, found: canary.Canary) -> str:
    uuids = [gpu["uuid"] for gpu in (found.report or {}).get("gpus", [])]
    where = pod.get("dataCenterId") or "data center unknown"
    return f"{where}, GPU {', '.join(uuids)}" if uuids else where


def _failure(found: canary.Canary, timeout: float) -> str | None:
    """Why this host is bad (None: it is not known to be)."""
    if found.verdict == "fail":
        return "; ".join(found.failed_checks()) or found.line
    if found.line == "running":
        return f"the GPU canary did not finish within {timeout:g} s (a hung driver?)"
    return None


def _next_choices(gpu_ids: list[str], gpu: str, tries: int) -> list[str]:
    if gpu not in gpu_ids:
        return gpu_ids
    start = gpu_ids.index(gpu)
    return gpu_ids[start + 1:] if tries >= TRIES_PER_GPU else gpu_ids[start:]


def create_checked(client, options: CreateOptions, *, mode: str, timeout: float,
                   on_event: Callable[[str], None], say: Callable[[str], None],
                   canary_timeout: float = canary.WAIT_TIMEOUT) -> dict:
    """The ready pod whose canary did not fail (``require``); UserError naming every attempt
    when no GPU choice gave one."""
    from imagebuild.runpod.target import RunPodTarget

    attempts: list[Attempt] = []
    tries: dict[str, int] = {}
    choices = list(options.gpu_ids)
    while choices:
        try:
            pod = launch(client, dataclasses.replace(options, gpu_ids=choices), wait=True, timeout=timeout,
                         on_event=on_event, say=say)
        except UserError as error:
            if not attempts:
                raise
            raise UserError(f"{_lines(attempts)}\n  then: {error}") from None
        target = RunPodTarget(client, pod)
        found = canary.wait(lambda target=target: canary.read(target), canary_timeout, on_event)
        failure = _failure(found, canary_timeout)
        if failure is None:
            if found.error:
                say(f"imagebuild: could not read the GPU canary of pod {pods.label(pod)} ({found.error}); "
                    "`imagebuild pod status` shows it later")
            return pod
        gpu = pod.get("gpu", {}).get("id", "?")
        attempts.append(Attempt(pod["id"], gpu, _host(pod, found), failure))
        if mode == "warn":
            say(f"imagebuild: warning: the GPU check failed on pod {pods.label(pod)}: {failure}; kept "
                "(--canary warn)")
            return pod
        discard(client, pod, say, f"its GPU check failed: {failure}")
        tries[gpu] = tries.get(gpu, 0) + 1
        choices = _next_choices(choices, gpu, tries[gpu])
        if choices:
            say(f"imagebuild: creating pod {options.name} again on {choices[0]} "
                f"(attempt {len(attempts) + 1})")
    raise UserError(f"{_lines(attempts)}\n  (--canary warn keeps such a pod; `imagebuild pod create "
                    "--gpu OTHER` tries another GPU)")


def _lines(attempts: list[Attempt]) -> str:
    return ("no host passed the GPU check; each pod made was terminated (nothing bills for it):\n"
            + "\n".join(f"  {attempt.line()}" for attempt in attempts))
