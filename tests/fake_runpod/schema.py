"""Check requests and responses against RunPod's OpenAPI 3.1 description.

OpenAPI 3.1 schemas are JSON Schema 2020-12, so each check is a jsonschema
validation of ``{"$ref": "<spec>#/json/pointer/to/schema"}`` against the whole
document in a ``referencing`` registry: the spec's own ``#/components/...``
references then resolve exactly as written. Each check returns a list of
mismatches (empty = conforms), phrased for a failing test's report.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_ENV = "IMAGEBUILD_RUNPOD_OPENAPI"
_URI = "urn:runpod:openapi-v2"
_METHODS = ("get", "put", "post", "delete", "patch")


def spec_path() -> Path:
    """``../shared/runpod/openapi-v2.json`` beside the repository, or $IMAGEBUILD_RUNPOD_OPENAPI."""
    if os.environ.get(SPEC_ENV):
        return Path(os.environ[SPEC_ENV])
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "runpod" / "openapi-v2.json"


def load(path: Path | None = None) -> tuple[OpenApi | None, str]:
    """The spec and "", or None and why the schema checks cannot run."""
    path = path or spec_path()
    if not path.is_file():
        return None, f"RunPod OpenAPI spec not found at {path} (set {SPEC_ENV}); schema checks skipped"
    return OpenApi(json.loads(path.read_text(encoding="utf-8"))), ""


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # "/v2/pods/{id}"
    pointer: str  # JSON pointer of the operation object
    params: dict[str, str]  # path parameters taken from the URL


class OpenApi:
    def __init__(self, document: dict):
        self.doc = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry = Registry().with_resource(_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}
        self._formats = FormatChecker()
        self._formats.checks("date-time")(_date_time)
        self._routes = []
        for template in document["paths"]:
            regex = re.compile("^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")
            self._routes.append((regex, template))
        # Literal segments beat parameters: /v2/registries/delegations is not /v2/registries/{id}.
        self._routes.sort(key=lambda r: r[1].count("{"))

    # -- lookup ----------------------------------------------------------------

    def operation(self, method: str, path: str) -> Operation | None:
        for regex, template in self._routes:
            match = regex.match(path)
            if match and method.lower() in self.doc["paths"][template]:
                pointer = _pointer("paths", template, method.lower())
                return Operation(method.upper(), template, pointer, match.groupdict())
        return None

    def _at(self, pointer: str) -> Any:
        node: Any = self.doc
        for part in pointer.split("/")[1:]:
            key = part.replace("~1", "/").replace("~0", "~")
            node = node[int(key)] if isinstance(node, list) else node[key]
        return node

    def _deref(self, pointer: str) -> tuple[str, Any]:
        """Follow a local ``$ref`` (responses, parameters, headers are often refs)."""
        node = self._at(pointer)
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"].lstrip("#")
            node = self._at(pointer)
        return pointer, node

    def _check(self, schema_pointer: str, instance: Any, where: str) -> list[str]:
        validator = self._validators.get(schema_pointer)
        if validator is None:
            validator = Draft202012Validator(
                {"$ref": f"{_URI}#{schema_pointer}"},
                registry=self._registry,
                format_checker=self._formats,
            )
            self._validators[schema_pointer] = validator
        problems = []
        for error in validator.iter_errors(instance):
            location = "".join(f"[{p!r}]" for p in error.absolute_path)
            problems.append(f"{where}{location}: {error.message[:300]}")
        return problems

    # -- requests --------------------------------------------------------------

    def check_request(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[Operation | None, list[str]]:
        op = self.operation(method, path)
        if op is None:
            return None, [f"{method} {path}: no such operation in the spec"]
        where = f"{op.method} {op.template}"
        problems: list[str] = []
        if self.doc.get("security") and not headers.get("authorization", "").startswith("Bearer "):
            problems.append(f"{where}: no `Authorization: Bearer` header (the spec requires bearerAuth)")
        problems += self._check_params(op, query, where)
        problems += self._check_body(op, headers.get("content-type", ""), body, where)
        return op, problems

    def _parameters(self, op: Operation) -> list[tuple[str, dict]]:
        found: dict[tuple[str, str], tuple[str, dict]] = {}
        item_pointer = op.pointer.rsplit("/", 1)[0]
        for owner in (item_pointer, op.pointer):  # operation-level params override path-level
            for index, _ in enumerate(self._at(owner).get("parameters", [])):
                pointer, param = self._deref(f"{owner}/parameters/{index}")
                found[(param["in"], param["name"])] = (pointer, param)
        return list(found.values())

    def _check_params(self, op: Operation, query: dict[str, list[str]], where: str) -> list[str]:
        problems = []
        declared = set()
        for pointer, param in self._parameters(op):
            name, place = param["name"], param["in"]
            if place == "query":
                declared.add(name)
                if name not in query:
                    if param.get("required"):
                        problems.append(f"{where}: query parameter {name} is required")
                    continue
                value = self._coerce(param, query[name][-1], f"{pointer}/schema")
            elif place == "path":
                value = op.params.get(name)
            else:
                continue
            problems += self._check(f"{pointer}/schema", value, f"{where} {place} parameter {name}")
        for name in sorted(set(query) - declared):
            problems.append(f"{where}: query parameter {name} is not in the spec")
        return problems

    def _coerce(self, param: dict, text: str, schema_pointer: str) -> Any:
        """A query string value as the typed value its schema describes."""
        _, schema = self._deref(schema_pointer)
        kind = schema.get("type")
        if kind == "array":  # style=form, explode=false: comma-separated
            return text.split(",") if text else []
        if kind == "boolean":
            return {"true": True, "false": False}.get(text, text)
        if kind in ("integer", "number"):
            try:
                return int(text) if kind == "integer" else float(text)
            except ValueError:
                return text
        return text

    def _check_body(self, op: Operation, content_type: str, body: bytes, where: str) -> list[str]:
        operation = self._at(op.pointer)
        if "requestBody" not in operation:
            return [f"{where}: sent a body, but the operation takes none"] if body else []
        body_pointer, request_body = self._deref(f"{op.pointer}/requestBody")
        if not body:
            return [f"{where}: request body is required"] if request_body.get("required") else []
        media = content_type.split(";")[0].strip().lower()
        if media not in request_body.get("content", {}):
            return [f"{where}: request content type {media or '(none)'!r} is not in the spec"]
        try:
            instance = json.loads(body)
        except ValueError:
            return [f"{where}: request body is not JSON"]
        schema_pointer = body_pointer + _pointer("content", media, "schema")
        return self._check(schema_pointer, instance, f"{where} request body")

    # -- responses -------------------------------------------------------------

    def check_response(
        self, op: Operation, status: int, headers: dict[str, str], body: bytes
    ) -> list[str]:
        where = f"{op.method} {op.template} -> {status}"
        responses = self._at(op.pointer)["responses"]
        key = str(status) if str(status) in responses else "default" if "default" in responses else None
        if key is None:
            return [f"{where}: status {status} is not in the spec"]
        pointer, response = self._deref(op.pointer + _pointer("responses", key))
        problems = []
        for name, _ in response.get("headers", {}).items():
            value = headers.get(name.lower())
            if value is None:
                continue
            header_pointer, _ = self._deref(pointer + _pointer("headers", name))
            schema_pointer = header_pointer + "/schema"
            typed = self._coerce({}, value, schema_pointer)
            problems += self._check(schema_pointer, typed, f"{where} header {name}")
        content = response.get("content")
        if not content:
            return problems + ([f"{where}: the spec says no body, but one was sent"] if body else [])
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in content:
            return problems + [f"{where}: content type {media!r} is not one of {sorted(content)}"]
        if "json" not in media:  # text/event-stream: its schema is a string
            instance: Any = body.decode("utf-8", "replace")
        else:
            try:
                instance = json.loads(body)
            except ValueError:
                return problems + [f"{where}: body is not JSON"]
        schema_pointer = pointer + _pointer("content", media, "schema")
        return problems + self._check(schema_pointer, instance, f"{where} body")
