"""A small client for RunPod's REST API v2 (``https://api.runpod.io/v2``).

Why not the ``runpod`` SDK: it speaks GraphQL (being retired), builds queries by
string formatting and takes ~1.5 s to import. This client is httpx plus the retry
rules RunPod documents for createPod:

- every call has a timeout;
- 429 waits for ``Retry-After`` (integer seconds on this API), up to a cap;
- 5xx and network failures are retried with exponential backoff, a bounded number
  of times. A POST whose outcome is unknown (the connection dropped after the
  request went out, or a 5xx) is only retried after ``recover()`` confirmed it did
  not happen - so one command never creates two pods. RunPod lists a pod it made
  only seconds after the create, so a recovery looks over ``listing_lag`` seconds;
- every other error becomes one line built from the RFC 9457 problem document.

The API key is sent in the Authorization header and masked out of every message.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from imagebuild import __version__
from imagebuild.errors import UserError
from imagebuild.runpod._httpx import httpx
from imagebuild.runpod.credentials import CONFIG_HINT, ApiKey, load_api_key

DEFAULT_URL = "https://api.runpod.io/v2"
ATTEMPTS = 4  # per call: the first try and three retries
BACKOFF_S = 0.5  # first pause between retries; doubles each time
MAX_RETRY_AFTER_S = 60.0  # a longer Retry-After is reported, not waited out
TIMEOUT_S = 30.0
# How long a pod RunPod made may take to show in listPods: a create whose answer was
# lost is looked up by name this long (with backoff) before it is sent again.
LISTING_LAG_S = 30.0
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})


def api_base(url: str) -> str:
    """The spec names the server without ``/v2`` (its paths carry it): accept both."""
    url = url.rstrip("/")
    return url if url.endswith("/v2") else f"{url}/v2"


class RunPodError(UserError):
    """RunPod refused a call, or could not be reached. ``str()`` is one line."""

    def __init__(self, message: str, status: int | None = None, problem: dict | None = None):
        super().__init__(message, exit_code=1)
        self.status = status
        self.problem = problem or {}

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or "")


class Client:
    """Calls ``base_url + path``; returns decoded JSON (None for 204) or raises RunPodError."""

    def __init__(
        self,
        base_url: str,
        api_key: ApiKey,
        *,
        timeout: float = TIMEOUT_S,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF_S,
        max_retry_after: float = MAX_RETRY_AFTER_S,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        listing_lag: float = LISTING_LAG_S,
        on_retry: Callable[[str], None] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        # Told before each pause between attempts: a hung API is never a silent wait.
        self._on_retry = on_retry or (lambda line: None)
        self.listing_lag = listing_lag
        self.sleep = sleep
        self.unsafe_sent = 0  # non-idempotent requests sent so far (one may have taken effect)
        self._key = api_key
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key.reveal()}",
                "Accept": "application/json, application/problem+json",
                "User-Agent": f"imagebuild/{__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            # Certificates only matter for https; skipping the CA bundle load for a
            # plain-http URL (a local test server) saves ~20 ms of start-up.
            verify=self.base_url.startswith("https://"),
            follow_redirects=False,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 on_retry: Callable[[str], None] | None = None) -> Client:
        """Base URL from RUNPOD_API_URL, key from RUNPOD_API_KEY or the config file.

        IMAGEBUILD_RUNPOD_BACKOFF (seconds) shortens the retry pauses,
        IMAGEBUILD_RUNPOD_TIMEOUT the per-call timeout and IMAGEBUILD_RUNPOD_LISTING_LAG
        the look-up window after a lost create, for tests.
        """
        environ = os.environ if environ is None else environ
        url = environ.get("RUNPOD_API_URL") or DEFAULT_URL
        if not url.startswith(("http://", "https://")):
            raise UserError(f"RUNPOD_API_URL: expected a URL like {DEFAULT_URL}, got {url!r}", 2)
        url = api_base(url)
        seconds = {"backoff": BACKOFF_S, "timeout": TIMEOUT_S, "listing_lag": LISTING_LAG_S}
        for name, keyword in (("IMAGEBUILD_RUNPOD_BACKOFF", "backoff"),
                              ("IMAGEBUILD_RUNPOD_TIMEOUT", "timeout"),
                              ("IMAGEBUILD_RUNPOD_LISTING_LAG", "listing_lag")):
            if name in environ:
                try:
                    seconds[keyword] = float(environ[name])
                except ValueError:
                    raise UserError(f"{name}: expected seconds like 0.5", 2) from None
        return cls(url, load_api_key(environ), timeout=seconds["timeout"], backoff=seconds["backoff"],
                   listing_lag=seconds["listing_lag"], on_retry=on_retry)

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        recover: Callable[[], Any] | None = None,
    ) -> Any:
        """One API call with RunPod's retry rules.

        For a non-idempotent method, ``recover`` is called when the outcome is
        unknown: it returns the result if the call did happen (e.g. the pod it
        created, found by name), or None to let the call be sent again. Without
        ``recover`` an unknown outcome is an error, never a blind retry.
        """
        safe = method in IDEMPOTENT
        failure = ""
        pause = None  # set by a 429's Retry-After; else exponential backoff
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                wait = self._backoff * 2 ** (attempt - 2) if pause is None else pause
                self._on_retry(f"RunPod: retry {attempt}/{self._attempts} in {wait:.0f} s: {failure}")
                self._sleep(wait)
            pause = None
            if not safe:
                self.unsafe_sent += 1
            try:
                response = self._http.request(method, path, json=json, params=params)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                # The request never left: always safe to send again.
                failure = f"cannot reach RunPod at {self.base_url} ({self._describe(error)})"
                continue
            except httpx.TransportError as error:
                response = None
                failure = f"RunPod did not answer {method} {path} ({self._describe(error)})"
            if response is not None:
                status = response.status_code
                if status == 429:
                    wait = self._retry_after(response)
                    failure = f"RunPod is rate-limiting this key ({self._problem_line(response)})"
                    if wait > self._max_retry_after:
                        raise RunPodError(
                            f"{failure}; try again in {wait:.0f} s", status, self._problem(response)
                        )
                    pause = wait
                    continue
                if 200 <= status < 300:
                    try:
                        return self._json(response)
                    except RunPodError:
                        # It happened, but the answer is unreadable: find what it made.
                        found = recover() if recover is not None and not safe else None
                        if found is None:
                            raise
                        return found
                if status < 500:
                    raise self._error(response)
                failure = f"RunPod failed {method} {path} ({self._problem_line(response)})"
            # No answer, or a 5xx: the call may have happened; recover an unsafe one, never resend it blindly.
            if not safe:
                found = self._recover(recover, failure)
                if found is not None:
                    return found
        raise RunPodError(f"{failure}; gave up after {self._attempts} attempts - try again later")

    @contextlib.contextmanager
    def stream(self, path: str, params: Mapping[str, Any] | None = None,
               read_timeout: float | None = None,
               headers: Mapping[str, str] | None = None) -> Iterator[httpx.Response]:
        """A streamed GET (server-sent events); ``read_timeout`` None waits forever."""
        try:
            with self._http.stream(
                "GET", path, params=params, headers={"Accept": "text/event-stream", **(headers or {})},
                timeout=httpx.Timeout(TIMEOUT_S, read=read_timeout),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                yield response
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise RunPodError(f"cannot reach RunPod at {self.base_url} ({self._describe(error)})") from None

    # -- helpers -------------------------------------------------------------

    def _recover(self, recover: Callable[[], Any] | None, failure: str) -> Any:
        if recover is None:
            raise RunPodError(
                f"{failure}; it may or may not have taken effect, so it was not repeated - "
                "check with `imagebuild pod list`"
            )
        return recover()

    def _json(self, response: httpx.Response) -> Any:
        call = f"{response.request.method} {response.request.url.path}"
        if response.status_code == 204:
            return None
        if not response.content:
            # Only a DELETE or a pod action may answer without a body; an empty 200
            # elsewhere (a proxy in front, an outage page) would read as "no pods".
            if response.request.method == "DELETE" or call.endswith("/action"):
                return None
            raise RunPodError(f"RunPod answered {call} with an empty body; try again, and check "
                              "RUNPOD_API_URL if it persists")
        try:
            data = response.json()
        except ValueError:
            raise RunPodError(
                f"RunPod answered {call} with something "
                f"that is not JSON ({response.headers.get('content-type', 'no content type')}); "
                "is RUNPOD_API_URL right?"
            ) from None
        if not isinstance(data, dict):  # every v2 answer with a body is an object
            raise RunPodError(f"RunPod answered {call} with a JSON {type(data).__name__}, not an object; "
                              "is RUNPOD_API_URL right?")
        return data

    def _retry_after(self, response: httpx.Response) -> float:
        try:
            return max(0.0, float(response.headers.get("Retry-After", "")))
        except ValueError:
            return self._backoff

    def _describe(self, error: Exception) -> str:
        text = str(error) or type(error).__name__
        return self._key.redact(" ".join(text.split()))

    def _problem_line(self, response: httpx.Response) -> str:
        """``404 Not Found: pod not found`` from a problem document, on one line."""
        problem = self._problem(response)
        title = problem.get("title") or response.reason_phrase
        detail = problem.get("detail") or ("" if problem else response.text[:200])
        line = f"{response.status_code} {title}"
        if detail and detail != title:
            line += f": {detail}"
        errors = problem.get("errors")
        if isinstance(errors, list) and errors:
            line += " [" + "; ".join(str(e) for e in errors[:5]) + "]"
        return self._key.redact(" ".join(line.split()))

    def _error(self, response: httpx.Response) -> RunPodError:
        status = response.status_code
        line = self._problem_line(response)
        if status == 401:
            message = (
                f"RunPod rejected the API key ({line}); check RUNPOD_API_KEY or {CONFIG_HINT} "
                "- the key needs read/write access to pods"
            )
        elif status == 403:
            message = (
                f"RunPod does not let this account {response.request.method} "
                f"{response.request.url.path} ({line}); check the key's permissions"
            )
        else:
            message = (
                f"RunPod refused {response.request.method} {response.request.url.path} ({line})"
            )
        return RunPodError(message, status, self._problem(response))

    def _problem(self, response: httpx.Response) -> dict:
        """The RFC 9457 document, its strings with the key masked ({} if none)."""
        try:
            data = response.json()
        except ValueError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: self._key.redact(v) if isinstance(v, str) else v for k, v in data.items()}


def listed(answer: Any, key: str, call: str) -> list[dict]:
    """The objects under ``answer[key]`` (``{"pods": [...]}``), each with a string ``id``;
    one line naming the field when RunPod's answer has another shape."""
    items = (answer or {}).get(key, [])
    if not isinstance(items, list):
        raise RunPodError(f"RunPod's answer to {call}: field {key!r} is a {type(items).__name__}, "
                          "not a list; try again, and check RUNPOD_API_URL if it persists")
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise RunPodError(f"RunPod's answer to {call}: {key}[{index}] has no string 'id'; try "
                              "again, and check RUNPOD_API_URL if it persists")
    return items
