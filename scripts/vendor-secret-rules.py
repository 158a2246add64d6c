#!/usr/bin/env python3
"""Regenerate pod-save's secret rules (src/imagebuild/entrypoint/lib/podsave/secret_rules.json)
from detect-secrets' regex detectors, plus the few token shapes it lacks.

pod-save runs in the image with the standard library only, so it cannot import
detect-secrets: its patterns (already Python `re`) are copied into a JSON data file.
Run with a Python that has the pinned detect-secrets installed:

    python3 -m venv /tmp/ds && /tmp/ds/bin/pip install detect-secrets==1.5.0
    /tmp/ds/bin/python scripts/vendor-secret-rules.py
"""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector

OUT = Path(__file__).resolve().parents[1] / "src/imagebuild/entrypoint/lib/podsave/secret_rules.json"

# Detectors left out, and why (each would refuse ordinary research files).
NOT_VENDORED = {
    "Base64HighEntropyString": "entropy only: commit hashes, checksums and base64 data match",
    "HexHighEntropyString": "entropy only: commit hashes and checksums match",
    "KeywordDetector": "any `password = ...` line, test fixtures included; needs its filters",
    "IPPublicDetector": "an IP address is not a credential",
    "JwtTokenDetector": "needs its JSON check of each match; base64 JSON in notebooks matches",
}

# Token shapes detect-secrets 1.5.0 has no detector for; prefixes documented by each
# provider (Anthropic console keys, Hugging Face user access tokens, GitHub
# fine-grained tokens, GitLab personal tokens).
EXTRA = [
    ("AnthropicKey", r"\bsk-ant-[a-z]{3,8}\d{2}-[A-Za-z0-9_-]{20,}"),
    ("HuggingFaceToken", r"\bhf_[A-Za-z0-9]{30,}"),
    ("GitHubFineGrainedToken", r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
    ("GitLabToken", r"\bglpat-[A-Za-z0-9_-]{20,}"),
]

FLAGS = {re.IGNORECASE: "i", re.MULTILINE: "m", re.DOTALL: "s", re.VERBOSE: "x"}


def main() -> int:
    rules, dropped = [], []
    for name, cls in sorted((c.__name__, c) for c in
                            get_mapping_from_secret_type_to_class().values()):
        if name in NOT_VENDORED or not issubclass(cls, RegexBasedDetector):
            continue
        for n, regex in enumerate(cls.denylist):
            flags = "".join(v for k, v in FLAGS.items() if regex.flags & k)
            entry = {"id": f"{name}" + (f"-{n + 1}" if len(cls.denylist) > 1 else ""),
                     "pattern": regex.pattern, "flags": flags}
            try:
                re.compile(entry["pattern"].encode(), _flags(flags))  # bytes, as pod-save uses them
            except re.error:
                dropped.append(entry["id"])
                continue
            rules.append(entry)
    for name, pattern in EXTRA:
        rules.append({"id": name, "pattern": pattern, "flags": "", "added_by": "imagebuild"})
    data = {
        "source": f"detect-secrets {version('detect-secrets')} (PyPI, Yelp/detect-secrets), "
                  "detect_secrets/plugins/*.py: each RegexBasedDetector's denylist",
        "licence": "Apache-2.0 (detect-secrets); the rules marked added_by are imagebuild's",
        "regenerate": "scripts/vendor-secret-rules.py",
        "not_vendored": NOT_VENDORED,
        "dropped_not_compiling": dropped,
        "rules": rules,
    }
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{len(rules)} rules, {len(dropped)} dropped (do not compile) -> {OUT}")
    return 0


def _flags(letters: str) -> int:
    value = 0
    for flag, letter in FLAGS.items():
        if letter in letters:
            value |= flag
    return value


if __name__ == "__main__":
    sys.exit(main())
