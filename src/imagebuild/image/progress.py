"""Progress views for builds and pushes: a live per-layer table on a terminal,
plain timestamped lines otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
import time
from typing import Protocol


class Reporter(Protocol):
    """What the builder and the pusher tell about each layer."""

    def started(self, layer: str, image: str) -> None: ...
    def progress(self, layer: str, status: str) -> None: ...
    def finished(self, layer: str, cached: bool, seconds: float) -> None: ...
    def failed(self, layer: str) -> None: ...


class SilentReporter:
    def started(self, layer: str, image: str) -> None: ...
    def progress(self, layer: str, status: str) -> None: ...
    def finished(self, layer: str, cached: bool, seconds: float) -> None: ...
    def failed(self, layer: str) -> None: ...


class PlainReporter:
    """One line per event on stderr; stdout stays free for --json."""

    EVERY_S = 5.0  # a layer being pushed: bytes and rate this often, not per chunk

    def __init__(self, verb: str = "build", stream=None, clock=None):
        import time

        self.verb = verb
        self.stream = stream or sys.stderr
        self.clock = clock or time.monotonic
        self.said: dict[str, float] = {}

    def _say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def started(self, layer: str, image: str) -> None:
        self._say(f"[{layer}] {self.verb} {image}")

    def progress(self, layer: str, status: str) -> None:
        if status.startswith("["):  # a new Dockerfile step, not every output line
            self._say(f"[{layer}] {status[:160]}")
        elif status.startswith("pushed "):
            self._say(f"[{layer}] {status}")
        elif status.startswith("pushing ") and (layer not in self.said
                                                or self.clock() - self.said[layer] >= self.EVERY_S):
            self.said[layer] = self.clock()
            self._say(f"[{layer}] {status}")

    def finished(self, layer: str, cached: bool, seconds: float) -> None:
        self._say(f"[{layer}] {'up to date' if cached else 'done'} in {seconds:.1f}s")

    def failed(self, layer: str) -> None:
        self._say(f"[{layer}] FAILED")


class LiveReporter:
    """A rich live table: one row per layer with its state, time and last output."""

    def __init__(self, layers: list[str], verb: str = "build"):
        from rich.console import Console
        from rich.live import Live

        self.verb = verb
        self.rows: dict[str, list[str]] = {name: ["waiting", "", ""] for name in layers}
        self.started_at: dict[str, float] = {}
        console = Console(stderr=True)
        self.width = console.width
        self.live = Live(self._table(), console=console, refresh_per_second=8, transient=False)

    def __enter__(self) -> LiveReporter:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.update(self._table())
        self.live.__exit__(*exc)

    def _table(self):
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        # On a narrow terminal only the last output gives way: layer, state and time
        # are short and are what the table is for.
        fixed = [("layer", max([len(name) for name in self.rows] + [len("layer")])),
                 ("state", len("up to date")), ("time", 6)]
        for column, width in fixed:
            table.add_column(column, no_wrap=True, min_width=width)
        room = self.width - sum(width for _, width in fixed) - 2 * (len(fixed) + 1)
        table.add_column("last output", no_wrap=True, overflow="ellipsis", max_width=max(8, min(90, room)))
        for name, (state, seconds, last) in self.rows.items():
            if state in ("building", "pushing") and name in self.started_at:
                seconds = f"{time.monotonic() - self.started_at[name]:.0f}s"
            style = {"done": "green", "up to date": "green", "FAILED": "red"}.get(state, "")
            table.add_row(name, f"[{style}]{state}[/]" if style else state, seconds, last)
        return table

    def _update(self, layer: str, state: str | None = None, seconds: str | None = None,
                last: str | None = None) -> None:
        row = self.rows.setdefault(layer, ["", "", ""])
        for index, value in enumerate((state, seconds, last)):
            if value is not None:
                row[index] = value
        self.live.update(self._table())

    def started(self, layer: str, image: str) -> None:
        self.started_at[layer] = time.monotonic()
        self._update(layer, "building" if self.verb == "build" else "pushing", "", image)

    def progress(self, layer: str, status: str) -> None:
        from rich.markup import escape

        self._update(layer, last=escape(status[:90]))

    def finished(self, layer: str, cached: bool, seconds: float) -> None:
        self._update(layer, "up to date" if cached else "done", f"{seconds:.1f}s", "")

    def failed(self, layer: str) -> None:
        self._update(layer, "FAILED")
