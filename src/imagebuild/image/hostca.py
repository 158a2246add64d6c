"""Which CA bundle a build or lock passes to its steps when ``--ca-cert`` is not given.

The rule (README, "Behind a TLS proxy"): ``--ca-cert FILE`` (or ``IMAGEBUILD_CA_CERT``)
wins, ``--ca-cert none`` passes none. Otherwise the host's own configuration decides,
as pip, requests and curl on this machine would: the first of ``SSL_CERT_FILE``,
``REQUESTS_CA_BUNDLE``, ``PIP_CERT``, ``CURL_CA_BUNDLE`` that names a readable file; else
the system bundle when it holds a certificate certifi's (what pip and uv trust by
default) lacks: a CA added on this machine, like a TLS-intercepting proxy's. The bundle
travels as the ``ca_bundle`` build secret, never into a layer, and the command says so
in one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE")
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
NONE = "none"  # --ca-cert none: pass no bundle


def _readable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


def _certificates(path: Path) -> set[str]:
    text = path.read_text(encoding="ascii", errors="replace")
    blocks = text.split("-----BEGIN CERTIFICATE-----")[1:]
    return {"".join(block.split("-----END CERTIFICATE-----")[0].split()) for block in blocks}


def _certifi_bundle() -> Path | None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx brings it
        return None
    return Path(certifi.where())


def host_bundle(environ: Mapping[str, str] | None = None, system: Path = SYSTEM_BUNDLE,
                reference: Path | None = None) -> tuple[Path, str] | None:
    """(the bundle, where it came from) by the rule above; None: pass none."""
    environ = os.environ if environ is None else environ
    for name in ENV_VARS:
        value = environ.get(name, "").strip()
        if value and _readable(Path(value)):
            return Path(value), f"from {name}"
    reference = reference or _certifi_bundle()
    if not _readable(system) or reference is None or not _readable(reference):
        return None
    try:
        added = _certificates(system) - _certificates(reference)
    except OSError:
        return None
    if added:
        return system, f"it holds {len(added)} CA(s) that certifi's bundle lacks"
    return None


def choose(given: Path | None, environ: Mapping[str, str] | None = None) -> tuple[Path | None, str | None]:
    """The bundle to pass and the one line to say (None: nothing to say)."""
    if given is not None:
        return (None, None) if str(given) == NONE else (given, None)
    found = host_bundle(environ)
    if found is None:
        return None, None
    path, why = found
    return path, (f"passing the host's CA bundle {path} ({why}) to the build as a secret, never "
                  "into a layer; --ca-cert FILE for another, --ca-cert none for none")
