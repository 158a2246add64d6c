"""The root typer app the command modules add their commands to.

Apart from ``cli/__init__`` (which imports every command module to register it) so that
a command module importing the app imports no module that imports it back.
"""

from __future__ import annotations

import typer

from imagebuild import __version__

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
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress on stderr (waits, phases); warnings and errors "
        "still come. Also IMAGEBUILD_QUIET=1."
    ),
) -> None:
    """Build research-pod images, push them, and drive RunPod pods safely."""
    from imagebuild.cli.progress import set_quiet

    set_quiet(quiet)
