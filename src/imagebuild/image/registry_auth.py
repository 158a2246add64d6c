"""Registry credentials for pulls, pushes and private RunPod images: from the
environment, else what `docker login` stored; and how to keep them out of messages."""

from __future__ import annotations

import os
import re

from imagebuild.errors import SpecError

USERNAME_ENV = "IMAGEBUILD_REGISTRY_USERNAME"
PASSWORD_ENV = "IMAGEBUILD_REGISTRY_PASSWORD"

# A registry's words for missing or refused credentials (never worth another try).
_AUTH_FAILURE = re.compile(r"unauthorized|authentication required|no basic auth credentials|denied|"
                           r"forbidden|insufficient_scope", re.IGNORECASE)


def credentials(environ: dict | None = None) -> dict | None:
    """auth_config from the environment, or None: the SDK then uses what `docker
    login` stored (~/.docker/config.json, credential helpers included)."""
    environ = os.environ if environ is None else environ
    username, password = environ.get(USERNAME_ENV), environ.get(PASSWORD_ENV)
    if not username and not password:
        return None
    if not username or not password:
        missing = USERNAME_ENV if not username else PASSWORD_ENV
        raise SpecError(f"{missing} is not set: set both {USERNAME_ENV} and {PASSWORD_ENV}, "
                        "or neither to use `docker login`'s credentials")
    return {"username": username, "password": password}


def is_auth_failure(message: str) -> bool:
    return bool(_AUTH_FAILURE.search(message))


def scrub(text: str, auth: dict | None) -> str:
    """``text`` without the password: engine messages should never hold it; make sure."""
    password = (auth or {}).get("password")
    return text.replace(password, "***") if password else text
