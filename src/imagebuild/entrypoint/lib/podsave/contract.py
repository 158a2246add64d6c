"""The host-image names (workspace, ...) from contract.env, which imagebuild renders
from ``imagebuild.contract`` into the image beside lib/: read, never copied here."""

import os
import shlex
from functools import cache

ENV_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contract.env")


@cache
def names(path: str = ENV_FILE) -> dict[str, str]:
    """NAME -> value from the rendered file; empty outside an image (tests set the env)."""
    found: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                name, sep, value = line.strip().partition("=")
                if sep and not name.startswith("#"):
                    found[name] = " ".join(shlex.split(value))
    except OSError:
        pass
    return found
