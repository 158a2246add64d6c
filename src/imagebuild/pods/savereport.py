"""pod-save's JSON report for people, rendered by the image's own renderer.

The host does not keep a second copy of the wording: it loads
``entrypoint/lib/podsave/report.py`` (stdlib only, shipped in this package and in
every image) and renders the JSON report it read over SSH with it, so `pod-save` on the
pod and `imagebuild pod save/stop/terminate` on the laptop say the same lines. That
renderer reads every key with a default (reports from older images lack ``format``)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

_RENDERER = Path(__file__).resolve().parent.parent / "entrypoint" / "lib" / "podsave" / "report.py"


@functools.cache
def _image_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("imagebuild_podsave_report", _RENDERER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unsaved(report: dict) -> list[str]:
    """One line per thing that exists only on the pod: what terminating would lose."""
    return _image_report().lost_lines(report)


def text(report: dict) -> str:
    """The report as the pod's `pod-save` prints it; its texts are already free of secrets."""
    return _image_report().format_human(report)


def render(report: dict, console: Any) -> None:
    """Print the report on a rich console (no markup: paths and remotes' words as they are)."""
    console.print(text(report), markup=False, highlight=False)
