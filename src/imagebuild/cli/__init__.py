"""The `imagebuild` command line: a thin typer layer over the library.

Heavy imports (docker SDK, jinja2, pydantic, httpx) happen inside the commands,
so `imagebuild --help` and `--version` start fast.
"""

from __future__ import annotations

import sys

import typer

from imagebuild import __version__
from imagebuild.errors import UserError

app = typer.Typer(
    name="imagebuild",
    help="Reproducible GPU research-pod images and a safe RunPod pod lifecycle.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imagebuild {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool | None = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Build research-pod images, push them, and drive RunPod pods safely."""


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
