"""The fake RunPod API as a real HTTP server on 127.0.0.1 (a random port).

Every request is checked against the OpenAPI spec before it is answered, and
every response before it is sent; what does not conform is recorded in
``mismatches`` (the pytest fixture fails the test on any). Every request is also
recorded in ``requests`` so tests can assert what the client sent and how often.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fake_runpod import schema
from fake_runpod.state import FakePod, Reply, RunPodState, problem

DEFAULT_KEY = "rpa_FAKEKEY_7Q2Z9X4W1V8T6R3P0N5M"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int  # 0: the connection was dropped unanswered
    at: float  # the fake's clock when it arrived


class FakeRunPod:
    """Start with ``with FakeRunPod() as fake:``; point the client at ``fake.url``."""

    def __init__(self, *, api_key: str = DEFAULT_KEY, validate: bool = True, host: str = "127.0.0.1",
                 **state_options: Any):
        self.host = host  # e.g. the docker bridge's address, for pods that call the API
        self.state = RunPodState(api_key, **state_options)
        self.api_key = api_key
        self.spec, self.skip_reason = schema.load() if validate else (None, "validation turned off")
        self.requests: list[Recorded] = []
        self.mismatches: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FakeRunPod:
        server = ThreadingHTTPServer((self.host, 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.state.backend.close()

    def __enter__(self) -> FakeRunPod:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server, "start() the fake first"
        return f"http://{self.host}:{self._server.server_address[1]}/v2"

    # -- test helpers ----------------------------------------------------------

    def inject(self, kind: str, **options: Any):
        """Inject a fault: see ``state.FAULT_KINDS``."""
        return self.state.inject(kind, **options)

    def script(self, method: str, path: str, kinds: list[str]) -> None:
        """The next answers to ``method path`` in order: fault kinds or "ok"."""
        self.state.script(method, path, kinds)

    @property
    def pods(self) -> dict[str, FakePod]:
        return self.state.pods

    def billing(self) -> list[str]:
        """Ids of the pods billed now (PROVISIONING, STARTING or RUNNING)."""
        return self.state.billing()

    @property
    def account(self):
        return self.state.account

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # -- one exchange ----------------------------------------------------------

    def exchange(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        op, problems = None, []
        if self.spec:
            op, problems = self.spec.check_request(method, parts.path, query, headers, raw)
            self.mismatches += [f"request {p}" for p in problems]
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body, problems = None, [*problems, "request body is not JSON"]
        if problems:
            # What RunPod does with a request off its contract (the test fails anyway).
            reply = problem(422, "Unprocessable Entity", "Request validation failed.", errors=problems[:10])
        else:
            reply = self.state.handle(method, parts.path, query, headers.get("authorization", ""), body,
                                      headers)
        self.requests.append(Recorded(method, parts.path, query, body, reply.status, self.state.clock()))
        if self.spec and op is not None and not reply.drop:
            encoded = _encode(reply)
            sent_headers = {k.lower(): v for k, v in reply.headers.items()}
            if encoded or reply.more is not None:  # a stream says what it is even when empty so far
                sent_headers["content-type"] = reply.content_type
            problems = self.spec.check_response(op, reply.status, sent_headers, encoded)
            self.mismatches += [f"response {p}" for p in problems]
        return reply


def _encode(reply: Reply) -> bytes:
    return reply.encoded()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one exchange per connection: a dropped reply stays contained
    server_version = "fake-runpod"

    def _serve(self) -> None:
        fake: FakeRunPod = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = fake.exchange(self.command, self.path, headers, raw)
        except Exception:  # a bug in the fake must fail the test, not hang or hide
            fake.mismatches.append(f"the fake crashed on {self.command} {self.path}:\n{traceback.format_exc()}")
            reply = problem(500, "Internal Server Error", "the fake RunPod crashed")
        if reply.delay:
            time.sleep(reply.delay)  # the client's read timeout may fire first
        if reply.drop:
            self.close_connection = True
            return  # nothing written: the client sees the connection close
        body = _encode(reply)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if body or reply.more is not None:
            self.send_header("Content-Type", reply.content_type)
        if reply.more is None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if reply.more is not None:  # a stream: HTTP/1.0 ends it by closing the connection
            try:
                for chunk in reply.more():
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:
                pass  # the client hung up: what a log follower does when it is done

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows what matters
        pass
