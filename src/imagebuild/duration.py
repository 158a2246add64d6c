"""Durations as people type them: 45m, 2h, 1h30m, 90s. A bare number is refused: 45
alone could mean seconds or minutes (SkyPilot reads minutes), so the unit is said."""

from __future__ import annotations

import re

from imagebuild.errors import SpecError

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MIN_SECONDS = 10  # shorter than a pod takes to boot


def seconds(text: str) -> int:
    """Seconds in ``text``, or a ValueError saying what a duration looks like."""
    value = str(text).strip().lower().replace(" ", "")
    match = _DURATION.match(value)
    if value.isdigit():
        raise ValueError(f"{text!r} has no unit: write {value}m for minutes or {value}s for seconds")
    if not value or not match or not any(match.groups()):
        raise ValueError(f"expected a duration like 45m, 2h or 1h30m, got {text!r}")
    hours, minutes, secs = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + secs
    if total < MIN_SECONDS:
        raise ValueError(f"expected at least {MIN_SECONDS}s, got {text!r}")
    return total


def parse_duration(text: str, field: str) -> int:
    """:func:`seconds`, with a bad value a SpecError naming ``field`` (a flag, a key)."""
    try:
        return seconds(text)
    except ValueError as error:
        raise SpecError(f"{field}: {error}") from None
