"""A pod's log stream (``GET /v2/pods/{id}/logs``, server-sent events).

Each event's ``data`` is ``{"source": "container"|"system", "line": ..., "ts": ...}``.
The stream never ends by itself: without ``follow`` reading stops once the
backfill has gone quiet for ``idle`` seconds.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator

from imagebuild.runpod._httpx import httpx
from imagebuild.runpod.client import RunPodError

IDLE_S = 2.0


def events(lines: Iterable[str]) -> Iterator[dict]:
    """SSE events from a stream's lines: ``data:`` lines up to a blank line make one."""
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line.strip() and data:
            with contextlib.suppress(ValueError):
                event = json.loads("\n".join(data))
                if isinstance(event, dict):
                    yield event
            data = []


def text(event: dict) -> str:
    line = str(event.get("line", "")).rstrip("\n")
    return f"[system] {line}" if event.get("source") == "system" else line


def read(client, pod_id: str, *, tail: int = 100, follow: bool = False, idle: float = IDLE_S,
         on_open: Callable[[httpx.Response], None] = lambda _: None) -> Iterator[str]:
    """The pod's log lines, oldest first; with ``follow``, new ones as they come."""
    params = {"tail": tail}
    try:
        with client.stream(f"/pods/{pod_id}/logs", params=params,
                           read_timeout=None if follow else idle) as response:
            on_open(response)
            for event in events(response.iter_lines()):
                yield text(event)
    except httpx.ReadTimeout:
        return  # quiet for `idle` seconds: the backfill is over
    except RunPodError as error:
        if error.status == 404:
            raise RunPodError(f"pod {pod_id} not found: it is gone, and its logs with it", 404) from None
        raise


class Follower:
    """Streams a pod's logs to ``emit`` in a background thread until ``close()``
    (shown while `pod create` waits, so a failing image pull is seen, not waited out)."""

    def __init__(self, client, pod_id: str, emit: Callable[[str], None], tail: int = 20):
        self._response: httpx.Response | None = None
        self._closed = threading.Event()

        def run() -> None:
            with contextlib.suppress(Exception):
                for line in read(client, pod_id, tail=tail, follow=True, on_open=self._opened):
                    if self._closed.is_set():
                        return
                    emit(line)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def _opened(self, response: httpx.Response) -> None:
        self._response = response
        if self._closed.is_set():
            response.close()

    def close(self) -> None:
        self._closed.set()
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()
        self._thread.join(timeout=2)
