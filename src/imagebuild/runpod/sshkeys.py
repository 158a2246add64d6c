"""The account's SSH keys: what `startSsh` puts on a pod and what RunPod's gateway accepts.

Setting ``PUBLIC_KEY`` on a pod replaces the account's keys there (other devices
lose access) and the gateway (``ssh.proxy``) still refuses a key the account does
not know. So the local key is registered on the account instead, once, and RunPod
injects all of the account's keys. ``PUT`` replaces the whole set: the keys
already there are always sent back with ours appended.
"""

from __future__ import annotations

import re

# UpdateSshKeysRequest's pattern: `<type> <base64-key> [comment]` on one line.
_WELL_FORMED = re.compile(r"^(ssh|ecdsa|sk)-\S+ \S+([ \t][^\n\r]*)?$")


def _key_id(line: str) -> tuple[str, str]:
    """A key without its comment: ``ssh-ed25519 AAAA... laptop`` == ``ssh-ed25519 AAAA...``."""
    parts = line.split()
    return (parts[0], parts[1]) if len(parts) >= 2 else (line.strip(), "")


def missing(registered: list[str], local: list[str]) -> list[str]:
    """Well-formed keys of ``local`` the account lacks (a malformed line is skipped:
    RunPod would refuse the whole PUT for it)."""
    known = {_key_id(key) for key in registered}
    new: dict[tuple[str, str], str] = {}
    for key in local:
        if _WELL_FORMED.match(key.strip()) and _key_id(key) not in known:
            new.setdefault(_key_id(key), key.strip())
    return list(new.values())


def register(client, local: list[str]) -> list[str]:
    """Add the keys in ``local`` the account lacks (at most one PUT); the keys added."""
    registered = list(client.get("/account/ssh-keys").get("keys", []))
    new = missing(registered, local)
    if new:
        client.request("PUT", "/account/ssh-keys", json={"keys": registered + new})
    return new
