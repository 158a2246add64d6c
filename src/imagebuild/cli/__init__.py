"""The `imagebuild` command line: a thin typer layer over the library.

Heavy imports (docker SDK, jinja2, pydantic, httpx) happen inside the commands,
so `imagebuild --help` and `--version` start fast.
"""

from __future__ import annotations

import sys

import typer

from imagebuild.cli.app import app
from imagebuild.errors import UserError

__all__ = ["app", "main"]

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
    from imagebuild.cli import push as _push  # noqa: F401
    from imagebuild.cli import run as _run  # noqa: F401
    from imagebuild.cli import volume as _volume  # noqa: F401


def _terminated(signum, frame) -> None:
    # SIGTERM (a closed terminal, a killed CI job) takes the Ctrl-C path: every
    # pod a command started is stopped again on the way out.
    raise KeyboardInterrupt


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _terminated)
    _register()
    try:
        app()
    except UserError as error:
        typer.echo(f"imagebuild: error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        typer.echo("imagebuild: interrupted", err=True)
        sys.exit(130)
