"""Is this a secret? Credential files by name, and token shapes by content, with
detect-secrets' regex rules (vendored as secret_rules.json, see its "source" and
scripts/vendor-secret-rules.py) plus the few shapes it lacks. A verdict names the
rule, never the value."""

from __future__ import annotations

import functools
import json
import os
import re

RULES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "secret_rules.json")

# Files that hold credentials whatever is in them (checked on the base name; .ssh
# folders separately). .env.example & co. are templates, not secrets.
_CREDENTIAL_NAME = re.compile(
    r"(^\.env(\.(?!example$|sample$|template$|dist$)[^/]+)?$|^\.envrc$"
    r"|^id_[A-Za-z0-9_-]+$|\.(pem|key|p12|pfx|jks|keystore|ppk|kdbx)$"
    r"|^(\.netrc|_netrc|\.git-credentials|\.pypirc|\.npmrc|\.yarnrc|\.dockercfg|\.htpasswd"
    r"|\.pgpass|\.my\.cnf|\.s3cfg|\.boto|\.claude\.json|\.credentials\.json|kaggle\.json"
    r"|rclone\.conf|credentials\.db|access_tokens\.db|legacy_credentials"
    r"|application_default_credentials\.json|service[-_]account.*\.json|\.wandb-netrc)$"
    r"|(^|[._-])(tokens?|secrets?|credentials?|api[_-]?keys?)(\.(txt|json|ya?ml|toml|ini|cfg))?$)",
    re.IGNORECASE)

_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


@functools.cache
def rules() -> tuple[list[tuple[str, re.Pattern]], int]:
    """(rule id, compiled bytes pattern) for each rule that compiles, and how many
    did not (dropped, never fatal: the others still run)."""
    with open(RULES_FILE, encoding="utf-8") as f:
        data = json.load(f)
    compiled, dropped = [], len(data.get("dropped_not_compiling", []))
    for rule in data["rules"]:
        flags = 0
        for letter in rule.get("flags", ""):
            flags |= _FLAGS.get(letter, 0)
        try:
            compiled.append((rule["id"], re.compile(rule["pattern"].encode(), flags)))
        except re.error:
            dropped += 1
    return compiled, dropped


def credential_file(rel: str) -> str | None:
    """Why this path is a credential file by its name alone, or None."""
    name = rel.rsplit("/", 1)[-1]
    if "/.ssh/" in f"/{rel}" and not name.endswith(".pub") and name != "known_hosts":
        return "a credential file (in a .ssh folder)"
    if name.endswith(".pub"):
        return None
    if _CREDENTIAL_NAME.search(name):
        return f"a credential file ({name})"
    return None


# Rules that look for a keyword next to the value (`cloudant_password = "..."`) are
# slow over megabytes (a lookbehind at every byte): they run only in a window around
# each of these words. Lower case; the patterns themselves are case-insensitive.
_KEYWORDS = {
    "CloudantDetector-1": (b"key", b"pw", b"pass", b"token"),
    "CloudantDetector-2": (b"key", b"pw", b"pass", b"token"),
    "IbmCloudIamDetector": (b"key", b"pw", b"pass", b"token", b"secret"),
    "IbmCosHmacDetector": (b"key",),
    "SoftlayerDetector-1": (b"key", b"pw", b"pass", b"token"),
    "AWSKeyDetector-2": (b"aws",),
    "MailchimpDetector": (b"-us",),
    "ArtifactoryDetector-1": (b"akc",),
}
_WINDOW = (160, 400)  # bytes before and after a keyword that a match may span


def scan(data: bytes) -> str | None:
    """The id of the first rule that matches data, or None."""
    lower = None
    for rule_id, pattern in rules()[0]:
        words = _KEYWORDS.get(rule_id)
        if words is None:
            if pattern.search(data):
                return rule_id
            continue
        if lower is None:
            lower = data.lower()
        finder = re.compile(b"|".join(re.escape(w) for w in words))
        end = -1
        for m in finder.finditer(lower):
            if m.start() < end:
                continue  # inside the window just searched
            start, end = max(0, m.start() - _WINDOW[0]), m.end() + _WINDOW[1]
            if pattern.search(data, start, end):
                return rule_id
    return None


def reason(rel: str, data: bytes | None) -> str | None:
    """Why a file (its path, its bytes when known) must not be pushed, or None.
    Worded "looks like a secret (...)": the rule or the kind of file, no value."""
    why = credential_file(rel)
    if why is None and data is not None:
        rule = scan(data)
        why = f"rule {rule}" if rule else None
    return f"looks like a secret ({why})" if why else None


def file_reason(path: str, rel: str, limit: int) -> str | None:
    """reason() for a file on disk, reading at most limit bytes of it."""
    data = None
    try:
        with open(path, "rb") as f:
            data = f.read(limit)
    except OSError:
        pass
    return reason(rel, data)
