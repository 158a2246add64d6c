"""A pod's log stream (``GET /v2/pods/{id}/logs``, server-sent events).

Each event's ``data`` is ``{"source": "container"|"system", "line": ..., "ts": ...}``
and its SSE ``id`` the resume point. Without ``follow`` reading stops once the
backfill has gone quiet for ``idle`` seconds. With ``follow`` a stream that ends or
drops is reopened from the last event seen (``Last-Event-ID``: getPodLogs resumes
after it, so no line is shown twice or skipped), until the pod is gone.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from imagebuild.runpod._httpx import httpx
from imagebuild.runpod.client import RunPodError

IDLE_S = 2.0


RECONNECT_MAX_S = 5.0


def events(lines: Iterable[str]) -> Iterator[tuple[str | None, dict]]:
    """(id, event) from a stream's lines: ``data:`` lines up to a blank line make one."""
    data: list[str] = []
    event_id = None
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("id:"):
            event_id = line[3:].strip() or None
        elif not line.strip() and data:
            with contextlib.suppress(ValueError):
                event = json.loads("\n".join(data))
                if isinstance(event, dict):
                    yield event_id, event
            data, event_id = [], None


def text(event: dict) -> str:
    line = str(event.get("line", "")).rstrip("\n")
    return f"[system] {line}" if event.get("source") == "system" else line


def read(client, pod_id: str, **options) -> Iterator[str]:
    """The pod's log lines as text (``[system] `` before system lines); ``read_events``'
    options."""
    for event in read_events(client, pod_id, **options):
        yield text(event)


def as_json(event: dict) -> dict:
    """`pod logs --json`: one object per line, with when and where it came from."""
    return {"ts": event.get("ts"), "source": event.get("source") or "container",
            "line": str(event.get("line", "")).rstrip("\n")}


def read_events(client, pod_id: str, *, tail: int = 100, follow: bool = False, idle: float = IDLE_S,
                on_open: Callable[[httpx.Response], None] = lambda _: None,
                going: Callable[[], bool] = lambda: True, sleep: Callable[[float], None] = time.sleep
                ) -> Iterator[dict]:
    """The pod's log events (source, line, ts), oldest first; with ``follow``, new ones as
    they come, across dropped streams, while ``going()`` (and until the pod is gone)."""
    cursor: str | None = None
    pause = 0.25
    drops = 0
    while True:
        seen = ended = False
        try:
            for event_id, event in _stream(client, pod_id, tail, cursor, None if follow else idle, on_open):
                cursor, seen = event_id or cursor, True
                yield event
            ended = True  # the server ended the stream
        except httpx.ReadTimeout:
            if not follow:
                return  # quiet for `idle` seconds: the backfill is over
        except (httpx.TransportError, httpx.StreamError, RunPodError) as error:
            status = getattr(error, "status", None)
            if status == 404:
                if cursor is not None or seen:
                    return  # followed to its end: the pod was terminated
                raise RunPodError(f"pod {pod_id} not found: it is gone, and its logs with it", 404) from None
            drops += 1
            if (status is not None and status != 429 and status < 500) or (not follow and drops > 3):
                raise
        if not going() or (ended and not follow):
            return
        # The stream ended or dropped: reopen it after the last event, backing off while
        # nothing comes.
        pause = 0.25 if seen else min(pause * 2, RECONNECT_MAX_S)
        sleep(pause)


def _stream(client, pod_id: str, tail: int, cursor: str | None, read_timeout: float | None,
            on_open) -> Iterator[tuple[str | None, dict]]:
    # tail is ignored with a cursor (getPodLogs): the cursor drives the backfill.
    params, headers = ({}, {"Last-Event-ID": cursor}) if cursor else ({"tail": tail}, {})
    with client.stream(f"/pods/{pod_id}/logs", params=params, headers=headers,
                       read_timeout=read_timeout) as response:
        on_open(response)
        yield from events(response.iter_lines())


class Follower:
    """Streams a pod's logs to ``emit`` in a background thread until ``close()``
    (shown while `pod create` waits, so a failing image pull is seen, not waited out)."""

    def __init__(self, client, pod_id: str, emit: Callable[[str], None], tail: int = 20):
        self._response: httpx.Response | None = None
        self._closed = threading.Event()

        def run() -> None:
            with contextlib.suppress(Exception):
                for line in read(client, pod_id, tail=tail, follow=True, on_open=self._opened,
                                 going=lambda: not self._closed.is_set()):
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
