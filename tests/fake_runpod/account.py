"""The fake's account-wide resources: SSH keys, network volumes, registry credentials.

Registry passwords are kept (a test may check one arrived intact) but never
returned, as RunPod's credentials are write-only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from fake_runpod.catalog import DATACENTERS
from fake_runpod.replies import Reply, problem


def new_id(length: int = 10) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class Account:
    ssh_keys: list[str] = field(default_factory=list)
    volumes: dict[str, dict] = field(default_factory=dict)
    registries: dict[str, dict] = field(default_factory=dict)  # id -> {name, username, password}

    def route(self, method: str, parts: list[str], body: Any) -> Reply | None:
        """The reply for an account route, or None when ``parts`` is not one."""
        if parts == ["v2", "account", "ssh-keys"]:
            if method == "GET":
                return Reply(200, {"keys": list(self.ssh_keys)})
            if method == "PUT":
                self.ssh_keys = list(body["keys"])
                return Reply(200, {"keys": list(self.ssh_keys)})
        if parts[:2] == ["v2", "network-volumes"]:
            return self._volumes(method, parts[2:], body)
        if parts[:2] == ["v2", "registries"]:
            return self._registries(method, parts[2:], body)
        return None

    def _volumes(self, method: str, rest: list[str], body: Any) -> Reply | None:
        if not rest and method == "GET":
            return Reply(200, {"networkVolumes": list(self.volumes.values())})
        if not rest and method == "POST":
            if body["dataCenter"] not in DATACENTERS:
                return problem(400, "Bad Request", f"unknown data center {body['dataCenter']!r}")
            volume = {"id": new_id(), "name": body["name"], "size": body["size"],
                      "dataCenter": body["dataCenter"], "type": body.get("type", "STANDARD")}
            self.volumes[volume["id"]] = volume
            return Reply(201, volume)
        if len(rest) == 1 and rest[0] in self.volumes:
            if method == "GET":
                return Reply(200, self.volumes[rest[0]])
            if method == "DELETE":
                del self.volumes[rest[0]]
                return Reply(204)
        if len(rest) == 1:
            return problem(404, "Not Found", "network volume not found")
        return None

    def _registries(self, method: str, rest: list[str], body: Any) -> Reply | None:
        public = {rid: {"id": rid, "name": r["name"]} for rid, r in self.registries.items()}
        if not rest and method == "GET":
            return Reply(200, {"registries": list(public.values())})
        if not rest and method == "POST":
            rid = new_id()
            self.registries[rid] = dict(body)
            return Reply(201, {"id": rid, "name": body["name"]})
        if len(rest) == 1 and rest[0] != "delegations":
            if rest[0] not in public:
                return problem(404, "Not Found", "registry not found")
            if method == "GET":
                return Reply(200, public[rest[0]])
            if method == "DELETE":
                del self.registries[rest[0]]
                return Reply(204)
        return None
