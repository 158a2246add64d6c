"""Durations as people type them: 45m, 2h, 1h30m, 90s (a bare number is seconds)."""

from __future__ import annotations

import re

from imagebuild.errors import SpecError

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
MIN_SECONDS = 10  # shorter than a pod takes to boot


def parse_duration(text: str, field: str) -> int:
    """Seconds in ``text``; a SpecError naming ``field`` when it is not a duration."""
    value = str(text).strip().lower().replace(" ", "")
    match = _DURATION.match(value)
    if not value or not match or not any(match.groups()):
        raise SpecError(f"{field}: expected a duration like 45m, 2h or 1h30m, got {text!r}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total < MIN_SECONDS:
        raise SpecError(f"{field}: expected at least {MIN_SECONDS}s, got {text!r}")
    return total


def format_duration(seconds: int) -> str:
    """The short form again: 2700 -> 45m, 5400 -> 1h30m, 20 -> 20s."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"
