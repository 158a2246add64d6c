"""The fake's answers: a status, a JSON (or event-stream) body, headers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

PROBLEM = "application/problem+json"


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds to hold the answer (or the drop) first, outside the state lock
    media: str | None = None  # a body that is not JSON (the log stream's text/event-stream)
    more: Callable[[], Iterator[bytes]] | None = None  # streamed on after the body (no length)
    off_contract: bool = False  # deliberately off the spec (an injected fault): not validated

    @property
    def content_type(self) -> str:
        return self.media or (PROBLEM if self.status >= 400 else "application/json")

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


def problem(status: int, title: str, detail: str, **extra: Any) -> Reply:
    return Reply(status, {"title": title, "status": status, "detail": detail, **extra})
