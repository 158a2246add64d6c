"""Checks of single flag values, shared by every command that takes them, run before
the first request that costs money: each failure is one SpecError naming the flag.

(The ``[pod]`` keys are checked by the spec's own model, flags and spec alike: see
``imagebuild.project.pod_settings``.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from imagebuild.errors import SpecError

# Docker's reference grammar (distribution/reference): a first part is a registry only
# when it has a dot or a port or is localhost; the path is lowercase; tag, digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|localhost)(?::[0-9]+)?|[A-Za-z0-9-]+:[0-9]+)"
_REFERENCE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
                        r"(?::\w[\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?\Z")
# A pod's name: also a local pod's container hostname, so the same rule for every pod.
_POD_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,40}[a-z0-9])?$")
# What RunPod sets in every pod about the pod itself (docs, "Environment variables": the
# pod's metadata): a value given for one would mislead the pod (the idle watcher stops
# RUNPOD_POD_ID). RUNPOD_API_KEY is not among them: a key may be passed with --secret.
_RUNPOD_OWN = frozenset({"RUNPOD_POD_ID", "RUNPOD_POD_HOSTNAME", "RUNPOD_PUBLIC_IP", "RUNPOD_DC_ID",
                         "RUNPOD_GPU_COUNT", "RUNPOD_CPU_COUNT", "RUNPOD_VOLUME_ID"})
_RUNPOD_OWN_PREFIX = "RUNPOD_TCP_PORT_"


DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\Z")  # docker's own tag grammar

def docker_tags(tags: Iterable[str], flag: str = "--tag") -> tuple[str, ...]:
    """``tags``, each a docker tag (one line for the first that is not)."""
    for tag in tags:
        if not DOCKER_TAG.match(tag):
            raise SpecError(f"{flag} {tag!r}: expected a docker tag like \"v1\" or \"exp-3\" "
                            "(letters, digits, _ . -; at most 128)")
    return tuple(tags)


def non_empty(value: str, flag: str) -> str:
    if not value.strip():
        raise SpecError(f"{flag}: empty; give a value or leave the flag out")
    return value.strip()


_GPU_COUNT = re.compile(r"^[1-9][0-9]?$")


def gpu_with_count(value: str, gpu_count: int | None, flag: str = "--gpu") -> tuple[str, int | None]:
    """``ALIAS[:N][,ALIAS[:N]...]`` (as `export skypilot --gpu`) as (the aliases, the count):
    a pod has one GPU count, so every N given, and ``--gpu-count``, must agree."""
    aliases, counts = [], set()
    for item in value.split(","):
        alias, colon, count = item.strip().partition(":")
        if colon and not _GPU_COUNT.match(count.strip()):
            raise SpecError(f"{flag}: expected ALIAS[:N] with N from 1 to 99, like 4090:2, "
                            f'got "{item.strip()}"')
        if colon:
            counts.add(int(count))
        aliases.append(alias.strip())
    if gpu_count is not None and counts and counts != {gpu_count}:
        raise SpecError(f"{flag} {value} and --gpu-count {gpu_count} disagree; give the count once "
                        "(4090:2 or --gpu-count 2)")
    if len(counts) > 1:
        given = ", ".join(map(str, sorted(counts)))
        raise SpecError(f"{flag} {value}: a pod has one GPU count, got {given}; "
                        "give the same N to every choice")
    return ",".join(aliases), next(iter(counts)) if counts else gpu_count


def is_image_reference(value: str) -> bool:
    return bool(_REFERENCE.match(value))


def image_reference(value: str, flag: str = "--image") -> str:
    """An image reference as docker reads it (the value is not echoed when it could
    hold a password: ``user:password@registry/...`` is a common slip)."""
    non_empty(value, flag)
    if not is_image_reference(value):
        shown = f' "{value}"' if "@" not in value.split("/")[0] else ""
        raise SpecError(f"{flag}{shown}: not an image reference; expected NAME[:TAG][@sha256:DIGEST] "
                        "in lowercase, e.g. ghcr.io/you/research-pod@sha256:...")
    return value


def pod_name(value: str, flag: str = "--name") -> str:
    non_empty(value, flag)
    if not _POD_NAME.match(value):
        raise SpecError(f"{flag} {value!r}: expected lowercase letters, digits and inner hyphens "
                        "(at most 42), e.g. research-pod")
    return value


def seconds(value: float, flag: str) -> float:
    """A wait in seconds: finite and above 0 (0 would give up at once, nan never)."""
    if not math.isfinite(value) or value <= 0:
        raise SpecError(f"{flag}: expected seconds above 0, like 900, got {value}")
    return value


def user_env(env: Mapping[str, str], where: str, host_set: Mapping[str, str]) -> None:
    """Variables the user gives a pod may not be ones RunPod sets, nor ones imagebuild
    sets from a flag (``host_set``: variable -> that flag)."""
    for name in env:
        if name in _RUNPOD_OWN or name.startswith(_RUNPOD_OWN_PREFIX):
            raise SpecError(f"{where}: {name} is set by RunPod in every pod, about the pod; leave it out")
        if name in host_set:
            raise SpecError(f"{where}: {name} is set by imagebuild; use {host_set[name]} instead")
