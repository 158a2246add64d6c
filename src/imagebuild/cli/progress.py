"""Progress on the CLI's waits: `pod create` / `pod start` (the phase, elapsed / timeout),
pod-save over SSH; never on stdout (it stays free for --json).

On a terminal a rich status line is kept up to date, its clock ticking each second; with
no terminal (CI, a log file) one line per phase change, the pod's own log lines as they
come, and a line with the elapsed time after HEARTBEAT_S of silence. ``--quiet``
(``imagebuild --quiet ...``) or ``IMAGEBUILD_QUIET=1`` prints neither: warnings and
errors still come. rich leaves colour out under ``NO_COLOR``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

# The phases of a pod getting ready, in order, as the words of its events say them.
PHASES = ("provisioning", "pulling", "sshd", "canary")


class _Quiet:
    on = False


def set_quiet(value: bool) -> None:
    _Quiet.on = value


def quiet() -> bool:
    return _Quiet.on or os.environ.get("IMAGEBUILD_QUIET", "") not in ("", "0")


def phase_of(text: str) -> str | None:
    """The phase an event of pods.wait_until_ready / launch / canary.wait says; None: none."""
    if text.startswith("GPU canary"):
        return "canary"
    if text.startswith("log: "):
        return "pulling" if "pull" in text.lower() else None
    word = text.split(",", 1)[0].split(" ", 1)[0]
    if word in ("created", "PROVISIONING") or "; trying " in text:
        return "provisioning"
    if word == "STARTING":
        return "pulling"  # RunPod's STARTING: the image is pulled, the container starts
    if word == "RUNNING" or text.startswith("SSH "):
        return "sshd"
    return None


def _clock(seconds: float, timeout: float | None) -> str:
    return f"{seconds:.0f} s" + (f" / {timeout:g} s" if timeout is not None else "")


class Waiting:
    """An ``on_event`` for a wait: keeps the phase and says it (see the module)."""

    def __init__(self, title: str, timeout: float | None, line: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic):
        self.title, self.timeout, self.line, self.clock = title, timeout, line, clock
        self.started = clock()
        self.phase: str | None = None
        self.text = ""

    def status(self) -> str:
        """The terminal's status line now."""
        phase = f": {self.phase}" if self.phase else ""
        return f"{self.title}{phase} ({_clock(self.clock() - self.started, self.timeout)})" + (
            f" {self.text}" if self.text else "")

    def __call__(self, text: str) -> None:
        phase = phase_of(text)
        if phase is not None and self.phase is not None and "; trying " not in text \
                and PHASES.index(phase) < PHASES.index(self.phase):
            phase = self.phase  # phases only go forward: the log says "pulling" before the status
        changed = phase is not None and phase != self.phase
        self.phase = phase or self.phase
        self.text = text
        # One line per phase; the pod's log lines and events of no phase as they come.
        if changed or phase is None or text.startswith("log: ") or "; trying " in text:
            self.line(self.status())


@contextlib.contextmanager
def waiting(title: str, timeout: float | None = None) -> Iterator[Callable[[str], None]]:
    """The ``on_event`` to hand a wait: a ticking status on a terminal, lines otherwise."""
    if quiet():
        yield lambda text: None
        return
    if not (sys.stderr is not None and sys.stderr.isatty()):
        with _heartbeat(title, timeout) as state:
            yield state
        return
    from rich.console import Console

    with Console(stderr=True).status(title) as shown:
        state = Waiting(title, timeout, lambda text: None)

        def report(text: str) -> None:
            state(text)
            shown.update(state.status())

        # The clock moves on between events.
        with _every(1.0, lambda: shown.update(state.status())):
            yield report


# With no terminal, a wait that says nothing for this long (pod-save over SSH has no
# events; a slow pull has few) still gets a line: a log shows it is alive.
HEARTBEAT_S = 30.0


@contextlib.contextmanager
def _heartbeat(title: str, timeout: float | None, every: float | None = None) -> Iterator[Waiting]:
    every = every or HEARTBEAT_S
    last = [time.monotonic()]

    def line(text: str) -> None:
        last[0] = time.monotonic()
        _stderr_line(text)

    state = Waiting(title, timeout, line)

    def beat() -> None:
        if time.monotonic() - last[0] >= every:
            line(state.status())

    with _every(min(1.0, every / 2), beat):
        yield state


@contextlib.contextmanager
def _every(interval: float, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` every ``interval`` seconds in a daemon thread while the block runs."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(interval):
            action()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=2)


def say_progress(text: str) -> None:
    """A line about what a command is doing (not a warning): on stderr unless --quiet."""
    if not quiet():
        _stderr_line(text)


def _stderr_line(text: str) -> None:
    stream = sys.stderr
    if stream is not None:
        stream.write(text + "\n")
        stream.flush()
