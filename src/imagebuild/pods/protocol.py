"""The ``Target`` interface every pod backend implements (local pods in
:mod:`imagebuild.pods.targets`, RunPod pods in :mod:`imagebuild.runpod.target`).

Apart from ``targets`` so that a backend imports the interface without importing
``targets.resolve``, which imports the backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from imagebuild.pods.ssh import Endpoint

if TYPE_CHECKING:
    from imagebuild.pods.remote import Output

Report = Callable[[str], None]


class Target(Protocol):
    @property
    def label(self) -> str: ...  # for messages: "name (id)" or "local:name"

    @property
    def ref(self) -> str: ...  # what to type in a follow-up command

    @property
    def status(self) -> str: ...  # the backend's own word

    @property
    def state(self) -> str: ...  # running, stopped, starting or other

    def endpoint(self) -> Endpoint | None: ...

    def ssh_options(self) -> list[str]: ...

    # ``script`` (bash) on the running pod: its output and exit status, or why not.
    def run(self, script: str, timeout: float) -> Output: ...

    def workspace_kept(self) -> str | None: ...  # the network volume /workspace is on, if any

    def refresh(self) -> None: ...

    def start(self, wait: bool, timeout: float, on_event: Report) -> None: ...

    def stop(self) -> None: ...

    def terminate(self) -> None: ...

    def to_json(self) -> dict[str, Any]: ...

    def status_lines(self) -> list[str]: ...

    def close(self) -> None: ...
