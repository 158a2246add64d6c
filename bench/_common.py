"""What the build benchmarks share: the flags naming the spec, its base and the CA bundle."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def build_parser(doc: str) -> argparse.ArgumentParser:
    """``--spec`` (the test spec), ``--base`` (the local test base) and ``--ca-cert``
    (the host's bundle, for a TLS-intercepting proxy); the script adds its own flags."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=REPO / "tests" / "specs" / "ci.toml")
    parser.add_argument("--base", default=os.environ.get("IMAGEBUILD_TEST_BASE",
                                                         "imagebuild-test/debian:bookworm"))
    parser.add_argument("--ca-cert", type=Path, default=HOST_CA if HOST_CA.exists() else None)
    return parser
