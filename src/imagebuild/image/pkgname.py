"""Python package names compared as pip and uv compare them: PEP 503's normal form.

The one normaliser of the host side (the in-image ``files/compile-chunk.py`` runs on the
image's Python alone and keeps its own copy of the same expression).
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[-_.]+")


def canonical(name: str) -> str:
    """``Gymnasium_Robotics`` / ``gymnasium.robotics`` -> ``gymnasium-robotics`` (PEP 503)."""
    return _SEPARATORS.sub("-", name.strip()).lower()


def requirement_name(requirement: str) -> str:
    """The canonical distribution name of a requirement (``mani_skill[all]>=3`` -> ``mani-skill``)."""
    for stop in "[<>=!~; @":
        requirement = requirement.split(stop, 1)[0]
    return canonical(requirement)
