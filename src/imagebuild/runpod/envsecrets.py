"""Pod env values that look like tokens, and RunPod secrets instead.

A pod's ``env`` is part of its readable config: RunPod returns it from getPod and
shows it in the console, in clear. RunPod's own answer is an account secret,
referenced from an env value as ``{{ RUNPOD_SECRET_name }}`` and filled in at boot
(docs: "Manage secrets", "Environment variables" - "Using secrets"). So `pod create`
refuses a value that looks like a token unless ``--allow-plain-secret``, and
``--secret NAME`` sends the reference.

What "looks like a token": the regex rules of Yelp's detect-secrets (its
RegexBasedDetector plugins: AWS, GitHub, GitLab, Slack, Stripe, OpenAI, JWT, PyPI,
npm, private keys, ...), plus prefixes it lacks for the tokens a research pod
carries, and a variable whose name says it holds a secret.
"""

from __future__ import annotations

import functools
import re

from imagebuild.errors import SpecError
from imagebuild.pods import podenv

# A value RunPod fills in from an account secret (docs, "Manage secrets").
TEMPLATE = re.compile(r"\{\{\s*RUNPOD_SECRET_[A-Za-z0-9_.-]+\s*\}\}")
SECRET_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Token prefixes detect-secrets 1.5 has no rule for, each from its issuer's docs.
EXTRA_RULES = {
    # Hugging Face, "User access tokens": tokens start with hf_.
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}"),
    # Anthropic API keys: sk-ant-api03-... (console.anthropic.com, "API keys").
    "Anthropic API key": re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    # OpenAI project/service keys: sk-proj-..., sk-svcacct-... (platform docs, "API keys").
    "OpenAI API key": re.compile(r"\bsk-(proj|svcacct|admin)-[A-Za-z0-9_-]{20,}"),
    # RunPod API keys: rpa_... (RunPod docs, "API keys").
    "RunPod API key": re.compile(r"\brpa_[A-Za-z0-9]{20,}"),
    # W&B keys are 40 hex digits (or local-... on a W&B server): only under a W&B name.
}
# A name that says its value is a secret: the value is one, whatever it looks like.
SECRET_WORDS = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)",
                          re.IGNORECASE)
# Not a secret although its name says KEY: the SSH public keys for the pod.
NOT_SECRETS = frozenset({podenv.PUBLIC_KEY})


@functools.lru_cache(maxsize=1)
def _scanner_rules() -> tuple[tuple[str, re.Pattern], ...]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    # Public IPs and URL credentials are not what a token check is about (a URL with
    # user:pass still trips the name rule when its variable says so).
    skipped = {"IPPublicDetector", "BasicAuthDetector"}
    rules = []
    for secret_type, plugin in get_mapping_from_secret_type_to_class().items():
        if issubclass(plugin, RegexBasedDetector) and plugin.__name__ not in skipped:
            rules += [(secret_type, pattern) for pattern in plugin().denylist]
    return tuple(rules) + tuple(EXTRA_RULES.items())


def looks_like(name: str, value: str) -> str | None:
    """What kind of secret ``value`` (of variable ``name``) looks like, or None."""
    if not value or name in NOT_SECRETS or TEMPLATE.fullmatch(value.strip()):
        return None
    for kind, pattern in _scanner_rules():
        if pattern.search(value):
            return kind
    if SECRET_WORDS.search(name) and len(value) >= 6:
        return f"a secret (its name says {SECRET_WORDS.search(name).group(0).upper()})"
    if "WANDB" in name.upper() and re.fullmatch(r"[0-9a-f]{40}|local-[0-9a-f]{40}", value):
        return "W&B API key"
    return None


def refuse_plain(env: dict[str, str]) -> None:
    """One line naming the first variable whose value looks like a token (never the value)."""
    for name, value in env.items():
        kind = looks_like(name, value)
        if kind:
            raise SpecError(
                f"env {name}: its value looks like {_article(kind)} and would sit in the pod's config "
                f"in clear (RunPod shows env in the console and API); store it as a RunPod secret "
                f"(console: Secrets) and pass --secret {name}, or add --allow-plain-secret"
            )


def _article(kind: str) -> str:
    return kind if kind.startswith("a ") else f"{'an' if kind[0] in 'AEIOU' else 'a'} {kind}"


def references(flags: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``--secret NAME`` (env NAME from secret NAME) or ``--secret VAR=NAME``: the env
    values RunPod fills in from the account's secrets at boot."""
    env: dict[str, str] = {}
    for flag in flags:
        var, _, secret = flag.partition("=")
        secret = secret or var
        if not ENV_NAME.match(var) or not SECRET_NAME.match(secret):
            raise SpecError(f"--secret: expected NAME or VAR=NAME (letters, digits, _ . -), got {flag!r}")
        env[var] = "{{ RUNPOD_SECRET_" + secret + " }}"
    return env
