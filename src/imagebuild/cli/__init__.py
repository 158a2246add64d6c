"""The `imagebuild` command line: a thin typer layer over the library.

Heavy imports (docker SDK, jinja2, pydantic, httpx) happen inside the commands,
so `imagebuild --help` and `--version` start fast.
"""

from __future__ import annotations

import sys

from imagebuild.cli.app import app

__all__ = ["app", "command", "main"]


def _register() -> None:
    # Each module adds its commands to `app` (or a sub-app) at import.
    from imagebuild.cli import build as _build  # noqa: F401
    from imagebuild.cli import diff as _diff  # noqa: F401
    from imagebuild.cli import export as _export  # noqa: F401
    from imagebuild.cli import gpus as _gpus  # noqa: F401
    from imagebuild.cli import layers as _layers  # noqa: F401
    from imagebuild.cli import lock as _lock  # noqa: F401
    from imagebuild.cli import pod as _pod  # noqa: F401
    from imagebuild.cli import pod_create as _pod_create  # noqa: F401
    from imagebuild.cli import pod_jobs as _pod_jobs  # noqa: F401
    from imagebuild.cli import push as _push  # noqa: F401
    from imagebuild.cli import run as _run  # noqa: F401
    from imagebuild.cli import volume as _volume  # noqa: F401


def _plain_metavars(command) -> None:
    """Help that says ``--gpu-count N`` and ``--secret SECRET``, not typer's type names
    (``<int>``, ``<list[str]>``): a metavar for every value that has none."""
    from pathlib import Path

    for param in command.params:
        if param.param_type_name == "argument":
            # The name says it (POD, IMAGE); typer would add "<str>" after it.
            param.display_type_rich = lambda ctx: None
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        kind = param.type_descriptor.annotation
        if param.param_type_name == "argument":
            continue
        if kind is int:
            param.metavar = "N"
        elif kind is float:
            param.metavar = "SECONDS" if "timeout" in param.name else "X"
        elif kind is Path:
            param.metavar = "FILE" if param.name.endswith("_path") else "PATH"
        else:
            longest = max(param.opts, key=len).lstrip("-")
            param.metavar = longest.upper()
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)


def command():
    """The whole command tree, ready to run (``imagebuild`` is the program's name)."""
    import typer.main

    _register()
    tree = typer.main.get_command(app)
    _plain_metavars(tree)
    return tree


def main() -> None:
    from imagebuild.cli.boundary import run

    tree = command()
    sys.exit(run(lambda: tree.main(prog_name="imagebuild", standalone_mode=False)))
