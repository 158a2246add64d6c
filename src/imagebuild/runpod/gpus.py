"""GPU aliases ("4090", "a6000", "h100 sxm") resolved against RunPod's GPU catalog.

RunPod wants exact ids like "NVIDIA GeForce RTX 4090". Users type model numbers.
An alias matches a catalog entry when each of its words is a word of the entry's
id or display name; a squashed exact match ("rtx4090") wins outright. Ambiguity
lists the candidates instead of guessing; an unknown alias suggests the nearest
names. ``--gpu 4090,a6000`` is a preference list, resolved up front so a typo in
the second choice is reported before anything is created.
"""

from __future__ import annotations

import difflib
import re

from imagebuild.errors import SpecError

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _squash(text: str) -> str:
    return "".join(_WORD.findall(text.lower()))


def resolve_gpu(alias: str, catalog: list[dict], offered_by: str = "RunPod") -> dict:
    """The one catalog entry ``alias`` names, or a SpecError listing what it could mean."""
    wanted = alias.strip()
    if not wanted:
        raise SpecError("--gpu: expected a GPU like 4090 or a6000, got an empty name")
    squashed = _squash(wanted)
    exact = [g for g in catalog if squashed in (_squash(g["id"]), _squash(g.get("name", "")))]
    if len(exact) == 1:
        return exact[0]
    words = _words(wanted)
    matches = [g for g in catalog if words <= (_words(g["id"]) | _words(g.get("name", "")))]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(f'"{g["id"]}"' for g in sorted(matches, key=lambda g: g["id"]))
        raise SpecError(f'--gpu: "{wanted}" is ambiguous; it matches {names} - name one of them')
    raise SpecError(f'--gpu: {offered_by} offers no GPU "{wanted}"; {_nearest(wanted, catalog)}')


def _nearest(alias: str, catalog: list[dict]) -> str:
    by_label: dict[str, str] = {}
    for gpu in catalog:
        by_label[gpu["id"].lower()] = gpu["id"]
        by_label[gpu.get("name", gpu["id"]).lower()] = gpu["id"]
    close = difflib.get_close_matches(alias.lower(), list(by_label), n=6, cutoff=0.4)
    # Model numbers are the part people mistype: compare them on their own too.
    for word in _words(alias):
        for label in by_label:
            for other in _words(label):
                if (
                    any(c.isdigit() for c in word)
                    and difflib.SequenceMatcher(None, word, other).ratio() >= 0.75
                ):
                    close.append(label)
    ids = list(dict.fromkeys(by_label[label] for label in close))[:4]
    if not ids:
        return "see the GPU types at https://www.runpod.io/gpu-pricing"
    return "nearest: " + ", ".join(f'"{i}"' for i in ids)


def resolve_gpus(
    aliases: str, catalog: list[dict], count: int = 1, cloud: str = "SECURE"
) -> list[str]:
    """GPU ids for a comma-separated preference list, in order, without repeats.

    A GPU that cannot take ``count`` GPUs on one pod in ``cloud`` is a SpecError:
    RunPod would refuse it, and saying so here is clearer.
    """
    ids: list[str] = []
    for alias in aliases.split(","):
        gpu = resolve_gpu(alias, catalog)
        key = cloud.lower()
        if not gpu.get(key, True):
            raise SpecError(
                f'--cloud: "{gpu["id"]}" is not offered on {key} cloud; try --cloud '
                + ("community" if key == "secure" else "secure")
            )
        most = (gpu.get("maxCount") or {}).get(key)
        if isinstance(most, int) and count > most:
            raise SpecError(
                f'--gpu-count: at most {most} x "{gpu["id"]}" fit on one {key}-cloud pod, got {count}'
            )
        if gpu["id"] not in ids:
            ids.append(gpu["id"])
    return ids

